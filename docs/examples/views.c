/* SPDX-License-Identifier: MIT */
/* Views: slices of an array as plain strided memory. Writes through one view are seen
 * through every other view of the array in the session; commit keeps them, abort drops
 * them, and a view stays valid across both. */
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

/* The address of element (i, j) of a 2-D view: strides are in bytes. */
static double *at(const ba_view *v, int64_t i, int64_t j)
{
    return (double *)((char *)v->data + i * v->strides[0] + j * v->strides[1]);
}

int main(void)
{
    ba_db_options opts;
    ba_db_options_init(&opts);
    opts.flags = BA_DB_CREATE;
    ba_db *db;
    check(ba_db_open("data.db", &opts, &db), "open");
    ba_session *s;
    check(ba_session_begin(db, &s), "begin");
    ba_array_spec spec;
    ba_array_spec_init(&spec); /* <f8 */
    spec.ndim = 2;
    spec.shape[0] = 1000;
    spec.shape[1] = 500;
    ba_array *a;
    check(ba_array_create(s, "grid", &spec, &a), "create");

    /* Every other row, columns 10..19, counted from the end: numpy's a[::2, -490:-480]. */
    ba_view v;
    check(ba_array_view_text(a, "::2, -490:-480", 0, &v), "view");
    printf("view: ndim %d, shape (%lld, %lld), strides (%lld, %lld) bytes, %llu elements\n", v.ndim,
           (long long)v.shape[0], (long long)v.shape[1], (long long)v.strides[0],
           (long long)v.strides[1], (unsigned long long)ba_view_size(&v));
    for (int64_t i = 0; i < v.shape[0]; i++)
        for (int64_t j = 0; j < v.shape[1]; j++)
            *at(&v, i, j) = (double)(2 * i * 1000 + 10 + j);

    /* The same slicing as structs: row 4 (an index drops the axis), columns 10:20:3. */
    ba_slice sl[2] = {{BA_SLICE_INDEX, 4, 0, 0}, {BA_SLICE_RANGE, 10, 20, 3}};
    ba_view row;
    check(ba_array_view(a, sl, 2, BA_VIEW_READONLY, &row), "row view");
    expect(row.ndim == 1 && row.shape[0] == 4 && row.strides[0] == 3 * 8, "row layout");
    printf("grid[4, 10:20:3] =");
    for (int64_t k = 0; k < row.shape[0]; k++)
        printf(" %g", *(const double *)((const char *)row.data + k * row.strides[0]));
    printf("\n");
    expect(*(const double *)row.data == 4010, "grid[4, 10] is 4010");

    check(ba_session_commit(s), "commit");
    *at(&v, 0, 0) = -1; /* uncommitted change, seen through every view */
    ba_view one;
    check(ba_array_view_text(a, "0, 10", 0, &one), "scalar view"); /* ndim 0 */
    printf("after the write: grid[0, 10] = %g\n", *(double *)one.data);
    expect(*(double *)one.data == -1, "the write is seen through another view");
    check(ba_session_abort(s), "abort");
    printf("after abort:     grid[0, 10] = %g\n", *(double *)one.data);
    expect(*(double *)one.data == 10, "abort restored the committed value");

    ba_view_release(&one);
    ba_view_release(&row);
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    return 0;
}
