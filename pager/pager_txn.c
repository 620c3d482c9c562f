/* SPDX-License-Identifier: MIT */
/*
 * What transactions do with the pager's blocks: writeout of the dirty blocks (in
 * ascending order, write-protected, read back from the spill file when needed, marked
 * clean once the caller's commit is durable), discard (abort), invalidation (the
 * session's snapshot moved) and the fault error a file recorded.
 *
 * Writeout and re-dirtying. pager_writeout_begin() write-protects every dirty block
 * (BF_WPROT: mapped read-only wherever it is mapped, and mapped read-only by later
 * faults too). A write after that faults, which clears BF_WPROT and bumps the block's
 * write generation. pager_writeout_next() protects the block again if a write
 * reopened it, records its generation and hands out the frame's address (through the
 * pool's load alias: valid wherever the frame's entries are); the block is pinned (not
 * spilled, not evicted, frame not reused) for PAGER_WRITEOUT_WINDOW further calls.
 * pager_writeout_end(committed) makes a handed-out block clean only if its generation
 * is unchanged: a write after the hand-out may be missing from what was stored.
 *
 *     committer thread                         writer thread (against the rules)
 *     begin: protect b (RO)
 *     next: gen = b->wgen, data = frame
 *                                              store to b -> fault -> b->wgen++ -> RW
 *     store(data)      (may miss the write)
 *     end(committed): b->wgen != gen -> b stays DIRTY: nothing is lost
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pager_internal.h"

struct pager_writeout {
    struct pager_file *f;
    struct pager_block **blocks;                        /* the dirty blocks at begin, ascending */
    uint32_t *gen;                                      /* wgen at hand-out */
    size_t n, next;                                     /* blocks [0, next) were handed out */
    struct pager_block *win[PAGER_WRITEOUT_WINDOW + 1]; /* pinned, by call number */
    uint64_t calls;
};

uint64_t pager_file_dirty_count(struct pager_file *pf)
{
    if (pager_lock(pf->pg))
        return 0;
    uint64_t n = pf->ndirty;
    pthread_mutex_unlock(&pf->pg->lock);
    return n;
}

static int is_dirty(const struct pager_block *b)
{
    return b->state == BS_DIRTY || b->state == BS_SPILLING || b->state == BS_SPILLED ||
           b->state == BS_UNSPILLING;
}

/* Make every writable mapping of b read-only and mark it protected. */
static int block_protect(struct pager *pg, struct pager_block *b)
{
    int r = 0;
    b->flags |= BF_WPROT;
    for (struct pager_bmap *bm = b->maps; bm; bm = bm->next)
        if (bm->writable) {
            int e =
                pg->be->make_readonly(pg, bm->m, pager_block_addr(bm->m, b->blkno), b->file->bs);
            if (e && !r)
                r = e;
            else
                bm->writable = 0;
        }
    return r;
}

int pager_writeout_begin(struct pager_file *pf, struct pager_writeout **out)
{
    struct pager *pg = pf->pg;
    *out = NULL;
    struct pager_writeout *wo = ba_calloc(1, sizeof *wo);
    if (!wo)
        return ba_error_set(-ENOMEM, "pager_writeout_begin: out of memory");
    wo->f = pf;
    if (pager_lock(pg)) {
        free(wo);
        return ba_error_set(BA_EFAILED, "pager_writeout_begin: the pager belongs to the parent");
    }
    int rc = 0;
    if (pf->wo) {
        rc = ba_error_set(BA_EINVAL, "pager_writeout_begin: a writeout of this file is open");
        goto out;
    }
    long k = index_collect(pf, is_dirty, &wo->blocks);
    if (k < 0) {
        rc = ba_error_set((int)k, "pager_writeout_begin: out of memory");
        goto out;
    }
    wo->n = (size_t)k;
    wo->gen = ba_calloc(wo->n ? wo->n : 1, sizeof *wo->gen);
    if (!wo->gen) {
        rc = ba_error_set(-ENOMEM, "pager_writeout_begin: out of memory");
        goto out;
    }
    for (size_t i = 0; i < wo->n; i++) {
        struct pager_block *b = wo->blocks[i];
        b->flags |= BF_WRITEOUT;
        int e = block_protect(pg, b);
        if (e && !rc)
            rc = e;
    }
    if (rc) {
        /* A block could not be protected: undo, nothing is handed out. */
        for (size_t i = 0; i < wo->n; i++)
            wo->blocks[i]->flags &= (uint8_t) ~(BF_WRITEOUT | BF_WPROT);
        rc = ba_error_set(rc, "pager_writeout_begin: cannot write-protect a dirty block: %s",
                          ba_strerror(rc));
        goto out;
    }
    pf->wo = wo;
    pager_check_locked(pg);
out:
    pthread_mutex_unlock(&pg->lock);
    if (rc) {
        free(wo->blocks);
        free(wo->gen);
        free(wo);
        return rc;
    }
    *out = wo;
    return 0;
}

int pager_writeout_next(struct pager_writeout *wo, uint64_t *blkno, const void **data)
{
    struct pager_file *f = wo->f;
    struct pager *pg = f->pg;
    int rc = 0;
    if (pager_lock(pg))
        return BA_EFAILED;
    while (wo->next < wo->n) {
        struct pager_block *b = wo->blocks[wo->next];
        if (b->state == BS_SPILLING || b->state == BS_UNSPILLING || b->state == BS_LOADING ||
            b->state == BS_LOCATING) {
            pthread_cond_wait(&pg->cv, &pg->lock);
            continue;
        }
        if (b->state == BS_SPILLED) {
            rc = unspill_block(pg, b, FG_SPILL | FG_OVERCOMMIT | FG_WAIT);
            if (rc) {
                rc = ba_error_set(rc, "cannot read block %llu back from the spill file: %s",
                                  (unsigned long long)b->blkno, ba_strerror(rc));
                break;
            }
            continue;
        }
        if (b->state != BS_DIRTY) { /* discarded meanwhile */
            wo->next++;
            continue;
        }
        if (!(b->flags & BF_WPROT) && (rc = block_protect(pg, b))) {
            rc = ba_error_set(rc, "cannot write-protect block %llu: %s",
                              (unsigned long long)b->blkno, ba_strerror(rc));
            break;
        }
        unsigned slot = (unsigned)(wo->calls % (PAGER_WRITEOUT_WINDOW + 1));
        if (wo->win[slot])
            wo->win[slot]->pin--;
        wo->win[slot] = b;
        wo->calls++;
        b->pin++;
        wo->gen[wo->next++] = b->wgen;
        *blkno = b->blkno;
        *data = frame_alias(f->pool, b->frame);
        rc = 1;
        break;
    }
    pthread_mutex_unlock(&pg->lock);
    return rc;
}

void pager_writeout_end(struct pager_writeout *wo, int committed)
{
    if (!wo)
        return;
    struct pager_file *f = wo->f;
    struct pager *pg = f->pg;
    if (pager_lock(pg))
        return;
    for (unsigned i = 0; i <= PAGER_WRITEOUT_WINDOW; i++)
        if (wo->win[i])
            wo->win[i]->pin--;
    for (size_t i = 0; i < wo->n; i++) {
        struct pager_block *b = wo->blocks[i];
        while (b->state == BS_SPILLING || b->state == BS_UNSPILLING)
            pthread_cond_wait(&pg->cv, &pg->lock);
        b->flags &= (uint8_t) ~(BF_WRITEOUT | BF_WPROT);
        if (committed && i < wo->next && b->wgen == wo->gen[i]) {
            if (b->state == BS_DIRTY) {
                /* Mapped read-only everywhere since the hand-out: consistent with CLEAN. */
                b->state = BS_CLEAN;
                f->ndirty--;
                pg->dirty_bytes -= f->bs;
            } else if (b->state == BS_SPILLED) {
                pager_block_drop(pg, b); /* the store has the bytes */
            }
        }
        pager_check_block(b);
        pager_block_free_if_unused(b);
    }
    f->wo = NULL;
    /* A writeout may have overcommitted frames (its window pins up to
     * PAGER_WRITEOUT_WINDOW + 1 blocks, more than a tiny budget holds): give them back
     * now that its blocks are clean. */
    if (pg->ram_used > pg->ram_limit)
        reclaim_to(pg, pg->ram_limit);
    pager_check_locked(pg);
    pthread_mutex_unlock(&pg->lock);
    free(wo->blocks);
    free(wo->gen);
    free(wo);
}

static void discard_one(struct pager_block *b, void *arg)
{
    struct pager *pg = arg;
    if (b->state == BS_LOADING || b->state == BS_LOCATING) {
        b->flags |= BF_STALE;
        return;
    }
    if (b->pin) /* handed out by an open writeout (against the thread rules): keep */
        return;
    if (b->flags & BF_POISON)
        pager_block_unpoison(b);
    pager_block_drop(pg, b);
    pager_block_free_if_unused(b);
}

/* Discard and invalidate return nothing, so they cannot fail: abort and snapshot moves
 * rely on them. They walk the index without allocating. */
void pager_file_discard(struct pager_file *pf, uint64_t first, uint64_t n)
{
    struct pager *pg = pf->pg;
    if (pager_lock(pg))
        return;
    pager_file_wait_idle(pf, first, n, 0);
    index_foreach(pf, first, n, discard_one, pg);
    pager_check_locked(pg);
    pthread_mutex_unlock(&pg->lock);
}

static void invalidate_one(struct pager_block *b, void *arg)
{
    struct pager *pg = arg;
    if (b->state == BS_LOADING || b->state == BS_LOCATING) {
        b->flags |= BF_STALE;
    } else if (b->state == BS_CLEAN && !b->pin) {
        block_evict(pg, b);
        PAGER_COUNT(b->file, invalidations, 1);
    } else if (b->state == BS_DIRECT) {
        direct_drop(pg, b); /* unmapped everywhere before the owner lets the bytes go */
        PAGER_COUNT(b->file, invalidations, 1);
    } else if (b->flags & BF_POISON) {
        pager_block_unpoison(b);
    }
    pager_block_free_if_unused(b);
}

void pager_file_invalidate(struct pager_file *pf, uint64_t first, uint64_t n)
{
    struct pager *pg = pf->pg;
    if (pager_lock(pg))
        return;
    index_foreach(pf, first, n, invalidate_one, pg);
    pager_check_locked(pg);
    pthread_mutex_unlock(&pg->lock);
}

static void unpoison_one(struct pager_block *b, void *arg)
{
    (void)arg;
    if (b->flags & BF_POISON) {
        pager_block_unpoison(b);
        pager_block_free_if_unused(b);
    }
}

int pager_file_take_error(struct pager_file *pf, uint64_t *blkno)
{
    struct pager *pg = pf->pg;
    if (pager_lock(pg))
        return BA_EFAILED;
    int err = pf->err;
    if (blkno)
        *blkno = err ? pf->err_blkno : 0;
    pf->err = 0;
    index_foreach(pf, 0, UINT64_MAX, unpoison_one, NULL);
    pthread_mutex_unlock(&pg->lock);
    return err;
}
