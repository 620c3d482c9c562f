/* SPDX-License-Identifier: MIT */
/*
 * The pager suites' fixture (check_pager.c, check_pager_memory.c): a fake file whose
 * ops.load fills block n with a known pattern, counts its calls, and can be made to
 * fail, to sleep, to wait on a rendezvous, or to pause until released; pager, file and
 * mapping makers; the state-table and protection checks. Included once per suite.
 */
#ifndef BA_TEST_PAGER_FIXTURE_H
#define BA_TEST_PAGER_FIXTURE_H

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
#include <time.h>
#include <unistd.h>

#include "ba_common.h"
#include "pager.h"
#include "pager_internal.h" /* PAGER_PREFILL */
#include "testutil.h"

/* Sanitizers. The must-crash tests check that the pager passes faults that are not its
 * own to the previous SIGSEGV handler and that the default action (death by SIGSEGV,
 * a core) follows; ASan's and TSan's own SEGV handlers would turn that into a report
 * and exit(1)/exit(66). Memory errors and races are still caught by instrumentation.
 * TSan cannot see the kernel's ordering between a userfaultfd service thread and the
 * thread it wakes: pager_uffd.c releases pager_tsan_uffd_sync before each wake, and
 * the accesses here acquire it (see tsan_sync()). */
#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(TEST_TSAN)
#define TEST_SANITIZED 1
#endif
/* Read by the sanitizer runtimes (shared libraries): must be exported despite the
 * project's -fvisibility=hidden. */
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
#ifdef TEST_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char pager_tsan_uffd_sync;
static inline void tsan_sync(void)
{
    __tsan_acquire(&pager_tsan_uffd_sync);
    __tsan_release(&pager_tsan_uffd_sync);
}
#else
static inline void tsan_sync(void)
{
}
#endif

#define BS  (64u << 10) /* block size of most tests */
#define NWD (BS / 8)    /* words per block */

/* ---- the fake file ------------------------------------------------------------------------ */

struct fake {
    uint32_t bs;
    unsigned calls;         /* ops.load calls (atomic) */
    unsigned calls_blk[64]; /* per block, blocks < 64 */
    unsigned version;       /* salt of the pattern: the "snapshot" */
    int64_t fail_blk;       /* this block fails with fail_code (-1: none) */
    int fail_code;
    unsigned sleep_ms; /* each load sleeps this long */
    /* rendezvous: loads wait until `rv_need` loads are inside (or time out -> error) */
    unsigned rv_need, rv_in;
    /* pause: a load of pause_blk announces itself and waits for `go` */
    int64_t pause_blk;
    int paused, go;
    int touch_mapping; /* load touches this address (must crash) */
    volatile char *touch;
    int set_errno; /* load sets errno to this */
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static inline uint64_t pattern(unsigned version, uint64_t blkno, uint64_t word)
{
    return ((uint64_t)version << 56) ^ (blkno << 24) ^ word ^ 0x5a5a5a5aull;
}

static inline void fake_init(struct fake *fk, uint32_t bs)
{
    memset(fk, 0, sizeof *fk);
    fk->bs = bs;
    fk->version = 1;
    fk->fail_blk = -1;
    fk->pause_blk = -1;
    pthread_mutex_init(&fk->mu, NULL);
    pthread_cond_init(&fk->cv, NULL);
}

static inline int fake_load(void *ctx, uint64_t blkno, void *buf)
{
    struct fake *fk = ctx;
    __atomic_fetch_add(&fk->calls, 1, __ATOMIC_SEQ_CST);
    if (blkno < 64)
        __atomic_fetch_add(&fk->calls_blk[blkno], 1, __ATOMIC_SEQ_CST);
    unsigned version = __atomic_load_n(&fk->version, __ATOMIC_SEQ_CST);
    if (fk->set_errno)
        errno = fk->set_errno;
    if (fk->touch_mapping)
        (void)*fk->touch;
    if (fk->sleep_ms) {
        struct timespec ts = {0, (long)fk->sleep_ms * 1000000l};
        nanosleep(&ts, NULL);
    }
    if (fk->rv_need) {
        pthread_mutex_lock(&fk->mu);
        fk->rv_in++;
        pthread_cond_broadcast(&fk->cv);
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 10;
        int timed_out = 0;
        while (fk->rv_in < fk->rv_need && !timed_out)
            timed_out = pthread_cond_timedwait(&fk->cv, &fk->mu, &dl) == ETIMEDOUT;
        pthread_mutex_unlock(&fk->mu);
        if (timed_out)
            return -ETIMEDOUT;
    }
    if ((int64_t)blkno == fk->pause_blk) {
        pthread_mutex_lock(&fk->mu);
        fk->paused++;
        pthread_cond_broadcast(&fk->cv);
        while (!fk->go)
            pthread_cond_wait(&fk->cv, &fk->mu);
        fk->go = 0;
        pthread_mutex_unlock(&fk->mu);
    }
    if ((int64_t)blkno == __atomic_load_n(&fk->fail_blk, __ATOMIC_SEQ_CST))
        return fk->fail_code;
    uint64_t *w = buf;
    for (uint64_t i = 0; i < fk->bs / 8; i++)
        w[i] = pattern(version, blkno, i);
    return 0;
}

static const struct pager_ops fake_ops = {.load = fake_load};

static inline uint64_t rd(const void *p);

static inline int block_is(const void *p, uint32_t bs, unsigned version, uint64_t blkno)
{
    const uint64_t *w = p;
    (void)rd(p); /* fault it in (and sync TSan) before the plain reads */
    for (uint64_t i = 0; i < bs / 8; i += 97)
        if (w[i] != pattern(version, blkno, i))
            return 0;
    return w[bs / 8 - 1] == pattern(version, blkno, bs / 8 - 1);
}

/* ---- helpers --------------------------------------------------------------------------- */

static inline const char *backend_name(int i)
{
    return i ? "uffd" : "sigsegv";
}

/* A pager on backend i, or NULL (reason printed) when userfaultfd is not available. */
/* A pager of backend case i with the options o (o->backend is set here), or NULL with
 * the reason printed when the uffd case cannot run here. */
static inline struct pager *mkpager_opts(int i, struct pager_opts *o)
{
    o->backend = i ? PAGER_BACKEND_UFFD : PAGER_BACKEND_SIGSEGV;
    struct pager *pg;
    ck_assert_int_eq(pager_create(o, &pg), 0);
    if (i && pager_backend(pg) != PAGER_BACKEND_UFFD) {
        long fd = syscall(SYS_userfaultfd, O_CLOEXEC);
        printf("SKIP (uffd case): userfaultfd unavailable: %s\n",
               fd < 0 ? strerror(errno) : "features missing");
        fflush(stdout);
        if (fd >= 0)
            close((int)fd);
        pager_destroy(pg);
        return NULL;
    }
    ck_assert_int_eq(pager_backend(pg), i ? PAGER_BACKEND_UFFD : PAGER_BACKEND_SIGSEGV);
    return pg;
}

static inline struct pager *mkpager(int i, uint64_t ram, int readahead)
{
    struct pager_opts o;
    pager_opts_init(&o);
    o.ram_limit = ram;
    o.readahead = readahead;
    return mkpager_opts(i, &o);
}

static inline struct pager_file *mkfile(struct pager *pg, struct fake *fk, uint32_t bs)
{
    fake_init(fk, bs);
    struct pager_file *f;
    ck_assert_int_eq(pager_file_open(pg, bs, &fake_ops, fk, &f), 0);
    return f;
}

static inline struct pager_mapping *mkmap(struct pager_file *f, uint64_t first, uint64_t n,
                                          unsigned flags)
{
    struct pager_mapping *m;
    ck_assert_int_eq(pager_map(f, first, n, flags, &m), 0);
    return m;
}

static inline char *blk_addr(struct pager_mapping *m, uint64_t i, uint32_t bs)
{
    return (char *)pager_mapping_addr(m) + i * bs;
}

#define EXPECT_BLK(f, blk, st, nmap, wr)                                                           \
    do {                                                                                           \
        struct pager_block_info bi_;                                                               \
        pager_block_info_get((f), (blk), &bi_);                                                    \
        ck_assert_msg(bi_.state == (st) && bi_.nmapped == (unsigned)(nmap) &&                      \
                          bi_.writable == (wr),                                                    \
                      "block %llu: state %d nmapped %u writable %d, want %d %u %d",                \
                      (unsigned long long)(blk), bi_.state, bi_.nmapped, bi_.writable, (st),       \
                      (unsigned)(nmap), (wr));                                                     \
    } while (0)

static inline struct pager_block_info info(struct pager_file *f, uint64_t blk)
{
    struct pager_block_info bi;
    pager_block_info_get(f, blk, &bi);
    return bi;
}

static inline ba_pager_stat stats(struct pager *pg)
{
    ba_pager_stat st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    pager_stat_get(pg, &st);
    return st;
}

/* The protection a block shows: hole, clean (read-only) or dirty (read-write). SIGSEGV
 * backend only; uffd holes and frames are told apart by private/shared. */
static inline void expect_prot(int backend, const void *addr, const char *sigsegv_perms)
{
    char p[5];
    tu_maps_vma(addr, NULL, p, NULL);
    if (!backend) {
        ck_assert_msg(!strcmp(p, sigsegv_perms), "perms %s, want %s", p, sigsegv_perms);
    } else {
        int hole = !strcmp(sigsegv_perms, "---p");
        ck_assert_msg(p[3] == (hole ? 'p' : 's'), "uffd perms %s for %s", p, sigsegv_perms);
    }
}

static inline uint64_t rd(const void *p)
{
    tsan_sync();
    uint64_t v = *(const volatile uint64_t *)p;
    tsan_sync();
    return v;
}

static inline void wr(void *p, uint64_t v)
{
    tsan_sync();
    *(volatile uint64_t *)p = v;
    tsan_sync();
}

static inline unsigned ncalls(struct fake *fk)
{
    return __atomic_load_n(&fk->calls, __ATOMIC_SEQ_CST);
}

static inline void teardown(struct pager *pg, struct pager_file *f, struct pager_mapping *m)
{
    pager_unmap(m);
    pager_check(pg);
    pager_file_close(f);
    pager_check(pg);
    pager_destroy(pg);
}

#endif /* BA_TEST_PAGER_FIXTURE_H */
