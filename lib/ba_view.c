/* SPDX-License-Identifier: MIT */
/*
 * Views: a slice of an array as a plain strided ndarray (pointer, shape, byte
 * strides, dtype) over a pager mapping of just the blocks the slice's elements lie in.
 * The mapping (struct ba_mapping) is reference counted: the view holds one
 * reference, every DLPack tensor exported from it another; the mapping holds its
 * array object, which keeps the session and database alive. Also preload (load a
 * view's blocks and return the error code instead of taking SIGBUS later) and release.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ba_internal.h"

/* Where empty views point: data is never NULL. */
static char empty_view_byte;

/* Number of slice items ba_array_view_text() accepts. */
#define VIEW_TEXT_MAX_ITEMS (2 * BA_MAX_DIMS)

void mapping_ref(struct ba_mapping *m)
{
    __atomic_add_fetch(&m->nref, 1, __ATOMIC_RELAXED);
}

void mapping_unref(struct ba_mapping *m)
{
    if (!m || __atomic_sub_fetch(&m->nref, 1, __ATOMIC_ACQ_REL))
        return;
    struct ba_array *a = m->arr;
    struct ba_session *s = a->s;
    if (m->pm)
        pager_unmap(m->pm);
    free(m);
    /* The object stays in the session's list; the session frees it at a boundary. */
    __atomic_sub_fetch(&a->nref, 1, __ATOMIC_RELEASE);
    session_unref(s);
}

/* The byte range [lo, hi) relative to the first element that the view's elements
 * cover; 0, 0 when it has none. */
static void view_extent(int ndim, const int64_t *shape, const int64_t *strides, uint32_t itemsize,
                        int64_t *lo, int64_t *hi)
{
    *lo = 0;
    *hi = itemsize;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0) {
            *lo = *hi = 0;
            return;
        }
        int64_t span = (shape[i] - 1) * strides[i];
        if (span < 0)
            *lo += span;
        else
            *hi += span;
    }
}

BA_API int ba_array_view(ba_array *a, const ba_slice *sl, int nsl, unsigned flags, ba_view *out)
{
    if (!a || !out || (nsl && !sl))
        return ba_error_set(BA_EINVAL, "ba_array_view: NULL argument");
    memset(out, 0, sizeof *out);
    if (flags & ~BA_VIEW_READONLY)
        return ba_error_set(BA_EINVAL, "ba_array_view: unknown flags 0x%x", flags);
    int rc = array_check(a, 0);
    if (rc)
        return rc;
    int nd = (int)a->sa.ndim;
    int64_t strides[BA_MAX_DIMS], offset;
    layout_strides(a->sa.order, a->sa.itemsize, nd, a->sa.shape, strides);
    ba_view v;
    memset(&v, 0, sizeof v);
    rc = ba_slice_apply(nd, a->sa.shape, strides, sl, nsl, &offset, &v.ndim, v.shape, v.strides);
    if (rc)
        return array_error(a, rc, "bad slice");
    v.dtype = a->dtype;
    struct ba_mapping *m = ba_calloc(1, sizeof *m);
    if (!m)
        return ba_error_set(-ENOMEM, "array '%s': out of memory for a view", a->sa.name);
    m->nref = 1;
    m->arr = a;
    int64_t lo, hi;
    view_extent(v.ndim, v.shape, v.strides, a->sa.itemsize, &lo, &hi);
    if (hi == lo) {
        v.data = &empty_view_byte;
    } else {
        uint32_t bs = a->sa.block_size;
        uint64_t first = (uint64_t)(offset + lo) / bs;
        uint64_t last = (uint64_t)(offset + hi - 1) / bs;
        rc = pager_map(a->pf, first, last - first + 1,
                       (flags & BA_VIEW_READONLY) ? PAGER_MAP_READONLY : 0, &m->pm);
        if (rc) {
            free(m);
            return array_error(a, rc, "a view of blocks %llu..%llu (%llu bytes of address space)",
                               (unsigned long long)first, (unsigned long long)last,
                               (unsigned long long)((last - first + 1) * bs));
        }
        v.data = (char *)pager_mapping_addr(m->pm) + (uint64_t)offset - first * bs;
    }
    m->readonly = (flags & BA_VIEW_READONLY) != 0;
    __atomic_add_fetch(&a->nref, 1, __ATOMIC_RELAXED);
    session_ref(a->s);
    v.mapping = m;
    *out = v;
    return 0;
}

BA_API int ba_array_view_text(ba_array *a, const char *slices, unsigned flags, ba_view *out)
{
    if (!a || !out)
        return ba_error_set(BA_EINVAL, "ba_array_view_text: NULL argument");
    memset(out, 0, sizeof *out);
    ba_slice sl[VIEW_TEXT_MAX_ITEMS];
    int n;
    int rc = ba_slice_parse(slices ? slices : "", sl, VIEW_TEXT_MAX_ITEMS, &n);
    if (rc)
        return array_error(a, rc, "bad slice text");
    return ba_array_view(a, sl, n, flags, out);
}

BA_API int ba_view_preload(const ba_view *v, unsigned flags)
{
    if (!v || !v->mapping)
        return ba_error_set(BA_EINVAL, "ba_view_preload: no view (or a released one)");
    if (flags & ~BA_PRELOAD_WRITE)
        return ba_error_set(BA_EINVAL, "ba_view_preload: unknown flags 0x%x", flags);
    struct ba_mapping *m = v->mapping;
    if ((flags & BA_PRELOAD_WRITE) && m->readonly)
        return ba_error_set(BA_EINVAL, "array '%s': BA_PRELOAD_WRITE on a read-only view",
                            m->arr->sa.name);
    int64_t lo, hi;
    view_extent(v->ndim, v->shape, v->strides, v->dtype.itemsize, &lo, &hi);
    if (!m->pm || hi == lo)
        return 0;
    const char *base = pager_mapping_addr(m->pm);
    size_t off = (size_t)((const char *)v->data + lo - base);
    int rc = pager_prefault(m->pm, off, (size_t)(hi - lo),
                            (flags & BA_PRELOAD_WRITE) ? PAGER_PREFAULT_WRITE : 0);
    if (rc)
        return array_error(m->arr, rc, "preload");
    return 0;
}

BA_API void ba_view_release(ba_view *v)
{
    if (!v || !v->mapping)
        return;
    mapping_unref(v->mapping);
    v->mapping = NULL;
}

BA_API uint64_t ba_view_size(const ba_view *v)
{
    uint64_t n = 1;
    for (int i = 0; i < v->ndim; i++)
        n *= (uint64_t)v->shape[i];
    return n;
}
