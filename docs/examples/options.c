/* SPDX-License-Identifier: MIT */
/* Database options: the pager's RAM budget and backend, durability, read-only access
 * and how long a commit waits for another process's commit. Fields left at their
 * ba_db_options_init() value take the environment's or the library's default. */
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
    opts.flags = BA_DB_CREATE | BA_DB_NOSYNC; /* commits atomic, not durable: no fdatasync */
    opts.ram_limit = 256 << 20;  /* 0: BIGARRAY_RAM_LIMIT, else half of RAM or cgroup limit */
    opts.pager = BA_PAGER_AUTO;  /* BIGARRAY_PAGER=uffd|sigsegv, else the default (SIGSEGV) */
    opts.spill_dir = NULL;       /* BIGARRAY_SPILL_DIR, else $TMPDIR, else /var/tmp */
    opts.lock_timeout_ms = 5000; /* a commit waits 5 s for another process's, then BA_EBUSY */
    ba_db *db;
    check(ba_db_open("data.db", &opts, &db), "open");
    ba_pager_stat ps;
    ps.size = sizeof ps;
    check(ba_db_pager_stat(db, &ps), "pager stat");
    printf("pager: %s, RAM budget %llu MiB\n",
           ba_db_pager(db) == BA_PAGER_UFFD ? "userfaultfd" : "SIGSEGV",
           (unsigned long long)(ps.ram_limit >> 20));
    expect(ps.ram_limit == 256 << 20, "the budget is the one asked for");

    ba_session *s;
    ba_array *a;
    check(ba_session_begin(db, &s), "begin");
    ba_array_spec spec;
    ba_array_spec_init(&spec);
    spec.ndim = 1;
    spec.shape[0] = 1000;
    check(ba_array_create(s, "a", &spec, &a), "create");
    check(ba_session_commit(s), "commit");
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db); /* the last handle: closed, so it can be opened read-only */

    /* Read-only: changes are refused; views are writable scratch memory that a commit
     * refuses to store and an abort drops. */
    ba_db_options ro;
    ba_db_options_init(&ro);
    ro.flags = BA_DB_RDONLY;
    check(ba_db_open("data.db", &ro, &db), "open read-only");
    check(ba_session_begin(db, &s), "begin");
    check(ba_array_open(s, "a", &a), "open a");
    int64_t n = 2000;
    int rc = ba_array_resize(a, 1, &n);
    printf("resize on a read-only database: %s (%s)\n", ba_strerror(rc), ba_errmsg());
    expect(rc == BA_EREADONLY, "resize is refused");
    ba_view v;
    check(ba_array_view(a, NULL, 0, 0, &v), "view");
    ((double *)v.data)[0] = 1;
    rc = ba_session_commit(s);
    printf("commit on a read-only database: %s\n", ba_strerror(rc));
    expect(rc == BA_EREADONLY, "commit is refused");
    check(ba_session_abort(s), "abort");
    expect(((double *)v.data)[0] == 0, "abort dropped the scratch write");

    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    return 0;
}
