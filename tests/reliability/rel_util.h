/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the reliability programs (tests/reliability/): failing loudly
 * with the library's message, skipping with a reason (exit 77), the common command
 * line (--long, --seed, --backend), temporary directories on a disk filesystem, a
 * seeded generator, clocks, and running a function in a child process whose crash
 * is a finding rather than the end of the test.
 */
#ifndef BA_REL_UTIL_H
#define BA_REL_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "bigarray.h"

/* Print "FAIL file:line: message" and exit 1. */
_Noreturn void rel_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Print "SKIP: reason" and exit 77 (ctest counts it as skipped, never passed). */
_Noreturn void rel_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define REL_FAIL(...) rel_fail_at(__FILE__, __LINE__, __VA_ARGS__)

#define REL_CHECK(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            rel_fail_at(__FILE__, __LINE__, __VA_ARGS__);                                          \
    } while (0)

/* expr must return 0; otherwise fail naming the code and the library's message. */
#define REL_OK(expr)                                                                               \
    do {                                                                                           \
        int rel_rc_ = (expr);                                                                      \
        if (rel_rc_)                                                                               \
            rel_fail_at(__FILE__, __LINE__, "%s: %d %s (%s)", #expr, rel_rc_,                      \
                        ba_strerror(rel_rc_), ba_errmsg());                                        \
    } while (0)

/* The options every stress program takes. */
struct rel_opts {
    int long_mode;     /* --long, or BA_REL_LONG=1 in the environment */
    uint64_t seed;     /* --seed N (default: a fixed per-program seed) */
    int backend;       /* --backend uffd|sigsegv (BA_PAGER_*; 0 = both where it applies) */
    double seconds;    /* --seconds S (0 = the program's default for the mode) */
    const char *extra; /* the first argument the common parser did not know, or NULL */
};

/* Parse argv into o (o->seed must hold the program's default seed). Prints usage and
 * exits 2 on a bad option; `usage` names the program's own options. */
void rel_parse_args(int argc, char **argv, struct rel_opts *o, const char *usage);

/* The backend's name ("uffd", "sigsegv"). */
const char *rel_backend_name(int backend);

/* A fresh directory for a test's database and spill files: under BA_REL_TMPDIR if set,
 * else /var/tmp (a disk filesystem on Debian, unlike a tmpfs /tmp whose pages count as
 * memory). Returns a malloc'd path; fails the test if it cannot be made. */
char *rel_mkdtemp(const char *tag);
/* Remove a directory tree (best effort) and free the path. NULL ok. */
void rel_rmtree(char *path);
/* dir + "/" + name, malloc'd. */
char *rel_path(const char *dir, const char *name);
/* Free bytes of the filesystem holding path (0 if unknown). */
uint64_t rel_free_bytes(const char *path);
/* Nonzero when path lies on a tmpfs/ramfs (whose pages are memory). */
int rel_on_tmpfs(const char *path);

/* splitmix64. */
static inline uint64_t rel_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* Uniform in [0, n) (n > 0). */
static inline uint64_t rel_below(uint64_t *state, uint64_t n)
{
    return rel_rand(state) % n;
}

double rel_now(void); /* CLOCK_MONOTONIC seconds */

/* Open (or create) the database at path with the given backend (BA_PAGER_*), RAM
 * budget (0 = 64 MiB) and spill directory; flags are BA_DB_*. */
ba_db *rel_db_open(const char *path, unsigned flags, int backend, uint64_t ram_limit,
                   const char *spill_dir);

/* Wait for pid; returns its raw wait status. */
int rel_wait(pid_t pid);
/* Describe a wait status ("exit 3", "signal 11 (Segmentation fault)") into buf. */
const char *rel_status_str(int status, char *buf, size_t n);

/* Run fn(ctx) in a forked child with `timeout_s` seconds of alarm; returns the wait
 * status. The child exits with fn's return value. */
int rel_run_child(int (*fn)(void *ctx), void *ctx, unsigned timeout_s);

/* Nonzero when built with ASan or TSan (the programs scale their work down). */
int rel_sanitized(void);

#endif
