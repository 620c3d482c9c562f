/* SPDX-License-Identifier: MIT */
/*
 * Slices: the parser of slice text ("10:100, ::-3, 5", "..., None") shared by the
 * CLI, the tests and ba_array_view_text(), and ba_slice_apply(), numpy's basic
 * slicing on a strided layout (shape + byte strides + offset), following CPython's
 * PySlice_AdjustIndices() for start:stop:step (an empty range keeps the source's
 * stride, as numpy gives it step 1) and numpy's rules for integer indices
 * (bounds-checked, drop the axis), the ellipsis (at most one, stands for the axes
 * not named) and newaxis (a new axis of length 1 and stride 0).
 *
 * Grammar (spaces and tabs allowed around every token):
 *
 *   text  := "" | item ("," item)* [","]
 *   item  := "..." | "None" | "newaxis" | int | [int] ":" [int] [":" [int]]
 *   int   := ["+" | "-"] digit+          (an int64 other than INT64_MIN)
 */
#include <stdio.h>
#include <string.h>

#include "ba_internal.h"

struct cursor {
    const char *text;
    const char *p;
};

static int col(const struct cursor *c)
{
    return (int)(c->p - c->text) + 1;
}

static void skip_ws(struct cursor *c)
{
    while (*c->p == ' ' || *c->p == '\t')
        c->p++;
}

static int parse_error(const struct cursor *c, const char *what)
{
    if (*c->p)
        return ba_error_set(BA_EINVAL, "slice '%s', column %d: %s (found '%c')", c->text, col(c),
                            what, *c->p);
    return ba_error_set(BA_EINVAL, "slice '%s', column %d: %s (found the end)", c->text, col(c),
                        what);
}

static int starts_int(const struct cursor *c)
{
    const char *p = c->p;
    if (*p == '+' || *p == '-')
        p++;
    return *p >= '0' && *p <= '9';
}

/* Parse an int at the cursor (starts_int() is true). */
static int parse_int(struct cursor *c, int64_t *out)
{
    const char *start = c->p;
    int neg = 0;
    if (*c->p == '+' || *c->p == '-')
        neg = *c->p++ == '-';
    if (*c->p < '0' || *c->p > '9')
        return parse_error(c, "expected a digit");
    uint64_t v = 0;
    /* INT64_MIN is reserved for BA_SLICE_NONE, so both signs stop at INT64_MAX. */
    while (*c->p >= '0' && *c->p <= '9') {
        uint64_t d = (uint64_t)(*c->p - '0');
        if (v > (uint64_t)(INT64_MAX - (int64_t)d) / 10) {
            c->p = start;
            return parse_error(c, "integer out of range");
        }
        v = v * 10 + d;
        c->p++;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

static int word_at(const struct cursor *c, const char *w)
{
    size_t n = strlen(w);
    if (strncmp(c->p, w, n))
        return 0;
    char next = c->p[n];
    return !(next == '_' || (next >= '0' && next <= '9') || (next >= 'a' && next <= 'z') ||
             (next >= 'A' && next <= 'Z'));
}

/* Parse an optional int: store BA_SLICE_NONE when none is there. */
static int parse_opt_int(struct cursor *c, int64_t *out)
{
    skip_ws(c);
    if (!starts_int(c)) {
        if (*c->p == '+' || *c->p == '-') {
            c->p++;
            return parse_error(c, "expected a digit after the sign");
        }
        *out = BA_SLICE_NONE;
        return 0;
    }
    return parse_int(c, out);
}

static int parse_item(struct cursor *c, ba_slice *sl)
{
    skip_ws(c);
    sl->start = sl->stop = sl->step = BA_SLICE_NONE;
    if (!strncmp(c->p, "...", 3)) {
        c->p += 3;
        sl->kind = BA_SLICE_ELLIPSIS;
        return 0;
    }
    if (word_at(c, "None") || word_at(c, "newaxis")) {
        c->p += *c->p == 'N' ? 4 : 7;
        sl->kind = BA_SLICE_NEWAXIS;
        return 0;
    }
    int rc = parse_opt_int(c, &sl->start);
    if (rc)
        return rc;
    skip_ws(c);
    if (*c->p != ':') {
        if (sl->start == BA_SLICE_NONE)
            return parse_error(c, "expected an integer, ':', '...', 'None' or 'newaxis'");
        sl->kind = BA_SLICE_INDEX;
        return 0;
    }
    c->p++;
    sl->kind = BA_SLICE_RANGE;
    if ((rc = parse_opt_int(c, &sl->stop)))
        return rc;
    skip_ws(c);
    if (*c->p != ':')
        return 0;
    c->p++;
    if ((rc = parse_opt_int(c, &sl->step)))
        return rc;
    if (sl->step == 0) {
        c->p--;
        while (c->p > c->text && *c->p != '0')
            c->p--;
        return parse_error(c, "slice step cannot be zero");
    }
    return 0;
}

BA_API int ba_slice_parse(const char *text, ba_slice *out, int max, int *n)
{
    if (!text || !n || max < 0 || (max && !out))
        return ba_error_set(BA_EINVAL, "ba_slice_parse: bad argument");
    struct cursor c = {text, text};
    int count = 0;
    skip_ws(&c);
    while (*c.p) {
        ba_slice sl;
        int rc = parse_item(&c, &sl);
        if (rc)
            return rc;
        if (count == max)
            return ba_error_set(BA_ETOOBIG, "slice '%s': more than %d items", text, max);
        out[count++] = sl;
        skip_ws(&c);
        if (!*c.p)
            break;
        if (*c.p != ',')
            return parse_error(&c, "expected ',' or the end");
        c.p++;
        skip_ws(&c);
    }
    *n = count;
    return 0;
}

/* Resolve start:stop:step on an axis of length len as CPython's PySlice_AdjustIndices()
 * does; store the first index and the number of elements. */
static int range_adjust(const ba_slice *sl, int64_t len, int64_t *first, int64_t *count,
                        int64_t *step)
{
    int64_t st = sl->step == BA_SLICE_NONE ? 1 : sl->step;
    if (st == 0)
        return ba_error_set(BA_EINVAL, "slice step cannot be zero");
    int64_t lo = st < 0 ? -1 : 0;
    int64_t hi = st < 0 ? len - 1 : len;
    int64_t start, stop;
    if (sl->start == BA_SLICE_NONE) {
        start = st < 0 ? hi : lo;
    } else {
        start = sl->start;
        if (start < 0) {
            start += len;
            if (start < lo)
                start = lo;
        } else if (start > hi) {
            start = hi;
        }
    }
    if (sl->stop == BA_SLICE_NONE) {
        stop = st < 0 ? lo : hi;
    } else {
        stop = sl->stop;
        if (stop < 0) {
            stop += len;
            if (stop < lo)
                stop = lo;
        } else if (stop > hi) {
            stop = hi;
        }
    }
    int64_t n = 0;
    if (st > 0 && stop > start)
        n = (int64_t)((uint64_t)(stop - start - 1) / (uint64_t)st) + 1;
    else if (st < 0 && start > stop)
        n = (int64_t)((uint64_t)(start - stop - 1) / (0 - (uint64_t)st)) + 1;
    *first = start;
    *count = n;
    *step = st;
    return 0;
}

/* *off += idx * stride, or nonzero on overflow (only a caller's inconsistent layout
 * can overflow: strides of an array of at most 2^63 bytes never do). */
static int offset_add(int64_t *off, int64_t idx, int64_t stride)
{
    int64_t d;
    return __builtin_mul_overflow(idx, stride, &d) || __builtin_add_overflow(*off, d, off);
}

BA_API int ba_slice_apply(int ndim, const int64_t *shape, const int64_t *strides,
                          const ba_slice *sl, int nsl, int64_t *offset, int *ndim_out,
                          int64_t *shape_out, int64_t *strides_out)
{
    if (ndim < 0 || ndim > BA_MAX_DIMS || nsl < 0 || (nsl && !sl))
        return ba_error_set(BA_EINVAL, "ba_slice_apply: bad argument");
    int consuming = 0, ellipses = 0, newaxes = 0;
    for (int i = 0; i < nsl; i++) {
        switch (sl[i].kind) {
        case BA_SLICE_RANGE:
        case BA_SLICE_INDEX:
            consuming++;
            break;
        case BA_SLICE_ELLIPSIS:
            ellipses++;
            break;
        case BA_SLICE_NEWAXIS:
            newaxes++;
            break;
        default:
            return ba_error_set(BA_EINVAL, "slice item %d: unknown kind %d", i, sl[i].kind);
        }
    }
    if (ellipses > 1)
        return ba_error_set(BA_EINVAL, "an index can only have a single ellipsis ('...')");
    if (consuming > ndim)
        return ba_error_set(BA_EINVAL, "too many indices: %d for an array of %d dimensions",
                            consuming, ndim);
    int nout = 0, axis = 0;
    int64_t off = 0, empty = 0;
    int64_t tmp_shape[BA_MAX_DIMS] = {0}, tmp_strides[BA_MAX_DIMS] = {0};
    for (int i = 0; i <= nsl; i++) {
        /* The axes an item does not name: the ellipsis stands for ndim - consuming
         * of them, and whatever is left after the last item is taken whole. */
        int whole = 0;
        if (i == nsl)
            whole = ndim - axis;
        else if (sl[i].kind == BA_SLICE_ELLIPSIS)
            whole = ndim - consuming;
        for (int k = 0; k < whole; k++, axis++) {
            if (nout == BA_MAX_DIMS)
                goto too_many_dims;
            tmp_shape[nout] = shape[axis];
            tmp_strides[nout++] = strides[axis];
        }
        if (i == nsl || sl[i].kind == BA_SLICE_ELLIPSIS)
            continue;
        if (sl[i].kind == BA_SLICE_NEWAXIS) {
            if (nout == BA_MAX_DIMS)
                goto too_many_dims;
            tmp_shape[nout] = 1;
            tmp_strides[nout++] = 0;
            continue;
        }
        int64_t len = shape[axis], stride = strides[axis];
        if (sl[i].kind == BA_SLICE_INDEX) {
            int64_t idx = sl[i].start;
            if (idx == BA_SLICE_NONE)
                return ba_error_set(BA_EINVAL, "slice item %d: an index needs a value", i);
            if (idx < 0)
                idx += len;
            if (idx < 0 || idx >= len)
                return ba_error_set(BA_ERANGE,
                                    "index %lld is out of bounds for axis %d with size %lld",
                                    (long long)sl[i].start, axis, (long long)len);
            if (offset_add(&off, idx, stride))
                goto overflow;
            axis++;
            continue;
        }
        int64_t first = 0, count = 0, step = 1;
        int rc = range_adjust(&sl[i], len, &first, &count, &step);
        if (rc)
            return rc;
        if (nout == BA_MAX_DIMS)
            goto too_many_dims;
        /* numpy: an empty range gets step 1 (its stride is the source's). */
        int64_t st = stride;
        if (count == 0)
            empty = 1;
        else if (offset_add(&off, first, stride))
            goto overflow;
        if (count > 0 && __builtin_mul_overflow(stride, step, &st))
            st = 0; /* only possible when count == 1, where the stride is never used */
        tmp_shape[nout] = count;
        tmp_strides[nout++] = st;
        axis++;
    }
    /* An axis of length 0 taken whole (not only a range that selects nothing) makes
     * the result empty too. */
    for (int k = 0; k < nout; k++)
        if (tmp_shape[k] == 0)
            empty = 1;
    *offset = empty ? 0 : off;
    *ndim_out = nout;
    memcpy(shape_out, tmp_shape, (size_t)nout * sizeof *shape_out);
    memcpy(strides_out, tmp_strides, (size_t)nout * sizeof *strides_out);
    return 0;

too_many_dims:
    return ba_error_set(BA_EINVAL, "the result would have more than %d dimensions", BA_MAX_DIMS);
overflow:
    return ba_error_set(BA_EINVAL, "the layout's byte offsets overflow 64 bits");
}
