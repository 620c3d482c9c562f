/* SPDX-License-Identifier: MIT */
/*
 * Zero-copy: a block whose bytes lie verbatim in a file (ops.locate names the file and a
 * page-aligned offset: an uncompressed block record in LMDB's data.mdb) is mapped
 * straight from the kernel's page cache, MAP_PRIVATE and PROT_READ, instead of being
 * copied into a frame. Such a block is DIRECT: clean, no frame, outside the RAM budget
 * (the page cache is the kernel's to reclaim), in a CLOCK ring of its own capped at
 * max_direct blocks, and mapped like any block (one VMA per mapping that shows it,
 * counted in nbmaps against max_bmaps).
 *
 * Checked before shown. A mapping in a user's range is visible to every thread at once,
 * so the located range is first mapped (MAP_POPULATE) into a staging slot that only
 * the locating thread touches, checked there with ops.verify (the checksum, once per
 * DIRECT lifetime), and only then moved into a mapping with mremap (its page table
 * entries move: ~5 us for 2 MiB, against 10-90 us to populate them again). A staging
 * slot is a block-sized range of a per-pool reservation (pool->stage), PROT_NONE
 * anonymous memory while free, MADV_DONTFORK like every pager range. Readahead does the
 * locate-map-verify on a worker and leaves the block DIRECT and staged; the fault that
 * touches it then only moves it in (a readahead hit). A DIRECT block that is not
 * staged (unmapped by the CLOCK hand, or shown in a second mapping) is mapped afresh,
 * lazily: the kernel fills its page table entries on access, with fault-around, as for
 * any file mapping; the bytes were checked once and are the same page-cache pages.
 *
 * Why the bytes cannot change under a mapping: the owner of ops.locate promises that
 * the located bytes stay put until it invalidates the block (lib/: the session's LMDB
 * snapshot pins the pages, and a snapshot moves only after the blocks other commits
 * changed were invalidated: see lib/ba_internal.h). Nothing ever writes to a DIRECT
 * mapping: it is PROT_READ, a write faults, and the fault copies the block into a frame
 * first (pager_fault.c, direct_copy), so the kernel's copy-on-write never allocates
 * anonymous pages outside the budget.
 *
 * Staging slots are few (nstage per pool). A fault that finds none free takes the slot
 * of a staged block (which stays DIRECT, unstaged); readahead never does, it gives up.
 * With no slot at all (every slot in use by threads locating right now) the fault
 * loads the block into a frame as without zero-copy.
 *
 * Pieces. Checking a whole block costs a pass over all of it (a 2 MiB block: ~170 us
 * with its mapping), which a random read of 64 KiB does not need. When ops.locate gives
 * the extent a piece size (2^piece_shift bytes, at most 64 pieces) and the file has
 * ops.verify_piece, a read fault only locates the block: it becomes DIRECT with no piece
 * checked and nothing mapped (no slot). A fault on an unchecked piece asks the kernel
 * to read exactly that piece if it is not cached, has the owner check it where it lies
 * (ops.verify_piece reads the file through its own mapping: the same page-cache pages),
 * marks it checked, and maps it into the user's mapping (its entries are filled on
 * access, like any file mapping). A fault checks the pieces under the 64 KiB from the
 * byte it touches (PAGER_PIECE_SPAN: a read of that size at any offset takes one fault,
 * and with 32 KiB pieces checks 64-96 KiB), and maps the run of checked pieces around
 * it. When a fault would leave more than half the pieces checked, it checks every piece
 * left (so does any prefault) and the block is DIRECT whole from then on. Each piece
 * mapping costs one or two VMAs, like a mapped block, so it counts like one against the
 * VMA cap (bmap->runs, pager.npiece_maps). A mapping showing pieces of a block checked
 * whole since gets the whole range at its next fault there (bmap->partial). A piece
 * that does not match drops the block and the fault loads it with ops.load, which
 * checks the whole block and reports;
 * a write to a block with unchecked pieces copies it with ops.load too (checked), not
 * with a pread of the extent. Readahead and prefault always check whole blocks.
 *
 * Runs with the pager lock held (dropped in direct_locate around the I/O, state
 * LOCATING pinning the struct; in direct_check_pieces, with dgen to tell afterwards
 * whether the block is still the one checked), in any context: system calls and the
 * pager's slabs only.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pager_internal.h"

#define STAGE_BYTES (256ull << 20) /* address space of a pool's staging slots */
#define STAGE_MIN   8u             /* slots per pool, at least */
#define STAGE_MAX   128u           /* and at most (twice the largest readahead window) */
#define PMD_ALIGN   (2u << 20)

static char *slot_addr(const struct pager_pool *p, uint32_t slot)
{
    return p->stage + (size_t)slot * p->bs;
}

/* Turn a slot back into free address space (dropping whatever file range it showed). */
static void slot_clear(struct pager_pool *p, uint32_t slot)
{
    char *a = slot_addr(p, slot);
    if (mmap(a, p->bs, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) !=
        MAP_FAILED)
        madvise(a, p->bs, MADV_DONTFORK);
}

static void slot_put(struct pager_pool *p, uint32_t slot)
{
    slot_clear(p, slot);
    vec_push(&p->stage_free, slot); /* cannot fail: the vector held every slot once */
}

int direct_stage_init(struct pager *pg, struct pager_pool *p)
{
    if (p->stage)
        return 0;
    uint64_t n = STAGE_BYTES / p->bs;
    n = n < STAGE_MIN ? STAGE_MIN : n > STAGE_MAX ? STAGE_MAX : n;
    if (pg->direct_slots)
        n = pg->direct_slots;
    size_t len = (size_t)n * p->bs, align = p->bs < PMD_ALIGN ? p->bs : PMD_ALIGN;
    /* Aligned like the mappings, so that a move of a 2 MiB block hands over whole page
     * tables. */
    char *base =
        mmap(NULL, len + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return -errno;
    char *a = (char *)(((uintptr_t)base + align - 1) & ~(uintptr_t)(align - 1));
    if (a > base)
        munmap(base, (size_t)(a - base));
    if (base + len + align > a + len)
        munmap(a + len, (size_t)(base + len + align - (a + len)));
    madvise(a, len, MADV_DONTFORK);
    for (uint64_t i = n; i-- > 0;)
        if (vec_push(&p->stage_free, i)) {
            vec_destroy(&p->stage_free);
            munmap(a, len);
            return -ENOMEM;
        }
    p->stage = a;
    p->nstage = (uint32_t)n;
    return 0;
}

void direct_stage_destroy(struct pager_pool *p)
{
    if (!p->stage)
        return;
    munmap(p->stage, (size_t)p->nstage * p->bs);
    vec_destroy(&p->stage_free);
    p->stage = NULL;
}

int direct_enabled(const struct pager_file *f)
{
    return f->pg->zerocopy && f->ops.locate && f->ops.verify && f->pool->stage;
}

/* A free slot; for a fault (ra == 0) the slot of a staged block if none is free (that
 * block stays DIRECT, unstaged). Returns 0 or -ENOSPC. */
static int slot_get(struct pager *pg, struct pager_pool *p, int ra, uint32_t *slot)
{
    uint64_t x;
    if (!vec_pop(&p->stage_free, &x)) {
        *slot = (uint32_t)x;
        return 0;
    }
    if (ra || !pg->dring.hand)
        return -ENOSPC;
    /* Oldest first: the hand points at the block the CLOCK would look at next. */
    struct pager_block *b = pg->dring.hand;
    do {
        if (b->dslot != PAGER_NO_SLOT && b->file->pool == p) {
            *slot = b->dslot;
            b->dslot = PAGER_NO_SLOT;
            slot_clear(p, *slot);
            return 0;
        }
        b = b->cnext;
    } while (b != pg->dring.hand);
    return -ENOSPC;
}

/* The located range must be page-aligned and inside the file: a page past the end of
 * a file mapping raises SIGBUS on access, inside the fault handler at that. */
static int extent_check(const struct pager_extent *e, uint32_t bs)
{
    struct stat sb;
    if (e->fd < 0 || e->off % (1u << PAGER_MIN_SHIFT) || fstat(e->fd, &sb) ||
        !S_ISREG(sb.st_mode) || sb.st_size < 0 || e->off > (uint64_t)sb.st_size ||
        (uint64_t)sb.st_size - e->off < bs)
        return -EINVAL;
    return 0;
}

/* Whether extent e of a block of f can be checked piece by piece. */
static int extent_has_pieces(const struct pager_file *f, const struct pager_extent *e)
{
    return f->ops.verify_piece && e->piece_shift >= PAGER_MIN_SHIFT && e->piece_shift < 31 &&
           ((uint64_t)1 << e->piece_shift) < f->bs && (f->bs >> e->piece_shift) <= 64;
}

static uint64_t pieces_all(const struct pager_block *b)
{
    unsigned np = b->file->bs >> b->pshift;
    return np >= 64 ? ~0ull : (1ull << np) - 1;
}

int direct_locate(struct pager *pg, struct pager_file *f, uint64_t blkno, int ra, size_t boff)
{
    struct pager_pool *p = f->pool;
    struct pager_block *b = index_get(f, blkno);
    if (!b && !(b = pager_block_new(f, blkno)))
        return -ENOMEM;
    if (b->state != BS_ABSENT || (b->flags & BF_POISON))
        return 0;
    uint32_t slot = PAGER_NO_SLOT;
    int pieces = boff != PAGER_BOFF_WHOLE && !ra && f->ops.verify_piece;
    if (!pieces && slot_get(pg, p, ra, &slot)) {
        /* Readahead is far enough ahead: give up (a fault will do it). A fault copies. */
        pager_block_free_if_unused(b);
        return ra ? 0 : PAGER_DIRECT_NO;
    }
    b->state = BS_LOCATING;
    b->dslot = slot;
    b->flags = (uint8_t)((b->flags & BF_WRITEOUT) | (ra ? BF_RA_LOAD : 0));
    char *sa = pieces ? NULL : slot_addr(p, slot);
    struct pager_extent e;
    int r, stale, mapped = 0, whole = 0;
    for (;;) {
        b->flags &= (uint8_t)~BF_STALE;
        pthread_mutex_unlock(&pg->lock);
        e = (struct pager_extent){-1, 0, 0, 0, 0, pieces ? (uint64_t)boff : UINT64_MAX};
        r = f->ops.locate(f->ctx, blkno, &e);
        if (!r)
            r = extent_check(&e, p->bs);
        /* Pieces: nothing is mapped or checked now; each piece is when first touched. */
        if (!r && pieces && !extent_has_pieces(f, &e))
            whole = 1;
        /* MAP_POPULATE: one call fills the entries (measured faster here than the faults
         * the checksum pass would take, and the move then carries them all). */
        if (!r && !pieces) {
            mapped = 1; /* even a failed MAP_FIXED may have unmapped the slot */
            pager_fork_guard_enter();
            if (mmap(sa, p->bs, PROT_READ, MAP_PRIVATE | MAP_FIXED | MAP_POPULATE, e.fd,
                     (off_t)e.off) == MAP_FAILED)
                r = -errno;
            else
                madvise(sa, p->bs, MADV_DONTFORK);
            pager_fork_guard_exit();
        }
        if (!r && !pieces)
            r = f->ops.verify(f->ctx, blkno, sa, e.tag);
        pthread_mutex_lock(&pg->lock);
        stale = (b->flags & BF_STALE) != 0;
        if (!stale || ra)
            break;
        /* Invalidated while locating: what was located may be gone. Again. */
        whole = 0;
    }
    if (r || stale || whole) {
        if (mapped)
            slot_clear(p, slot);
        if (slot != PAGER_NO_SLOT)
            vec_push(&p->stage_free, slot);
        b->state = BS_ABSENT;
        b->flags &= (uint8_t)BF_WRITEOUT;
        pthread_cond_broadcast(&pg->cv);
        pager_block_free_if_unused(b);
        return r ? PAGER_DIRECT_NO : whole && !stale ? PAGER_DIRECT_WHOLE : 0;
    }
    b->state = BS_DIRECT;
    b->dfd = e.fd;
    b->doff = e.off;
    b->dgen = ++pg->dgen;
    b->pshift = (uint8_t)(pieces ? e.piece_shift : 0);
    b->pmask = 0;
    b->ptag = e.piece_tag;
    b->flags = (uint8_t)((b->flags & BF_WRITEOUT) | BF_REFERENCED | (ra ? BF_READAHEAD : 0));
    ring_insert(&pg->dring, b);
    f->ndirect++;
    pg->direct_bytes += p->bs;
    PAGER_COUNT(f, direct_loads, 1);
    if (ra)
        PAGER_COUNT(f, readahead_loads, 1);
    pthread_cond_broadcast(&pg->cv);
    pager_check_block(b);
    if (pg->dring.n > pg->max_direct || pg->direct_bytes > pg->max_direct_bytes)
        direct_reclaim(pg, b);
    return 0;
}

int direct_piece_checked(const struct pager_block *b, size_t boff)
{
    return !b->pshift || (boff != PAGER_BOFF_WHOLE && (b->pmask >> (boff >> b->pshift) & 1));
}

int direct_check_pieces(struct pager *pg, struct pager_block *b, size_t boff)
{
    struct pager_file *f = b->file;
    uint64_t blkno = b->blkno, all = pieces_all(b), want;
    unsigned shift = b->pshift;
    assert(b->state == BS_DIRECT && shift);
    unsigned np = f->bs >> shift;
    want = all & ~b->pmask; /* a prefault, or more than half: every piece left */
    if (boff != PAGER_BOFF_WHOLE) {
        /* The pieces under PAGER_PIECE_SPAN bytes from the byte touched (first to last;
         * 2 << 63 wraps to 0, which the unsigned subtraction wants): a small read at any
         * offset takes one fault, and checks little more than it reads. */
        size_t end = f->bs - boff <= PAGER_PIECE_SPAN ? f->bs : boff + PAGER_PIECE_SPAN;
        unsigned first = (unsigned)(boff >> shift), last = (unsigned)((end - 1) >> shift);
        uint64_t span = ((2ull << last) - (1ull << first)) & ~b->pmask;
        if ((unsigned)__builtin_popcountll(b->pmask | span) <= np / 2)
            want = span;
    }
    unsigned lo = (unsigned)__builtin_ctzll(want), hi = 63u - (unsigned)__builtin_clzll(want);
    size_t off = (size_t)lo << shift, len = (size_t)(hi - lo + 1) << shift;
    struct pager_extent e = {b->dfd, b->doff, 0, shift, b->ptag, UINT64_MAX};
    uint32_t gen = b->dgen;
    pthread_mutex_unlock(&pg->lock);
    /* Checked before shown, as a whole block is (see the top of this file): by the
     * owner, through its own view of the file (no mapping of ours to make and unmap: a
     * temporary one per check, with its TLB shootdown, was a quarter of the cost of a
     * random 64 KiB read). */
    int r = 0;
    /* Read exactly these bytes if they are not in the page cache: one request for the
     * range, and no read-around when the owner's check touches a page (a fault on a file
     * mapping may read up to the device's readahead, 8 MiB here, around the page: a cold
     * random read of 64 KiB cost 1.4 ms that way). Pages already cached cost nothing. */
    posix_fadvise(e.fd, (off_t)(e.off + off), (off_t)len, POSIX_FADV_WILLNEED);
    for (unsigned k = lo; !r && k <= hi; k++)
        if (want >> k & 1)
            r = f->ops.verify_piece(f->ctx, blkno, &e, k);
    pthread_mutex_lock(&pg->lock);
    b = index_get(f, blkno);
    if (!b || b->state != BS_DIRECT || b->dgen != gen || !b->pshift)
        return 0; /* dropped, invalidated or checked meanwhile: look again */
    if (r) {
        /* Damaged (or unreadable): forget the mapping; a load reads and checks the same
         * bytes and reports the error as for any block. */
        direct_drop(pg, b);
        return PAGER_DIRECT_NO;
    }
    if ((b->pmask | want) != all && (unsigned)__builtin_popcountll(b->pmask | want) > np / 2)
        return 0; /* other threads checked pieces meanwhile: with these, more than half
                   * would be; the fault looks again and checks the rest */
    b->pmask |= want;
    PAGER_COUNT(f, direct_pieces, (uint64_t)__builtin_popcountll(want));
    if (b->pmask == all) {
        b->pshift = 0; /* checked whole now: mapped whole from here on */
        b->pmask = 0;
    }
    pager_check_block(b);
    return 0;
}

/* Map bytes [off, off + len) of DIRECT block b's extent at addr + off (addr: the block's
 * place in a mapping), read-only; the kernel fills the entries on access, with
 * fault-around. 0 or -errno. */
static int extent_map(struct pager_block *b, char *addr, size_t off, size_t len)
{
    pager_fork_guard_enter();
    int r = pager_mmap_view(addr + off, len, PROT_READ, MAP_PRIVATE | MAP_FIXED, b->dfd,
                            (off_t)(b->doff + off)) == MAP_FAILED
                ? -errno
                : 0;
    if (!r)
        madvise(addr + off, len, MADV_DONTFORK);
    pager_fork_guard_exit();
    return r;
}

/* Show piece i of partial DIRECT block b at addr (its place in a mapping), with the
 * checked pieces next to it: one mapping for the run. */
static int piece_map(struct pager_block *b, char *addr, unsigned i)
{
    unsigned lo = i, hi = i, np = b->file->bs >> b->pshift;
    while (lo > 0 && (b->pmask >> (lo - 1) & 1))
        lo--;
    while (hi + 1 < np && (b->pmask >> (hi + 1) & 1))
        hi++;
    return extent_map(b, addr, (size_t)lo << b->pshift, (size_t)(hi - lo + 1) << b->pshift);
}

int direct_map_into(struct pager *pg, struct pager_block *b, struct pager_mapping *m, size_t boff)
{
    struct pager_pool *p = b->file->pool;
    char *addr = pager_block_addr(m, b->blkno);
    struct pager_bmap *bm = block_bmap(b, m);
    /* Pieces: the one touched is checked (the caller saw to it). A mapping that shows
     * pieces of a block checked whole since (bm already there) gets the whole block. */
    assert(direct_piece_checked(b, boff));
    int fresh = !bm, r = -1;
    if (fresh && !(bm = slab_alloc(&pg->bmap_slab)))
        return -ENOMEM;
    if (b->pshift) {
        r = piece_map(b, addr, (unsigned)(boff >> b->pshift));
    } else {
        if (b->dslot != PAGER_NO_SLOT) { /* staged: its entries move in (and DONTFORK) */
            r = range_move(slot_addr(p, b->dslot), addr, p->bs);
            slot_put(p, b->dslot);
            b->dslot = PAGER_NO_SLOT;
        }
        if (r < 0) /* not staged, or the move failed: map the range afresh */
            r = extent_map(b, addr, 0, p->bs);
    }
    if (r) {
        pg->be->hole_reserve(pg, m, addr, p->bs);
        if (fresh)
            slab_free(&pg->bmap_slab, bm);
        else
            direct_unmap_one(pg, b, bm, 0);
        return r;
    }
    if (fresh) {
        bm->m = m;
        bm->writable = 0;
        bm->primary = 0;
        bm->runs = 0;
        bm->next = b->maps;
        b->maps = bm;
        pg->nbmaps++;
    }
    pg->npiece_maps -= bm->runs;
    bm->runs = b->pshift ? (uint8_t)(bm->runs + 1) : 0;
    pg->npiece_maps += bm->runs;
    bm->partial = b->pshift != 0;
    return 0;
}

int direct_unmap_one(struct pager *pg, struct pager_block *b, struct pager_bmap *bm, int hole)
{
    int r = 0;
    if (hole)
        r = pg->be->hole_reserve(pg, bm->m, pager_block_addr(bm->m, b->blkno), b->file->bs);
    struct pager_bmap **pp = &b->maps;
    while (*pp != bm)
        pp = &(*pp)->next;
    *pp = bm->next;
    pg->npiece_maps -= bm->runs;
    slab_free(&pg->bmap_slab, bm);
    pg->nbmaps--;
    return r;
}

void direct_drop(struct pager *pg, struct pager_block *b)
{
    struct pager_file *f = b->file;
    assert(b->state == BS_DIRECT);
    while (b->maps)
        direct_unmap_one(pg, b, b->maps, 1);
    if (b->dslot != PAGER_NO_SLOT)
        slot_put(f->pool, b->dslot);
    b->dslot = PAGER_NO_SLOT;
    ring_remove(&pg->dring, b);
    f->ndirect--;
    pg->direct_bytes -= f->bs;
    b->state = BS_ABSENT;
    b->flags &= (uint8_t)(BF_POISON | BF_WRITEOUT);
    b->pshift = 0;
    b->pmask = 0;
}

/* Blocks read ahead and not touched yet are what a stream will read next: the first
 * round of the hand passes them by, so that the blocks behind the readers go first (the
 * hand's position would otherwise drop a block staged one sweep ago, just before its
 * reader came). A second round takes them too if nothing else is left. */
void direct_reclaim(struct pager *pg, const struct pager_block *keep)
{
    uint64_t target = pg->max_direct - pg->max_direct / 8;
    uint64_t btarget = pg->max_direct_bytes - pg->max_direct_bytes / 8;
    for (int round = 0; round < 2; round++) {
        uint64_t steps = 2 * pg->dring.n + 1;
        while ((pg->dring.n > target || pg->direct_bytes > btarget) && pg->dring.hand && steps--) {
            struct pager_block *b = pg->dring.hand;
            pg->dring.hand = b->cnext;
            if (b == keep || block_guarded(pg, b) || (!round && (b->flags & BF_READAHEAD)))
                continue;
            if (b->flags & BF_REFERENCED) {
                b->flags &= (uint8_t)~BF_REFERENCED;
                while (b->maps)
                    direct_unmap_one(pg, b, b->maps, 1);
                continue;
            }
            direct_drop(pg, b);
            pager_block_free_if_unused(b);
        }
    }
}
