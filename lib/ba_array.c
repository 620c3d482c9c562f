/* SPDX-License-Identifier: MIT */
/*
 * Arrays: create, open, close, drop, copy, list, info, resize and append, within a
 * session. An array object exists once per (session, array) and is shared by every
 * handle of that name in the session; it owns the pager file through which all its
 * views see the array's bytes. Metadata edits (create, copy, drop) go to the
 * session's log, shape changes to the object; ba_session.c writes both at commit.
 *
 * Bytes past the end. The array's bytes are one linear byte space; its shape says
 * where it ends. A shrink must never let old bytes reappear when the array grows
 * again, in the same transaction or later, so a shrink
 *   - zeroes the bytes past the new end in the tail block (through a mapping, only
 *     when they are not zero already), and
 *   - records the cut: blocks at or past ceil(end / block_size) load as zeros from
 *     now on (without reading the store), and their cached copies are dropped. The
 *     commit turns the stored blocks past the cut into tombstones.
 * Growing needs nothing: bytes past the end are zero by the above, and the commit
 * never stores a byte past the end (see ba_session.c).
 *
 * Append writes the new bytes through a temporary mapping, in chunks that fit the
 * RAM budget, each chunk preloaded writable first so that a load error comes back as
 * a code instead of a SIGBUS. The shape changes only when every byte is in; on an
 * error the bytes written past the old end are zeroed again and the array is as it
 * was.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ba_internal.h"

#define APPEND_CHUNK_MAX (64u << 20)
#define BLOCK_SIZE_MAX   (1u << 30)

/* Blocks of STORE_LOCATE_MIN and more may be stored raw and page-aligned: those arrays
 * try zero-copy first; smaller ones never could. */
static const struct pager_ops array_pager_ops = {.load = session_load,
                                                 .locate = session_locate,
                                                 .verify = session_verify,
                                                 .verify_piece = session_verify_piece};
static const struct pager_ops array_pager_ops_small = {.load = session_load};

/* ---- helpers ------------------------------------------------------------------------ */

int mem_is_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n && ((uintptr_t)c & 7)) {
        if (*c++)
            return 0;
        n--;
    }
    const uint64_t *w = (const uint64_t *)(const void *)c;
    for (; n >= 64; n -= 64, w += 8)
        if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])
            return 0;
    for (; n >= 8; n -= 8)
        if (*w++)
            return 0;
    c = (const unsigned char *)w;
    while (n--)
        if (*c++)
            return 0;
    return 1;
}

int64_t layout_nbytes(uint32_t itemsize, int ndim, const int64_t *shape)
{
    /* As numpy: the nonzero extents must multiply to at most 2^63 - 1 bytes even when
     * another extent is 0, since the strides (where a 0 extent counts as 1) must fit
     * in int64. */
    int64_t n = itemsize, strides_span = itemsize;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return -1;
        if (__builtin_mul_overflow(strides_span, shape[i] ? shape[i] : 1, &strides_span))
            return -1;
        n *= shape[i]; /* <= strides_span: cannot overflow */
    }
    return n;
}

void layout_strides(char order, uint32_t itemsize, int ndim, const int64_t *shape, int64_t *strides)
{
    int64_t st = itemsize;
    for (int k = 0; k < ndim; k++) {
        int i = order == 'F' ? k : ndim - 1 - k;
        strides[i] = st;
        if (shape[i])
            st *= shape[i];
    }
}

uint64_t array_nbytes(const struct ba_array *a)
{
    return (uint64_t)layout_nbytes(a->sa.itemsize, (int)a->sa.ndim, a->sa.shape);
}

int array_error(const struct ba_array *a, int code, const char *fmt, ...)
{
    char what[256], lower[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    /* Keep the lower layer's message when it explained this very code. */
    ba_error_pass(code, "%s", ba_strerror(code));
    snprintf(lower, sizeof lower, "%s", ba_error_msg());
    return ba_error_set(code, "array '%s': %s: %s", a->sa.name, what, lower);
}

int array_is_dirty(struct ba_array *a)
{
    return (a->state & (ARR_NEW | ARR_COPY | ARR_DROPPED)) || a->meta_dirty ||
           a->ld_cut != BA_NO_CUT || pager_file_dirty_count(a->pf) > 0;
}

int array_check(struct ba_array *a, int writing)
{
    if (a->state & (ARR_STALE | ARR_DROPPED))
        return ba_error_set(BA_ESTALE, "array '%s' was dropped (or its creation aborted)",
                            a->sa.name);
    return session_check(a->s, writing);
}

static int name_check(const char *name)
{
    if (!name)
        return ba_error_set(BA_EINVAL, "array name is NULL");
    size_t n = strlen(name);
    if (n == 0 || n > BA_NAME_MAX)
        return ba_error_set(BA_EINVAL, "array name must be 1 to %d bytes (got %zu)", BA_NAME_MAX,
                            n);
    return 0;
}

static void shape_text(const int64_t *shape, int ndim, char *buf, size_t len)
{
    size_t o = (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (o < len)
        snprintf(buf + o, len - o, ndim == 1 ? ",)" : ")");
}

/* ---- objects -------------------------------------------------------------------------- */

/* Make an array object in s for record rec (caller holds s->mu) and link it. */
static int array_new(struct ba_session *s, const struct store_array *rec, unsigned state,
                     struct ba_array **out)
{
    struct ba_array *a = ba_calloc(1, sizeof *a);
    if (!a)
        return ba_error_set(-ENOMEM, "array '%s': out of memory", rec->name);
    a->s = s;
    a->state = state;
    a->sa = *rec;
    a->base = *rec;
    a->ld_rd = *rec;
    a->ld_cut = BA_NO_CUT;
    a->ld_zero = (state & ARR_NEW) != 0;
    int rc = ba_dtype_parse(rec->dtype, &a->dtype);
    if (rc || a->dtype.itemsize != rec->itemsize || rec->ndim < 1 || rec->ndim > BA_MAX_DIMS ||
        layout_nbytes(rec->itemsize, (int)rec->ndim, rec->shape) < 0 ||
        !ba_is_pow2(rec->block_size) || (rec->order != 'C' && rec->order != 'F')) {
        free(a);
        return ba_error_set(BA_ECORRUPT, "array '%s': its catalog record is invalid", rec->name);
    }
    rc = pager_file_open(
        s->db->pager, rec->block_size,
        rec->block_size >= STORE_LOCATE_MIN ? &array_pager_ops : &array_pager_ops_small, a, &a->pf);
    if (rc) {
        free(a);
        return ba_error_pass(rc, "array '%s': cannot open a pager file: %s", rec->name,
                             ba_strerror(rc));
    }
    a->next = s->arrays;
    s->arrays = a;
    *out = a;
    return 0;
}

void array_destroy(struct ba_array *a)
{
    pager_file_close(a->pf);
    free(a);
}

/* Give the caller a handle: one reference on the object and one on the session. */
static struct ba_array *array_handle(struct ba_array *a)
{
    __atomic_add_fetch(&a->nref, 1, __ATOMIC_RELAXED);
    session_ref(a->s);
    return a;
}

/* The live (not dropped, not stale) object of that name (caller holds s->mu). */
static struct ba_array *array_find(struct ba_session *s, const char *name)
{
    for (struct ba_array *a = s->arrays; a; a = a->next)
        if (!(a->state & (ARR_DROPPED | ARR_STALE)) && !strcmp(a->sa.name, name))
            return a;
    return NULL;
}

/* Nonzero when the session dropped the array of that id (caller holds s->mu). */
static int array_dropped_here(struct ba_session *s, uint64_t id)
{
    for (struct ba_array *a = s->arrays; a; a = a->next)
        if ((a->state & ARR_DROPPED) && a->sa.id == id)
            return 1;
    return 0;
}

/* Look name up as the session sees it: its own objects, then the snapshot. Returns 0
 * with *obj set (an object exists) or *rec filled (only in the snapshot), or
 * BA_ENOTFOUND (message set), BA_ECORRUPT. Caller holds s->mu. */
static int array_lookup(struct ba_session *s, const char *name, struct ba_array **obj,
                        struct store_array *rec)
{
    *obj = array_find(s, name);
    if (*obj)
        return 0;
    int rc = store_array_by_name(s->cur->snap, name, rec);
    if (rc == 0 && array_dropped_here(s, rec->id))
        rc = BA_ENOTFOUND;
    if (rc == BA_ENOTFOUND)
        return ba_error_set(BA_ENOTFOUND, "no array '%s' in snapshot %llu of '%s'", name,
                            (unsigned long long)s->seq, s->db->path);
    if (rc)
        return ba_error_pass(rc, "array '%s': cannot read its record: %s", name, ba_strerror(rc));
    return 0;
}

/* Validate a spec and fill a catalog record from it. */
static int spec_to_record(const char *name, const ba_array_spec *in, struct store_array *rec)
{
    ba_array_spec sp;
    ba_array_spec_init(&sp);
    if (!in || in->size < offsetof(ba_array_spec, shape))
        return ba_error_set(BA_EINVAL,
                            "array '%s': spec missing or its size field unset "
                            "(call ba_array_spec_init())",
                            name);
    memcpy(&sp, in, in->size < sizeof sp ? in->size : sizeof sp);
    int rc = dtype_check(&sp.dtype);
    if (rc) {
        char why[400];
        snprintf(why, sizeof why, "%s", ba_error_msg());
        return ba_error_set(rc, "array '%s': %s", name, why);
    }
    if (sp.ndim < 1 || sp.ndim > BA_MAX_DIMS)
        return ba_error_set(BA_ESHAPE, "array '%s': ndim must be 1..%d (got %d)", name, BA_MAX_DIMS,
                            sp.ndim);
    for (int i = 0; i < sp.ndim; i++)
        if (sp.shape[i] < 0)
            return ba_error_set(BA_ESHAPE, "array '%s': dimension %d is negative (%lld)", name, i,
                                (long long)sp.shape[i]);
    if (layout_nbytes(sp.dtype.itemsize, sp.ndim, sp.shape) < 0)
        return ba_error_set(BA_ETOOBIG, "array '%s': the shape holds more than 2^63 bytes", name);
    if (sp.order != 'C' && sp.order != 'F')
        return ba_error_set(BA_EINVAL, "array '%s': order must be 'C' or 'F'", name);
    if (!sp.block_size)
        sp.block_size = BA_BLOCK_SIZE_DEFAULT;
    long page = sysconf(_SC_PAGESIZE);
    if (!ba_is_pow2(sp.block_size) || sp.block_size < (uint64_t)page ||
        sp.block_size > BLOCK_SIZE_MAX)
        return ba_error_set(BA_EINVAL,
                            "array '%s': block size %u must be a power of two between the page "
                            "size (%ld) and 1 GiB",
                            name, sp.block_size, page);
    if (sp.codec != BA_CODEC_NONE && sp.codec != BA_CODEC_ZSTD)
        return ba_error_set(BA_EINVAL, "array '%s': unknown codec %d", name, sp.codec);
    if (sp.codec == BA_CODEC_ZSTD && !sp.level)
        sp.level = 1;
    if (sp.codec == BA_CODEC_ZSTD && (sp.level < 1 || sp.level > 19))
        return ba_error_set(BA_EINVAL, "array '%s': zstd level must be 1..19 (got %d)", name,
                            sp.level);
    if (sp.filters & ~BA_FILTER_SHUFFLE)
        return ba_error_set(BA_EINVAL, "array '%s': unknown filter bits 0x%x", name, sp.filters);
    if (sp.filters && sp.codec != BA_CODEC_ZSTD)
        return ba_error_set(BA_EINVAL, "array '%s': the shuffle filter needs zstd", name);
    memset(rec, 0, sizeof *rec);
    snprintf(rec->name, sizeof rec->name, "%s", name);
    ba_dtype_format(&sp.dtype, rec->dtype);
    rec->itemsize = sp.dtype.itemsize;
    rec->ndim = (uint32_t)sp.ndim;
    memcpy(rec->shape, sp.shape, (size_t)sp.ndim * sizeof sp.shape[0]);
    rec->order = sp.order;
    rec->block_size = sp.block_size;
    rec->codec = (uint8_t)sp.codec;
    rec->level = sp.codec == BA_CODEC_ZSTD ? (uint8_t)sp.level : 0;
    rec->filters = (uint8_t)sp.filters;
    return 0;
}

/* ---- create, open, close, drop, copy, list -------------------------------------------- */

BA_API int ba_array_create(ba_session *s, const char *name, const ba_array_spec *spec,
                           ba_array **out)
{
    if (!s || !out)
        return ba_error_set(BA_EINVAL, "ba_array_create: NULL argument");
    *out = NULL;
    int rc = session_check(s, 1);
    if (rc || (rc = name_check(name)))
        return rc;
    struct store_array rec;
    if ((rc = spec_to_record(name, spec, &rec)))
        return rc;
    pthread_mutex_lock(&s->mu);
    struct ba_array *a;
    struct store_array old;
    rc = array_lookup(s, name, &a, &old);
    if (rc == 0) {
        rc = ba_error_set(BA_EEXIST, "array '%s' exists", name);
        goto out;
    }
    if (rc != BA_ENOTFOUND)
        goto out;
    if ((rc = array_new(s, &rec, ARR_NEW, &a)))
        goto out;
    if ((rc = session_log_op(s, META_CREATE, a))) {
        s->arrays = a->next;
        array_destroy(a);
        goto out;
    }
    *out = array_handle(a);
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

BA_API int ba_array_open(ba_session *s, const char *name, ba_array **out)
{
    if (!s || !out)
        return ba_error_set(BA_EINVAL, "ba_array_open: NULL argument");
    *out = NULL;
    int rc = session_check(s, 0);
    if (rc || (rc = name_check(name)))
        return rc;
    pthread_mutex_lock(&s->mu);
    struct ba_array *a;
    struct store_array rec;
    rc = array_lookup(s, name, &a, &rec);
    if (rc == 0 && !a)
        rc = array_new(s, &rec, 0, &a);
    if (rc == 0)
        *out = array_handle(a);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

BA_API void ba_array_close(ba_array *a)
{
    if (!a)
        return;
    struct ba_session *s = a->s;
    __atomic_sub_fetch(&a->nref, 1, __ATOMIC_RELEASE);
    session_unref(s);
}

BA_API int ba_array_drop(ba_session *s, const char *name)
{
    if (!s)
        return ba_error_set(BA_EINVAL, "ba_array_drop: NULL session");
    int rc = session_check(s, 1);
    if (rc || (rc = name_check(name)))
        return rc;
    pthread_mutex_lock(&s->mu);
    struct ba_array *a;
    struct store_array rec;
    rc = array_lookup(s, name, &a, &rec);
    if (rc == 0 && !a)
        rc = array_new(s, &rec, 0, &a);
    if (rc)
        goto out;
    if (a->state & (ARR_NEW | ARR_COPY)) {
        /* Never committed: forget it entirely. */
        session_unlog(s, a);
        pthread_mutex_lock(&s->load_mu);
        a->ld_zero = 1;
        pthread_mutex_unlock(&s->load_mu);
        a->state = ARR_STALE;
        pager_file_discard(a->pf, 0, UINT64_MAX);
        goto out;
    }
    if ((rc = session_log_op(s, META_DROP, a)))
        goto out;
    a->state |= ARR_DROPPED;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

BA_API int ba_array_copy(ba_session *s, const char *src, const char *dst)
{
    if (!s)
        return ba_error_set(BA_EINVAL, "ba_array_copy: NULL session");
    int rc = session_check(s, 1);
    if (rc || (rc = name_check(src)) || (rc = name_check(dst)))
        return rc;
    pthread_mutex_lock(&s->mu);
    struct ba_array *a, *d;
    struct store_array rec, tmp;
    if ((rc = array_lookup(s, src, &a, &rec)))
        goto out;
    if (a) {
        if (a->state & (ARR_NEW | ARR_COPY) || array_is_dirty(a)) {
            rc = ba_error_set(BA_EINVAL,
                              "cannot copy array '%s': it has uncommitted changes in this "
                              "session; commit them first",
                              src);
            goto out;
        }
        rec = a->base;
    }
    rc = array_lookup(s, dst, &d, &tmp);
    if (rc == 0) {
        rc = ba_error_set(BA_EEXIST, "cannot copy to '%s': an array of that name exists", dst);
        goto out;
    }
    if (rc != BA_ENOTFOUND)
        goto out;
    /* The copy reads the source's blocks until it is committed under its own id. */
    struct store_array drec = rec;
    snprintf(drec.name, sizeof drec.name, "%s", dst);
    if ((rc = array_new(s, &drec, ARR_COPY, &d)))
        goto out;
    d->sa.id = 0;
    d->sa.created_seq = d->sa.meta_seq = d->sa.data_seq = 0;
    d->base = rec; /* the source, for the commit's size hint and messages */
    d->copy_src = rec.id;
    if ((rc = session_log_op(s, META_COPY, d))) {
        s->arrays = d->next;
        array_destroy(d);
    }
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

struct name_vec {
    char **v;
    uint64_t *ids;
    size_t n, cap;
};

static int name_vec_push(struct name_vec *nv, const char *name, uint64_t id)
{
    if (nv->n == nv->cap) {
        size_t cap = nv->cap ? 2 * nv->cap : 32;
        char **v = ba_realloc(nv->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        nv->v = v;
        uint64_t *ids = ba_realloc(nv->ids, cap * sizeof *ids);
        if (!ids)
            return -ENOMEM;
        nv->ids = ids;
        nv->cap = cap;
    }
    if (!(nv->v[nv->n] = ba_strdup(name)))
        return -ENOMEM;
    nv->ids[nv->n++] = id;
    return 0;
}

static int list_collect(const struct store_array *a, void *ctx)
{
    return name_vec_push(ctx, a->name, a->id) ? 1 : 0;
}

static int name_cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

BA_API int ba_array_list(ba_session *s, int (*cb)(const char *name, void *ctx), void *ctx)
{
    if (!s || !cb)
        return ba_error_set(BA_EINVAL, "ba_array_list: NULL argument");
    int rc = session_check(s, 0);
    if (rc)
        return rc;
    struct name_vec nv = {0};
    pthread_mutex_lock(&s->mu);
    rc = store_array_list(s->cur->snap, list_collect, &nv);
    if (rc == 1)
        rc = ba_error_set(-ENOMEM, "ba_array_list: out of memory");
    else if (rc)
        rc = ba_error_pass(rc, "cannot list the arrays of '%s': %s", s->db->path, ba_strerror(rc));
    /* The session's view: minus what it dropped, plus what it created. */
    size_t j = 0;
    for (size_t i = 0; !rc && i < nv.n; i++) {
        if (array_dropped_here(s, nv.ids[i]))
            free(nv.v[i]);
        else
            nv.v[j++] = nv.v[i];
    }
    if (!rc)
        nv.n = j;
    for (struct ba_array *a = s->arrays; !rc && a; a = a->next)
        if ((a->state & (ARR_NEW | ARR_COPY)) && name_vec_push(&nv, a->sa.name, 0))
            rc = ba_error_set(-ENOMEM, "ba_array_list: out of memory");
    pthread_mutex_unlock(&s->mu);
    if (!rc && nv.n) {
        qsort(nv.v, nv.n, sizeof *nv.v, name_cmp);
        for (size_t i = 0; i < nv.n && !rc; i++)
            rc = cb(nv.v[i], ctx);
    }
    for (size_t i = 0; i < nv.n; i++)
        free(nv.v[i]);
    free(nv.v);
    free(nv.ids);
    return rc;
}

/* ---- info, stats ---------------------------------------------------------------------- */

BA_API int ba_array_info_get(ba_array *a, ba_array_info *info)
{
    if (!a || !info)
        return ba_error_set(BA_EINVAL, "ba_array_info_get: NULL argument");
    int rc = array_check(a, 0);
    if (rc)
        return rc;
    ba_array_info full;
    memset(&full, 0, sizeof full);
    full.size = sizeof full;
    full.name = a->sa.name;
    full.id = a->sa.id;
    full.dtype = a->dtype;
    full.ndim = (int)a->sa.ndim;
    memcpy(full.shape, a->sa.shape, sizeof full.shape);
    layout_strides(a->sa.order, a->sa.itemsize, full.ndim, full.shape, full.strides);
    full.order = a->sa.order;
    full.block_size = a->sa.block_size;
    full.codec = a->sa.codec;
    full.level = a->sa.level;
    full.filters = a->sa.filters;
    full.nbytes = array_nbytes(a);
    if (!(a->state & (ARR_NEW | ARR_COPY))) {
        full.stored_bytes = a->base.stored_bytes;
        full.stored_blocks = a->base.stored_blocks;
        full.created_seq = a->base.created_seq;
        full.changed_seq =
            a->base.meta_seq > a->base.data_seq ? a->base.meta_seq : a->base.data_seq;
    }
    full.dirty = array_is_dirty(a);
    return struct_copy_out(info, &full, sizeof full);
}

BA_API int ba_array_pager_stat(ba_array *a, ba_pager_stat *st)
{
    if (!a || !st)
        return ba_error_set(BA_EINVAL, "ba_array_pager_stat: NULL argument");
    ba_pager_stat full;
    memset(&full, 0, sizeof full);
    full.size = sizeof full;
    pager_file_stat_get(a->pf, &full);
    return struct_copy_out(st, &full, sizeof full);
}

/* ---- resize, append ------------------------------------------------------------------- */

/* Zero bytes [from, to) of the array, which lie in one block, through a temporary
 * mapping; a block already zero there is only read, never dirtied. */
static int array_zero_range(struct ba_array *a, uint64_t from, uint64_t to)
{
    uint32_t bs = a->sa.block_size;
    uint64_t blk = from / bs;
    size_t off = (size_t)(from - blk * bs), len = (size_t)(to - from);
    struct pager_mapping *m;
    int rc = pager_map(a->pf, blk, 1, 0, &m);
    if (rc)
        return array_error(a, rc, "cannot map block %llu", (unsigned long long)blk);
    if ((rc = pager_prefault(m, off, len, 0))) {
        rc = array_error(a, rc, "cannot load block %llu", (unsigned long long)blk);
        goto out;
    }
    char *p = (char *)pager_mapping_addr(m) + off;
    if (mem_is_zero(p, len))
        goto out;
    if ((rc = pager_prefault(m, off, len, PAGER_PREFAULT_WRITE))) {
        rc = array_error(a, rc, "cannot make block %llu writable", (unsigned long long)blk);
        goto out;
    }
    memset(p, 0, len);
out:
    pager_unmap(m);
    return rc;
}

static void array_set_shape(struct ba_array *a, const int64_t *shape)
{
    memcpy(a->sa.shape, shape, a->sa.ndim * sizeof *shape);
    a->meta_dirty = !(a->state & (ARR_NEW | ARR_COPY)) &&
                    memcmp(a->sa.shape, a->base.shape, a->sa.ndim * sizeof *shape);
}

BA_API int ba_array_resize(ba_array *a, int ndim, const int64_t *shape)
{
    if (!a || !shape)
        return ba_error_set(BA_EINVAL, "ba_array_resize: NULL argument");
    int rc = array_check(a, 1);
    if (rc)
        return rc;
    char buf[256];
    if (ndim != (int)a->sa.ndim)
        return ba_error_set(BA_ESHAPE, "array '%s': resize to %d dimensions; it has %u", a->sa.name,
                            ndim, a->sa.ndim);
    int64_t nb = layout_nbytes(a->sa.itemsize, ndim, shape);
    if (nb < 0) {
        shape_text(shape, ndim, buf, sizeof buf);
        for (int i = 0; i < ndim; i++)
            if (shape[i] < 0)
                return ba_error_set(BA_ESHAPE,
                                    "array '%s': cannot resize to %s: negative "
                                    "dimension",
                                    a->sa.name, buf);
        return ba_error_set(BA_ETOOBIG, "array '%s': cannot resize to %s: more than 2^63 bytes",
                            a->sa.name, buf);
    }
    uint64_t old = array_nbytes(a), nw = (uint64_t)nb;
    uint32_t bs = a->sa.block_size;
    if (nw < old) {
        uint64_t tail_end = (nw / bs + 1) * bs;
        if (nw % bs && (rc = array_zero_range(a, nw, old < tail_end ? old : tail_end)))
            return rc;
        uint64_t cut = blocks_for(nw, bs);
        if (cut < blocks_for(old, bs)) {
            if (cut < a->ld_cut)
                session_set_cut(a->s, a, cut);
            pager_file_discard(a->pf, cut, UINT64_MAX);
        }
    }
    array_set_shape(a, shape);
    return 0;
}

/* Undo a failed append's bytes past the old end (see the top comment), keeping the
 * append's error code and message. */
static void append_undo(struct ba_array *a, uint64_t old, uint64_t written_to, int code)
{
    uint32_t bs = a->sa.block_size;
    char keep[400];
    snprintf(keep, sizeof keep, "%s", ba_error_msg());
    if (written_to > old && old % bs) {
        uint64_t tail_end = (old / bs + 1) * bs;
        int rc = array_zero_range(a, old, written_to < tail_end ? written_to : tail_end);
        if (rc) {
            a->s->failed = BA_EFAILED;
            ba_error_set(code,
                         "%s (undoing the partial append failed too, so the session "
                         "must be aborted)",
                         keep);
            return;
        }
    }
    pager_file_discard(a->pf, blocks_for(old, bs), UINT64_MAX);
    ba_error_set(code, "%s", keep);
}

BA_API int ba_array_append(ba_array *a, const void *data, int ndim, const int64_t *shape,
                           const ba_dtype *dtype)
{
    if (!a || !shape)
        return ba_error_set(BA_EINVAL, "ba_array_append: NULL argument");
    int rc = array_check(a, 1);
    if (rc)
        return rc;
    char b1[BA_DTYPE_STRLEN], b2[BA_DTYPE_STRLEN], s1[256], s2[256];
    if (dtype && !ba_dtype_equal(dtype, &a->dtype))
        return ba_error_set(BA_EDTYPE, "array '%s': cannot append %s values to an array of %s",
                            a->sa.name, ba_dtype_format(dtype, b1), ba_dtype_format(&a->dtype, b2));
    int nd = (int)a->sa.ndim, major = a->sa.order == 'F' ? nd - 1 : 0;
    int64_t count = 1;
    int ok = ndim == nd || ndim == nd - 1;
    for (int i = 0, j = 0; ok && i < nd; i++) {
        if (ndim == nd - 1 && i == major)
            continue;
        if (ndim == nd && i == major) {
            count = shape[j++];
            ok = count >= 0;
            continue;
        }
        ok = shape[j++] == a->sa.shape[i];
    }
    if (!ok) {
        shape_text(shape, ndim > 0 ? ndim : 0, s1, sizeof s1);
        shape_text(a->sa.shape, nd, s2, sizeof s2);
        return ba_error_set(BA_ESHAPE,
                            "array '%s' of shape %s: cannot append values of shape %s (every "
                            "axis but axis %d must match)",
                            a->sa.name, s2, s1, major);
    }
    int64_t nshape[BA_MAX_DIMS] = {0};
    memcpy(nshape, a->sa.shape, (size_t)nd * sizeof *nshape);
    int64_t nb = -1;
    if (!__builtin_add_overflow(nshape[major], count, &nshape[major]))
        nb = layout_nbytes(a->sa.itemsize, nd, nshape);
    if (nb < 0)
        return ba_error_set(BA_ETOOBIG, "array '%s': appending %lld would exceed 2^63 bytes",
                            a->sa.name, (long long)count);
    uint64_t old = array_nbytes(a), nw = (uint64_t)nb;
    if (nw > old && !data)
        return ba_error_set(BA_EINVAL, "array '%s': append of %llu bytes from NULL", a->sa.name,
                            (unsigned long long)(nw - old));
    uint32_t bs = a->sa.block_size;
    uint64_t chunk = pager_ram_limit(a->s->db->pager) / 4;
    if (chunk > APPEND_CHUNK_MAX)
        chunk = APPEND_CHUNK_MAX;
    chunk = chunk / bs * bs;
    if (chunk < bs)
        chunk = bs;
    uint64_t off = old;
    while (off < nw) {
        uint64_t blk0 = off / bs;
        uint64_t end = (blk0 * bs + chunk < nw) ? blk0 * bs + chunk : nw;
        uint64_t nblk = blocks_for(end, bs) - blk0;
        size_t rel = (size_t)(off - blk0 * bs), len = (size_t)(end - off);
        struct pager_mapping *m;
        if ((rc = pager_map(a->pf, blk0, nblk, 0, &m))) {
            rc = array_error(a, rc, "append: cannot map blocks %llu..%llu",
                             (unsigned long long)blk0, (unsigned long long)(blk0 + nblk - 1));
            break;
        }
        if ((rc = pager_prefault(m, rel, len, PAGER_PREFAULT_WRITE))) {
            pager_unmap(m);
            rc = array_error(a, rc, "append: cannot load blocks %llu..%llu",
                             (unsigned long long)blk0, (unsigned long long)(blk0 + nblk - 1));
            break;
        }
        memcpy((char *)pager_mapping_addr(m) + rel, (const char *)data + (off - old), len);
        pager_unmap(m);
        off = end;
    }
    if (rc) {
        append_undo(a, old, off, rc);
        return rc;
    }
    array_set_shape(a, nshape);
    return 0;
}

BA_API int ba_array_fault_error(ba_array *a, int64_t *blkno)
{
    if (!a)
        return ba_error_set(BA_EINVAL, "ba_array_fault_error: NULL array");
    uint64_t blk = 0;
    int rc = pager_file_take_error(a->pf, &blk);
    if (blkno)
        *blkno = rc ? (int64_t)blk : -1;
    if (!rc)
        return 0;
    /* Fault context records only the code; the message is made here. */
    return ba_error_set(rc, "array '%s': a fault could not load block %llu (bytes %llu..%llu): %s",
                        a->sa.name, (unsigned long long)blk,
                        (unsigned long long)(blk * a->sa.block_size),
                        (unsigned long long)((blk + 1) * a->sa.block_size - 1), ba_strerror(rc));
}
