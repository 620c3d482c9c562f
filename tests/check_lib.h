/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the lib/ Check suites (check_lib_*.c): a database in a fresh
 * temporary directory opened with a chosen pager backend, arrays made in one call,
 * element access through views, and the backend loop (every test that touches
 * memory runs once per backend: tcase_add_loop_test(tc, fn, 0, TL_NBACKENDS)).
 */
#ifndef CHECK_LIB_H
#define CHECK_LIB_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bigarray.h"
#include "testutil.h"

#define TL_NBACKENDS 2

static inline int tl_backend(int i)
{
    return i == 0 ? BA_PAGER_UFFD : BA_PAGER_SIGSEGV;
}

#define TL_OK(expr)                                                                                \
    do {                                                                                           \
        int tl_rc_ = (expr);                                                                       \
        ck_assert_msg(tl_rc_ == 0, "%s: %d %s (%s)", #expr, tl_rc_, ba_strerror(tl_rc_),           \
                      ba_errmsg());                                                                \
    } while (0)

#define TL_FAILS(expr, code)                                                                       \
    do {                                                                                           \
        int tl_rc_ = (expr);                                                                       \
        ck_assert_msg(tl_rc_ == (code), "%s: expected %s, got %d %s (%s)", #expr,                  \
                      ba_strerror(code), tl_rc_, ba_strerror(tl_rc_), ba_errmsg());                \
    } while (0)

struct tl_db {
    char *dir;  /* temporary directory (removed by tl_db_close) */
    char *path; /* the database directory inside it */
    ba_db *db;
    int backend;
};

static inline void tl_db_reopen(struct tl_db *t, unsigned flags, uint64_t ram_limit)
{
    ba_db_options o;
    ba_db_options_init(&o);
    o.flags = flags;
    o.pager = t->backend;
    o.ram_limit = ram_limit;
    o.map_size = 1ull << 30;
    o.spill_dir = t->dir;
    TL_OK(ba_db_open(t->path, &o, &t->db));
}

/* Open a fresh database; ram_limit 0 = 64 MiB. */
static inline void tl_db_open(struct tl_db *t, const char *tag, int backend_index,
                              uint64_t ram_limit)
{
    t->dir = tu_mkdtemp(tag);
    t->path = tu_path(t->dir, "db");
    t->backend = tl_backend(backend_index);
    tl_db_reopen(t, BA_DB_CREATE | BA_DB_NOSYNC, ram_limit ? ram_limit : 64ull << 20);
}

/* Cross-process tests. The writer is this test program run afresh (exec'ed: a fork
 * child of a multi-threaded process may not start threads under ThreadSanitizer, and a
 * pager needs them) as "PROG --writer PATH BACKEND"; its main() passes those to the
 * test's writer function, which opens what it writes with tl_writer_open(). Waits for
 * it and asserts that it exited 0. */
static inline void tl_run_writer(const char *prog, const struct tl_db *t)
{
    char backend[16];
    snprintf(backend, sizeof backend, "%d", t->backend);
    fflush(stdout);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl("/proc/self/exe", prog, "--writer", t->path, backend, (char *)NULL);
        _exit(127);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}

/* In a writer process: open the database at path (BA_DB_NOSYNC, the given backend), a
 * session and its array "a". Returns 0, or 2 (the writer's exit code) on failure. */
static inline int tl_writer_open(const char *path, int backend, ba_db **db, ba_session **s,
                                 ba_array **a)
{
    ba_db_options o;
    ba_db_options_init(&o);
    o.pager = backend;
    o.flags = BA_DB_NOSYNC;
    if (ba_db_open(path, &o, db) || ba_session_begin(*db, s) || ba_array_open(*s, "a", a))
        return 2;
    return 0;
}

static inline void tl_db_close(struct tl_db *t)
{
    ba_db_close(t->db);
    t->db = NULL;
    free(t->path);
    tu_rmtree(t->dir);
}

/* Create array `name` of dtype text, order and block size (0 = 4096). */
static inline ba_array *tl_create(ba_session *s, const char *name, const char *dtype, char order,
                                  uint32_t block_size, int ndim, const int64_t *shape)
{
    ba_array_spec sp;
    ba_array_spec_init(&sp);
    TL_OK(ba_dtype_parse(dtype, &sp.dtype));
    sp.order = order;
    sp.block_size = block_size ? block_size : 4096;
    sp.ndim = ndim;
    memcpy(sp.shape, shape, (size_t)ndim * sizeof *shape);
    ba_array *a = NULL;
    TL_OK(ba_array_create(s, name, &sp, &a));
    return a;
}

/* Pointer to the element at linear index i (C order over the view's shape). */
static inline void *tl_elem(const ba_view *v, uint64_t i)
{
    char *p = v->data;
    for (int k = v->ndim - 1; k >= 0; k--) {
        uint64_t n = (uint64_t)v->shape[k];
        p += (int64_t)(i % n) * v->strides[k];
        i /= n;
    }
    return p;
}

/* A whole-array view. */
static inline ba_view tl_view(ba_array *a, const char *slices)
{
    ba_view v;
    TL_OK(ba_array_view_text(a, slices, 0, &v));
    return v;
}

static inline ba_array_info tl_info(ba_array *a)
{
    ba_array_info info;
    info.size = sizeof info;
    TL_OK(ba_array_info_get(a, &info));
    return info;
}

/* The value stored at linear byte position `pos` by tl_fill_pattern (never 0 unless
 * seed is 0). */
static inline uint8_t tl_pattern(uint64_t pos, uint64_t seed)
{
    uint64_t z = pos * 0x9e3779b97f4a7c15ull + seed;
    z ^= z >> 29;
    return (uint8_t)(z | 1);
}

/* Fill a whole-array u1 view (or the bytes of any contiguous view) with the pattern. */
static inline void tl_fill_bytes(void *p, uint64_t n, uint64_t first_pos, uint64_t seed)
{
    uint8_t *b = p;
    for (uint64_t i = 0; i < n; i++)
        b[i] = tl_pattern(first_pos + i, seed);
}

#endif
