/* SPDX-License-Identifier: MIT */
/* Append rows along the major axis (cost: the new data only) and resize in O(1):
 * growing shows zeros, shrinking discards, and growing again never shows old data. */
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

static int64_t rows_of(ba_array *a)
{
    ba_array_info info;
    info.size = sizeof info;
    check(ba_array_info_get(a, &info), "info");
    return info.shape[0];
}

/* Element [row, col] of the int32 array, read through a fresh view. */
static int32_t get(ba_array *a, int64_t row, int64_t col)
{
    char text[64];
    snprintf(text, sizeof text, "%lld, %lld", (long long)row, (long long)col);
    ba_view v;
    check(ba_array_view_text(a, text, BA_VIEW_READONLY, &v), "view");
    int32_t x = *(const int32_t *)v.data;
    ba_view_release(&v);
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
    check(ba_session_begin(db, &s), "begin");
    ba_array_spec spec;
    ba_array_spec_init(&spec);
    check(ba_dtype_parse("i4", &spec.dtype), "dtype");
    spec.ndim = 2;
    spec.shape[0] = 0; /* empty: rows come by append */
    spec.shape[1] = 3;
    ba_array *a;
    check(ba_array_create(s, "log", &spec, &a), "create");

    /* Two rows of three, contiguous in the array's order (C here). */
    int32_t two[2][3] = {{1, 2, 3}, {4, 5, 6}};
    int64_t shape2[2] = {2, 3};
    check(ba_array_append(a, two, 2, shape2, NULL), "append 2 rows"); /* NULL: a's dtype */
    /* One row: data of one dimension fewer appends a single sub-array. */
    int32_t one[3] = {7, 8, 9};
    int64_t shape1[1] = {3};
    check(ba_array_append(a, one, 1, shape1, NULL), "append 1 row");
    /* A row of the wrong length changes nothing. */
    int64_t bad[1] = {4};
    int32_t four[4] = {0};
    int rc = ba_array_append(a, four, 1, bad, NULL);
    printf("append of 4 columns: %s (%s)\n", ba_strerror(rc), ba_errmsg());
    expect(rc == BA_ESHAPE && rows_of(a) == 3, "a bad append leaves the array as it was");
    check(ba_session_commit(s), "commit");
    printf("after append: %lld rows, log[2, 2] = %d\n", (long long)rows_of(a), get(a, 2, 2));

    int64_t shape[2] = {5, 3}; /* grow: rows 3 and 4 read as zeros */
    check(ba_array_resize(a, 2, shape), "grow");
    expect(get(a, 4, 0) == 0, "grown rows are zeros");
    shape[0] = 1; /* shrink: rows 1.. are discarded */
    check(ba_array_resize(a, 2, shape), "shrink");
    shape[0] = 3; /* and grow again: zeros, not the old rows */
    check(ba_array_resize(a, 2, shape), "grow again");
    check(ba_session_commit(s), "commit");
    printf("after shrink to 1 and grow to 3: log[0, 0] = %d, log[2, 2] = %d\n", get(a, 0, 0),
           get(a, 2, 2));
    expect(get(a, 0, 0) == 1 && get(a, 2, 2) == 0, "shrink then grow shows zeros");

    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    return 0;
}
