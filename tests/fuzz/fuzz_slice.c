/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the text parsers of lib/ and common/: the input, cut at its first NUL, is
 * given to ba_slice_parse() (then ba_slice_apply() on a few layouts), ba_dtype_parse(),
 * ba_codec_parse() and ba_parse_size(). Besides memory errors and undefined behaviour
 * it checks what each result promises:
 *
 *   slices  every element of the result lies inside the source array (offset and
 *           strides are checked in 128-bit arithmetic), the result never has more
 *           elements than the source, ndim adds up, empty results have offset 0;
 *           the slice is then applied again to its own result (negative and zero
 *           strides, as views of views have).
 *   dtype   the canonical form passes dtype_check() and parses back to itself.
 *   codec   the formatted codec parses back to the same codec, level and filters.
 *   size    a size that parses was written with digits and a known suffix.
 */
#include <stdlib.h>
#include <string.h>

#include "ba_internal.h"
#include "fuzz.h"

__extension__ typedef __int128 i128;

#define FUZZ_MAXSL (2 * BA_MAX_DIMS + 1) /* what the CLI passes */

struct layout {
    int ndim;
    int64_t shape[BA_MAX_DIMS];
    int64_t strides[BA_MAX_DIMS];
    uint32_t itemsize;
};

/* A fresh array's layout in order 'C' or 'F'. */
static void make_layout(struct layout *l, uint32_t itemsize, char order, int ndim,
                        const int64_t *shape)
{
    memset(l, 0, sizeof *l);
    l->ndim = ndim;
    l->itemsize = itemsize;
    int64_t st = itemsize;
    for (int k = 0; k < ndim; k++) {
        int i = order == 'F' ? k : ndim - 1 - k;
        l->shape[i] = shape[i];
        l->strides[i] = st;
        if (shape[i])
            st *= shape[i];
    }
}

static i128 elements(int ndim, const int64_t *shape)
{
    i128 n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

/* Check the result of applying sl to src, whose first element is at byte base of an
 * array of nbytes bytes; returns the absolute offset of the result's first element. */
static i128 check_result(const struct layout *src, i128 base, i128 nbytes, const ba_slice *sl,
                         int nsl, int64_t off, const struct layout *out)
{
    int index = 0, newaxis = 0, ellipsis = 0;
    for (int i = 0; i < nsl; i++) {
        index += sl[i].kind == BA_SLICE_INDEX;
        newaxis += sl[i].kind == BA_SLICE_NEWAXIS;
        ellipsis += sl[i].kind == BA_SLICE_ELLIPSIS;
    }
    FUZZ_CHECK(ellipsis <= 1);
    FUZZ_CHECK(out->ndim == src->ndim - index + newaxis);
    FUZZ_CHECK(out->ndim >= 0 && out->ndim <= BA_MAX_DIMS);
    for (int i = 0; i < out->ndim; i++)
        FUZZ_CHECK(out->shape[i] >= 0);
    i128 n = elements(out->ndim, out->shape);
    FUZZ_CHECK(n <= elements(src->ndim, src->shape));
    if (n == 0) {
        FUZZ_CHECK(off == 0);
        return base;
    }
    i128 lo = base + off, hi = base + off + out->itemsize;
    for (int i = 0; i < out->ndim; i++) {
        i128 span = (i128)(out->shape[i] - 1) * out->strides[i];
        if (span < 0)
            lo += span;
        else
            hi += span;
    }
    FUZZ_CHECK(lo >= 0 && hi <= nbytes);
    return base + off;
}

static void apply(const struct layout *l, const ba_slice *sl, int nsl)
{
    i128 nbytes = elements(l->ndim, l->shape) * l->itemsize;
    struct layout r1, r2;
    memset(&r1, 0, sizeof r1);
    r1.itemsize = l->itemsize;
    int64_t off1 = -1;
    int rc = ba_slice_apply(l->ndim, l->shape, l->strides, sl, nsl, &off1, &r1.ndim, r1.shape,
                            r1.strides);
    if (rc) {
        FUZZ_CHECK(rc == BA_EINVAL || rc == BA_ERANGE);
        return;
    }
    i128 base1 = check_result(l, 0, nbytes, sl, nsl, off1, &r1);

    memset(&r2, 0, sizeof r2);
    r2.itemsize = l->itemsize;
    int64_t off2 = -1;
    rc = ba_slice_apply(r1.ndim, r1.shape, r1.strides, sl, nsl, &off2, &r2.ndim, r2.shape,
                        r2.strides);
    if (rc) {
        FUZZ_CHECK(rc == BA_EINVAL || rc == BA_ERANGE);
        return;
    }
    if (elements(r1.ndim, r1.shape) == 0)
        base1 = 0; /* an empty source's offset means nothing */
    (void)check_result(&r1, base1, nbytes, sl, nsl, off2, &r2);
}

static void fuzz_slices(const char *text)
{
    static ba_slice sl[FUZZ_MAXSL];
    int n = -1;
    int rc = ba_slice_parse(text, sl, FUZZ_MAXSL, &n);
    if (rc) {
        FUZZ_CHECK(rc == BA_EINVAL || rc == BA_ETOOBIG);
        FUZZ_CHECK(ba_errmsg()[0] != '\0');
    } else {
        FUZZ_CHECK(n >= 0 && n <= FUZZ_MAXSL);
    }
    /* A short output array: BA_ETOOBIG instead of an overrun. */
    ba_slice few[2];
    int n2 = -1;
    int rc2 = ba_slice_parse(text, few, 2, &n2);
    FUZZ_CHECK(rc2 == 0 || rc2 == BA_EINVAL || rc2 == BA_ETOOBIG);
    if (!rc && n <= 2)
        FUZZ_CHECK(rc2 == 0 && n2 == n);
    int n0 = -1;
    int rc0 = ba_slice_parse(text, NULL, 0, &n0);
    FUZZ_CHECK(rc0 == 0 || rc0 == BA_EINVAL || rc0 == BA_ETOOBIG);
    if (rc)
        return;
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(sl[i].kind >= BA_SLICE_RANGE && sl[i].kind <= BA_SLICE_NEWAXIS);
        if (sl[i].kind == BA_SLICE_RANGE)
            FUZZ_CHECK(sl[i].step != 0);
        if (sl[i].kind == BA_SLICE_INDEX)
            FUZZ_CHECK(sl[i].start != BA_SLICE_NONE);
    }

    static const int64_t s1[] = {10};
    static const int64_t s2[] = {3, 4};
    static const int64_t s3[] = {2, 0, 5};
    static const int64_t s4[] = {INT64_C(1) << 20, INT64_C(1) << 20, INT64_C(1) << 19};
    static const int64_t s5[] = {INT64_MAX};
    static const int64_t s6[] = {7, 1, 3, 1, 2};
    int64_t ones[BA_MAX_DIMS];
    for (int i = 0; i < BA_MAX_DIMS; i++)
        ones[i] = 1;
    struct layout l;
    make_layout(&l, 8, 'C', 0, NULL);
    apply(&l, sl, n);
    make_layout(&l, 8, 'C', 1, s1);
    apply(&l, sl, n);
    make_layout(&l, 4, 'C', 2, s2);
    apply(&l, sl, n);
    make_layout(&l, 4, 'F', 2, s2);
    apply(&l, sl, n);
    make_layout(&l, 8, 'C', 3, s3);
    apply(&l, sl, n);
    make_layout(&l, 8, 'F', 3, s4);
    apply(&l, sl, n);
    make_layout(&l, 1, 'C', 1, s5);
    apply(&l, sl, n);
    make_layout(&l, 16, 'C', 5, s6);
    apply(&l, sl, n);
    make_layout(&l, 2, 'C', BA_MAX_DIMS, ones);
    apply(&l, sl, n);
}

static void fuzz_dtype(const char *text)
{
    ba_dtype dt, dt2;
    if (ba_dtype_parse(text, &dt))
        return;
    FUZZ_CHECK(dtype_check(&dt) == 0);
    char buf[BA_DTYPE_STRLEN];
    ba_dtype_format(&dt, buf);
    FUZZ_CHECK(ba_dtype_parse(buf, &dt2) == 0 && ba_dtype_equal(&dt, &dt2));
}

static void fuzz_codec(const char *text)
{
    ba_array_spec s, s2;
    ba_array_spec_init(&s);
    if (ba_codec_parse(text, &s))
        return;
    FUZZ_CHECK(s.codec == BA_CODEC_NONE || s.codec == BA_CODEC_ZSTD);
    FUZZ_CHECK(s.codec == BA_CODEC_NONE ? s.level == 0 : (s.level >= 1 && s.level <= 19));
    char buf[32];
    ba_codec_format(s.codec, s.level, s.filters, buf);
    ba_array_spec_init(&s2);
    FUZZ_CHECK(ba_codec_parse(buf, &s2) == 0);
    FUZZ_CHECK(s2.codec == s.codec && s2.level == s.level && s2.filters == s.filters);
}

static void fuzz_size(const char *text)
{
    uint64_t v = 0;
    if (ba_parse_size(text, &v))
        return;
    const char *p = text;
    while (*p >= '0' && *p <= '9')
        p++;
    FUZZ_CHECK(p > text); /* digits first: no sign, no blanks */
    if (*p)
        FUZZ_CHECK(strchr("kKmMgGtT", *p) &&
                   (!strcmp(p + 1, "") || !strcmp(p + 1, "B") || !strcmp(p + 1, "iB")));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    FUZZ_CHECK(text);
    memcpy(text, data, size);
    text[size] = '\0';
    fuzz_slices(text);
    fuzz_dtype(text);
    fuzz_codec(text);
    fuzz_size(text);
    free(text);
    return 0;
}
