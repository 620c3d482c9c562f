/* SPDX-License-Identifier: MIT */
/*
 * Chunk views of a selection, one chunk ahead: a helper thread makes and preloads the
 * view of chunk k+1 while the caller works on chunk k, so the library's block loads
 * (decompression, checksums) overlap the caller's copying or arithmetic. The library
 * allows several threads of one session to make views and read through them.
 *
 * The helper blocks SIGINT, SIGTERM and SIGHUP, so those reach the main thread; a
 * caller waiting in stream_next() returns -EINTR when cli_stop_signal is set. Errors
 * of the helper (a block that cannot be loaded) are returned by stream_next() with
 * the library's message copied into the stream, since ba_errmsg() is per thread.
 */
#ifndef BA_STREAM_H
#define BA_STREAM_H

#include <pthread.h>

#include "sel.h"

struct stream {
    const struct sel *sel;
    ba_array *a;
    unsigned view_flags, preload_flags;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu: */
    int full; /* slot holds the view of chunk `slot_k` */
    ba_view slot;
    int64_t next_k; /* the chunk the helper makes next */
    int err;        /* the helper stopped on this library code */
    int stop;       /* the caller wants the helper to end */
    char msg[1024];
};

/* Start streaming the chunks of s from array a. If the helper thread cannot be
 * started, stream_next() makes each view itself when asked (no overlap, same
 * results). A zeroed struct stream may be passed to stream_stop(). */
void stream_start(struct stream *st, const struct sel *s, ba_array *a, unsigned view_flags,
                  unsigned preload_flags);
/* The next chunk's view, preloaded, in *out (release it with ba_view_release()).
 * Returns 0, 1 after the last chunk, -EINTR when a stop signal arrived, or a library
 * code with the message in st->msg. */
int stream_next(struct stream *st, ba_view *out);
/* Stop the helper and release what it made. Accepts a stream that was not started. */
void stream_stop(struct stream *st);

#endif /* BA_STREAM_H */
