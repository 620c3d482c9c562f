/* SPDX-License-Identifier: MIT */
/* Errors are values: 0, or a negative code, either -errno or a BA_E* code.
 * ba_strerror() names the code; ba_errmsg() is the calling thread's message about its
 * last failure, saying what failed and where. A failed call changes nothing. */
#include <bigarray.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static int failures;

/* Print a failed call's code, name and message; count it if it is not the one expected. */
static void show(const char *call, int rc, int expected)
{
    printf("%-24s %-6d %-22s %s\n", call, rc, ba_strerror(rc), rc ? ba_errmsg() : "");
    failures += rc != expected;
}

int main(void)
{
    ba_db *db;
    ba_dtype dt;
    show("ba_db_open (missing)", ba_db_open("missing.db", NULL, &db), BA_ENOTFOUND);
    show("ba_dtype_parse (q7)", ba_dtype_parse("q7", &dt), BA_EDTYPE);

    ba_db_options opts;
    ba_db_options_init(&opts);
    opts.flags = BA_DB_CREATE;
    show("ba_db_open (create)", ba_db_open("data.db", &opts, &db), 0);
    ba_session *s;
    show("ba_session_begin", ba_session_begin(db, &s), 0);
    ba_array_spec spec;
    ba_array_spec_init(&spec);
    spec.ndim = 1;
    spec.shape[0] = 10;
    ba_array *a, *b;
    show("ba_array_create", ba_array_create(s, "a", &spec, &a), 0);
    show("ba_array_create (again)", ba_array_create(s, "a", &spec, &b), BA_EEXIST);
    show("ba_array_open (no such)", ba_array_open(s, "nope", &b), BA_ENOTFOUND);
    ba_view v;
    show("ba_array_view_text (10)", ba_array_view_text(a, "10", 0, &v), BA_ERANGE);
    show("ba_array_view_text (::0)", ba_array_view_text(a, "::0", 0, &v), BA_EINVAL);
    int64_t two_dims[2] = {5, 2};
    show("ba_array_resize (2-d)", ba_array_resize(a, 2, two_dims), BA_ESHAPE);
    show("ba_session_commit", ba_session_commit(s), 0);

    /* -errno codes are named like strerror() names them. */
    printf("ba_strerror(-ENOSPC) = \"%s\", ba_strerror(BA_ECONFLICT) = \"%s\"\n",
           ba_strerror(-ENOSPC), ba_strerror(BA_ECONFLICT));

    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    return failures ? 1 : 0;
}
