/* SPDX-License-Identifier: MIT */
/*
 * The fault core: one fault on a block of a mapping, resolved the same way from every
 * context (the SIGSEGV handler, the userfaultfd service threads, prefault, the direct
 * call): look the block up, load it into a frame, locate it for zero-copy (whole or
 * by pieces) or copy a DIRECT block into a frame for a write, wait for another thread's
 * load of it (running a queued load ahead meanwhile), track the first write, map it
 * with the protection its state allows, and record the time taken. The states, locks
 * and contexts it follows are written at the top of pager.c; prefault and the direct
 * call are here too, as they are faults without a signal.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pager_internal.h"

/* Read n bytes of a located extent into buf (a frame, through the load alias).
 * Returns 0, or -1 when the file gave fewer bytes (the caller loads instead). */
static int extent_read(const struct pager_extent *e, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(e->fd, buf + got, n - got, (off_t)(e->off + got));
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

/* Fill the frame of LOADING block b (lock held; dropped around the I/O): from src (a
 * DIRECT block's extent, already checked) the first time if given, else, and on every
 * retry after an invalidation, with ops.load. Then CLEAN, or ABSENT on a load error. */
static int block_fill(struct pager *pg, struct pager_block *b, enum pager_ctx ctx,
                      const struct pager_extent *src)
{
    struct pager_file *f = b->file;
    uint64_t blkno = b->blkno;
    char *buf = frame_alias(f->pool, b->frame);
    int r;
    do {
        b->flags &= (uint8_t)~BF_STALE;
        pthread_mutex_unlock(&pg->lock);
        r = src ? extent_read(src, buf, f->bs) : -1;
        if (r)
            r = f->ops.load(f->ctx, blkno, buf);
        src = NULL;
        pthread_mutex_lock(&pg->lock);
    } while (b->flags & BF_STALE);
    if (r > 0)
        r = 0;
    if (r < 0) {
        b->state = BS_ABSENT;
        frame_free(pg, f->pool, b->frame);
        PAGER_COUNT(f, load_errors, 1);
        if (ctx != PAGER_CTX_API) {
            b->flags |= BF_POISON;
            b->err = r;
            f->err = r;
            f->err_blkno = blkno;
        }
        pthread_cond_broadcast(&pg->cv);
        pager_block_free_if_unused(b);
        return r;
    }
    b->state = BS_CLEAN;
    b->flags |= BF_REFERENCED;
    ring_insert(&pg->ring, b);
    PAGER_COUNT(f, loads, 1);
    PAGER_COUNT(f, load_bytes, f->bs);
    pthread_cond_broadcast(&pg->cv);
    pager_check_block(b);
    return 0;
}

/* Load ABSENT block blkno of f into a frame (lock held; dropped around ops.load).
 * Returns 0 when the caller should look at the block again (loaded, or someone else
 * changed it meanwhile), or the load error. */
static int block_load(struct pager *pg, struct pager_file *f, uint64_t blkno, enum pager_ctx ctx)
{
    uint32_t frame;
    int r = frame_get(pg, f->pool, FG_SPILL | FG_OVERCOMMIT | FG_WAIT, &frame);
    if (r)
        return r;
    /* frame_get() may have dropped the lock: look again. */
    struct pager_block *b = index_get(f, blkno);
    if (!b && !(b = pager_block_new(f, blkno))) {
        frame_free(pg, f->pool, frame);
        return -ENOMEM;
    }
    if (b->state != BS_ABSENT || (b->flags & BF_POISON)) {
        frame_free(pg, f->pool, frame);
        return 0;
    }
    b->state = BS_LOADING;
    b->frame = frame;
    return block_fill(pg, b, ctx, NULL);
}

/* A write fault on DIRECT block blkno: copy it into a frame (from the file, through the
 * load alias) and forget the direct mappings, so that the write lands in a frame under
 * the budget and the kernel's copy-on-write never runs. The block is LOADING in
 * between (faults on it wait) and CLEAN after; the caller looks again and maps it for
 * writing. Lock held, dropped for frame_get() and the copy. */
static int direct_copy(struct pager *pg, struct pager_file *f, uint64_t blkno, enum pager_ctx ctx)
{
    uint32_t frame;
    int r = frame_get(pg, f->pool, FG_SPILL | FG_OVERCOMMIT | FG_WAIT, &frame);
    if (r)
        return r;
    struct pager_block *b = index_get(f, blkno);
    if (!b || b->state != BS_DIRECT) { /* changed while frame_get() waited */
        frame_free(pg, f->pool, frame);
        return 0;
    }
    /* A block checked whole is read from its extent; one checked by pieces is loaded
     * (and so checked) by ops.load. */
    struct pager_extent src = {b->dfd, b->doff, 0, 0, 0, UINT64_MAX};
    int checked = !b->pshift;
    direct_drop(pg, b);
    b->state = BS_LOADING;
    b->frame = frame;
    PAGER_COUNT(f, direct_copies, 1);
    return block_fill(pg, b, ctx, checked ? &src : NULL);
}

/* Whether a fault of kind `write` (1, 0, -1 unknown) on b through m is a write: an
 * unknown one where b is mapped read-only in m must be. */
static int fault_writes(const struct pager_block *b, const struct pager_mapping *m, int write)
{
    if (write >= 0)
        return write;
    const struct pager_bmap *bm = block_bmap(b, m);
    return bm && !bm->writable;
}

/* Map a CLEAN, DIRTY or (for reading) DIRECT block into m for an access at byte boff of
 * it (lock held, no drop). */
static int block_fault_map(struct pager *pg, struct pager_block *b, struct pager_mapping *m,
                           size_t boff, int write, int *hit)
{
    struct pager_file *f = b->file;
    struct pager_bmap *bm = block_bmap(b, m);
    int r = 0;
    if (b->state == BS_DIRECT) {
        assert(!write); /* the caller copied it into a frame first */
        if (!bm || bm->partial)
            r = direct_map_into(pg, b, m, boff);
    } else {
        if (write && (m->flags & PAGER_MAP_READONLY))
            return PAGER_FAULT_CHAIN;
        if (write) {
            if (b->state == BS_CLEAN) {
                b->state = BS_DIRTY;
                f->ndirty++;
                pg->dirty_bytes += f->bs;
            }
            b->flags &= (uint8_t)~BF_WPROT;
            b->wgen++;
        }
        int writable =
            b->state == BS_DIRTY && !(b->flags & BF_WPROT) && !(m->flags & PAGER_MAP_READONLY);
        if (!bm)
            r = block_map_into(pg, b, m, writable);
        else if (writable && !bm->writable) {
            r = pg->be->make_writable(pg, m, pager_block_addr(m, b->blkno), f->bs);
            if (!r)
                bm->writable = 1;
        }
    }
    b->flags |= BF_REFERENCED;
    *hit = (b->flags & BF_READAHEAD) != 0;
    if (*hit) {
        b->flags &= (uint8_t)~BF_READAHEAD;
        PAGER_COUNT(f, readahead_hits, 1);
    }
    pager_check_block(b);
    return r;
}

void pager_record_fault_time(struct pager_file *f, uint64_t t0)
{
    uint64_t ns = ba_now_ns() - t0, us = ns / 1000;
    unsigned bucket = 0;
    while (us > 1 && bucket < 15) {
        us >>= 1;
        bucket++;
    }
    PAGER_COUNT(f, fault_ns_total, ns);
    PAGER_COUNT(f, fault_hist[bucket], 1);
}

int pager_fault_resolve(struct pager_mapping *m, uint64_t idx, size_t boff, int write,
                        enum pager_ctx ctx, uint64_t t0)
{
    struct pager_file *f = m->file;
    struct pager *pg = f->pg;
    uint64_t blkno = m->first + idx;
    int r = 0, in_ram = 1;
    struct pager_block *b = NULL;

    if (pager_lock(pg))
        return BA_EFAILED;
    for (;;) {
        if (m->dead) /* being unmapped: the access retries on a hole or crashes */
            break;
        b = index_get(f, blkno);
        if (!b && !(b = pager_block_new(f, blkno))) {
            r = -ENOMEM;
            break;
        }
        if (b->flags & BF_POISON) {
            if (ctx != PAGER_CTX_API) {
                r = b->err ? b->err : -EIO;
                break;
            }
            pager_block_unpoison(b);
        }
        if (b->state == BS_ABSENT) {
            in_ram = 0;
            /* A read tries zero-copy first; a write wants a frame anyway. */
            if (write <= 0 && direct_enabled(f)) {
                /* A fault of a few bytes checks the piece it touches (if the block has
                 * pieces); a prefault, the whole block. */
                r = direct_locate(pg, f, blkno, 0, boff);
                if (r == PAGER_DIRECT_WHOLE)
                    r = direct_locate(pg, f, blkno, 0, PAGER_BOFF_WHOLE);
                if (r == 0)
                    continue; /* DIRECT and staged now (or changed): look again */
                if (r < 0)
                    break;
                r = 0; /* PAGER_DIRECT_NO: copy it */
            }
            if ((r = block_load(pg, f, blkno, ctx)))
                break;
        } else if (block_busy(b)) {
            if (!(block_loading(b) && (b->flags & BF_RA_LOAD) && ra_help(pg)))
                pthread_cond_wait(&pg->cv, &pg->lock);
        } else if (b->state == BS_DIRECT && fault_writes(b, m, write)) {
            if (m->flags & PAGER_MAP_READONLY) {
                r = PAGER_FAULT_CHAIN;
                break;
            }
            in_ram = 0;
            if ((r = direct_copy(pg, f, blkno, ctx)))
                break;
            write = 1;
        } else if (b->state == BS_DIRECT && !direct_piece_checked(b, boff)) {
            in_ram = 0;
            r = direct_check_pieces(pg, b, boff);
            if (r == PAGER_DIRECT_NO && !(r = block_load(pg, f, blkno, ctx)))
                continue;
            if (r)
                break;
        } else if (b->state == BS_SPILLED) {
            in_ram = 0;
            if ((r = unspill_block(pg, b, FG_SPILL | FG_OVERCOMMIT | FG_WAIT))) {
                if (ctx != PAGER_CTX_API) {
                    f->err = r;
                    f->err_blkno = blkno;
                }
                break;
            }
        } else {
            int hit = 0;
            /* Another piece of a block this mapping shows in pieces: not a new block
             * for the readahead's stream detector. */
            const struct pager_bmap *bm = block_bmap(b, m);
            int again = b->state == BS_DIRECT && bm && bm->partial;
            r = block_fault_map(pg, b, m, boff, fault_writes(b, m, write), &hit);
            if (r == 0 && ctx != PAGER_CTX_API && pg->readahead && !again)
                ra_on_fault(f, blkno, m, hit);
            if (r == 0 && pg->nbmaps + pg->npiece_maps > pg->max_bmaps)
                reclaim_vma_pressure(pg, b);
            break;
        }
    }
    if (ctx != PAGER_CTX_API && r != PAGER_FAULT_CHAIN) {
        if (write > 0)
            PAGER_COUNT(f, faults_write, 1);
        else
            PAGER_COUNT(f, faults_read, 1);
        if (in_ram && r == 0)
            PAGER_COUNT(f, faults_remap, 1);
        pager_record_fault_time(f, t0);
    }
    b = index_get(f, blkno);
    if (b)
        pager_block_free_if_unused(b);
    pthread_mutex_unlock(&pg->lock);
    return r;
}

int pager_prefault(struct pager_mapping *m, size_t off, size_t len, unsigned flags)
{
    if (!m)
        return ba_error_set(BA_EINVAL, "pager_prefault: NULL mapping");
    if (!len)
        return 0;
    if (off >= m->len || len > m->len - off)
        return ba_error_set(BA_ERANGE,
                            "pager_prefault: bytes %zu+%zu are outside the mapping (%zu)", off, len,
                            m->len);
    int write = (flags & PAGER_PREFAULT_WRITE) != 0;
    if (write && (m->flags & PAGER_MAP_READONLY))
        return ba_error_set(BA_EINVAL, "pager_prefault: write prefault of a read-only mapping");
    uint32_t bs = m->file->bs;
    uint64_t i0 = off / bs, i1 = (off + len - 1) / bs + 1;
    struct pager *pg = m->file->pg;
    int g = reclaim_guard_take(pg, m->file, m->first + i0, m->first + i1);
    int r = 0;
    for (uint64_t i = i0; i < i1 && !r; i++) {
        r = pager_fault_resolve(m, i, PAGER_BOFF_WHOLE, write, PAGER_CTX_API, 0);
        if (r == BA_EFAILED)
            r = ba_error_set(r, "pager_prefault: the pager belongs to the parent process");
        else if (r < 0)
            r = ba_error_set(r, "cannot load block %llu: %s", (unsigned long long)(m->first + i),
                             ba_strerror(r));
    }
    reclaim_guard_drop(pg, g);
    return r;
}

int pager_fault_direct(struct pager_mapping *m, size_t off, int write)
{
    if (!m || off >= m->len)
        return ba_error_set(BA_EINVAL, "pager_fault_direct: bad argument");
    uint32_t bs = m->file->bs;
    int r =
        pager_fault_resolve(m, off / bs, off % bs, write ? 1 : 0, PAGER_CTX_DIRECT, ba_now_ns());
    if (r == PAGER_FAULT_CHAIN)
        return ba_error_set(BA_EINVAL, "pager_fault_direct: write through a read-only mapping");
    return r;
}

void pager_thread_register(struct pager *pg)
{
    pid_t tid = (pid_t)syscall(SYS_gettid);
    pthread_mutex_lock(&pg->lock);
    if (pg->nown < sizeof pg->own_tids / sizeof pg->own_tids[0])
        pg->own_tids[pg->nown++] = tid;
    pthread_mutex_unlock(&pg->lock);
}

int pager_thread_is_own(struct pager *pg, pid_t tid)
{
    int own = 0;
    pthread_mutex_lock(&pg->lock);
    for (unsigned i = 0; i < pg->nown && !own; i++)
        own = pg->own_tids[i] == tid;
    pthread_mutex_unlock(&pg->lock);
    return own;
}
