/* SPDX-License-Identifier: MIT */
/* The README's example: an 800 MB float64 matrix in ./example.db, of which only the
 * blocks under a slice are ever loaded; 1000 rows written through a view and committed.
 * The README quotes the lines from "ba_array_spec spec;" to the commit. */
#include <bigarray.h>
#include <stdio.h>

int main(void)
{
    ba_db_options opts;
    ba_db_options_init(&opts);
    opts.flags = BA_DB_CREATE; /* create ./example.db if it does not exist */
    ba_db *db = NULL;
    ba_session *s = NULL;
    ba_array *a = NULL;
    ba_view v = {0};
    int rc;

    ba_array_spec spec;
    ba_array_spec_init(&spec); /* float64, C order, 2 MiB blocks, not compressed */
    spec.ndim = 2;
    spec.shape[0] = 100000;
    spec.shape[1] = 1000;
    if ((rc = ba_db_open("example.db", &opts, &db)) || (rc = ba_session_begin(db, &s)) ||
        (rc = ba_array_create(s, "m", &spec, &a)) ||
        (rc = ba_array_view_text(a, "5000:6000", 0, &v)))
        goto out;
    double(*rows)[1000] = v.data; /* a C-order slice of whole rows is contiguous */
    for (int i = 0; i < 1000; i++)
        for (int j = 0; j < 1000; j++)
            rows[i][j] = i + j / 1000.0;
    rc = ba_session_commit(s); /* atomic and durable; on failure nothing is written */

    printf("m[5999, 0] = %g, committed as snapshot %llu\n", rows[999][0],
           (unsigned long long)ba_session_snapshot(s));
out:
    if (rc)
        fprintf(stderr, "example: %s: %s\n", ba_strerror(rc), ba_errmsg());
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    return rc != 0;
}
