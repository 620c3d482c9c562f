/* SPDX-License-Identifier: MIT */
/*
 * The zero-copy suites' fixture (check_pager_direct.c, check_pager_pieces.c). The fake
 * file is a real temporary file: a 4 KiB header (so blocks sit at page-aligned, not
 * block-aligned, offsets, as in LMDB's data.mdb), then one region per "version" (the
 * snapshot a session would read) holding every block's pattern. ops.locate returns the
 * current version's offset and a checksum of the bytes as written; ops.verify recomputes
 * it over what the pager mapped; ops.load copies from the file and checks the same
 * checksum (as store/ does), so a damaged byte is an error on either path. Blocks can be
 * made unmappable (locate refuses) and locate can be paused; with dfile_pieces() the file
 * also offers piece sums (ops.verify_piece). Included once per suite.
 */
#ifndef BA_TEST_PAGER_DIRECT_FIXTURE_H
#define BA_TEST_PAGER_DIRECT_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ba_common.h"
#include "pager.h"
#include "testutil.h"

/* The sanitizers' own SEGV handlers would take the pager's faults (see check_pager.c). */
#define TEST_EXPORT __attribute__((visibility("default"), used))
TEST_EXPORT const char *__asan_default_options(void);
TEST_EXPORT const char *__asan_default_options(void)
{
    return "handle_segv=0";
}
TEST_EXPORT const char *__tsan_default_options(void);
TEST_EXPORT const char *__tsan_default_options(void)
{
    return "handle_segv=0";
}

#define BS   (64u << 10) /* block size of most tests */
#define NBLK 32u         /* blocks in the fake file */
#define HDR  4096u       /* bytes before the first region */
#define NVER 2u          /* versions (regions) in the file */

/* ---- the fake file ------------------------------------------------------------------- */

struct dfile {
    char *dir, *path;
    int fd;
    uint32_t bs;
    uint64_t nblk;
    int zero;                          /* every block is zeros (a sparse file): for many blocks */
    unsigned version;                  /* 1..NVER: the region locate and load read */
    uint64_t *sums;                    /* [version-1][blkno] checksum of the bytes as written */
    uint64_t nomap;                    /* bit n: locate refuses block n (n < 64) */
    unsigned locates, verifies, loads; /* calls (atomic) */
    unsigned pshift;                   /* pieces: locate says so (dfile_pieces) */
    uint64_t *psums;                   /* [region][piece] checksum of each piece */
    const unsigned char *map;          /* the whole file, as verify_piece reads it */
    size_t map_len;
    unsigned pverifies; /* ops.verify_piece calls (atomic) */
    unsigned pbad;      /* of those, with a wrong tag, shift or piece (atomic; fault
                           context cannot assert: checked by dfile_destroy) */
    int64_t pause_blk;  /* a locate of this block waits for `go` */
    int paused, go;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static inline uint64_t pattern(unsigned version, uint64_t blkno, uint64_t word)
{
    return ((uint64_t)version << 56) ^ (blkno << 24) ^ word ^ 0x5a5a5a5aull;
}

static inline uint64_t checksum(const void *p, size_t n)
{
    const uint64_t *w = p;
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n / 8; i++)
        h = (h ^ w[i]) * 0x100000001b3ull + (h >> 29);
    return h;
}

/* checksum() of bytes read through the fixture's own read-only mapping of the file, which
 * no thread writes: outside ThreadSanitizer's view, whose shadow of every word read
 * would otherwise grow to twice the gigabytes the pieces tests check (and the TSan
 * build of check_pager_pieces to the machine's whole RAM). */
__attribute__((no_sanitize("thread"))) static inline uint64_t checksum_file(const void *p, size_t n)
{
    const uint64_t *w = p; /* checksum()'s loop: a sanitized callee would not inline here */
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n / 8; i++)
        h = (h ^ w[i]) * 0x100000001b3ull + (h >> 29);
    return h;
}

static inline uint64_t region_off(const struct dfile *d, unsigned version, uint64_t blkno)
{
    return d->zero ? HDR + blkno * d->bs : HDR + ((version - 1) * d->nblk + blkno) * d->bs;
}

static inline void dfile_init(struct dfile *d, uint32_t bs, uint64_t nblk, int zero)
{
    memset(d, 0, sizeof *d);
    d->dir = tu_mkdtemp("pg-direct");
    d->path = tu_path(d->dir, "blocks");
    d->fd = open(d->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(d->fd, 0);
    d->bs = bs;
    d->nblk = nblk;
    d->zero = zero;
    d->version = 1;
    d->pause_blk = -1;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    unsigned nver = zero ? 1 : NVER;
    d->sums = calloc(nver * nblk, sizeof *d->sums);
    uint64_t *buf = malloc(bs);
    if (zero) {
        ck_assert_int_eq(ftruncate(d->fd, (off_t)(HDR + nblk * bs)), 0);
        memset(buf, 0, bs);
        for (uint64_t b = 0; b < nblk; b++)
            d->sums[b] = checksum(buf, bs);
    } else {
        for (unsigned v = 1; v <= nver; v++)
            for (uint64_t b = 0; b < nblk; b++) {
                for (uint64_t i = 0; i < bs / 8; i++)
                    buf[i] = pattern(v, b, i);
                d->sums[(v - 1) * nblk + b] = checksum(buf, bs);
                ck_assert_int_eq(pwrite(d->fd, buf, bs, (off_t)region_off(d, v, b)), (ssize_t)bs);
            }
    }
    free(buf);
}

/* Offer pieces of 2^pshift bytes: locate names them, verify_piece checks one (through a
 * mapping of the whole file, as store/ reads through LMDB's) against the sum of the
 * bytes as written (computed here from the file). */
static inline void dfile_pieces(struct dfile *d, unsigned pshift)
{
    uint64_t nreg = d->zero ? d->nblk : NVER * d->nblk, np = d->bs >> pshift;
    size_t ps = (size_t)1 << pshift;
    d->pshift = pshift;
    d->psums = calloc(nreg * np, sizeof *d->psums);
    unsigned char *buf = malloc(ps);
    for (uint64_t r = 0; r < nreg; r++)
        for (uint64_t i = 0; i < np; i++) {
            if (d->zero && r) {
                d->psums[r * np + i] = d->psums[i];
                continue;
            }
            ck_assert_int_eq(pread(d->fd, buf, ps, (off_t)(HDR + r * d->bs + i * ps)), (ssize_t)ps);
            d->psums[r * np + i] = checksum(buf, ps);
        }
    free(buf);
    d->map_len = (size_t)(HDR + nreg * d->bs);
    void *m = mmap(NULL, d->map_len, PROT_READ, MAP_SHARED, d->fd, 0);
    ck_assert_ptr_ne(m, MAP_FAILED);
    d->map = m;
}

static inline void dfile_destroy(struct dfile *d)
{
    ck_assert_uint_eq(__atomic_load_n(&d->pbad, __ATOMIC_SEQ_CST), 0);
    if (d->map)
        munmap((void *)(uintptr_t)d->map, d->map_len);
    close(d->fd);
    free(d->sums);
    free(d->psums);
    free(d->path);
    tu_rmtree(d->dir);
}

static inline uint64_t dfile_sum(const struct dfile *d, unsigned version, uint64_t blkno)
{
    return d->sums[(d->zero ? 0 : (version - 1) * d->nblk) + blkno];
}

static inline int d_locate(void *ctx, uint64_t blkno, struct pager_extent *out)
{
    struct dfile *d = ctx;
    __atomic_fetch_add(&d->locates, 1, __ATOMIC_SEQ_CST);
    unsigned v = __atomic_load_n(&d->version, __ATOMIC_SEQ_CST);
    if ((int64_t)blkno == __atomic_load_n(&d->pause_blk, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&d->mu);
        d->paused++;
        pthread_cond_broadcast(&d->cv);
        while (!d->go)
            pthread_cond_wait(&d->cv, &d->mu);
        d->go = 0;
        pthread_mutex_unlock(&d->mu);
    }
    if (blkno < 64 && (__atomic_load_n(&d->nomap, __ATOMIC_SEQ_CST) >> blkno & 1))
        return -EAGAIN;
    out->fd = d->fd;
    out->off = region_off(d, v, blkno);
    out->tag = dfile_sum(d, v, blkno);
    out->piece_shift = d->pshift;
    out->piece_tag = ~blkno;
    return 0;
}

static inline int d_verify_piece(void *ctx, uint64_t blkno, const struct pager_extent *e,
                                 unsigned i)
{
    struct dfile *d = ctx;
    __atomic_fetch_add(&d->pverifies, 1, __ATOMIC_SEQ_CST);
    uint64_t region = (e->off - HDR) / d->bs, np = d->bs >> d->pshift;
    size_t ps = (size_t)1 << d->pshift;
    if (e->piece_tag != ~blkno || e->piece_shift != d->pshift || i >= np ||
        e->off + (i + 1) * ps > d->map_len) {
        __atomic_fetch_add(&d->pbad, 1, __ATOMIC_SEQ_CST);
        return -EINVAL;
    }
    return checksum_file(d->map + e->off + i * ps, ps) == d->psums[region * np + i] ? 0
                                                                                    : BA_ECORRUPT;
}

static inline int d_verify(void *ctx, uint64_t blkno, const void *p, uint64_t tag)
{
    struct dfile *d = ctx;
    (void)blkno;
    __atomic_fetch_add(&d->verifies, 1, __ATOMIC_SEQ_CST);
    return checksum(p, d->bs) == tag ? 0 : BA_ECORRUPT;
}

static inline int d_load(void *ctx, uint64_t blkno, void *buf)
{
    struct dfile *d = ctx;
    __atomic_fetch_add(&d->loads, 1, __ATOMIC_SEQ_CST);
    unsigned v = __atomic_load_n(&d->version, __ATOMIC_SEQ_CST);
    if (pread(d->fd, buf, d->bs, (off_t)region_off(d, v, blkno)) != (ssize_t)d->bs)
        return -EIO;
    return checksum(buf, d->bs) == dfile_sum(d, v, blkno) ? 0 : BA_ECORRUPT;
}

static const struct pager_ops d_ops = {.load = d_load, .locate = d_locate, .verify = d_verify};
static const struct pager_ops d_ops_pieces = {
    .load = d_load, .locate = d_locate, .verify = d_verify, .verify_piece = d_verify_piece};

static inline unsigned cnt(const unsigned *c)
{
    return __atomic_load_n(c, __ATOMIC_SEQ_CST);
}

/* Flip one byte of block blkno's current bytes in the file. */
static inline void dfile_damage(struct dfile *d, uint64_t blkno)
{
    off_t off = (off_t)region_off(d, d->version, blkno) + 1000;
    unsigned char c;
    ck_assert_int_eq(pread(d->fd, &c, 1, off), 1);
    c ^= 0x20;
    ck_assert_int_eq(pwrite(d->fd, &c, 1, off), 1);
}

/* ---- helpers ------------------------------------------------------------------------- */

/* A SIGSEGV pager; mem: the memory the process may use (pager_opts.mem_limit, 0 = this
 * machine's; the DIRECT cap is mem - ram, at least mem / 8). */
static inline struct pager *mkpager_mem_opts(uint64_t ram, uint64_t mem, int readahead,
                                             int zerocopy, unsigned slots)
{
    struct pager_opts o;
    pager_opts_init(&o);
    o.ram_limit = ram;
    o.mem_limit = mem;
    o.backend = PAGER_BACKEND_SIGSEGV;
    o.readahead = readahead;
    o.zerocopy = zerocopy;
    o.direct_slots = slots;
    struct pager *pg;
    ck_assert_int_eq(pager_create(&o, &pg), 0);
    return pg;
}

static inline struct pager *mkpager_opts(uint64_t ram, int readahead, int zerocopy, unsigned slots)
{
    return mkpager_mem_opts(ram, 0, readahead, zerocopy, slots);
}

static inline struct pager *mkpager_mem(uint64_t ram, uint64_t mem, int readahead)
{
    return mkpager_mem_opts(ram, mem, readahead, 1, 0);
}

static inline struct pager *mkpager(uint64_t ram, int readahead)
{
    struct pager *pg = mkpager_opts(ram, readahead, 1, 0);
    ck_assert(pager_zerocopy(pg));
    return pg;
}

static inline struct pager_file *mkfile(struct pager *pg, struct dfile *d)
{
    struct pager_file *f;
    ck_assert_int_eq(pager_file_open(pg, d->bs, d->pshift ? &d_ops_pieces : &d_ops, d, &f), 0);
    return f;
}

static inline struct pager_mapping *mkmap(struct pager_file *f, uint64_t first, uint64_t n)
{
    struct pager_mapping *m;
    ck_assert_int_eq(pager_map(f, first, n, 0, &m), 0);
    return m;
}

static inline char *blk_addr(struct pager_mapping *m, uint64_t i, uint32_t bs)
{
    return (char *)pager_mapping_addr(m) + i * bs;
}

static inline struct pager_block_info info(struct pager_file *f, uint64_t blk)
{
    struct pager_block_info bi;
    pager_block_info_get(f, blk, &bi);
    return bi;
}

#define EXPECT_BLK(f, blk, st, nmap, wr)                                                           \
    do {                                                                                           \
        struct pager_block_info bi_ = info((f), (blk));                                            \
        ck_assert_msg(bi_.state == (st) && bi_.nmapped == (unsigned)(nmap) &&                      \
                          bi_.writable == (wr),                                                    \
                      "block %llu: state %d nmapped %u writable %d, want %d %u %d",                \
                      (unsigned long long)(blk), bi_.state, bi_.nmapped, bi_.writable, (st),       \
                      (unsigned)(nmap), (wr));                                                     \
    } while (0)

static inline ba_pager_stat stats(struct pager *pg)
{
    ba_pager_stat st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    pager_stat_get(pg, &st);
    return st;
}

static inline uint64_t rd(const void *p)
{
    return *(const volatile uint64_t *)p;
}

static inline void wr(void *p, uint64_t v)
{
    *(volatile uint64_t *)p = v;
}

/* Every 97th word and the last of the block at p hold version's pattern. */
static inline int block_is(const void *p, uint32_t bs, unsigned version, uint64_t blkno)
{
    const volatile uint64_t *w = p;
    for (uint64_t i = 0; i < bs / 8; i += 97)
        if (w[i] != pattern(version, blkno, i))
            return 0;
    return w[bs / 8 - 1] == pattern(version, blkno, bs / 8 - 1);
}

static inline void teardown(struct pager *pg, struct pager_file *f, struct pager_mapping *m)
{
    pager_unmap(m);
    pager_check(pg);
    pager_file_close(f);
    pager_check(pg);
    pager_destroy(pg);
}

#endif
