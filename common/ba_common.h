/* SPDX-License-Identifier: MIT */
/*
 * Internal helpers shared by store/, pager/ and lib/: the thread-local error
 * detail, the fault-injection seams that tests use to make allocation and store
 * I/O fail, and a few small utilities. Not installed; never included by users.
 */
#ifndef BA_COMMON_H
#define BA_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "bigarray.h"

#if defined(__GNUC__)
#define BA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define BA_LIKELY(x)    __builtin_expect(!!(x), 1)
#define BA_UNLIKELY(x)  __builtin_expect(!!(x), 0)
#else
#define BA_PRINTF(a, b)
#define BA_LIKELY(x)   (x)
#define BA_UNLIKELY(x) (x)
#endif

/* ---- errors --------------------------------------------------------------- */

/* Record a detail message for the calling thread and return code, so a call site
 * stays one line: `return ba_error_set(BA_EINVAL, "bad name '%s'", name);`.
 * Never call from fault context (it formats). */
int ba_error_set(int code, const char *fmt, ...) BA_PRINTF(2, 3);

/* Like ba_error_set() but keeps an existing, more specific message when the code
 * is the same one the message was set for (used when a lower layer already
 * explained the failure and an upper layer only passes the code on). */
int ba_error_pass(int code, const char *fmt, ...) BA_PRINTF(2, 3);

/* Clear the thread's message. */
void ba_error_clear(void);

/* The thread's message (never NULL). */
const char *ba_error_msg(void);

/* ---- fault injection -------------------------------------------------------
 *
 * Every place where store I/O or allocation can fail calls ba_inject(point) first;
 * when a test armed that point, the call returns the armed negative code and the
 * caller fails exactly as if the OS had returned it. Unarmed, the cost is one
 * relaxed atomic load. Points can also be armed from the environment for CLI and
 * Python tests: BIGARRAY_INJECT="point:code:skip:count[,...]" where code is an
 * errno name (ENOSPC, EIO, ENOMEM) or MAP_FULL, skip is how many hits pass first
 * and count how many hits then fail (0 = all).
 */
enum ba_inject_point {
    BA_INJ_ALLOC = 0,     /* ba_malloc/ba_calloc/ba_realloc */
    BA_INJ_STORE_OPEN,    /* opening the environment */
    BA_INJ_STORE_READ,    /* reading a block record */
    BA_INJ_STORE_PUT,     /* putting a record in a write transaction (MAP_FULL => map full) */
    BA_INJ_STORE_COMMIT,  /* committing a write transaction (the fdatasync) */
    BA_INJ_STORE_COMPACT, /* writing the compacted copy */
    BA_INJ_SPILL_WRITE,   /* writing a dirty block to the spill file */
    BA_INJ_SPILL_READ,    /* reading it back */
    BA_INJ_STORE_RESERVE, /* allocating disk ahead of a write transaction (STORE_WRITEMAP) */
    BA_INJ_NPOINTS
};

/* Special code for BA_INJ_STORE_PUT meaning "the LMDB map is full". */
#define BA_INJ_MAP_FULL (-1000000)

int ba_inject_slow(enum ba_inject_point p);
extern int ba_inject_armed; /* nonzero when any point is armed; read relaxed */

static inline int ba_inject(enum ba_inject_point p)
{
    if (BA_LIKELY(!__atomic_load_n(&ba_inject_armed, __ATOMIC_RELAXED)))
        return 0;
    return ba_inject_slow(p);
}

/* Arm point p: after `skip` passing hits, the next `count` hits (0 = all) fail with
 * `code`. Disarm with ba_inject_clear(). */
void ba_inject_arm(enum ba_inject_point p, int code, unsigned skip, unsigned count);
void ba_inject_clear(void);
/* Hits counted at point p since the last arm/clear (armed or not). */
unsigned ba_inject_hits(enum ba_inject_point p);
/* Read BIGARRAY_INJECT (called once by ba_db_open). Returns 0 or BA_EINVAL. */
int ba_inject_from_env(void);
const char *ba_inject_point_name(enum ba_inject_point p);

/* ---- allocation through the seam ------------------------------------------ */
void *ba_malloc(size_t n);
void *ba_calloc(size_t n, size_t size);
void *ba_realloc(void *p, size_t n);
char *ba_strdup(const char *s);

/* ---- small utilities ------------------------------------------------------ */
uint64_t ba_now_ns(void); /* CLOCK_MONOTONIC */
static inline int ba_is_pow2(uint64_t x)
{
    return x && !(x & (x - 1));
}
/* Parse a size with an optional K/M/G/T suffix (binary: 2M = 2097152) into *out.
 * Returns 0 or BA_EINVAL. */
int ba_parse_size(const char *text, uint64_t *out);

#endif /* BA_COMMON_H */
