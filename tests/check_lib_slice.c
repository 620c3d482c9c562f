/* SPDX-License-Identifier: MIT */
/*
 * lib/ parsers and layout arithmetic that need no database: dtypes, codec text,
 * slice text (including column-precise errors) and ba_slice_apply() against a
 * reference written here that lists the selected indices of every axis explicitly,
 * the way Python's range(*slice.indices(n)) does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bigarray.h"
#include "testutil.h"

/* ---- dtypes ------------------------------------------------------------------------- */

START_TEST(test_dtype_parse_type_strings_and_names)
{
    static const struct {
        const char *text, *canon;
    } cases[] = {
        {"<f8", "<f8"},     {">f8", ">f8"},     {"=f8", "<f8"},       {"f8", "<f8"},
        {"|f8", "<f8"},     {"b1", "|b1"},      {"<b1", "|b1"},       {"i1", "|i1"},
        {">u1", "|u1"},     {"<i2", "<i2"},     {">i4", ">i4"},       {"u8", "<u8"},
        {"f2", "<f2"},      {">f4", ">f4"},     {"c8", "<c8"},        {">c16", ">c16"},
        {"V1", "|V1"},      {"<V24", "|V24"},   {"bool", "|b1"},      {"int8", "|i1"},
        {"int16", "<i2"},   {"int32", "<i4"},   {"int64", "<i8"},     {"uint8", "|u1"},
        {"uint16", "<u2"},  {"uint32", "<u4"},  {"uint64", "<u8"},    {"float16", "<f2"},
        {"float32", "<f4"}, {"float64", "<f8"}, {"complex64", "<c8"}, {"complex128", "<c16"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ba_dtype dt;
        char buf[BA_DTYPE_STRLEN];
        ck_assert_msg(ba_dtype_parse(cases[i].text, &dt) == 0, "%s: %s", cases[i].text,
                      ba_errmsg());
        ck_assert_str_eq(ba_dtype_format(&dt, buf), cases[i].canon);
        ba_dtype again;
        ck_assert_int_eq(ba_dtype_parse(buf, &again), 0);
        ck_assert(ba_dtype_equal(&dt, &again));
    }
    ba_dtype a, b;
    ba_dtype_parse("<f8", &a);
    ba_dtype_parse(">f8", &b);
    ck_assert(!ba_dtype_equal(&a, &b));
    ba_dtype_parse("<i8", &b);
    ck_assert(!ba_dtype_equal(&a, &b));
    ba_dtype_parse("V16", &a);
    ck_assert_uint_eq(a.itemsize, 16);
    ck_assert_int_eq(a.kind, 'V');
}
END_TEST

START_TEST(test_dtype_parse_rejects_unknown)
{
    static const char *bad[] = {"",   "f",   "f3",  "f16", "i3",   "u16",         "b2",
                                "c4", "c32", "V0",  "x8",  "<<f8", "f8 ",         "float128",
                                "O",  "<",   "S10", "U4",  "i-1",  "V99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ba_dtype dt;
        ck_assert_msg(ba_dtype_parse(bad[i], &dt) == BA_EDTYPE, "'%s' parsed", bad[i]);
        ck_assert_msg(strlen(ba_errmsg()) > 0, "no message for '%s'", bad[i]);
    }
}
END_TEST

/* ---- codec text --------------------------------------------------------------------- */

START_TEST(test_codec_parse_and_format)
{
    static const struct {
        const char *text, *canon;
        int codec, level;
        unsigned filters;
    } cases[] = {
        {"none", "none", BA_CODEC_NONE, 0, 0},
        {"zstd", "zstd:1", BA_CODEC_ZSTD, 1, 0},
        {"zstd:3", "zstd:3", BA_CODEC_ZSTD, 3, 0},
        {"zstd:19", "zstd:19", BA_CODEC_ZSTD, 19, 0},
        {"zstd+shuffle", "zstd:1+shuffle", BA_CODEC_ZSTD, 1, BA_FILTER_SHUFFLE},
        {"zstd:7+shuffle", "zstd:7+shuffle", BA_CODEC_ZSTD, 7, BA_FILTER_SHUFFLE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ba_array_spec sp;
        ba_array_spec_init(&sp);
        char buf[32];
        ck_assert_msg(ba_codec_parse(cases[i].text, &sp) == 0, "%s: %s", cases[i].text,
                      ba_errmsg());
        ck_assert_int_eq(sp.codec, cases[i].codec);
        ck_assert_int_eq(sp.level, cases[i].level);
        ck_assert_uint_eq(sp.filters, cases[i].filters);
        ck_assert_str_eq(ba_codec_format(sp.codec, sp.level, sp.filters, buf), cases[i].canon);
    }
    static const char *bad[] = {"",    "zstd:",        "zstd:0",  "zstd:20", "zstd:3x",
                                "lz4", "none+shuffle", "zstd+lz", "zstd:-1", "nonex"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ba_array_spec sp;
        ba_array_spec_init(&sp);
        ck_assert_msg(ba_codec_parse(bad[i], &sp) == BA_EINVAL, "'%s' parsed", bad[i]);
    }
}
END_TEST

/* ---- slice text ---------------------------------------------------------------------- */

START_TEST(test_slice_parse_forms)
{
    ba_slice sl[8];
    int n = -1;
    ck_assert_int_eq(ba_slice_parse("", sl, 8, &n), 0);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(ba_slice_parse("   ", sl, 8, &n), 0);
    ck_assert_int_eq(n, 0);

    ck_assert_int_eq(ba_slice_parse("10:100, ::-3, 5", sl, 8, &n), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(sl[0].kind, BA_SLICE_RANGE);
    ck_assert(sl[0].start == 10 && sl[0].stop == 100 && sl[0].step == BA_SLICE_NONE);
    ck_assert_int_eq(sl[1].kind, BA_SLICE_RANGE);
    ck_assert(sl[1].start == BA_SLICE_NONE && sl[1].stop == BA_SLICE_NONE && sl[1].step == -3);
    ck_assert_int_eq(sl[2].kind, BA_SLICE_INDEX);
    ck_assert(sl[2].start == 5);

    ck_assert_int_eq(ba_slice_parse("..., None,-1 ,newaxis, : , 1:, :-2, ::", sl, 8, &n), 0);
    ck_assert_int_eq(n, 8);
    ck_assert_int_eq(sl[0].kind, BA_SLICE_ELLIPSIS);
    ck_assert_int_eq(sl[1].kind, BA_SLICE_NEWAXIS);
    ck_assert(sl[2].kind == BA_SLICE_INDEX && sl[2].start == -1);
    ck_assert_int_eq(sl[3].kind, BA_SLICE_NEWAXIS);
    ck_assert(sl[4].kind == BA_SLICE_RANGE && sl[4].start == BA_SLICE_NONE &&
              sl[4].stop == BA_SLICE_NONE && sl[4].step == BA_SLICE_NONE);
    ck_assert(sl[5].start == 1 && sl[5].stop == BA_SLICE_NONE);
    ck_assert(sl[6].start == BA_SLICE_NONE && sl[6].stop == -2);
    ck_assert(sl[7].kind == BA_SLICE_RANGE && sl[7].step == BA_SLICE_NONE);

    /* A trailing comma, as in Python's a[1,]. */
    ck_assert_int_eq(ba_slice_parse("1,", sl, 8, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(ba_slice_parse("+7:-9223372036854775807", sl, 8, &n), 0);
    ck_assert(sl[0].start == 7 && sl[0].stop == -INT64_MAX);
}
END_TEST

START_TEST(test_slice_parse_errors_name_the_column)
{
    static const struct {
        const char *text;
        int code;
        const char *column;
    } cases[] = {
        {"1:2:0", BA_EINVAL, "column 5"},
        {"1, x", BA_EINVAL, "column 4"},
        {"1 2", BA_EINVAL, "column 3"},
        {",", BA_EINVAL, "column 1"},
        {"1,,2", BA_EINVAL, "column 3"},
        {"1:2:3:4", BA_EINVAL, "column 6"},
        {"9223372036854775808", BA_EINVAL, "column 1"},
        {"-9223372036854775808", BA_EINVAL, "column 1"},
        {"-", BA_EINVAL, "column 2"},
        {"5:-", BA_EINVAL, "column 4"},
        {"Nonee", BA_EINVAL, "column 1"},
        {"..", BA_EINVAL, "column 1"},
        {"1,2,3,4,5,6,7,8,9", BA_ETOOBIG, "more than 8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ba_slice sl[8];
        int n;
        int rc = ba_slice_parse(cases[i].text, sl, 8, &n);
        ck_assert_msg(rc == cases[i].code, "'%s': got %d (%s)", cases[i].text, rc, ba_errmsg());
        ck_assert_msg(strstr(ba_errmsg(), cases[i].column), "'%s': message '%s' lacks '%s'",
                      cases[i].text, ba_errmsg(), cases[i].column);
    }
}
END_TEST

/* ---- ba_slice_apply against a reference ---------------------------------------------- */

/* Python's slice.indices(n) and range(), written the straightforward way. */
static int64_t ref_indices(int64_t n, const ba_slice *s, int64_t *out)
{
    int64_t step = s->step == BA_SLICE_NONE ? 1 : s->step;
    int64_t start, stop, cnt = 0;
    if (step > 0) {
        start = s->start == BA_SLICE_NONE ? 0 : s->start;
        stop = s->stop == BA_SLICE_NONE ? n : s->stop;
        if (start < 0)
            start = start + n < 0 ? 0 : start + n;
        if (start > n)
            start = n;
        if (stop < 0)
            stop = stop + n < 0 ? 0 : stop + n;
        if (stop > n)
            stop = n;
        for (int64_t i = start; i < stop; i += step)
            out[cnt++] = i;
    } else {
        start = s->start == BA_SLICE_NONE ? n - 1 : s->start;
        if (s->start != BA_SLICE_NONE && start < 0)
            start = start + n < 0 ? -1 : start + n;
        if (start > n - 1)
            start = n - 1;
        if (s->stop == BA_SLICE_NONE)
            stop = -1;
        else
            stop = s->stop < 0 ? (s->stop + n < 0 ? -1 : s->stop + n) : s->stop;
        if (stop > n - 1)
            stop = n - 1;
        for (int64_t i = start; i > stop; i += step)
            out[cnt++] = i;
    }
    return cnt;
}

/* Item i of the per-axis set {":", 0, -1, n//2, 1:-1, a:b:2, b:a:-3}. */
static ba_slice axis_item(int which, int64_t n)
{
    ba_slice s = {BA_SLICE_RANGE, BA_SLICE_NONE, BA_SLICE_NONE, BA_SLICE_NONE};
    int64_t a = n / 4 + 1, b = 3 * n / 4 - 1;
    switch (which) {
    case 0:
        break;
    case 1:
        s.kind = BA_SLICE_INDEX;
        s.start = 0;
        break;
    case 2:
        s.kind = BA_SLICE_INDEX;
        s.start = -1;
        break;
    case 3:
        s.kind = BA_SLICE_INDEX;
        s.start = n / 2;
        break;
    case 4:
        s.start = 1;
        s.stop = -1;
        break;
    case 5:
        s.start = a;
        s.stop = b;
        s.step = 2;
        break;
    default:
        s.start = b;
        s.stop = a;
        s.step = -3;
        break;
    }
    return s;
}

static void c_strides(int ndim, const int64_t *shape, int64_t isz, char order, int64_t *st)
{
    int64_t acc = isz;
    for (int k = 0; k < ndim; k++) {
        int i = order == 'F' ? k : ndim - 1 - k;
        st[i] = acc;
        acc *= shape[i] ? shape[i] : 1;
    }
}

/* Check one combination against the reference: shape, strides, and the byte offset of
 * every element of the result. */
static void check_combo(int ndim, const int64_t *shape, const int64_t *strides, const ba_slice *sl)
{
    int64_t off, oshape[BA_MAX_DIMS], ostrides[BA_MAX_DIMS];
    int ond;
    int rc = ba_slice_apply(ndim, shape, strides, sl, ndim, &off, &ond, oshape, ostrides);
    /* The reference: index lists per axis, or a single index. */
    static int64_t idx[4][4200];
    int64_t cnt[4];
    int is_index[4], rnd = 0, empty = 0, want_err = 0;
    int64_t rshape[4], rstrides[4];
    for (int k = 0; k < ndim; k++) {
        is_index[k] = sl[k].kind == BA_SLICE_INDEX;
        if (is_index[k]) {
            int64_t i = sl[k].start < 0 ? sl[k].start + shape[k] : sl[k].start;
            if (i < 0 || i >= shape[k])
                want_err = 1;
            idx[k][0] = i;
            cnt[k] = 1;
        } else {
            cnt[k] = ref_indices(shape[k], &sl[k], idx[k]);
            /* numpy gives an empty range step 1 */
            int64_t step = sl[k].step == BA_SLICE_NONE || !cnt[k] ? 1 : sl[k].step;
            rshape[rnd] = cnt[k];
            rstrides[rnd++] = strides[k] * step;
            empty |= cnt[k] == 0;
        }
    }
    if (want_err) {
        ck_assert_msg(rc == BA_ERANGE, "expected BA_ERANGE, got %d", rc);
        return;
    }
    ck_assert_msg(rc == 0, "apply failed: %s", ba_errmsg());
    ck_assert_int_eq(ond, rnd);
    for (int k = 0; k < rnd; k++) {
        ck_assert_int_eq(oshape[k], rshape[k]);
        ck_assert_int_eq(ostrides[k], rstrides[k]);
    }
    if (empty) {
        ck_assert_int_eq(off, 0);
        return;
    }
    /* Walk every element of the result. */
    int64_t pos[4] = {0, 0, 0, 0};
    for (;;) {
        int64_t got = off, want = 0;
        int o = 0;
        for (int k = 0; k < ndim; k++) {
            if (is_index[k]) {
                want += idx[k][0] * strides[k];
            } else {
                want += idx[k][pos[o]] * strides[k];
                got += pos[o] * ostrides[o];
                o++;
            }
        }
        ck_assert_int_eq(got, want);
        int k = rnd - 1;
        while (k >= 0 && ++pos[k] == rshape[k])
            pos[k--] = 0;
        if (k < 0)
            break;
    }
}

START_TEST(test_slice_apply_matches_reference_1_to_4_dims)
{
    static const int64_t shapes[][4] = {
        {1},     {2},    {7},    {10},      {4097},       {1, 1},        {3, 5},       {10, 4099},
        {13, 7}, {0, 5}, {5, 0}, {6, 5, 4}, {103, 1, 23}, {11, 7, 5, 3}, {2, 3, 2, 9},
    };
    static const int ndims[] = {1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 4, 4};
    long combos = 0;
    for (size_t si = 0; si < sizeof ndims / sizeof ndims[0]; si++) {
        int nd = ndims[si];
        for (int order = 0; order < 2; order++) {
            int64_t strides[4];
            c_strides(nd, shapes[si], 4, order ? 'F' : 'C', strides);
            int total = 1;
            for (int k = 0; k < nd; k++)
                total *= 7;
            for (int c = 0; c < total; c++) {
                ba_slice sl[4];
                int code = c;
                for (int k = 0; k < nd; k++, code /= 7)
                    sl[k] = axis_item(code % 7, shapes[si][k]);
                check_combo(nd, shapes[si], strides, sl);
                combos++;
            }
        }
    }
    ck_assert_int_gt(combos, 5000);
}
END_TEST

START_TEST(test_slice_apply_out_of_range_and_empty)
{
    int64_t shape[1] = {10}, strides[1] = {1}, off, oshape[4], ostrides[4];
    int nd;
    ba_slice s = {BA_SLICE_INDEX, 10, 0, 0};
    ck_assert_int_eq(ba_slice_apply(1, shape, strides, &s, 1, &off, &nd, oshape, ostrides),
                     BA_ERANGE);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "out of bounds"));
    s.start = -11;
    ck_assert_int_eq(ba_slice_apply(1, shape, strides, &s, 1, &off, &nd, oshape, ostrides),
                     BA_ERANGE);
    s.start = -10;
    ck_assert_int_eq(ba_slice_apply(1, shape, strides, &s, 1, &off, &nd, oshape, ostrides), 0);
    ck_assert_int_eq(nd, 0);
    ck_assert_int_eq(off, 0);
    /* Empty slices: 10:11, 10:5, 5:10:-1, 5:5, far beyond. */
    static const int64_t empties[][3] = {{10, 11, 1}, {10, 5, 1},      {5, 10, -1},
                                         {5, 5, 1},   {1000, 2000, 3}, {-100, -50, 1}};
    for (size_t i = 0; i < 6; i++) {
        ba_slice r = {BA_SLICE_RANGE, empties[i][0], empties[i][1], empties[i][2]};
        ck_assert_int_eq(ba_slice_apply(1, shape, strides, &r, 1, &off, &nd, oshape, ostrides), 0);
        ck_assert_int_eq(nd, 1);
        ck_assert_int_eq(oshape[0], 0);
        ck_assert_int_eq(ostrides[0], 1); /* numpy: an empty range has step 1 */
        ck_assert_int_eq(off, 0);
    }
    /* An index into a zero-length axis is out of range even though the result is empty. */
    int64_t shape2[2] = {0, 5}, strides2[2] = {5, 1};
    ba_slice two[2] = {{BA_SLICE_RANGE, BA_SLICE_NONE, BA_SLICE_NONE, BA_SLICE_NONE},
                       {BA_SLICE_INDEX, 7, 0, 0}};
    ck_assert_int_eq(ba_slice_apply(2, shape2, strides2, two, 2, &off, &nd, oshape, ostrides),
                     BA_ERANGE);
    /* Step 0, two ellipses, too many indices. */
    ba_slice z = {BA_SLICE_RANGE, 1, 5, 0};
    ck_assert_int_eq(ba_slice_apply(1, shape, strides, &z, 1, &off, &nd, oshape, ostrides),
                     BA_EINVAL);
    ba_slice ee[2] = {{BA_SLICE_ELLIPSIS, 0, 0, 0}, {BA_SLICE_ELLIPSIS, 0, 0, 0}};
    ck_assert_int_eq(ba_slice_apply(1, shape, strides, ee, 2, &off, &nd, oshape, ostrides),
                     BA_EINVAL);
    ba_slice many[2] = {{BA_SLICE_INDEX, 1, 0, 0}, {BA_SLICE_INDEX, 1, 0, 0}};
    ck_assert_int_eq(ba_slice_apply(1, shape, strides, many, 2, &off, &nd, oshape, ostrides),
                     BA_EINVAL);
    /* A caller's inconsistent layout whose offsets overflow is refused, not UB. */
    int64_t bshape[1] = {3}, bstrides[1] = {INT64_MAX / 2 + 1};
    ba_slice two_idx = {BA_SLICE_INDEX, 2, 0, 0};
    ck_assert_int_eq(ba_slice_apply(1, bshape, bstrides, &two_idx, 1, &off, &nd, oshape, ostrides),
                     BA_EINVAL);
    ba_slice from2 = {BA_SLICE_RANGE, 2, BA_SLICE_NONE, BA_SLICE_NONE};
    ck_assert_int_eq(ba_slice_apply(1, bshape, bstrides, &from2, 1, &off, &nd, oshape, ostrides),
                     BA_EINVAL);
}
END_TEST

START_TEST(test_slice_apply_ellipsis_and_newaxis)
{
    int64_t shape[3] = {4, 5, 6}, strides[3], off, osh[BA_MAX_DIMS], ost[BA_MAX_DIMS];
    int nd;
    c_strides(3, shape, 8, 'C', strides);
    ba_slice sl[8];
    int n;
    /* "..., 2" == [:, :, 2] */
    ck_assert_int_eq(ba_slice_parse("..., 2", sl, 8, &n), 0);
    ck_assert_int_eq(ba_slice_apply(3, shape, strides, sl, n, &off, &nd, osh, ost), 0);
    ck_assert_int_eq(nd, 2);
    ck_assert(osh[0] == 4 && osh[1] == 5 && ost[0] == 240 && ost[1] == 48 && off == 16);
    /* "1, ..., ::-2" */
    ck_assert_int_eq(ba_slice_parse("1, ..., ::-2", sl, 8, &n), 0);
    ck_assert_int_eq(ba_slice_apply(3, shape, strides, sl, n, &off, &nd, osh, ost), 0);
    ck_assert_int_eq(nd, 2);
    ck_assert(osh[0] == 5 && osh[1] == 3 && ost[0] == 48 && ost[1] == -16 && off == 240 + 40);
    /* An ellipsis standing for no axis. */
    ck_assert_int_eq(ba_slice_parse("0, ..., 1, 2", sl, 8, &n), 0);
    ck_assert_int_eq(ba_slice_apply(3, shape, strides, sl, n, &off, &nd, osh, ost), 0);
    ck_assert_int_eq(nd, 0);
    ck_assert_int_eq(off, 48 + 16);
    /* newaxis: length 1, stride 0, anywhere. */
    ck_assert_int_eq(ba_slice_parse("None, 1, newaxis, ..., None", sl, 8, &n), 0);
    ck_assert_int_eq(ba_slice_apply(3, shape, strides, sl, n, &off, &nd, osh, ost), 0);
    ck_assert_int_eq(nd, 5);
    ck_assert(osh[0] == 1 && ost[0] == 0 && osh[1] == 1 && ost[1] == 0 && osh[2] == 5 &&
              osh[3] == 6 && osh[4] == 1 && ost[4] == 0 && off == 240);
    /* Too many dimensions from newaxes. */
    ba_slice na[BA_MAX_DIMS];
    for (int i = 0; i < BA_MAX_DIMS; i++)
        na[i] = (ba_slice){BA_SLICE_NEWAXIS, 0, 0, 0};
    ck_assert_int_eq(ba_slice_apply(3, shape, strides, na, BA_MAX_DIMS, &off, &nd, osh, ost),
                     BA_EINVAL);
}
END_TEST

static Suite *lib_slice_suite(void)
{
    Suite *s = suite_create("lib_slice");
    TCase *tc = tcase_create("parsers");
    tcase_add_test(tc, test_dtype_parse_type_strings_and_names);
    tcase_add_test(tc, test_dtype_parse_rejects_unknown);
    tcase_add_test(tc, test_codec_parse_and_format);
    tcase_add_test(tc, test_slice_parse_forms);
    tcase_add_test(tc, test_slice_parse_errors_name_the_column);
    suite_add_tcase(s, tc);
    tc = tcase_create("apply");
    tcase_add_test(tc, test_slice_apply_matches_reference_1_to_4_dims);
    tcase_add_test(tc, test_slice_apply_out_of_range_and_empty);
    tcase_add_test(tc, test_slice_apply_ellipsis_and_newaxis);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(lib_slice_suite());
}
