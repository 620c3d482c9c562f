/* SPDX-License-Identifier: MIT */
/*
 * Reclaim: the CLOCK (second-chance) ring of resident blocks and the policy that
 * hands out frames under the RAM budget.
 *
 * The ring holds every CLEAN and DIRTY block, whatever its file; a new block is
 * inserted just behind the hand, so the hand reaches it last. When the hand passes a
 * block:
 *   - referenced: the bit is cleared and the block is unmapped everywhere but keeps its
 *     frame. The next touch is a cheap remap fault that sets the bit again, so the bit
 *     reflects real accesses, not only loads (mapped blocks are otherwise invisible).
 *   - not referenced, CLEAN: evicted (unmapped, frame freed, ABSENT).
 *   - not referenced, DIRTY: remembered as the spill victim, used only when a full
 *     sweep found nothing clean.
 * Pinned blocks (a writeout's window) are skipped, and so are guarded ones: the range a
 * pager_prefault() in progress is loading, so that loading its last blocks never unmaps
 * its first (reclaim_guard_take() below; the VMA sweep and the direct ring skip them too).
 *
 * frame_get() tries, in order: a free frame of the pool; a new frame within the
 * budget; releasing free frames of other pools (other block sizes) to make room;
 * evicting a clean block; spilling a dirty one (FG_SPILL); exceeding the budget when
 * nothing can go (FG_OVERCOMMIT: a fault must progress even when every frame is loading
 * or pinned); waiting for a frame (FG_WAIT). Readahead passes none of the flags: it only
 * uses free or clean memory.
 *
 * The ring also bounds the kernel's mapping count: each mapped block costs one or two
 * VMAs, so when more than max_bmaps blocks are mapped, the hand unmaps (without
 * evicting) until a margin below it is restored. A DIRECT block shown by pieces counts
 * one more per piece mapping (npiece_maps), which costs one or two VMAs too.
 *
 * DIRECT blocks (zero-copy, pager_direct.c) hold no frame, so frame_get() has nothing
 * to gain from them: they have a ring of their own, with the same second-chance rule
 * (direct_reclaim() keeps them at most max_direct). They are mapped blocks like any
 * other for the mapping count: the VMA sweep takes the direct ring first (remapping a
 * direct block costs one mmap, no copy), then the frames' ring.
 */
#include <assert.h>
#include <errno.h>

#include "pager_internal.h"

void ring_insert(struct pager_ring *r, struct pager_block *b)
{
    assert(!b->cnext);
    if (!r->hand) {
        b->cnext = b->cprev = b;
        r->hand = b;
    } else {
        struct pager_block *h = r->hand;
        b->cnext = h;
        b->cprev = h->cprev;
        h->cprev->cnext = b;
        h->cprev = b;
    }
    r->n++;
}

void ring_remove(struct pager_ring *r, struct pager_block *b)
{
    assert(b->cnext);
    if (b->cnext == b) {
        r->hand = NULL;
    } else {
        b->cprev->cnext = b->cnext;
        b->cnext->cprev = b->cprev;
        if (r->hand == b)
            r->hand = b->cnext;
    }
    b->cnext = b->cprev = NULL;
    r->n--;
}

void block_evict(struct pager *pg, struct pager_block *b)
{
    assert(b->state == BS_CLEAN && !b->pin);
    if (b->maps)
        block_unmap_all(pg, b);
    ring_remove(&pg->ring, b);
    frame_free(pg, b->file->pool, b->frame);
    b->state = BS_ABSENT;
    b->flags &= (uint8_t)(BF_POISON | BF_WRITEOUT);
}

/* Move the hand until one clean block is evicted (returns 1) or two full turns found
 * none (returns 0, *dirty = the first unreferenced unpinned dirty block, if any). */
static int clock_evict_one(struct pager *pg, struct pager_block **dirty)
{
    uint64_t steps = 2 * pg->ring.n + 1;
    *dirty = NULL;
    while (pg->ring.hand && steps--) {
        struct pager_block *b = pg->ring.hand;
        pg->ring.hand = b->cnext;
        if (b->pin || block_guarded(pg, b))
            continue;
        if (b->flags & BF_REFERENCED) {
            b->flags &= (uint8_t)~BF_REFERENCED;
            if (b->maps)
                block_unmap_all(pg, b);
            continue;
        }
        if (b->maps)
            block_unmap_all(pg, b);
        if (b->state == BS_CLEAN) {
            struct pager_file *f = b->file;
            block_evict(pg, b);
            PAGER_COUNT(f, evictions, 1);
            pager_block_free_if_unused(b);
            return 1;
        }
        if (!*dirty)
            *dirty = b;
    }
    return 0;
}

int frame_get(struct pager *pg, struct pager_pool *pool, unsigned how, uint32_t *frame)
{
    int spill_failed = 0;
    for (;;) {
        if (!frame_pop_free(pool, frame))
            return 0;
        if (pg->ram_used + pool->bs <= pg->ram_limit && !frame_populate(pg, pool, frame)) {
            if (how & FG_WAIT) /* a fault (not a load ahead) found no frame ready */
                frame_stock_drained(pool);
            return 0;
        }
        frame_stock_reset(pool); /* the budget is reached */
        if (frames_release_free(pg, pool, pool->bs) && pg->ram_used + pool->bs <= pg->ram_limit)
            continue;
        struct pager_block *dirty;
        if (clock_evict_one(pg, &dirty))
            continue;
        if ((how & FG_SPILL) && dirty && !spill_failed) {
            if (spill_block(pg, dirty)) /* drops the lock for the write */
                spill_failed = 1;
            continue;
        }
        if ((how & FG_OVERCOMMIT) && !frame_populate(pg, pool, frame)) {
            pg->overcommits++;
            return 0;
        }
        if (!(how & FG_WAIT))
            return -ENOMEM;
        pg->nwait_frame++;
        pthread_cond_wait(&pg->cv, &pg->lock);
        pg->nwait_frame--;
        spill_failed = 0;
    }
}

/* Guard blocks [lo, hi) of f for a prefault: the CLOCK hands (and the VMA and DIRECT
 * caps) skip them, so the range's first blocks stay mapped while its last ones load,
 * and one system call can cover it all. Only a range whose frames fit in the budget,
 * together with the other guarded ranges, is guarded: a larger one could only be held
 * by exceeding the budget, so it loads block by block unguarded (the caller was told to
 * prefault in pieces). Returns the slot, or -1 (no guard). */
int reclaim_guard_take(struct pager *pg, const struct pager_file *f, uint64_t lo, uint64_t hi)
{
    if (pager_lock(pg))
        return -1;
    uint64_t held = (hi - lo) * f->bs;
    int slot = -1;
    for (int i = 0; i < PAGER_GUARDS; i++) {
        const struct pager_guard *gd = &pg->guards[i];
        if (gd->f)
            held += (gd->hi - gd->lo) * gd->f->bs;
        else if (slot < 0)
            slot = i;
    }
    if (slot >= 0 && held <= pg->ram_limit) {
        pg->guards[slot] = (struct pager_guard){.f = f, .lo = lo, .hi = hi};
        pg->nguards++;
    } else
        slot = -1;
    pthread_mutex_unlock(&pg->lock);
    return slot;
}

void reclaim_guard_drop(struct pager *pg, int slot)
{
    if (slot < 0 || pager_lock(pg))
        return;
    pg->guards[slot].f = NULL;
    pg->nguards--;
    pthread_cond_broadcast(&pg->cv); /* frame_get() waiters may find a block to evict now */
    pthread_mutex_unlock(&pg->lock);
}

/* One turn of r's hand unmapping blocks (keeping them) until nbmaps <= target. */
static void ring_unmap_sweep(struct pager *pg, struct pager_ring *r, const struct pager_block *keep,
                             uint64_t target)
{
    uint64_t steps = r->n;
    while (pg->nbmaps + pg->npiece_maps > target && r->hand && steps--) {
        struct pager_block *b = r->hand;
        r->hand = b->cnext;
        if (b == keep || b->pin || block_guarded(pg, b))
            continue;
        b->flags &= (uint8_t)~BF_REFERENCED;
        if (b->maps)
            block_unmap_all(pg, b);
    }
}

void reclaim_vma_pressure(struct pager *pg, const struct pager_block *keep)
{
    uint64_t target = pg->max_bmaps - pg->max_bmaps / 8;
    ring_unmap_sweep(pg, &pg->dring, keep, target);
    ring_unmap_sweep(pg, &pg->ring, keep, target);
}

uint64_t block_lru_rank(const struct pager *pg, const struct pager_block *b)
{
    if (!b->cnext)
        return UINT64_MAX;
    /* The hand takes unreferenced blocks in ring order on its first turn, then the
     * referenced ones (whose bits it cleared) on the second. */
    uint64_t before_unref = 0, before_ref = 0, unref = 0;
    int seen = 0;
    const struct pager_block *hand = b->state == BS_DIRECT ? pg->dring.hand : pg->ring.hand;
    const struct pager_block *x = hand;
    do {
        uint64_t r = (x->flags & BF_REFERENCED) != 0;
        if (x == b)
            seen = 1;
        else if (!seen) {
            before_unref += 1 - r;
            before_ref += r;
        }
        unref += 1 - r;
        x = x->cnext;
    } while (x != hand);
    return (b->flags & BF_REFERENCED) ? unref + before_ref : before_unref;
}

uint64_t reclaim_to(struct pager *pg, uint64_t keep)
{
    uint64_t n = 0;
    for (;;) {
        if (pg->ram_used > keep)
            frames_release_free(pg, NULL, pg->ram_used - keep);
        if (pg->ram_used <= keep)
            break;
        struct pager_block *dirty;
        if (!clock_evict_one(pg, &dirty))
            break;
        n++;
    }
    return n;
}

uint64_t pager_reclaim(struct pager *pg, uint64_t keep)
{
    if (pager_lock(pg))
        return 0;
    uint64_t n = reclaim_to(pg, keep);
    pager_check_locked(pg);
    pthread_mutex_unlock(&pg->lock);
    return n;
}
