/* SPDX-License-Identifier: MIT */
/*
 * Memory the pager needs in fault context, where malloc is forbidden (the faulting
 * thread may have been interrupted anywhere, and a load must not allocate either):
 * a slab of fixed-size objects (blocks, block-mapping records), growable u64 arrays
 * (free frame and spill slot stacks), and the per-file block index (a chained hash
 * table). All of it is built from mmap/mremap, which are plain system calls and safe
 * in a synchronous signal handler. Callers hold the pager lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pager_internal.h"

#ifdef PAGER_TSAN
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
#endif

#define SLAB_CHUNK (64u << 10)
#define INDEX_MIN  64u

void *pager_mmap_view(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
#ifdef PAGER_TSAN
    /* With the thread ignoring accesses, TSan's interceptor resets the range's shadow
     * (releasing it, and the range's access history) instead of imitating a write. */
    __tsan_ignore_thread_begin();
    void *r = mmap(addr, len, prot, flags, fd, off);
    int e = errno;
    __tsan_ignore_thread_end();
    errno = e;
    return r;
#else
    return mmap(addr, len, prot, flags, fd, off);
#endif
}

static void *mem_map(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* ---- slab ------------------------------------------------------------------------------- */

void slab_init(struct pager_slab *s, size_t objsize)
{
    memset(s, 0, sizeof *s);
    s->objsize = (objsize + 15) & ~(size_t)15;
}

void *slab_alloc(struct pager_slab *s)
{
    if (!s->free) {
        char *c = mem_map(SLAB_CHUNK);
        if (!c)
            return NULL;
        /* The chunk's first slot links the chunk list; the rest go on the free list. */
        *(void **)c = s->chunks;
        s->chunks = c;
        for (size_t off = s->objsize; off + s->objsize <= SLAB_CHUNK; off += s->objsize) {
            *(void **)(c + off) = s->free;
            s->free = c + off;
        }
    }
    void *p = s->free;
    s->free = *(void **)p;
    memset(p, 0, s->objsize);
    s->nused++;
    return p;
}

void slab_free(struct pager_slab *s, void *p)
{
    if (!p)
        return;
    *(void **)p = s->free;
    s->free = p;
    s->nused--;
}

void slab_destroy(struct pager_slab *s)
{
    void *c = s->chunks;
    while (c) {
        void *next = *(void **)c;
        munmap(c, SLAB_CHUNK);
        c = next;
    }
    memset(s, 0, sizeof *s);
}

/* ---- vectors ----------------------------------------------------------------------------- */

/* Grow v's capacity to at least total entries. */
int vec_reserve(struct pager_vec *v, size_t total)
{
    if (total <= v->cap)
        return 0;
    size_t ncap = v->cap ? v->cap : 512;
    while (ncap < total)
        ncap *= 2;
    void *p;
    if (!v->v)
        p = mem_map(ncap * sizeof *v->v);
    else {
        p = mremap(v->v, v->cap * sizeof *v->v, ncap * sizeof *v->v, MREMAP_MAYMOVE);
        if (p == MAP_FAILED)
            p = NULL;
    }
    if (!p)
        return -ENOMEM;
    v->v = p;
    v->cap = ncap;
    return 0;
}

int vec_push(struct pager_vec *v, uint64_t x)
{
    if (v->n == v->cap && vec_reserve(v, v->cap + 1))
        return -ENOMEM;
    v->v[v->n++] = x;
    return 0;
}

int vec_pop(struct pager_vec *v, uint64_t *x)
{
    if (!v->n)
        return -ENOENT;
    *x = v->v[--v->n];
    return 0;
}

void vec_destroy(struct pager_vec *v)
{
    if (v->v)
        munmap(v->v, v->cap * sizeof *v->v);
    memset(v, 0, sizeof *v);
}

/* ---- the block index ------------------------------------------------------------------- */

static uint64_t index_hash(uint64_t blkno)
{
    blkno ^= blkno >> 33;
    blkno *= 0xff51afd7ed558ccdull;
    blkno ^= blkno >> 33;
    return blkno;
}

struct pager_block *index_get(const struct pager_file *f, uint64_t blkno)
{
    if (!f->nbuckets)
        return NULL;
    struct pager_block *b = f->buckets[index_hash(blkno) & (f->nbuckets - 1)];
    while (b && b->blkno != blkno)
        b = b->hnext;
    return b;
}

/* Rehash into twice the buckets; on failure keep the old table (longer chains). */
static void index_grow(struct pager_file *f)
{
    uint64_t nn = f->nbuckets ? f->nbuckets * 2 : INDEX_MIN;
    struct pager_block **nb = mem_map(nn * sizeof *nb);
    if (!nb)
        return;
    for (uint64_t i = 0; i < f->nbuckets; i++) {
        struct pager_block *b = f->buckets[i];
        while (b) {
            struct pager_block *next = b->hnext;
            uint64_t h = index_hash(b->blkno) & (nn - 1);
            b->hnext = nb[h];
            nb[h] = b;
            b = next;
        }
    }
    if (f->buckets)
        munmap(f->buckets, f->nbuckets * sizeof *f->buckets);
    f->buckets = nb;
    f->nbuckets = nn;
}

int index_add(struct pager_file *f, struct pager_block *b)
{
    if (f->nblocks >= f->nbuckets)
        index_grow(f);
    if (!f->nbuckets)
        return -ENOMEM;
    uint64_t h = index_hash(b->blkno) & (f->nbuckets - 1);
    b->hnext = f->buckets[h];
    f->buckets[h] = b;
    f->nblocks++;
    return 0;
}

void index_del(struct pager_file *f, struct pager_block *b)
{
    struct pager_block **pp = &f->buckets[index_hash(b->blkno) & (f->nbuckets - 1)];
    while (*pp != b)
        pp = &(*pp)->hnext;
    *pp = b->hnext;
    b->hnext = NULL;
    f->nblocks--;
}

static int blk_cmp(const void *a, const void *b)
{
    const struct pager_block *x = *(struct pager_block *const *)a;
    const struct pager_block *y = *(struct pager_block *const *)b;
    return x->blkno < y->blkno ? -1 : x->blkno > y->blkno;
}

long index_collect(const struct pager_file *f, int (*keep)(const struct pager_block *b),
                   struct pager_block ***out)
{
    *out = NULL;
    uint64_t n = 0;
    for (uint64_t i = 0; i < f->nbuckets; i++)
        for (struct pager_block *b = f->buckets[i]; b; b = b->hnext)
            n += keep(b) != 0;
    if (!n)
        return 0;
    struct pager_block **arr = ba_malloc(n * sizeof *arr);
    if (!arr)
        return -ENOMEM;
    long k = 0;
    for (uint64_t i = 0; i < f->nbuckets; i++)
        for (struct pager_block *b = f->buckets[i]; b; b = b->hnext)
            if (keep(b))
                arr[k++] = b;
    qsort(arr, (size_t)k, sizeof *arr, blk_cmp);
    *out = arr;
    return k;
}

void index_foreach(struct pager_file *f, uint64_t first, uint64_t n,
                   void (*fn)(struct pager_block *b, void *arg), void *arg)
{
    uint64_t end = (n > UINT64_MAX - first) ? UINT64_MAX : first + n;
    if (n <= f->nblocks) {
        for (uint64_t i = first; i < end; i++) {
            struct pager_block *b = index_get(f, i);
            if (b)
                fn(b, arg);
        }
        return;
    }
    for (uint64_t i = 0; i < f->nbuckets; i++) {
        struct pager_block *b = f->buckets[i], *next;
        for (; b; b = next) {
            next = b->hnext; /* fn may free b */
            if (b->blkno >= first && b->blkno < end)
                fn(b, arg);
        }
    }
}

void index_destroy(struct pager_file *f)
{
    if (f->buckets)
        munmap(f->buckets, f->nbuckets * sizeof *f->buckets);
    f->buckets = NULL;
    f->nbuckets = f->nblocks = 0;
}
