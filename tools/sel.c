/* SPDX-License-Identifier: MIT */
/* Selections walked chunk by chunk (see sel.h). */
#include <string.h>

#include "sel.h"

/* numpy's slice.indices(): normalise start:stop:step for an axis of length n into an
 * absolute start, the step and the number of indices. */
static void normalise(const ba_slice *sl, int64_t n, int64_t *start, int64_t *step, int64_t *len)
{
    int64_t st = sl->step == BA_SLICE_NONE ? 1 : sl->step;
    int64_t a, b;
    if (st > 0) {
        a = sl->start == BA_SLICE_NONE ? 0 : sl->start;
        b = sl->stop == BA_SLICE_NONE ? n : sl->stop;
        if (a < 0)
            a = a + n < 0 ? 0 : a + n;
        if (a > n)
            a = n;
        if (b < 0)
            b = b + n < 0 ? 0 : b + n;
        if (b > n)
            b = n;
        *len = b > a ? (b - a + st - 1) / st : 0;
    } else {
        a = sl->start == BA_SLICE_NONE ? n - 1 : sl->start;
        b = sl->stop == BA_SLICE_NONE ? -1 : sl->stop;
        if (sl->start != BA_SLICE_NONE && a < 0)
            a = a + n < 0 ? -1 : a + n;
        if (a > n - 1)
            a = n - 1;
        if (sl->stop != BA_SLICE_NONE && b < 0)
            b = b + n < 0 ? -1 : b + n;
        if (b > n - 1)
            b = n - 1;
        *len = a > b ? (a - b + (-st) - 1) / (-st) : 0;
    }
    *start = a;
    *step = st;
}

static ba_slice full_range(void)
{
    ba_slice s = {BA_SLICE_RANGE, BA_SLICE_NONE, BA_SLICE_NONE, BA_SLICE_NONE};
    return s;
}

int sel_init(struct sel *s, const ba_array_info *info, const char *text, char order,
             uint64_t chunk_bytes)
{
    memset(s, 0, sizeof *s);
    s->itemsize = info->dtype.itemsize;
    ba_slice user[SEL_MAX_ITEMS];
    int nuser = 0;
    if (text && *text) {
        int rc = ba_slice_parse(text, user, SEL_MAX_ITEMS, &nuser);
        if (rc)
            return rc;
    }
    /* The library decides validity and the selection's shape. */
    int64_t off;
    int rc = ba_slice_apply(info->ndim, info->shape, info->strides, user, nuser, &off, &s->ndim,
                            s->shape, (int64_t[BA_MAX_DIMS]){0});
    if (rc)
        return rc;

    /* Make the slice explicit: expand the ellipsis, name every axis, then give every
     * index and range absolute, normalised numbers. */
    int named = 0;
    for (int i = 0; i < nuser; i++)
        if (user[i].kind == BA_SLICE_RANGE || user[i].kind == BA_SLICE_INDEX)
            named++;
    for (int i = 0; i < nuser; i++) {
        if (user[i].kind == BA_SLICE_ELLIPSIS) {
            for (int k = 0; k < info->ndim - named; k++)
                s->items[s->nitems++] = full_range();
            named = info->ndim; /* a second ellipsis was refused above */
            continue;
        }
        s->items[s->nitems++] = user[i];
    }
    int axis = 0;
    for (int i = 0; i < s->nitems; i++)
        if (s->items[i].kind == BA_SLICE_RANGE || s->items[i].kind == BA_SLICE_INDEX)
            axis++;
    for (; axis < info->ndim; axis++)
        s->items[s->nitems++] = full_range();
    axis = 0; /* array axis the next item applies to */
    for (int i = 0; i < s->nitems; i++) {
        ba_slice *it = &s->items[i];
        if (it->kind == BA_SLICE_INDEX) {
            if (it->start < 0)
                it->start += info->shape[axis];
            axis++;
        } else if (it->kind == BA_SLICE_RANGE) {
            int64_t st, step, len;
            normalise(it, info->shape[axis], &st, &step, &len);
            it->start = st;
            it->step = step;
            it->stop = st + len * step;
            if (it->stop < 0)
                it->stop = BA_SLICE_NONE; /* a negative step running through index 0 */
            axis++;
        }
    }

    s->nelems = 1;
    for (int d = 0; d < s->ndim; d++)
        s->nelems *= (uint64_t)s->shape[d];
    s->nbytes = s->nelems * s->itemsize;
    s->item = -1;
    s->axis = s->ndim == 0 ? -1 : order == 'F' ? s->ndim - 1 : 0;
    s->per_chunk = 1;
    if (s->axis < 0)
        return 0;

    /* Find the item that produces the chunk axis. */
    int rax = 0;
    for (int i = 0; i < s->nitems; i++) {
        if (s->items[i].kind == BA_SLICE_INDEX)
            continue;
        if (rax++ == s->axis) {
            s->item = i;
            break;
        }
    }
    int64_t len = s->shape[s->axis];
    if (s->items[s->item].kind == BA_SLICE_RANGE) {
        s->start = s->items[s->item].start;
        s->step = s->items[s->item].step;
    } else { /* newaxis: one index */
        s->start = 0;
        s->step = 1;
    }
    uint64_t slab = len ? s->nbytes / (uint64_t)len : 0;
    if (slab && chunk_bytes > slab)
        s->per_chunk = (int64_t)(chunk_bytes / slab);
    if (s->per_chunk > len && len > 0)
        s->per_chunk = len;
    return 0;
}

int64_t sel_nchunks(const struct sel *s)
{
    if (s->nelems == 0)
        return 0;
    if (s->axis < 0)
        return 1;
    int64_t len = s->shape[s->axis];
    return (len + s->per_chunk - 1) / s->per_chunk;
}

int sel_view(const struct sel *s, ba_array *a, int64_t k, unsigned flags, ba_view *out)
{
    ba_slice items[SEL_MAX_ITEMS];
    memcpy(items, s->items, sizeof items);
    int64_t i0 = 0, i1 = 1;
    if (s->axis >= 0) {
        int64_t len = s->shape[s->axis];
        i0 = k * s->per_chunk;
        i1 = i0 + s->per_chunk < len ? i0 + s->per_chunk : len;
        ba_slice *it = &items[s->item];
        if (it->kind == BA_SLICE_RANGE) {
            it->start = s->start + i0 * s->step;
            it->stop = s->start + i1 * s->step;
            if (it->stop < 0)
                it->stop = BA_SLICE_NONE;
        }
    }
    int rc = ba_array_view(a, items, s->nitems, flags, out);
    if (rc)
        return rc;
    int ok = out->ndim == s->ndim;
    for (int d = 0; ok && d < s->ndim; d++)
        ok = out->shape[d] == (d == s->axis ? i1 - i0 : s->shape[d]);
    if (!ok) {
        ba_view_release(out);
        return BA_ESHAPE;
    }
    return 0;
}

int sel_walk(const ba_view *v, char order, sel_run_fn fn, void *ctx)
{
    /* Axes in walk order, slowest first, with contiguous neighbours merged and
     * length-1 axes dropped. */
    int n = 0;
    int64_t shape[BA_MAX_DIMS + 1], stride[BA_MAX_DIMS + 1];
    for (int k = 0; k < v->ndim; k++) {
        int d = order == 'F' ? v->ndim - 1 - k : k;
        if (v->shape[d] == 0)
            return 0;
        if (v->shape[d] == 1)
            continue;
        if (n > 0 && stride[n - 1] == v->shape[d] * v->strides[d]) {
            shape[n - 1] *= v->shape[d];
            stride[n - 1] = v->strides[d];
            continue;
        }
        shape[n] = v->shape[d];
        stride[n] = v->strides[d];
        n++;
    }
    if (n == 0) {
        shape[0] = 1;
        stride[0] = (int64_t)v->dtype.itemsize;
        n = 1;
    }
    int64_t idx[BA_MAX_DIMS + 1] = {0};
    unsigned char *base = v->data;
    for (;;) {
        unsigned char *p = base;
        for (int d = 0; d < n - 1; d++)
            p += idx[d] * stride[d];
        int rc = fn(ctx, p, stride[n - 1], shape[n - 1]);
        if (rc)
            return rc;
        int d = n - 2;
        for (; d >= 0; d--) {
            if (++idx[d] < shape[d])
                break;
            idx[d] = 0;
        }
        if (d < 0)
            return 0;
    }
}

int sel_view_contiguous(const ba_view *v, char order)
{
    int64_t expect = (int64_t)v->dtype.itemsize;
    for (int k = 0; k < v->ndim; k++) {
        int d = order == 'F' ? k : v->ndim - 1 - k;
        if (v->shape[d] == 0)
            return 1;
        if (v->shape[d] != 1 && v->strides[d] != expect)
            return 0;
        expect *= v->shape[d];
    }
    return 1;
}
