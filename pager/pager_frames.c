/* SPDX-License-Identifier: MIT */
/*
 * RAM pools and the moves of frames between home and the mappings.
 *
 * A pool holds the frames of one block size in a memfd, mapped twice with
 * MADV_DONTFORK: "home" (read-only), where every frame's page table entries rest
 * while its block is not mapped, and the "load alias" (read-write), through which
 * ops.load and spill I/O write and read a frame whatever its location. A frame is
 * populated once, with writes in both mappings, so that its entries are present and
 * dirty: the kernel then makes them writable at an mprotect() without one write fault
 * per page, and a load into it touches no fresh memory (the measured costs are in
 * docs/architecture.md).
 *
 * Mapping a block moves the frame's entries from home into the mapping with one
 * mremap(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP): the hole there is replaced
 * atomically and the home range stays mapped (without entries), so neither side is
 * ever a gap another thread's mmap could take. A block already away gets an ordinary
 * shared mmap of its frame in any further mapping (an alias: one copy in RAM).
 * Unmapping moves the entries home the same way and turns the range back into a hole.
 * Kernels without MREMAP_DONTUNMAP for shared mappings (< 5.13) use a plain mremap and
 * re-map the vacated range at once; there a concurrent mmap elsewhere in the process
 * could race for the vacated range (documented limitation).
 *
 * All of this runs with the pager lock held, possibly in fault context: system calls
 * only, no allocation but the pager's slabs. The one exception is the population of
 * fresh frames (frames_fill), which drops the lock for its system calls.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pager_internal.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001u
#endif

#define POOL_SLACK_MIN 64u          /* frames of address space past the budget */
#define POOL_MAX_BYTES (1ull << 44) /* address space per pool mapping (16 TiB) */
#define POPULATE_CHUNK (1u << 20)   /* small frames are populated this many bytes at a time */

static int dontunmap_broken; /* set once the kernel refused MREMAP_DONTUNMAP here */
static int populate_broken;  /* set once the kernel refused MADV_POPULATE_WRITE */

static size_t frame_off(const struct pager_pool *p, uint32_t frame)
{
    return (size_t)frame * p->bs;
}

char *frame_alias(const struct pager_pool *p, uint32_t frame)
{
    return p->alias + frame_off(p, frame);
}

static char *frame_home(const struct pager_pool *p, uint32_t frame)
{
    return p->home + frame_off(p, frame);
}

/* ---- pools ---------------------------------------------------------------------------- */

#define PMD_ALIGN (2u << 20)

/* Map len bytes of memfd at a 2 MiB-aligned address. */
static int map_aligned(size_t len, int prot, int memfd, char **out)
{
    char *base =
        mmap(NULL, len + PMD_ALIGN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return -errno;
    char *a = (char *)(((uintptr_t)base + PMD_ALIGN - 1) & ~(uintptr_t)(PMD_ALIGN - 1));
    if (mmap(a, len, prot, MAP_SHARED | MAP_NORESERVE | MAP_FIXED, memfd, 0) == MAP_FAILED) {
        int e = -errno;
        munmap(base, len + PMD_ALIGN);
        return e;
    }
    if (a > base)
        munmap(base, (size_t)(a - base));
    if (base + len + PMD_ALIGN > a + len)
        munmap(a + len, (size_t)(base + len + PMD_ALIGN - (a + len)));
    madvise(a, len, MADV_DONTFORK);
    *out = a;
    return 0;
}

int pool_get(struct pager *pg, uint32_t bs, struct pager_pool **out)
{
    unsigned idx = (unsigned)__builtin_ctz(bs) - PAGER_MIN_SHIFT;
    if (pg->pools[idx]) {
        *out = pg->pools[idx];
        return 0;
    }
    uint64_t frames = pg->ram_limit / bs;
    uint64_t slack = frames / 8 > POOL_SLACK_MIN ? frames / 8 : POOL_SLACK_MIN;
    uint64_t cap = frames + slack;
    if (cap > POOL_MAX_BYTES / bs)
        cap = POOL_MAX_BYTES / bs;
    if (cap > UINT32_MAX - 1)
        cap = UINT32_MAX - 1;
    size_t len = (size_t)cap * bs;

    struct pager_pool *p = ba_calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->bs = bs;
    p->cap = (uint32_t)cap;
    p->stock_want = PAGER_PREFILL;
    p->spill_fd = -1;
    int rc;
    p->memfd = memfd_create("bigarray-pool", MFD_CLOEXEC);
    if (p->memfd < 0) {
        rc = -errno;
        goto err_free;
    }
    if (ftruncate(p->memfd, (off_t)len)) {
        rc = -errno;
        goto err_fd;
    }
    /* 2 MiB-aligned, like the mappings' reservations: a move of a 2 MiB-aligned frame
     * then hands over whole page tables (one PMD entry) instead of 512 PTEs: measured
     * 2.5 us instead of 8-13 us per move. */
    if ((rc = map_aligned(len, PROT_READ, p->memfd, &p->home)))
        goto err_fd;
    if ((rc = map_aligned(len, PROT_READ | PROT_WRITE, p->memfd, &p->alias)))
        goto err_home;
    pg->pools[idx] = p;
    *out = p;
    return 0;

err_home:
    munmap(p->home, len);
err_fd:
    close(p->memfd);
err_free:
    free(p);
    return rc;
}

void pool_destroy(struct pager_pool *p)
{
    if (!p)
        return;
    size_t len = (size_t)p->cap * p->bs;
    munmap(p->home, len);
    munmap(p->alias, len);
    close(p->memfd);
    spill_close(p);
    direct_stage_destroy(p);
    vec_destroy(&p->free_pop);
    vec_destroy(&p->free_unpop);
    vec_destroy(&p->spill_free);
    free(p);
}

/* ---- frames ----------------------------------------------------------------------------- */

int frame_pop_free(struct pager_pool *p, uint32_t *frame)
{
    uint64_t x;
    if (vec_pop(&p->free_pop, &x))
        return -ENOSPC;
    *frame = (uint32_t)x;
    return 0;
}

/* Write-touch [addr, addr+len) so that every page is present with a dirty entry. */
static int populate_write(char *addr, size_t len)
{
    if (!__atomic_load_n(&populate_broken, __ATOMIC_RELAXED)) {
        if (!madvise(addr, len, MADV_POPULATE_WRITE))
            return 0;
        if (errno != EINVAL)
            return -errno == -EFAULT ? -ENOMEM : -errno;
        __atomic_store_n(&populate_broken, 1, __ATOMIC_RELAXED);
    }
    /* Before 5.14: touch each page. A frame being populated holds zeros or nothing. */
    for (size_t off = 0; off < len; off += 4096)
        ((volatile char *)addr)[off] = 0;
    return 0;
}

/* Populate frames [first, first+n) in both mappings. */
static int frames_populate_range(struct pager_pool *p, uint32_t first, uint32_t n)
{
    size_t off = frame_off(p, first), len = (size_t)n * p->bs;
    int r = populate_write(p->alias + off, len);
    if (r)
        goto punch;
    if (mprotect(p->home + off, len, PROT_READ | PROT_WRITE)) {
        r = -errno;
        goto punch;
    }
    r = populate_write(p->home + off, len);
    if (mprotect(p->home + off, len, PROT_READ) && !r)
        r = -errno;
    if (!r)
        return 0;
punch:
    fallocate(p->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
    return r;
}

/* Take n frames never populated, [*first, *first+n): hw grows. Both free lists first
 * get room for hw entries (they hold distinct frames below hw), so that no push of a
 * frame onto them can fail, even one made after the lock was dropped. */
static int pool_take_new(struct pager_pool *p, uint32_t n, uint32_t *first)
{
    if (n > p->cap - p->hw)
        return -ENOSPC;
    if (vec_reserve(&p->free_pop, (size_t)p->hw + n) ||
        vec_reserve(&p->free_unpop, (size_t)p->hw + n))
        return -ENOMEM;
    *first = p->hw;
    p->hw += n;
    return 0;
}

/* Populate frames [first, first+n), taken from free_unpop or pool_take_new(), with the
 * lock dropped: the first touch of fresh memory is what costs in a load into a new
 * frame (~600 us per 2 MiB here, docs/architecture.md), and faults and loads of other
 * blocks go on beside it. Meanwhile the frames count in npop, nfilling (and nstocking
 * for the workers' stock) and the budget, and belong to no list. On failure they go
 * back to free_unpop. */
static int frames_fill(struct pager *pg, struct pager_pool *p, uint32_t first, uint32_t n,
                       int stock)
{
    p->npop += n;
    p->nfilling += n;
    p->nstocking += stock ? n : 0;
    pg->ram_used += (uint64_t)n * p->bs;
    pthread_mutex_unlock(&pg->lock);
    int r = frames_populate_range(p, first, n);
    pthread_mutex_lock(&pg->lock);
    p->nfilling -= n;
    p->nstocking -= stock ? n : 0;
    if (r) {
        p->npop -= n;
        pg->ram_used -= (uint64_t)n * p->bs;
        for (uint32_t i = 0; i < n; i++)
            vec_push(&p->free_unpop, first + i); /* cannot fail: see pool_take_new */
    }
    return r;
}

int frame_populate(struct pager *pg, struct pager_pool *p, uint32_t *frame)
{
    uint64_t x;
    uint32_t first, n = 1;
    int r;
    /* Populating here costs the caller the first touch: have the workers keep some ready. */
    if (!p->want_fill) {
        p->want_fill = 1;
        ra_kick(pg);
    }
    if (!vec_pop(&p->free_unpop, &x)) {
        first = (uint32_t)x;
    } else {
        /* Small frames: populate a chunk at once (fewer system calls), within the budget. */
        if (p->bs < POPULATE_CHUNK) {
            uint64_t room =
                pg->ram_used < pg->ram_limit ? (pg->ram_limit - pg->ram_used) / p->bs : 1;
            uint64_t want = POPULATE_CHUNK / p->bs;
            if (want > room)
                want = room ? room : 1;
            if (p->hw < p->cap && want > p->cap - p->hw)
                want = p->cap - p->hw;
            n = (uint32_t)want;
        }
        if ((r = pool_take_new(p, n, &first)))
            return r;
    }
    if ((r = frames_fill(pg, p, first, n, 0)))
        return r;
    for (uint32_t i = n; i-- > 1;)
        vec_push(&p->free_pop, first + i); /* cannot fail: see pool_take_new */
    *frame = first;
    return 0;
}

/* The stock of populated free frames the workers keep ready in p: PAGER_PREFILL, grown
 * by frame_stock_drained() up to PAGER_STOCK_MAX and a sixteenth of the budget. */
static uint32_t stock_target(const struct pager *pg, const struct pager_pool *p)
{
    uint64_t cap = pg->ram_limit / p->bs / 16;
    cap = cap < PAGER_PREFILL ? PAGER_PREFILL : cap > PAGER_STOCK_MAX ? PAGER_STOCK_MAX : cap;
    return p->stock_want > cap ? (uint32_t)cap : p->stock_want;
}

/* The stock holds (or is being filled to) its target. */
static int stock_full_now(const struct pager *pg, const struct pager_pool *p)
{
    return p->free_pop.n + p->nstocking >= stock_target(pg, p);
}

void frame_stock_drained(struct pager_pool *p)
{
    if (p->stock_full && p->stock_want < PAGER_STOCK_MAX)
        p->stock_want++;
}

void frame_stock_reset(struct pager_pool *p)
{
    p->stock_want = PAGER_PREFILL;
    p->stock_full = 0;
}

int frames_prefill_one(struct pager *pg)
{
    for (int i = 0; i < PAGER_NPOOLS; i++) {
        struct pager_pool *p = pg->pools[i];
        if (!p || !p->want_fill)
            continue;
        uint64_t x;
        uint32_t fresh;
        if (stock_full_now(pg, p)) {
            p->want_fill = 0; /* until a fault populates a frame itself again */
            p->stock_full = 1;
            continue;
        }
        if (pg->ram_used + p->bs > pg->ram_limit) {
            p->want_fill = 0;
            continue;
        }
        if (vec_pop(&p->free_unpop, &x)) {
            if (pool_take_new(p, 1, &fresh)) {
                p->want_fill = 0;
                continue;
            }
            x = fresh;
        }
        if (frames_fill(pg, p, (uint32_t)x, 1, 1)) {
            p->want_fill = 0;
            return 1;
        }
        frame_free(pg, p, (uint32_t)x);
        /* Full from the moment it is: a fault that drains it right after must count. */
        if (stock_full_now(pg, p))
            p->stock_full = 1;
        return 1;
    }
    return 0;
}

/* Give a free populated frame's memory back (its home and alias entries go too). */
static void frame_release(struct pager *pg, struct pager_pool *p, uint32_t frame)
{
    size_t off = frame_off(p, frame);
    fallocate(p->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)p->bs);
    if (vec_push(&p->free_unpop, frame)) {
        /* Out of memory for the list: keep the frame populated and listed as free. */
        frames_populate_range(p, frame, 1);
        vec_push(&p->free_pop, frame);
        return;
    }
    p->npop--;
    pg->ram_used -= p->bs;
}

void frame_free(struct pager *pg, struct pager_pool *p, uint32_t frame)
{
    if (pg->ram_used > pg->ram_limit || vec_push(&p->free_pop, frame))
        frame_release(pg, p, frame);
    if (pg->nwait_frame) /* waking faults that wait for a block would be spurious */
        pthread_cond_broadcast(&pg->cv);
}

uint64_t frames_release_free(struct pager *pg, const struct pager_pool *keep, uint64_t bytes)
{
    uint64_t done = 0;
    for (int i = 0; i < PAGER_NPOOLS && done < bytes; i++) {
        struct pager_pool *p = pg->pools[i];
        if (!p || p == keep)
            continue;
        uint32_t frame;
        while (done < bytes && !frame_pop_free(p, &frame)) {
            frame_release(pg, p, frame);
            done += p->bs;
        }
    }
    return done;
}

/* ---- moves -------------------------------------------------------------------------------- */

int range_move(char *from, char *to, size_t len)
{
    if (!__atomic_load_n(&dontunmap_broken, __ATOMIC_RELAXED)) {
        if (mremap(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, to) !=
            MAP_FAILED)
            return 0;
        if (errno != EINVAL)
            return -errno;
        __atomic_store_n(&dontunmap_broken, 1, __ATOMIC_RELAXED);
    }
    if (mremap(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to) == MAP_FAILED)
        return -errno;
    return 1; /* moved; `from` is now a gap the caller fills at once */
}

/* Move a frame's entries from home to addr. */
static int frame_move_in(struct pager_pool *p, uint32_t frame, char *addr)
{
    char *home = frame_home(p, frame);
    int r = range_move(home, addr, p->bs);
    if (r == 1) { /* re-map the home range (without entries) */
        if (mmap(home, p->bs, PROT_READ, MAP_SHARED | MAP_FIXED, p->memfd,
                 (off_t)frame_off(p, frame)) == MAP_FAILED)
            return -errno;
        madvise(home, p->bs, MADV_DONTFORK);
        r = 0;
    }
    return r;
}

/* Move a frame's entries from addr back home; the caller turns addr into a hole. */
static int frame_move_home(struct pager_pool *p, uint32_t frame, char *addr)
{
    int r = range_move(addr, frame_home(p, frame), p->bs);
    return r == 1 ? 0 : r;
}

/* Map the frame at addr as a second (third...) view of it. */
static int frame_alias_at(struct pager_pool *p, uint32_t frame, char *addr)
{
    if (pager_mmap_view(addr, p->bs, PROT_READ, MAP_SHARED | MAP_FIXED | MAP_POPULATE, p->memfd,
                        (off_t)frame_off(p, frame)) == MAP_FAILED)
        return -errno;
    madvise(addr, p->bs, MADV_DONTFORK);
    return 0;
}

struct pager_bmap *block_bmap(const struct pager_block *b, const struct pager_mapping *m)
{
    struct pager_bmap *bm = b->maps;
    while (bm && bm->m != m)
        bm = bm->next;
    return bm;
}

unsigned block_nmapped(const struct pager_block *b)
{
    unsigned n = 0;
    for (const struct pager_bmap *bm = b->maps; bm; bm = bm->next)
        n++;
    return n;
}

int block_map_into(struct pager *pg, struct pager_block *b, struct pager_mapping *m, int writable)
{
    struct pager_pool *p = b->file->pool;
    char *addr = pager_block_addr(m, b->blkno);
    struct pager_bmap *bm = slab_alloc(&pg->bmap_slab);
    if (!bm)
        return -ENOMEM;
    int primary = !(b->flags & BF_AWAY);
    int r = primary ? frame_move_in(p, b->frame, addr) : frame_alias_at(p, b->frame, addr);
    if (r) {
        slab_free(&pg->bmap_slab, bm);
        pg->be->hole_reserve(pg, m, addr, p->bs);
        return r;
    }
    if ((r = pg->be->map_done(pg, m, addr, p->bs, writable))) {
        if (primary)
            frame_move_home(p, b->frame, addr);
        pg->be->hole_reserve(pg, m, addr, p->bs);
        slab_free(&pg->bmap_slab, bm);
        return r;
    }
    bm->m = m;
    bm->writable = (uint8_t)(writable != 0);
    bm->primary = (uint8_t)primary;
    bm->partial = 0;
    bm->next = b->maps;
    b->maps = bm;
    if (primary)
        b->flags |= BF_AWAY;
    pg->nbmaps++;
    pg->be->wake(pg, addr, p->bs);
    return 0;
}

int block_unmap_one(struct pager *pg, struct pager_block *b, struct pager_bmap *bm, int hole)
{
    if (b->state == BS_DIRECT)
        return direct_unmap_one(pg, b, bm, hole);
    struct pager_pool *p = b->file->pool;
    struct pager_mapping *m = bm->m;
    char *addr = pager_block_addr(m, b->blkno);
    int r = 0;
    if (bm->primary) {
        pg->be->before_home(pg, m, addr, p->bs, bm->writable);
        r = frame_move_home(p, b->frame, addr);
        /* If the move failed the entries are dropped with the hole below; the data is
         * in the memfd and home faults it back in on the next move (slower, correct). */
        b->flags &= (uint8_t)~BF_AWAY;
    }
    if (hole || r)
        pg->be->hole_reserve(pg, m, addr, p->bs);
    struct pager_bmap **pp = &b->maps;
    while (*pp != bm)
        pp = &(*pp)->next;
    *pp = bm->next;
    slab_free(&pg->bmap_slab, bm);
    pg->nbmaps--;
    return r;
}

int block_unmap_all(struct pager *pg, struct pager_block *b)
{
    int r = 0;
    /* Aliases first, so that the primary's frame is the last one to move. */
    while (b->maps) {
        struct pager_bmap *bm = b->maps;
        for (struct pager_bmap *x = b->maps; x; x = x->next)
            if (!x->primary)
                bm = x;
        int e = block_unmap_one(pg, b, bm, 1);
        if (e && !r)
            r = e;
    }
    return r;
}

int mapping_reserve(struct pager *pg, struct pager_mapping *m)
{
    size_t align = m->file->bs < PMD_ALIGN ? m->file->bs : PMD_ALIGN;
    size_t span = m->len + align;
    char *base = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return -errno;
    char *addr = (char *)(((uintptr_t)base + align - 1) & ~(uintptr_t)(align - 1));
    if (addr > base)
        munmap(base, (size_t)(addr - base));
    if (base + span > addr + m->len)
        munmap(addr + m->len, (size_t)(base + span - (addr + m->len)));
    m->addr = addr;
    int r = pg->be->hole_reserve(pg, m, addr, m->len);
    if (r) {
        munmap(addr, m->len);
        m->addr = NULL;
    }
    return r;
}
