/* SPDX-License-Identifier: MIT */
/*
 * The store's two pools. The decompression pool holds preallocated zstd decoding
 * contexts with their unshuffle scratch, so reads (also in fault context) never
 * allocate: a reader takes a slot, or waits on a condition variable while all are
 * busy. The compression workers encode a batch of blocks in parallel, each with its
 * own CCtx, into a ring of output slots; the calling thread puts the results in
 * ascending order as they complete, so memory stays bounded by the ring (two slots
 * per worker) whatever the batch size.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* ---- decompression slots -------------------------------------------------------------- */

int store_dpool_init(struct store_dpool *p, unsigned n)
{
    memset(p, 0, sizeof *p);
    p->slots = ba_calloc(n, sizeof *p->slots);
    p->free_idx = ba_calloc(n, sizeof *p->free_idx);
    if (!p->slots || !p->free_idx)
        goto fail;
    for (unsigned i = 0; i < n; i++) {
        p->slots[i].z = ZSTD_createDCtx();
        p->slots[i].scratch = ba_malloc(STORE_SHUFFLE_CHUNK);
        p->n = i + 1;
        if (!p->slots[i].z || !p->slots[i].scratch)
            goto fail;
        p->free_idx[i] = i;
    }
    p->nfree = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    return 0;
fail:
    for (unsigned i = 0; i < p->n; i++) {
        ZSTD_freeDCtx(p->slots[i].z);
        free(p->slots[i].scratch);
    }
    free(p->slots);
    free(p->free_idx);
    memset(p, 0, sizeof *p);
    return ba_error_set(-ENOMEM, "no memory for decompression contexts");
}

void store_dpool_destroy(struct store_dpool *p)
{
    if (!p->slots)
        return;
    for (unsigned i = 0; i < p->n; i++) {
        ZSTD_freeDCtx(p->slots[i].z);
        free(p->slots[i].scratch);
    }
    free(p->slots);
    free(p->free_idx);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    memset(p, 0, sizeof *p);
}

struct store_dslot *store_dpool_get(struct store_dpool *p)
{
    pthread_mutex_lock(&p->mu);
    while (!p->nfree)
        pthread_cond_wait(&p->cv, &p->mu);
    struct store_dslot *s = &p->slots[p->free_idx[--p->nfree]];
    pthread_mutex_unlock(&p->mu);
    return s;
}

void store_dpool_put(struct store_dpool *p, struct store_dslot *s)
{
    pthread_mutex_lock(&p->mu);
    p->free_idx[p->nfree++] = (unsigned)(s - p->slots);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* ---- compression workers ---------------------------------------------------------------- */

enum { SLOT_FREE = 0, SLOT_BUSY, SLOT_DONE };

struct store_slot {
    int state;
    int rc;
    size_t job;
    struct store_enc enc;
    unsigned char *buf; /* compressed output; kept across batches (no fresh pages) */
    size_t cap;
};

struct store_batch {
    const struct store_array *a;
    const void *const *raws;
    size_t n;
    size_t next_job; /* next block to encode */
    size_t next_put; /* next block the caller puts */
    int abort;       /* stop taking jobs */
    unsigned busy;   /* jobs being encoded */
};

struct worker_arg {
    struct store_workers *w;
    unsigned idx;
};

static void *worker_main(void *arg);

int store_workers_init(struct store_workers *w, unsigned n)
{
    memset(w, 0, sizeof *w);
    w->n = n ? n : 1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv_work, NULL);
    pthread_cond_init(&w->cv_done, NULL);
    return 0;
}

/* Threads start at the first batch (processes that only read never start any). Called
 * under the store's write_lock, so never twice at once. */
static int workers_start(struct store_workers *w)
{
    if (w->started)
        return 0;
    unsigned nslots = 2 * w->n;
    struct worker_arg *args = ba_calloc(w->n, sizeof *args);
    w->threads = ba_calloc(w->n, sizeof *w->threads);
    w->ctxs = ba_calloc(w->n, sizeof *w->ctxs);
    w->slots = ba_calloc(nslots, sizeof *w->slots);
    if (!args || !w->threads || !w->ctxs || !w->slots)
        goto nomem;
    unsigned i;
    for (i = 0; i < w->n; i++) {
        args[i].w = w;
        args[i].idx = i;
        if (pthread_create(&w->threads[i], NULL, worker_main, &args[i]))
            break;
    }
    if (i == 0) {
        free(args);
        free(w->threads);
        free(w->ctxs);
        free(w->slots);
        w->threads = NULL;
        w->ctxs = NULL;
        w->slots = NULL;
        return ba_error_set(-EAGAIN, "cannot start compression workers");
    }
    /* Wait until every thread copied its argument, then free the arguments. */
    pthread_mutex_lock(&w->mu);
    while (w->ready != i)
        pthread_cond_wait(&w->cv_done, &w->mu);
    w->started = i;
    w->nslots = 2 * i;
    pthread_mutex_unlock(&w->mu);
    free(args);
    return 0;
nomem:
    free(args);
    free(w->threads);
    free(w->ctxs);
    free(w->slots);
    w->threads = NULL;
    w->ctxs = NULL;
    w->slots = NULL;
    return ba_error_set(-ENOMEM, "no memory for compression workers");
}

void store_workers_destroy(struct store_workers *w)
{
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_broadcast(&w->cv_work);
        pthread_mutex_unlock(&w->mu);
        for (unsigned i = 0; i < w->started; i++)
            pthread_join(w->threads[i], NULL);
        for (unsigned i = 0; i < w->n; i++)
            store_cctx_free(&w->ctxs[i]);
        for (unsigned i = 0; i < 2 * w->n; i++)
            free(w->slots[i].buf);
    }
    free(w->threads);
    free(w->ctxs);
    free(w->slots);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv_work);
    pthread_cond_destroy(&w->cv_done);
    memset(w, 0, sizeof *w);
}

/* A job is available when the batch has blocks left and the ring has a free slot. */
static int job_ready(const struct store_workers *w)
{
    const struct store_batch *b = w->batch;
    return b && !b->abort && b->next_job < b->n && b->next_job < b->next_put + w->nslots;
}

static void *worker_main(void *arg)
{
    struct worker_arg *wa = arg;
    struct store_workers *w = wa->w;
    unsigned idx = wa->idx;
    pthread_mutex_lock(&w->mu);
    w->ready++;
    pthread_cond_broadcast(&w->cv_done);
    for (;;) {
        while (!w->stop && !job_ready(w))
            pthread_cond_wait(&w->cv_work, &w->mu);
        if (w->stop)
            break;
        struct store_batch *b = w->batch;
        size_t j = b->next_job++;
        struct store_slot *s = &w->slots[j % w->nslots];
        s->state = SLOT_BUSY;
        s->job = j;
        b->busy++;
        pthread_mutex_unlock(&w->mu);

        int rc = store_block_encode(&w->ctxs[idx], b->a, b->raws[j], &s->buf, &s->cap, &s->enc, 1);

        pthread_mutex_lock(&w->mu);
        s->rc = rc;
        s->state = SLOT_DONE;
        b->busy--;
        pthread_cond_broadcast(&w->cv_done);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int store_workers_run(struct store_workers *w, const struct store_array *a, size_t n,
                      const void *const *raws,
                      int (*put)(size_t i, const struct store_enc *enc, void *ctx), void *ctx)
{
    int rc = workers_start(w);
    if (rc)
        return rc;
    struct store_batch b = {.a = a, .raws = raws, .n = n};

    pthread_mutex_lock(&w->mu);
    for (unsigned k = 0; k < w->nslots; k++)
        w->slots[k].state = SLOT_FREE;
    w->batch = &b;
    pthread_cond_broadcast(&w->cv_work);
    for (size_t i = 0; i < n; i++) {
        struct store_slot *s = &w->slots[i % w->nslots];
        while (!(s->state == SLOT_DONE && s->job == i))
            pthread_cond_wait(&w->cv_done, &w->mu);
        pthread_mutex_unlock(&w->mu);
        rc = s->rc;
        if (rc == -ENOMEM)
            rc = ba_error_set(rc, "no memory to compress a block");
        else if (rc)
            rc = ba_error_set(rc, "cannot compress block %zu of the batch", i);
        else
            rc = put(i, &s->enc, ctx);
        pthread_mutex_lock(&w->mu);
        s->state = SLOT_FREE;
        b.next_put = i + 1;
        if (rc) {
            b.abort = 1;
            break;
        }
        pthread_cond_broadcast(&w->cv_work);
    }
    /* No worker may still use the batch once we return. */
    while (b.busy)
        pthread_cond_wait(&w->cv_done, &w->mu);
    w->batch = NULL;
    pthread_mutex_unlock(&w->mu);
    return rc;
}
