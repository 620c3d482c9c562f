/* SPDX-License-Identifier: MIT */
/*
 * Chunk views one chunk ahead (see stream.h). One slot: the helper fills it with the
 * next chunk's preloaded view and waits until the caller took it; the caller takes
 * it and signals. So at most two chunks are mapped at a time (the caller's and the
 * slot's), each at most a quarter of the RAM budget (cli_chunk_bytes()).
 *
 *   helper                          caller
 *   make + preload view k           ...
 *   wait until slot empty           stream_next(): wait until slot full
 *   put view k, signal      ----->  take view k, signal; work on k
 *   make + preload view k+1         ...
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "stream.h"

static void *helper(void *arg)
{
    struct stream *st = arg;
    int64_t n = sel_nchunks(st->sel);
    for (;;) {
        pthread_mutex_lock(&st->mu);
        int64_t k = st->next_k;
        int stop = st->stop;
        pthread_mutex_unlock(&st->mu);
        if (stop || k >= n)
            return NULL;
        ba_view v;
        int rc = sel_view(st->sel, st->a, k, st->view_flags, &v);
        if (rc == 0 && (rc = ba_view_preload(&v, st->preload_flags)) != 0)
            ba_view_release(&v);
        pthread_mutex_lock(&st->mu);
        if (rc) {
            const char *m = ba_errmsg();
            snprintf(st->msg, sizeof st->msg, "%s", (m && *m) ? m : ba_strerror(rc));
            st->err = rc;
            pthread_cond_broadcast(&st->cv);
            pthread_mutex_unlock(&st->mu);
            return NULL;
        }
        while (st->full && !st->stop)
            pthread_cond_wait(&st->cv, &st->mu);
        if (st->stop) {
            pthread_mutex_unlock(&st->mu);
            ba_view_release(&v);
            return NULL;
        }
        st->slot = v;
        st->full = 1;
        st->next_k = k + 1;
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
    }
}

void stream_start(struct stream *st, const struct sel *s, ba_array *a, unsigned view_flags,
                  unsigned preload_flags)
{
    memset(st, 0, sizeof *st);
    st->sel = s;
    st->a = a;
    st->view_flags = view_flags;
    st->preload_flags = preload_flags;
    pthread_mutex_init(&st->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->cv, &ca);
    pthread_condattr_destroy(&ca);
    /* The helper inherits this mask: stop signals go to the main thread. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = pthread_create(&st->thread, NULL, helper, st);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&st->cv);
        pthread_mutex_destroy(&st->mu);
        return;
    }
    st->started = 1;
}

/* Without a helper: make the next view here. */
static int next_inline(struct stream *st, ba_view *out)
{
    if (st->err)
        return st->err;
    if (st->next_k >= sel_nchunks(st->sel))
        return 1;
    if (cli_stop_signal)
        return -EINTR;
    int rc = sel_view(st->sel, st->a, st->next_k, st->view_flags, out);
    if (rc == 0 && (rc = ba_view_preload(out, st->preload_flags)) != 0)
        ba_view_release(out);
    if (rc) {
        const char *m = ba_errmsg();
        snprintf(st->msg, sizeof st->msg, "%s", (m && *m) ? m : ba_strerror(rc));
        st->err = rc;
        return rc;
    }
    st->next_k++;
    return 0;
}

int stream_next(struct stream *st, ba_view *out)
{
    if (!st->started)
        return next_inline(st, out);
    int64_t n = sel_nchunks(st->sel);
    pthread_mutex_lock(&st->mu);
    for (;;) {
        if (st->full) {
            *out = st->slot;
            st->full = 0;
            pthread_cond_broadcast(&st->cv);
            pthread_mutex_unlock(&st->mu);
            return 0;
        }
        if (st->err) {
            int rc = st->err;
            pthread_mutex_unlock(&st->mu);
            return rc;
        }
        if (st->next_k >= n) {
            pthread_mutex_unlock(&st->mu);
            return 1;
        }
        if (cli_stop_signal) {
            pthread_mutex_unlock(&st->mu);
            return -EINTR;
        }
        /* Wake up now and then to notice a stop signal. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000 * 1000 * 1000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000 * 1000 * 1000;
        }
        pthread_cond_timedwait(&st->cv, &st->mu, &ts);
    }
}

void stream_stop(struct stream *st)
{
    if (!st->started)
        return;
    pthread_mutex_lock(&st->mu);
    st->stop = 1;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->thread, NULL);
    if (st->full)
        ba_view_release(&st->slot);
    st->full = 0;
    st->started = 0;
    pthread_cond_destroy(&st->cv);
    pthread_mutex_destroy(&st->mu);
}
