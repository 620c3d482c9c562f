/* SPDX-License-Identifier: MIT */
/* Sessions and isolation. Each session reads one snapshot until its next commit or
 * abort, whatever other sessions commit meanwhile; its own changes are private until it
 * commits. Sessions of one process and of different processes behave the same. */
#include <bigarray.h>
#include <stdio.h>
#include <stdlib.h>

static void check(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", what, ba_strerror(rc), ba_errmsg());
        exit(1);
    }
}

static void expect(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "unexpected: %s\n", what);
        exit(1);
    }
}

int main(void)
{
    ba_db_options opts;
    ba_db_options_init(&opts);
    opts.flags = BA_DB_CREATE;
    ba_db *db;
    check(ba_db_open("data.db", &opts, &db), "open");

    ba_session *w, *r; /* a writer and a reader */
    check(ba_session_begin(db, &w), "begin w");
    ba_array_spec spec;
    ba_array_spec_init(&spec);
    spec.ndim = 1;
    spec.shape[0] = 10;
    ba_array *wa;
    check(ba_array_create(w, "x", &spec, &wa), "create");
    check(ba_session_commit(w), "commit");
    check(ba_session_begin(db, &r), "begin r"); /* r's snapshot: x exists, all zeros */

    ba_array *ra;
    check(ba_array_open(r, "x", &ra), "open in r");
    ba_view wv, rv;
    check(ba_array_view(wa, NULL, 0, 0, &wv), "w view");
    check(ba_array_view(ra, NULL, 0, BA_VIEW_READONLY, &rv), "r view");
    double *wx = wv.data;
    const double *rx = rv.data;

    wx[3] = 42; /* private to w until it commits */
    printf("w wrote 42:      w sees %g, r sees %g\n", wx[3], rx[3]);
    expect(rx[3] == 0, "uncommitted writes are private");
    check(ba_session_commit(w), "commit w");
    printf("w committed %llu: r (at snapshot %llu) still sees %g\n",
           (unsigned long long)ba_session_snapshot(w), (unsigned long long)ba_session_snapshot(r),
           rx[3]);
    expect(rx[3] == 0, "a session keeps its snapshot");

    /* r's transaction boundary: commit (r has no changes) or abort moves it to the
     * newest snapshot. Its views stay valid and now show the new data. */
    check(ba_session_abort(r), "abort r");
    printf("r aborted:       r (at snapshot %llu) sees %g\n",
           (unsigned long long)ba_session_snapshot(r), rx[3]);
    expect(rx[3] == 42 && ba_session_snapshot(r) == ba_session_snapshot(w), "r moved on");

    ba_view_release(&rv);
    ba_view_release(&wv);
    ba_array_close(ra);
    ba_array_close(wa);
    ba_session_end(r);
    ba_session_end(w);
    ba_db_close(db);
    return 0;
}
