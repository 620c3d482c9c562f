/* SPDX-License-Identifier: MIT */
/* fork(): the child inherits no handle and no view of the parent. Its views' memory
 * is not even mapped there, and LMDB forbids using the parent's environment. The child
 * opens the database anew and sees what was committed; the parent is not affected. */
#include <bigarray.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void check(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", what, ba_strerror(rc), ba_errmsg());
        exit(1);
    }
}

/* x[0] as a new session of this process's handle of data.db sees it. */
static double first(ba_db *db)
{
    ba_session *s;
    ba_array *a;
    ba_view v;
    check(ba_session_begin(db, &s), "begin");
    check(ba_array_open(s, "x", &a), "open");
    check(ba_array_view_text(a, "0", BA_VIEW_READONLY, &v), "view");
    double x = *(const double *)v.data;
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    return x;
}

int main(void)
{
    ba_db_options opts;
    ba_db_options_init(&opts);
    opts.flags = BA_DB_CREATE;
    ba_db *db;
    check(ba_db_open("data.db", &opts, &db), "open");
    ba_session *s;
    ba_array *a;
    check(ba_session_begin(db, &s), "begin");
    ba_array_spec spec;
    ba_array_spec_init(&spec);
    spec.ndim = 1;
    spec.shape[0] = 1000;
    check(ba_array_create(s, "x", &spec, &a), "create");
    ba_view v;
    check(ba_array_view(a, NULL, 0, 0, &v), "view");
    double *x = v.data;
    x[0] = 1;
    check(ba_session_commit(s), "commit");
    x[0] = 2; /* not committed: the child will not see it */

    fflush(stdout); /* or the child's copy of the buffer prints it again */
    pid_t pid = fork();
    if (pid == 0) {
        /* The child: the parent's db, s, a and v are not usable here (v's memory is not
         * even mapped). Opening the path gives a handle of the child's own. */
        ba_db *cdb;
        check(ba_db_open("data.db", NULL, &cdb), "open in the child");
        double seen = first(cdb);
        printf("child:  x[0] = %g (committed)\n", seen);
        ba_db_close(cdb);
        fflush(stdout);
        _exit(seen == 1 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("parent: x[0] = %g (its own uncommitted change), child exit %d\n", x[0],
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    int ok = x[0] == 2 && WIFEXITED(status) && WEXITSTATUS(status) == 0;

    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    return ok ? 0 : 1;
}
