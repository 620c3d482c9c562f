/* SPDX-License-Identifier: MIT */
/*
 * Readahead: detect sequential access from faults and load the next blocks on a small
 * pool of worker threads, so that a scan finds its blocks already in RAM (the fault is
 * then a cheap remap that counts a readahead hit).
 *
 * Detection, per file, from the faults of the fault contexts (prefault does not count):
 * up to PAGER_RA_STREAMS streams, each the last block faulted and a stride in blocks
 * (forward, backward, any constant step up to RA_MAX_STRIDE). A fault one stride past a
 * stream's last block extends it; a fault near an unconfirmed stream's last block
 * proposes a new stride; any other fault replaces the least recently used stream. A
 * stream is confirmed by two equal strides in a row (three faults), so random access
 * practically never triggers anything.
 *
 * A confirmed stream keeps `window` blocks ahead of its last fault queued or loaded, in
 * its direction and stride, within the mapping that faulted. The window starts at
 * RA_WINDOW_MIN and doubles each time the stream's fault hits a block that readahead
 * loaded, up to RA_WINDOW_MAX or a quarter of the budget (of max_direct_bytes, if that
 * is less, where blocks are read zero-copy).
 *
 * Loads ahead use only free or clean memory (frame_get() without spill, overcommit or
 * wait) and leave the block CLEAN, referenced and unmapped. Where the file's ops can
 * locate blocks (zero-copy), a job first tries that: the block is then DIRECT, staged
 * and verified (pager_direct.c), which costs no frame at all. A failed or invalidated
 * readahead load is dropped silently: a real fault will load (and report) it.
 * Workers follow the fault-context rules (no malloc, no messages) and the pager lock.
 *
 * Prefill: idle workers also keep a few populated free frames ready (PAGER_PREFILL per
 * pool, within the budget's room) once a fault had to populate one itself, so that a
 * fault needing a new frame, a write into a zero-copy block and a fill of fresh blocks
 * find one without paying the kernel's first touch (~600 us per 2 MiB here, more than a
 * load from the page cache) in the faulting thread. Readahead jobs come first.
 *
 * Helping: a fault that would wait for a block a worker is loading runs a queued job
 * itself instead (ra_help()), so that when loading is slower than consuming, the
 * faulting thread's otherwise idle time loads the stream too (on 2 CPUs, per block
 * (load + use) / 2 instead of max(load, use)). It may finish a little after its own
 * block is ready; only streams pay that, random faults never queue jobs.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "pager_internal.h"

#define RA_MAX_STRIDE 16
#define RA_WINDOW_MIN 4u
#define RA_WINDOW_MAX 64u

struct ra_job {
    struct pager_file *f;
    uint64_t blkno;
};

struct pager_ra {
    pthread_cond_t cv; /* jobs queued, or stop */
    struct ra_job q[PAGER_RA_QUEUE];
    unsigned head, count;
    int stop;
    unsigned nthreads;
    pthread_t threads[];
};

/* ---- detection ---------------------------------------------------------------------------- */

static int ra_enqueue(struct pager *pg, struct pager_file *f, uint64_t blkno)
{
    struct pager_ra *ra = pg->ra;
    if (ra->count == PAGER_RA_QUEUE)
        return -1;
    ra->q[(ra->head + ra->count) % PAGER_RA_QUEUE] = (struct ra_job){f, blkno};
    ra->count++;
    f->ra_inflight++;
    return 0;
}

static uint32_t ra_window_max(const struct pager_file *f)
{
    /* Blocks read ahead zero-copy take no frame but count in max_direct_bytes: a window
     * past that cap would have the direct hand drop them before the reader comes. */
    uint64_t room = f->pg->ram_limit;
    if (direct_enabled(f) && f->pg->max_direct_bytes < room)
        room = f->pg->max_direct_bytes;
    uint64_t quarter = room / f->bs / 4;
    if (quarter < RA_WINDOW_MIN)
        return RA_WINDOW_MIN;
    return quarter < RA_WINDOW_MAX ? (uint32_t)quarter : RA_WINDOW_MAX;
}

/* Queue the blocks of stream s up to `window` strides past its last block. */
static void ra_issue(struct pager_file *f, struct ra_stream *s, const struct pager_mapping *m)
{
    struct pager *pg = f->pg;
    int queued = 0;
    while (s->issued < s->window) {
        int64_t step = s->stride * (int64_t)(s->issued + 1);
        uint64_t blkno = s->last + (uint64_t)step;
        if ((step > 0 && blkno < s->last) || (step < 0 && blkno > s->last) || blkno < m->first ||
            blkno - m->first >= m->n)
            break; /* past either end of the mapping */
        const struct pager_block *b = index_get(f, blkno);
        if (!b || (b->state == BS_ABSENT && !(b->flags & BF_POISON))) {
            if (ra_enqueue(pg, f, blkno))
                break;
            queued = 1;
        }
        s->issued++;
    }
    if (queued)
        pthread_cond_signal(&pg->ra->cv);
}

void ra_on_fault(struct pager_file *f, uint64_t blkno, const struct pager_mapping *m, int hit)
{
    if (!f->pg->ra)
        return;
    struct ra_stream *s, *lru = &f->ra[0];
    f->ra_clock++;
    for (int i = 0; i < PAGER_RA_STREAMS; i++) {
        s = &f->ra[i];
        if (s->used && s->stride && blkno == s->last + (uint64_t)s->stride) {
            s->used = f->ra_clock;
            s->last = blkno;
            s->matches++;
            if (s->issued)
                s->issued--;
            if (s->matches < 2)
                return;
            if (!s->window)
                s->window = RA_WINDOW_MIN;
            else if (hit)
                s->window *= 2;
            if (s->window > ra_window_max(f))
                s->window = ra_window_max(f);
            ra_issue(f, s, m);
            return;
        }
        if (s->used < lru->used)
            lru = s;
    }
    for (int i = 0; i < PAGER_RA_STREAMS; i++) {
        s = &f->ra[i];
        int64_t d = (int64_t)(blkno - s->last);
        if (s->used && s->matches < 2 && d && d >= -RA_MAX_STRIDE && d <= RA_MAX_STRIDE) {
            *s = (struct ra_stream){.last = blkno, .stride = d, .matches = 1, .used = f->ra_clock};
            return;
        }
    }
    *lru = (struct ra_stream){.last = blkno, .used = f->ra_clock};
}

/* ---- workers ------------------------------------------------------------------------------ */

static void ra_load(struct pager *pg, struct pager_file *f, uint64_t blkno)
{
    struct pager_block *b = index_get(f, blkno);
    if (f->closing || b)
        return;
    /* Zero-copy first: locate, map into a staging slot and verify, here on the worker;
     * the fault then only moves the entries in. A block that cannot be mapped is loaded
     * into a frame below. */
    if (direct_enabled(f)) {
        if (direct_locate(pg, f, blkno, 1, PAGER_BOFF_WHOLE) != PAGER_DIRECT_NO)
            return;
        if (f->closing || index_get(f, blkno)) /* the lock was dropped */
            return;
    }
    uint32_t frame;
    if (frame_get(pg, f->pool, 0, &frame))
        return;
    if (f->closing || index_get(f, blkno)) { /* frame_get may have dropped the lock */
        frame_free(pg, f->pool, frame);
        return;
    }
    b = slab_alloc(&pg->blk_slab);
    if (!b) {
        frame_free(pg, f->pool, frame);
        return;
    }
    b->file = f;
    b->blkno = blkno;
    if (index_add(f, b)) {
        slab_free(&pg->blk_slab, b);
        frame_free(pg, f->pool, frame);
        return;
    }
    b->state = BS_LOADING;
    b->frame = frame;
    b->flags = BF_RA_LOAD;
    pthread_mutex_unlock(&pg->lock);
    int r = f->ops.load(f->ctx, blkno, frame_alias(f->pool, frame));
    pthread_mutex_lock(&pg->lock);
    if (r < 0 || (b->flags & BF_STALE)) {
        frame_free(pg, f->pool, frame);
        b->state = BS_ABSENT;
        b->flags = 0;
        pthread_cond_broadcast(&pg->cv);
        pager_block_free_if_unused(b);
        return;
    }
    b->state = BS_CLEAN;
    b->flags = BF_REFERENCED | BF_READAHEAD;
    ring_insert(&pg->ring, b);
    PAGER_COUNT(f, loads, 1);
    PAGER_COUNT(f, load_bytes, f->bs);
    PAGER_COUNT(f, readahead_loads, 1);
    pthread_cond_broadcast(&pg->cv);
    pager_check_block(b);
}

/* Run the oldest queued job (lock held, dropped for the load). 0 if none. */
static int ra_run_one(struct pager *pg)
{
    struct pager_ra *ra = pg->ra;
    if (!ra->count)
        return 0;
    struct ra_job job = ra->q[ra->head];
    ra->head = (ra->head + 1) % PAGER_RA_QUEUE;
    ra->count--;
    ra_load(pg, job.f, job.blkno);
    if (--job.f->ra_inflight == 0 && job.f->closing)
        pthread_cond_broadcast(&pg->cv);
    return 1;
}

int ra_help(struct pager *pg)
{
    return pg->ra ? ra_run_one(pg) : 0;
}

void ra_kick(struct pager *pg)
{
    if (pg->ra)
        pthread_cond_signal(&pg->ra->cv);
}

static void *ra_main(void *arg)
{
    struct pager *pg = arg;
    struct pager_ra *ra = pg->ra;
    pager_thread_register(pg);
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_mutex_lock(&pg->lock);
    while (!ra->stop)
        if (!ra_run_one(pg) && !frames_prefill_one(pg))
            pthread_cond_wait(&ra->cv, &pg->lock);
    pthread_mutex_unlock(&pg->lock);
    return NULL;
}

int ra_start(struct pager *pg)
{
    unsigned n = pg->ra_workers ? pg->ra_workers : 1;
    struct pager_ra *ra = ba_calloc(1, sizeof *ra + n * sizeof ra->threads[0]);
    if (!ra)
        return -ENOMEM;
    pthread_cond_init(&ra->cv, NULL);
    pg->ra = ra;
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&ra->threads[i], NULL, ra_main, pg))
            break;
        ra->nthreads++;
    }
    if (!ra->nthreads) {
        ra_stop(pg);
        return -EAGAIN;
    }
    return 0;
}

void ra_stop(struct pager *pg)
{
    struct pager_ra *ra = pg->ra;
    if (!ra)
        return;
    pthread_mutex_lock(&pg->lock);
    ra->stop = 1;
    pthread_cond_broadcast(&ra->cv);
    pthread_mutex_unlock(&pg->lock);
    for (unsigned i = 0; i < ra->nthreads; i++)
        pthread_join(ra->threads[i], NULL);
    pthread_cond_destroy(&ra->cv);
    free(ra);
    pg->ra = NULL;
}

void ra_file_drain(struct pager_file *f)
{
    struct pager *pg = f->pg;
    struct pager_ra *ra = pg->ra;
    if (!ra)
        return;
    /* Drop f's queued jobs (compacting the ring), then wait for its running ones. */
    unsigned kept = 0;
    for (unsigned i = 0; i < ra->count; i++) {
        struct ra_job j = ra->q[(ra->head + i) % PAGER_RA_QUEUE];
        if (j.f == f)
            f->ra_inflight--;
        else
            ra->q[(ra->head + kept++) % PAGER_RA_QUEUE] = j;
    }
    ra->count = kept;
    while (f->ra_inflight)
        pthread_cond_wait(&pg->cv, &pg->lock);
}
