/* SPDX-License-Identifier: MIT */
/*
 * Arrays and views through the public API: create/open/list/info/drop/copy, spec
 * validation, slicing real arrays (1 to 4 dims, C and F order, shapes straddling
 * pages and blocks) against a reference, append and resize sequences against a
 * reference buffer, shrink-then-grow zeros, views across resize, DLPack export and
 * reference counting. Every test that touches memory runs with both pager backends.
 */
#include <dlpack/dlpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_lib.h"

/* ---- create, open, list, info, drop, copy ------------------------------------------- */

struct names {
    char v[16][64];
    int n;
};

static int collect_name(const char *name, void *ctx)
{
    struct names *nm = ctx;
    ck_assert_int_lt(nm->n, 16);
    snprintf(nm->v[nm->n++], sizeof nm->v[0], "%s", name);
    return 0;
}

static struct names list_names(ba_session *s)
{
    struct names nm = {.n = 0};
    TL_OK(ba_array_list(s, collect_name, &nm));
    return nm;
}

START_TEST(test_array_create_open_list_info)
{
    struct tl_db t;
    tl_db_open(&t, "arr-basic", _i, 0);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    int64_t shape[2] = {10, 3};
    ba_array *a = tl_create(s, "b", "<i4", 'C', 0, 2, shape);
    ba_array_info in = tl_info(a);
    ck_assert_int_eq(in.ndim, 2);
    ck_assert(in.shape[0] == 10 && in.shape[1] == 3);
    ck_assert(in.strides[0] == 12 && in.strides[1] == 4);
    ck_assert_uint_eq(in.nbytes, 120);
    ck_assert_str_eq(in.name, "b");
    ck_assert_uint_eq(in.id, 0);
    ck_assert_uint_eq(in.created_seq, 0);
    ck_assert(in.dirty);
    ck_assert(ba_session_dirty(s));

    ba_array *f = tl_create(s, "a", "<i4", 'F', 0, 2, shape);
    in = tl_info(f);
    ck_assert(in.strides[0] == 4 && in.strides[1] == 40);
    ck_assert_int_eq(in.order, 'F');
    ba_array *again;
    TL_OK(ba_array_open(s, "b", &again));
    ck_assert_ptr_eq(again, a); /* one object per name in a session */
    ba_array_close(again);
    ba_array *dup;
    TL_FAILS(ba_array_create(s, "b", &(ba_array_spec){0}, &dup), BA_EINVAL);
    ba_array_spec sp;
    ba_array_spec_init(&sp);
    sp.ndim = 1;
    TL_FAILS(ba_array_create(s, "b", &sp, &dup), BA_EEXIST);
    TL_FAILS(ba_array_open(s, "nope", &dup), BA_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "nope"));

    struct names nm = list_names(s);
    ck_assert_int_eq(nm.n, 2);
    ck_assert_str_eq(nm.v[0], "a");
    ck_assert_str_eq(nm.v[1], "b");
    TL_OK(ba_session_commit(s));
    in = tl_info(a);
    ck_assert_uint_ne(in.id, 0);
    ck_assert_uint_eq(in.created_seq, ba_session_snapshot(s));
    ck_assert(!in.dirty);
    ck_assert(!ba_session_dirty(s));

    /* Names list in byte order, across committed and uncommitted arrays. */
    ba_array_close(tl_create(s, "B", "u1", 'C', 0, 1, shape));
    ba_array_close(tl_create(s, "c\xc3\xa9", "u1", 'C', 0, 1, shape));
    nm = list_names(s);
    ck_assert_int_eq(nm.n, 4);
    ck_assert_str_eq(nm.v[0], "B");
    ck_assert_str_eq(nm.v[1], "a");
    ck_assert_str_eq(nm.v[2], "b");
    ck_assert_str_eq(nm.v[3], "c\xc3\xa9");
    ba_array_close(a);
    ba_array_close(f);
    ba_session_end(s);

    /* Another session sees only what was committed. */
    TL_OK(ba_session_begin(t.db, &s));
    nm = list_names(s);
    ck_assert_int_eq(nm.n, 2);
    TL_OK(ba_array_open(s, "a", &a));
    in = tl_info(a);
    ck_assert_int_eq(in.order, 'F');
    ck_assert(in.shape[0] == 10 && in.shape[1] == 3);
    ck_assert_int_eq(in.dtype.kind, 'i');
    ba_array_close(a);
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

START_TEST(test_array_spec_validation_creates_nothing)
{
    struct tl_db t;
    tl_db_open(&t, "arr-spec", 0, 0);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    ba_array *a = NULL;
    ba_array_spec sp;
    char longname[BA_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
#define SPEC_CASE(setup, name, code)                                                               \
    do {                                                                                           \
        ba_array_spec_init(&sp);                                                                   \
        sp.ndim = 1;                                                                               \
        sp.shape[0] = 10;                                                                          \
        setup;                                                                                     \
        TL_FAILS(ba_array_create(s, name, &sp, &a), code);                                         \
        ck_assert_ptr_null(a);                                                                     \
        ck_assert_msg(strlen(ba_errmsg()) > 0, "no message");                                      \
    } while (0)
    SPEC_CASE((void)0, "", BA_EINVAL);
    SPEC_CASE((void)0, longname, BA_EINVAL);
    SPEC_CASE(sp.dtype.kind = 'x', "a", BA_EDTYPE);
    SPEC_CASE(sp.dtype.itemsize = 3, "a", BA_EDTYPE);
    SPEC_CASE(sp.dtype.byteorder = '=', "a", BA_EDTYPE);
    SPEC_CASE(sp.ndim = 0, "a", BA_ESHAPE);
    SPEC_CASE(sp.ndim = BA_MAX_DIMS + 1, "a", BA_ESHAPE);
    SPEC_CASE(sp.shape[0] = -1, "a", BA_ESHAPE);
    SPEC_CASE((sp.ndim = 3, sp.shape[0] = 1ll << 40, sp.shape[1] = 1ll << 20, sp.shape[2] = 8), "a",
              BA_ETOOBIG);
    /* A 0 extent does not make the others' product fit: the strides would overflow
     * (numpy: "array is too big"; found by tests/fuzz). */
    SPEC_CASE((sp.ndim = 3, sp.shape[0] = 1ll << 40, sp.shape[1] = 0, sp.shape[2] = 1ll << 40), "a",
              BA_ETOOBIG);
    SPEC_CASE((sp.ndim = 2, sp.shape[0] = 0, sp.shape[1] = INT64_MAX), "a", BA_ETOOBIG);
    SPEC_CASE(sp.block_size = 5000, "a", BA_EINVAL);
    SPEC_CASE(sp.block_size = 1024, "a", BA_EINVAL);
    SPEC_CASE(sp.block_size = 1u << 31, "a", BA_EINVAL);
    SPEC_CASE(sp.order = 'X', "a", BA_EINVAL);
    SPEC_CASE(sp.codec = 7, "a", BA_EINVAL);
    SPEC_CASE(sp.filters = BA_FILTER_SHUFFLE, "a", BA_EINVAL);
    SPEC_CASE((sp.codec = BA_CODEC_ZSTD, sp.level = 30), "a", BA_EINVAL);
#undef SPEC_CASE
    ck_assert_int_eq(list_names(s).n, 0);
    ck_assert(!ba_session_dirty(s));
    /* The extremes that are fine: any dim 0, 32 dims, 2^63-1 bytes, 1 GiB blocks. */
    ba_array_spec_init(&sp);
    sp.ndim = BA_MAX_DIMS;
    for (int i = 0; i < BA_MAX_DIMS; i++)
        sp.shape[i] = i == 5 ? 0 : 2;
    TL_OK(ba_array_create(s, "dims32", &sp, &a));
    ba_array_close(a);
    ba_array_spec_init(&sp);
    TL_OK(ba_dtype_parse("u1", &sp.dtype));
    sp.ndim = 1;
    sp.shape[0] = INT64_MAX;
    TL_OK(ba_array_create(s, "huge", &sp, &a));
    /* A view of all of it needs more address space than there is. */
    ba_view v;
    TL_FAILS(ba_array_view(a, NULL, 0, 0, &v), BA_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "huge"));
    /* A thin slice of it maps one block. */
    TL_OK(ba_array_view_text(a, "-5:", 0, &v));
    ck_assert_int_eq(v.shape[0], 5);
    ck_assert_int_eq(((unsigned char *)v.data)[4], 0);
    ba_view_release(&v);
    ba_array_close(a);
    TL_OK(ba_session_commit(s));
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

START_TEST(test_array_drop_and_copy)
{
    struct tl_db t;
    tl_db_open(&t, "arr-drop", _i, 0);
    ba_session *s, *o;
    TL_OK(ba_session_begin(t.db, &s));
    int64_t n = 3 * 4096 + 17;
    ba_array *a = tl_create(s, "src", "u1", 'C', 4096, 1, &n);
    ba_view v = tl_view(a, "");
    tl_fill_bytes(v.data, (uint64_t)n, 0, 1);
    TL_OK(ba_session_commit(s));

    /* Copy: readable before commit, independent of the source after. */
    TL_OK(ba_array_copy(s, "src", "dst"));
    TL_FAILS(ba_array_copy(s, "src", "dst"), BA_EEXIST);
    TL_FAILS(ba_array_copy(s, "none", "x"), BA_ENOTFOUND);
    ba_array *d;
    TL_OK(ba_array_open(s, "dst", &d));
    ba_view dv = tl_view(d, "");
    for (int64_t i = 0; i < n; i++)
        ck_assert_uint_eq(((uint8_t *)dv.data)[i], tl_pattern((uint64_t)i, 1));
    ((uint8_t *)dv.data)[5] = 0;
    ck_assert_uint_eq(((uint8_t *)v.data)[5], tl_pattern(5, 1));
    TL_OK(ba_session_commit(s));
    ck_assert_uint_eq(((uint8_t *)dv.data)[5], 0);
    ck_assert_uint_eq(((uint8_t *)v.data)[5], tl_pattern(5, 1));
    /* A source with uncommitted changes cannot be copied. */
    ((uint8_t *)v.data)[0] = 9;
    TL_FAILS(ba_array_copy(s, "src", "dst2"), BA_EINVAL);
    TL_OK(ba_session_abort(s));

    /* Drop: handles go stale at once, the name is free, abort revives. */
    TL_OK(ba_array_drop(s, "src"));
    ba_array_info info;
    info.size = sizeof info;
    TL_FAILS(ba_array_info_get(a, &info), BA_ESTALE);
    ba_array *x;
    TL_FAILS(ba_array_open(s, "src", &x), BA_ENOTFOUND);
    TL_FAILS(ba_array_drop(s, "src"), BA_ENOTFOUND);
    ck_assert_int_eq(list_names(s).n, 1);
    TL_OK(ba_session_abort(s));
    TL_OK(ba_array_info_get(a, &info));
    ck_assert_int_eq(list_names(s).n, 2);

    /* Drop and re-create under the same name in one transaction. */
    TL_OK(ba_array_drop(s, "src"));
    int64_t m = 5;
    ba_array *r = tl_create(s, "src", "<f4", 'C', 0, 1, &m);
    TL_OK(ba_session_commit(s));
    TL_FAILS(ba_array_info_get(a, &info), BA_ESTALE);
    info = tl_info(r);
    ck_assert_int_eq(info.dtype.kind, 'f');
    /* The old view reads zeros after the boundary. */
    ck_assert_uint_eq(((uint8_t *)v.data)[1], 0);
    /* Create then drop in one transaction leaves nothing behind. */
    ba_array *tmp = tl_create(s, "tmp", "u1", 'C', 0, 1, &m);
    TL_OK(ba_array_drop(s, "tmp"));
    TL_FAILS(ba_array_info_get(tmp, &info), BA_ESTALE);
    ba_array_close(tmp);

    /* A copy of a source another session changed meanwhile conflicts: the copy would
     * not hold what this session saw. */
    TL_OK(ba_array_copy(s, "dst", "dst3"));
    TL_OK(ba_session_begin(t.db, &o));
    ba_array *od;
    TL_OK(ba_array_open(o, "dst", &od));
    ba_view ov = tl_view(od, "0:1");
    ((uint8_t *)ov.data)[0] = 77;
    ba_view_release(&ov);
    TL_OK(ba_session_commit(o));
    ba_array_close(od);
    ba_session_end(o);
    TL_FAILS(ba_session_commit(s), BA_ECONFLICT);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "dst3"));
    TL_OK(ba_session_abort(s));

    TL_OK(ba_session_begin(t.db, &o));
    struct names nm = list_names(o);
    ck_assert_int_eq(nm.n, 2);
    ck_assert_str_eq(nm.v[0], "dst");
    ck_assert_str_eq(nm.v[1], "src");
    TL_OK(ba_array_open(o, "src", &x));
    info = tl_info(x);
    ck_assert_int_eq(info.shape[0], 5);
    ba_array_close(x);
    ba_session_end(o);

    ba_view_release(&v);
    ba_view_release(&dv);
    ba_array_close(a);
    ba_array_close(d);
    ba_array_close(r);
    TL_OK(ba_session_commit(s));
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

/* ---- slicing real arrays against a reference ------------------------------------------- */

/* Python's range(*slice(start, stop, step).indices(n)). */
static int64_t ref_indices(int64_t n, const ba_slice *s, int64_t *out)
{
    int64_t step = s->step == BA_SLICE_NONE ? 1 : s->step, start, stop, cnt = 0;
    if (step > 0) {
        start = s->start == BA_SLICE_NONE ? 0 : s->start;
        stop = s->stop == BA_SLICE_NONE ? n : s->stop;
        start = start < 0 ? (start + n < 0 ? 0 : start + n) : (start > n ? n : start);
        stop = stop < 0 ? (stop + n < 0 ? 0 : stop + n) : (stop > n ? n : stop);
        for (int64_t i = start; i < stop; i += step)
            out[cnt++] = i;
    } else {
        start = s->start == BA_SLICE_NONE ? n - 1 : s->start;
        if (s->start != BA_SLICE_NONE && start < 0)
            start = start + n < 0 ? -1 : start + n;
        start = start > n - 1 ? n - 1 : start;
        stop = s->stop == BA_SLICE_NONE ? -1
               : s->stop < 0            ? (s->stop + n < 0 ? -1 : s->stop + n)
                                        : s->stop;
        stop = stop > n - 1 ? n - 1 : stop;
        for (int64_t i = start; i > stop; i += step)
            out[cnt++] = i;
    }
    return cnt;
}

static ba_slice axis_item(int which, int64_t n)
{
    ba_slice s = {BA_SLICE_RANGE, BA_SLICE_NONE, BA_SLICE_NONE, BA_SLICE_NONE};
    int64_t a = n / 4 + 1, b = 3 * n / 4 - 1;
    switch (which) {
    case 0: /* : */
        break;
    case 1: /* 0 */
        s = (ba_slice){BA_SLICE_INDEX, 0, 0, 0};
        break;
    case 2: /* -1 */
        s = (ba_slice){BA_SLICE_INDEX, -1, 0, 0};
        break;
    case 3: /* n//2 */
        s = (ba_slice){BA_SLICE_INDEX, n / 2, 0, 0};
        break;
    case 4: /* 1:-1 */
        s.start = 1;
        s.stop = -1;
        break;
    case 5: /* a:b:2 */
        s.start = a;
        s.stop = b;
        s.step = 2;
        break;
    default: /* b:a:-3 */
        s.start = b;
        s.stop = a;
        s.step = -3;
        break;
    }
    return s;
}

/* Value of the element at multi-index idx: its C-order flat index. */
static uint32_t flat_index(int nd, const int64_t *shape, const int64_t *idx)
{
    uint64_t f = 0;
    for (int k = 0; k < nd; k++)
        f = f * (uint64_t)shape[k] + (uint64_t)idx[k];
    return (uint32_t)f;
}

static void fill_flat(ba_array *a, int nd, const int64_t *shape)
{
    ba_view v = tl_view(a, "");
    uint64_t total = ba_view_size(&v);
    int64_t idx[4] = {0};
    for (uint64_t i = 0; i < total; i++) {
        char *p = v.data;
        uint64_t r = i;
        for (int k = nd - 1; k >= 0; k--) {
            idx[k] = (int64_t)(r % (uint64_t)shape[k]);
            r /= (uint64_t)shape[k];
            p += idx[k] * v.strides[k];
        }
        uint32_t val = flat_index(nd, shape, idx);
        memcpy(p, &val, 4);
    }
    ba_view_release(&v);
}

static int64_t sel[4][4200];

/* Check one view against the reference: shape, strides and every element. */
static void check_view(ba_array *a, int nd, const int64_t *shape, const int64_t *strides,
                       const ba_slice *sl)
{
    ba_view v;
    int64_t cnt[4];
    int is_index[4], want_err = 0, rnd = 0;
    int64_t rshape[4], rstrides[4];
    for (int k = 0; k < nd; k++) {
        is_index[k] = sl[k].kind == BA_SLICE_INDEX;
        if (is_index[k]) {
            int64_t i = sl[k].start < 0 ? sl[k].start + shape[k] : sl[k].start;
            want_err |= i < 0 || i >= shape[k];
            sel[k][0] = i;
            cnt[k] = 1;
        } else {
            cnt[k] = ref_indices(shape[k], &sl[k], sel[k]);
            rshape[rnd] = cnt[k];
            /* numpy gives an empty range step 1 */
            rstrides[rnd++] =
                strides[k] * (sl[k].step == BA_SLICE_NONE || !cnt[k] ? 1 : sl[k].step);
        }
    }
    int rc = ba_array_view(a, sl, nd, 0, &v);
    if (want_err) {
        ck_assert_msg(rc == BA_ERANGE, "expected BA_ERANGE, got %d", rc);
        return;
    }
    ck_assert_msg(rc == 0, "view: %s", ba_errmsg());
    ck_assert_int_eq(v.ndim, rnd);
    ck_assert_ptr_nonnull(v.data);
    uint64_t total = 1;
    for (int k = 0; k < rnd; k++) {
        ck_assert_int_eq(v.shape[k], rshape[k]);
        ck_assert_int_eq(v.strides[k], rstrides[k]);
        total *= (uint64_t)rshape[k];
    }
    int64_t pos[4] = {0}, src[4];
    for (uint64_t e = 0; e < total; e++) {
        uint64_t r = e;
        for (int k = rnd - 1; k >= 0; k--) {
            pos[k] = (int64_t)(r % (uint64_t)rshape[k]);
            r /= (uint64_t)rshape[k];
        }
        const char *p = v.data;
        for (int k = 0, o = 0; k < nd; k++) {
            if (is_index[k]) {
                src[k] = sel[k][0];
            } else {
                src[k] = sel[k][pos[o]];
                p += pos[o] * v.strides[o];
                o++;
            }
        }
        uint32_t got;
        memcpy(&got, p, 4);
        ck_assert_uint_eq(got, flat_index(nd, shape, src));
    }
    ba_view_release(&v);
}

START_TEST(test_slicing_views_match_reference)
{
    static const int64_t shapes[][4] = {
        {4099}, {1}, {13, 1031}, {1031, 13}, {0, 7}, {11, 7, 29}, {5, 6, 7, 9}, {3, 1, 2, 1030},
    };
    static const int ndims[] = {1, 1, 2, 2, 2, 3, 4, 4};
    struct tl_db t;
    tl_db_open(&t, "arr-slice", _i, 0);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    for (size_t si = 0; si < sizeof ndims / sizeof ndims[0]; si++) {
        int nd = ndims[si];
        for (int order = 0; order < 2; order++) {
            char name[32];
            snprintf(name, sizeof name, "s%zu%c", si, order ? 'F' : 'C');
            ba_array *a = tl_create(s, name, "<u4", order ? 'F' : 'C', 4096, nd, shapes[si]);
            fill_flat(a, nd, shapes[si]);
            if (si % 2)
                TL_OK(ba_session_commit(s)); /* half of them read back from the store */
            ba_array_info info = tl_info(a);
            int total = 1;
            for (int k = 0; k < nd; k++)
                total *= 7;
            for (int c = 0; c < total; c++) {
                ba_slice sl[4];
                for (int k = 0, code = c; k < nd; k++, code /= 7)
                    sl[k] = axis_item(code % 7, shapes[si][k]);
                check_view(a, nd, shapes[si], info.strides, sl);
            }
            /* Per axis: the last element is fine, n is out of range, n:n+1 is empty. */
            for (int k = 0; k < nd; k++) {
                ba_slice sl[4];
                for (int j = 0; j < nd; j++)
                    sl[j] = axis_item(0, shapes[si][j]);
                int64_t n = shapes[si][k];
                sl[k] = (ba_slice){BA_SLICE_INDEX, n - 1, 0, 0};
                check_view(a, nd, shapes[si], info.strides, sl);
                sl[k] = (ba_slice){BA_SLICE_INDEX, n, 0, 0};
                ba_view v;
                TL_FAILS(ba_array_view(a, sl, nd, 0, &v), BA_ERANGE);
                ck_assert_ptr_nonnull(strstr(ba_errmsg(), name));
                sl[k] = (ba_slice){BA_SLICE_RANGE, n, n + 1, BA_SLICE_NONE};
                TL_OK(ba_array_view(a, sl, nd, 0, &v));
                ck_assert_uint_eq(ba_view_size(&v), 0);
                ck_assert_ptr_nonnull(v.data);
                TL_OK(ba_view_preload(&v, 0));
                ba_view_release(&v);
            }
            ba_array_close(a);
        }
    }
    TL_OK(ba_session_commit(s));
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

START_TEST(test_views_alias_and_straddle_pages)
{
    struct tl_db t;
    tl_db_open(&t, "arr-alias", _i, 0);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    /* (10, PS+1) uint8: rows straddle page and block boundaries. */
    int64_t shape[2] = {10, 4097};
    ba_array *a = tl_create(s, "a", "u1", 'C', 4096, 2, shape);
    ba_view whole = tl_view(a, ""), part = tl_view(a, "3:9, 4090:"), rev = tl_view(a, "1:0:-1"),
            col = tl_view(a, ":, 4096");
    tl_fill_bytes(whole.data, 10 * 4097, 0, 7);
    for (int r = 3; r < 9; r++)
        for (int c = 4090; c < 4097; c++)
            ck_assert_uint_eq(*(uint8_t *)tl_elem(&part, (uint64_t)((r - 3) * 7 + (c - 4090))),
                              tl_pattern((uint64_t)(r * 4097 + c), 7));
    ck_assert_int_eq(rev.shape[0], 1);
    for (int c = 0; c < 4097; c++)
        ck_assert_uint_eq(((uint8_t *)rev.data)[c], tl_pattern((uint64_t)(4097 + c), 7));
    /* Writes through one view show in the others. */
    *(uint8_t *)tl_elem(&col, 5) = 0;
    ck_assert_uint_eq(((uint8_t *)whole.data)[5 * 4097 + 4096], 0);
    ck_assert_uint_eq(*(uint8_t *)tl_elem(&part, 2 * 7 + 6), 0);
    TL_OK(ba_session_commit(s));
    ck_assert_uint_eq(*(uint8_t *)tl_elem(&col, 5), 0);
    ba_view_release(&whole);
    ba_view_release(&part);
    ba_view_release(&rev);
    ba_view_release(&col);
    ba_array_close(a);
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

/* ---- append and resize ------------------------------------------------------------------ */

/* Compare the array's bytes with ref (n bytes) through a fresh whole view. */
static void check_bytes(ba_array *a, const uint8_t *ref, uint64_t n)
{
    ba_array_info info = tl_info(a);
    ck_assert_uint_eq(info.nbytes, n);
    if (!n)
        return;
    ba_view v;
    TL_OK(ba_array_view(a, NULL, 0, BA_VIEW_READONLY, &v));
    /* The whole array is contiguous in its own order: walk its bytes linearly. */
    const uint8_t *p = v.data;
    for (uint64_t i = 0; i < n; i++)
        if (p[i] != ref[i])
            ck_abort_msg("byte %llu: %u != %u", (unsigned long long)i, p[i], ref[i]);
    ba_view_release(&v);
}

START_TEST(test_append_sequence_matches_reference)
{
    for (int order = 0; order < 2; order++) {
        struct tl_db t;
        tl_db_open(&t, "arr-append", _i, 0);
        ba_session *s;
        TL_OK(ba_session_begin(t.db, &s));
        /* C: (0, 3, 2) growing along axis 0; F: (2, 3, 0) growing along axis 2. */
        int64_t shape[3] = {order ? 2 : 0, 3, order ? 0 : 2};
        int major = order ? 2 : 0;
        ba_array *a = tl_create(s, "a", "<i4", order ? 'F' : 'C', 4096, 3, shape);
        ba_dtype i4;
        ba_dtype_parse("<i4", &i4);
        size_t row = 6 * 4;
        uint8_t *ref = malloc(4000 * row);
        uint64_t n = 0;
        static const int64_t counts[] = {1, 2, 0, 5, 170, 1, 341, 700, 3, 1000};
        for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
            int64_t ds[3] = {2, 3, 2};
            ds[major] = counts[i];
            uint8_t *data = malloc((size_t)counts[i] * row + 1);
            tl_fill_bytes(data, (uint64_t)counts[i] * row, n, 3);
            TL_OK(ba_array_append(a, data, 3, ds, &i4));
            memcpy(ref + n, data, (size_t)counts[i] * row);
            n += (uint64_t)counts[i] * row;
            free(data);
            check_bytes(a, ref, n);
            if (i % 3 == 2)
                TL_OK(ba_session_commit(s));
        }
        /* One sub-array with ndim - 1 dims, and a NULL dtype meaning the array's. */
        int64_t sub[2] = {order ? 2 : 3, order ? 3 : 2};
        uint8_t one[24];
        tl_fill_bytes(one, 24, n, 3);
        TL_OK(ba_array_append(a, one, 2, sub, NULL));
        memcpy(ref + n, one, 24);
        n += 24;
        check_bytes(a, ref, n);

        /* Wrong shape or dtype: errors that leave the array unchanged. */
        int64_t bad1[3] = {order ? 3 : 1, 3, order ? 1 : 3};
        TL_FAILS(ba_array_append(a, one, 3, bad1, &i4), BA_ESHAPE);
        int64_t bad2[2] = {2, 2};
        TL_FAILS(ba_array_append(a, one, 2, bad2, &i4), BA_ESHAPE);
        TL_FAILS(ba_array_append(a, one, 1, bad2, &i4), BA_ESHAPE);
        int64_t neg[3] = {order ? 2 : -1, 3, order ? -1 : 2};
        TL_FAILS(ba_array_append(a, one, 3, neg, &i4), BA_ESHAPE);
        ba_dtype f4;
        ba_dtype_parse("<f4", &f4);
        int64_t ok[3] = {order ? 2 : 1, 3, order ? 1 : 2};
        TL_FAILS(ba_array_append(a, one, 3, ok, &f4), BA_EDTYPE);
        ck_assert_ptr_nonnull(strstr(ba_errmsg(), "<f4"));
        check_bytes(a, ref, n);
        TL_OK(ba_session_commit(s));
        ba_array_close(a);
        ba_session_end(s);

        /* Reopened: the same bytes and shape. */
        TL_OK(ba_session_begin(t.db, &s));
        TL_OK(ba_array_open(s, "a", &a));
        ba_array_info info = tl_info(a);
        ck_assert_int_eq(info.shape[major], (int64_t)(n / row));
        check_bytes(a, ref, n);
        ba_array_close(a);
        ba_session_end(s);
        free(ref);
        tl_db_close(&t);
    }
}
END_TEST

START_TEST(test_resize_shrink_then_grow_reveals_zeros)
{
    struct tl_db t;
    tl_db_open(&t, "arr-resize", _i, 0);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    const int64_t full = 10 * 4096 + 500;
    ba_array *a = tl_create(s, "a", "u1", 'C', 4096, 1, &full);
    uint8_t *ref = malloc((size_t)full);
    ba_view v = tl_view(a, "");
    tl_fill_bytes(v.data, (uint64_t)full, 0, 5);
    memcpy(ref, v.data, (size_t)full);
    ba_view_release(&v);
    TL_OK(ba_session_commit(s));
    ck_assert_uint_eq(tl_info(a).stored_blocks, 11);

    /* Same transaction: shrink mid-block, grow back. */
    int64_t cut = 3 * 4096 + 100;
    TL_OK(ba_array_resize(a, 1, &cut));
    TL_OK(ba_array_resize(a, 1, &full));
    memset(ref + cut, 0, (size_t)(full - cut));
    check_bytes(a, ref, (uint64_t)full);
    TL_OK(ba_session_commit(s));
    check_bytes(a, ref, (uint64_t)full);
    ck_assert_uint_le(tl_info(a).stored_blocks, 4);

    /* Across commits: shrink, commit, grow, commit. */
    int64_t cut2 = 4096 + 1;
    TL_OK(ba_array_resize(a, 1, &cut2));
    TL_OK(ba_session_commit(s));
    ck_assert_int_eq(tl_info(a).shape[0], cut2);
    TL_OK(ba_array_resize(a, 1, &full));
    TL_OK(ba_session_commit(s));
    memset(ref + cut2, 0, (size_t)(full - cut2));
    check_bytes(a, ref, (uint64_t)full);

    /* Shrink on a block boundary, grow by append. */
    int64_t cut3 = 4096;
    TL_OK(ba_array_resize(a, 1, &cut3));
    uint8_t tail[5000];
    tl_fill_bytes(tail, sizeof tail, 99, 6);
    int64_t tn = sizeof tail;
    TL_OK(ba_array_append(a, tail, 1, &tn, NULL));
    memcpy(ref + cut3, tail, sizeof tail);
    TL_OK(ba_array_resize(a, 1, &full));
    memset(ref + cut3 + tn, 0, (size_t)(full - cut3 - tn));
    check_bytes(a, ref, (uint64_t)full);
    TL_OK(ba_session_commit(s));
    ba_array_close(a);
    ba_session_end(s);

    /* Another session reads the same. */
    TL_OK(ba_session_begin(t.db, &s));
    TL_OK(ba_array_open(s, "a", &a));
    check_bytes(a, ref, (uint64_t)full);
    /* Bad shapes leave the array unchanged. */
    int64_t bad[2] = {1, 1};
    TL_FAILS(ba_array_resize(a, 2, bad), BA_ESHAPE);
    int64_t negative = -1;
    TL_FAILS(ba_array_resize(a, 1, &negative), BA_ESHAPE);
    check_bytes(a, ref, (uint64_t)full);
    ck_assert(!ba_session_dirty(s));
    ba_array_close(a);
    ba_session_end(s);
    free(ref);
    tl_db_close(&t);
}
END_TEST

START_TEST(test_views_survive_resize)
{
    struct tl_db t;
    tl_db_open(&t, "arr-viewresize", _i, 0);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    int64_t shape[2] = {10, 3};
    ba_array *a = tl_create(s, "a", "<i8", 'C', 4096, 2, shape);
    ba_view old = tl_view(a, "");
    for (int i = 0; i < 30; i++)
        ((int64_t *)old.data)[i] = i + 1;
    /* Grow: the old view keeps its shape; the new one sees old data, zeros after. */
    int64_t grown[2] = {11, 3};
    TL_OK(ba_array_resize(a, 2, grown));
    ck_assert_int_eq(old.shape[0], 10);
    ba_view nw = tl_view(a, "");
    ck_assert_int_eq(nw.shape[0], 11);
    for (int i = 0; i < 30; i++)
        ck_assert_int_eq(((int64_t *)nw.data)[i], i + 1);
    for (int i = 30; i < 33; i++)
        ck_assert_int_eq(((int64_t *)nw.data)[i], 0);
    ((int64_t *)nw.data)[32] = 99;
    ((int64_t *)old.data)[0] = -1;
    ck_assert_int_eq(((int64_t *)nw.data)[0], -1);
    TL_OK(ba_session_commit(s));
    ck_assert_int_eq(((int64_t *)nw.data)[32], 99);

    /* Shrink: the old views stay valid; what lies past the end reads zero. */
    int64_t small[2] = {2, 3};
    TL_OK(ba_array_resize(a, 2, small));
    ck_assert_int_eq(((int64_t *)old.data)[5], 6);
    ck_assert_int_eq(((int64_t *)old.data)[6], 0);
    ck_assert_int_eq(((int64_t *)nw.data)[32], 0);
    /* A write past the end through an old view is dropped at commit. */
    ((int64_t *)nw.data)[20] = 1234;
    TL_OK(ba_session_commit(s));
    TL_OK(ba_array_resize(a, 2, grown));
    ck_assert_int_eq(((int64_t *)nw.data)[20], 0);
    TL_OK(ba_session_commit(s));
    ba_view_release(&old);
    ba_view_release(&nw);
    ba_array_close(a);
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

START_TEST(test_codecs_round_trip)
{
    static const char *codecs[] = {"none", "zstd", "zstd:3+shuffle", "zstd:19"};
    struct tl_db t;
    tl_db_open(&t, "arr-codec", _i, 0);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    int64_t shape[2] = {300, 77}; /* 184800 bytes: 45 blocks and a partial one */
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++) {
        ba_array_spec sp;
        ba_array_spec_init(&sp);
        TL_OK(ba_codec_parse(codecs[i], &sp));
        TL_OK(ba_dtype_parse("<f8", &sp.dtype));
        sp.block_size = 4096;
        sp.ndim = 2;
        memcpy(sp.shape, shape, sizeof shape);
        char name[16];
        snprintf(name, sizeof name, "c%zu", i);
        ba_array *a;
        TL_OK(ba_array_create(s, name, &sp, &a));
        ba_view v = tl_view(a, "");
        for (int64_t k = 0; k < 300 * 77; k++)
            ((double *)v.data)[k] = (double)(k % 1000) * 0.25;
        ba_view_release(&v);
        ba_array_close(a);
    }
    TL_OK(ba_session_commit(s));
    ba_session_end(s);
    TL_OK(ba_session_begin(t.db, &s));
    uint64_t raw_stored = 0;
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++) {
        char name[16], text[32], want[32];
        snprintf(name, sizeof name, "c%zu", i);
        ba_array *a;
        TL_OK(ba_array_open(s, name, &a));
        ba_array_info info = tl_info(a);
        ba_array_spec sp;
        ba_array_spec_init(&sp);
        TL_OK(ba_codec_parse(codecs[i], &sp));
        ck_assert_int_eq(info.codec, sp.codec);
        ck_assert_int_eq(info.level, sp.level);
        ck_assert_uint_eq(info.filters, sp.filters);
        ck_assert_str_eq(ba_codec_format(info.codec, info.level, info.filters, text),
                         ba_codec_format(sp.codec, sp.level, sp.filters, want));
        ck_assert_uint_eq(info.stored_blocks, 46);
        if (i == 0)
            raw_stored = info.stored_bytes;
        else
            ck_assert_uint_lt(info.stored_bytes, raw_stored / 2);
        ba_view v = tl_view(a, "::-1, 76");
        for (int64_t r = 0; r < 300; r++) {
            int64_t k = (299 - r) * 77 + 76;
            ck_assert(*(double *)tl_elem(&v, (uint64_t)r) == (double)(k % 1000) * 0.25);
        }
        ba_view_release(&v);
        ba_array_close(a);
    }
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

/* ---- DLPack and references ---------------------------------------------------------------- */

START_TEST(test_dlpack_round_trip)
{
    struct tl_db t;
    tl_db_open(&t, "arr-dlpack", _i, 0);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    int64_t shape[2] = {100, 30};
    ba_array *a = tl_create(s, "a", "<f8", 'C', 4096, 2, shape);
    ba_view v = tl_view(a, "");
    for (int i = 0; i < 3000; i++)
        ((double *)v.data)[i] = i * 0.5;
    ba_view sl = tl_view(a, "::-7, 3:20:4");
    DLManagedTensor *dl;
    TL_OK(ba_view_to_dlpack(&sl, &dl));
    ck_assert_int_eq(dl->dl_tensor.device.device_type, kDLCPU);
    ck_assert_int_eq(dl->dl_tensor.ndim, 2);
    ck_assert_int_eq(dl->dl_tensor.dtype.code, kDLFloat);
    ck_assert_int_eq(dl->dl_tensor.dtype.bits, 64);
    ck_assert_int_eq(dl->dl_tensor.dtype.lanes, 1);
    ck_assert_int_eq(dl->dl_tensor.shape[0], 15);
    ck_assert_int_eq(dl->dl_tensor.shape[1], 5);
    ck_assert_int_eq(dl->dl_tensor.strides[0], -7 * 30);
    ck_assert_int_eq(dl->dl_tensor.strides[1], 4);
    ck_assert_ptr_eq(dl->dl_tensor.data, sl.data);
    /* The tensor keeps the memory mapped after the view, array and session are gone. */
    ba_view_release(&sl);
    ba_view_release(&v);
    ba_array_close(a);
    TL_OK(ba_session_commit(s));
    ba_session_end(s);
    const double *d = (const double *)dl->dl_tensor.data + dl->dl_tensor.byte_offset / 8;
    for (int64_t i = 0; i < 15; i++)
        for (int64_t j = 0; j < 5; j++) {
            int64_t r = 99 - 7 * i, c = 3 + 4 * j;
            ck_assert(d[i * dl->dl_tensor.strides[0] + j * dl->dl_tensor.strides[1]] ==
                      (double)(r * 30 + c) * 0.5);
        }
    dl->deleter(dl);

    /* Types without a DLPack code. */
    TL_OK(ba_session_begin(t.db, &s));
    int64_t n = 4;
    static const struct {
        const char *dtype;
        int code, dlcode, bits;
    } types[] = {{"V3", BA_EDTYPE, 0, 0},    {">f8", BA_EDTYPE, 0, 0}, {"b1", 0, kDLUInt, 8},
                 {"<c8", 0, kDLComplex, 64}, {"<u2", 0, kDLUInt, 16},  {"i1", 0, kDLInt, 8},
                 {"<f2", 0, kDLFloat, 16}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%zu", i);
        ba_array *b = tl_create(s, name, types[i].dtype, 'C', 0, 1, &n);
        ba_view bv = tl_view(b, "");
        int rc = ba_view_to_dlpack(&bv, &dl);
        ck_assert_int_eq(rc, types[i].code);
        if (!rc) {
            ck_assert_int_eq(dl->dl_tensor.dtype.code, types[i].dlcode);
            ck_assert_int_eq(dl->dl_tensor.dtype.bits, types[i].bits);
            dl->deleter(dl);
        }
        ba_view_release(&bv);
        ba_array_close(b);
    }
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

START_TEST(test_views_outlive_close_and_end)
{
    struct tl_db t;
    tl_db_open(&t, "arr-refs", _i, 0);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    int64_t n = 3 * 4096;
    ba_array *a = tl_create(s, "a", "u1", 'C', 4096, 1, &n);
    ba_view v = tl_view(a, "");
    tl_fill_bytes(v.data, (uint64_t)n, 0, 4);
    TL_OK(ba_session_commit(s));
    ba_view w = tl_view(a, "4096:");
    /* Drop every handle: the views keep array, session and database alive. */
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(t.db);
    t.db = NULL;
    for (int64_t i = 0; i < n; i++)
        ck_assert_uint_eq(((uint8_t *)v.data)[i], tl_pattern((uint64_t)i, 4));
    ((uint8_t *)w.data)[0] = 0; /* dirty data in an ended session: dropped at release */
    ck_assert_uint_eq(((uint8_t *)v.data)[4096], 0);
    ba_view_release(&v);
    ck_assert_ptr_null(v.mapping);
    ba_view_release(&v); /* a released view may be released again */
    ba_view_release(&w);
    ba_view_release(NULL);
    ba_array_close(NULL);
    ba_session_end(NULL);
    ba_db_close(NULL);

    /* The database really closed: reopen and read the committed bytes. */
    tl_db_reopen(&t, 0, 0);
    TL_OK(ba_session_begin(t.db, &s));
    TL_OK(ba_array_open(s, "a", &a));
    v = tl_view(a, "4096:4097");
    ck_assert_uint_eq(((uint8_t *)v.data)[0], tl_pattern(4096, 4));
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

static Suite *lib_array_suite(void)
{
    Suite *s = suite_create("lib_array");
    TCase *tc = tcase_create("catalog");
    tcase_add_loop_test(tc, test_array_create_open_list_info, 0, TL_NBACKENDS);
    tcase_add_test(tc, test_array_spec_validation_creates_nothing);
    tcase_add_loop_test(tc, test_array_drop_and_copy, 0, TL_NBACKENDS);
    suite_add_tcase(s, tc);
    tc = tcase_create("views");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_slicing_views_match_reference, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_views_alias_and_straddle_pages, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_codecs_round_trip, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_dlpack_round_trip, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_views_outlive_close_and_end, 0, TL_NBACKENDS);
    suite_add_tcase(s, tc);
    tc = tcase_create("shape");
    tcase_add_loop_test(tc, test_append_sequence_matches_reference, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_resize_shrink_then_grow_reveals_zeros, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_views_survive_resize, 0, TL_NBACKENDS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(lib_array_suite());
}
