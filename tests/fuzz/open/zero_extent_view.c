/* SPDX-License-Identifier: MIT */
/*
 * Open finding (not fixed; see tests/fuzz/README.md, "Open findings"). Not built by
 * CMake. An array whose shape has a 0 extent and other extents whose product passes
 * 2^63 bytes is accepted by ba_array_create() and by store_shape_validate() (so also
 * by the catalog decoder: catalog-zero-extent-strides-overflow next to this file is
 * such a record, and store_arr_decode() returns 0 for it); the first view then
 * overflows int64 in layout_strides() (lib/ba_array.c). numpy refuses such shapes
 * ("array is too big"). With the library built with BA_SANITIZE=address:
 *
 *   cc -fsanitize=address,undefined -fno-sanitize-recover=undefined -Ilib \
 *      tests/fuzz/open/zero_extent_view.c BUILD/libbigarray.a \
 *      -llmdb -lzstd -lxxhash -luring -lpthread && ./a.out
 *
 *   lib/ba_array.c:83:16: runtime error: signed integer overflow:
 *   1099511627776 * 8796093022208 cannot be represented in type 'long int'
 *     #0 layout_strides lib/ba_array.c:83   #1 ba_array_view lib/ba_view.c:73
 */
#include <stdio.h>
#include <stdlib.h>

#include "bigarray.h"

int main(void)
{
    ba_db *db;
    ba_session *s;
    ba_array *a;
    ba_view v;
    ba_db_options o;
    if (system("rm -rf /tmp/zero_extent_view.db"))
        return 1;
    ba_db_options_init(&o);
    o.flags = BA_DB_CREATE;
    if (ba_db_open("/tmp/zero_extent_view.db", &o, &db) || ba_session_begin(db, &s))
        return 1;
    ba_array_spec sp;
    ba_array_spec_init(&sp);
    sp.ndim = 3;
    sp.shape[0] = INT64_C(1) << 40;
    sp.shape[1] = 0;
    sp.shape[2] = INT64_C(1) << 40;
    int rc = ba_array_create(s, "z", &sp, &a);
    fprintf(stderr, "create: %d %s\n", rc, rc ? ba_errmsg() : "");
    if (rc)
        return 0; /* fixed: refused */
    rc = ba_session_commit(s);
    fprintf(stderr, "commit: %d %s\n", rc, rc ? ba_errmsg() : "");
    rc = ba_array_view_text(a, "5", 0, &v); /* UBSan stops here */
    fprintf(stderr, "view: %d %s\n", rc, rc ? ba_errmsg() : "");
    return 0;
}
