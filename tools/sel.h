/* SPDX-License-Identifier: MIT */
/*
 * Selections: a slice of an array, walked chunk by chunk. A command that streams
 * over data far bigger than RAM (import, export, stats) never maps it all at once:
 * it cuts the selection along one axis (the slowest-varying axis of the order it
 * walks in) into chunks of about chunk_bytes, makes a view of each chunk, preloads
 * it (so a load error is a return code, not a SIGBUS), walks it and releases it.
 *
 * A chunk's view comes from the user's slice with the item that produces the chunk
 * axis narrowed to the chunk's range, so the library maps only that chunk's blocks.
 * To do that the user's slice is first made explicit: the ellipsis expanded, every
 * axis named, every range normalised to (start, step, length) numpy's way.
 */
#ifndef BA_SEL_H
#define BA_SEL_H

#include <stdint.h>

#include "bigarray.h"

#define SEL_MAX_ITEMS (2 * BA_MAX_DIMS + 1)

struct sel {
    int ndim;                   /* of the selection */
    int64_t shape[BA_MAX_DIMS]; /* of the selection */
    uint32_t itemsize;
    uint64_t nelems, nbytes; /* of the selection */
    int axis;                /* selection axis cut into chunks; -1 when ndim == 0 */
    int64_t per_chunk;       /* indices along axis per chunk (>= 1) */
    int nitems;
    ba_slice items[SEL_MAX_ITEMS]; /* explicit: no ellipsis, every array axis named */
    int item;                      /* index in items of the chunk axis' item, or -1 */
    int64_t start, step;           /* that item's range, normalised (absolute indices) */
};

/*
 * Prepare to walk the slice text (NULL or "" = everything) of the array described
 * by info, cut along the selection's first axis (order 'C') or last axis (order 'F')
 * into chunks of about chunk_bytes. Returns 0, or a library code (BA_EINVAL for
 * slice text that does not parse, BA_ERANGE for an index out of range) with the
 * library's message available from ba_errmsg().
 */
int sel_init(struct sel *s, const ba_array_info *info, const char *text, char order,
             uint64_t chunk_bytes);

/* Number of chunks (0 for an empty selection). */
int64_t sel_nchunks(const struct sel *s);

/* A view of chunk k (indices [k*per_chunk, ...) along the axis). Returns what
 * ba_array_view() returns; checks that the library's view has the expected shape. */
int sel_view(const struct sel *s, ba_array *a, int64_t k, unsigned flags, ba_view *out);

/* Walk the elements of a view in order 'C' or 'F', calling fn for every run of
 * elements that lie at a constant stride: fn(ctx, first, stride, count). Adjacent
 * axes that are contiguous are merged into one run. Stops at fn's first nonzero
 * return and returns it. */
typedef int (*sel_run_fn)(void *ctx, unsigned char *p, int64_t stride, int64_t n);
int sel_walk(const ba_view *v, char order, sel_run_fn fn, void *ctx);

/* Nonzero when the view's elements fill [data, data + size*itemsize) in order. */
int sel_view_contiguous(const ba_view *v, char order);

#endif /* BA_SEL_H */
