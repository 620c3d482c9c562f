/* SPDX-License-Identifier: MIT */
/*
 * Zero-copy reads end to end, through the public API (a program, not a test): an
 * uncompressed array of --size GiB (2 MiB blocks, u8 words from a fixed seed) in a fresh
 * database, summed through a read-only view of a freshly opened database with a
 * --budget MiB RAM limit, everything in the page cache:
 *
 *   zerocopy   the default: raw blocks are mapped from data.mdb (DIRECT blocks)
 *   copy       BA_DB_NOZEROCOPY: every block is copied into a frame
 *   mmap       the peer: a plain C loop over a fresh mmap of a raw file holding the same
 *              bytes (what numpy.memmap does), next to each other in every repetition
 *
 * and once more over the same view with everything already mapped (warm) against a warm
 * mmap (warm_view_faults = blocks: no fault after the first pass). One result line with
 * the medians and the per-repetition ratios' medians.
 *
 * With -c 1 every pass starts cold instead: the file it reads is dropped from the page
 * cache first (posix_fadvise(POSIX_FADV_DONTNEED) of that file only, so other programs'
 * caches are left alone); the warm passes are skipped.
 *
 * Usage: bench_zerocopy [-d dir] [-s GiB] [-r reps] [-b budget_MiB] [-k 1] [-c 1]
 *   dir holds the raw file and the database while it runs (default $TMPDIR or /var/tmp);
 *   -k 1 keeps them (bench_zerocopy.raw, bench_zerocopy.db) for other tools.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bigarray.h"

#define MIB   (1ull << 20)
#define CHUNK (256 * MIB) /* bytes appended per commit while filling */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double s[64];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_zerocopy: %s: %s (%s)\n", what, ba_strerror(rc), ba_errmsg());
    exit(1);
}

static uint64_t sum_words(const void *p, size_t len)
{
    const uint64_t *w = p;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= len / 8; i += 4) {
        s0 += w[i];
        s1 += w[i + 1];
        s2 += w[i + 2];
        s3 += w[i + 3];
    }
    return s0 + s1 + s2 + s3;
}

static int rm_one(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)sb;
    (void)f;
    (void)ftw;
    return remove(p);
}

/* The raw file: size bytes of xorshift words (fixed seed). */
static void make_raw(const char *path, uint64_t size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        die(path, -errno);
    uint64_t *buf = malloc(64 * MIB), x = 0x9e3779b97f4a7c15ull;
    for (uint64_t off = 0; off < size; off += 64 * MIB) {
        for (size_t i = 0; i < 64 * MIB / 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = x;
        }
        if (pwrite(fd, buf, 64 * MIB, (off_t)off) != (ssize_t)(64 * MIB))
            die("write raw", -errno);
    }
    free(buf);
    close(fd);
}

static ba_db *db_open(const char *path, unsigned flags, uint64_t budget)
{
    ba_db_options o;
    ba_db_options_init(&o);
    o.flags = flags | BA_DB_NOSYNC;
    o.ram_limit = budget;
    o.pager = BA_PAGER_SIGSEGV;
    ba_db *db;
    int rc = ba_db_open(path, &o, &db);
    if (rc)
        die(path, rc);
    return db;
}

/* The database: array "a" of u8 words holding the raw file's bytes, appended a chunk
 * per commit (so the dirty data stays within the budget). */
static void make_db(const char *path, const char *raw, uint64_t size, uint64_t budget)
{
    int fd = open(raw, O_RDONLY);
    const char *src = mmap(NULL, size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    close(fd);
    if (src == MAP_FAILED)
        die("mmap raw", -errno);
    ba_db *db = db_open(path, BA_DB_CREATE, budget);
    ba_session *s;
    ba_array *a;
    ba_array_spec sp;
    ba_array_spec_init(&sp);
    ba_dtype_parse("<u8", &sp.dtype);
    sp.ndim = 1;
    sp.shape[0] = 0;
    int rc = ba_session_begin(db, &s);
    if (!rc)
        rc = ba_array_create(s, "a", &sp, &a);
    if (rc)
        die("create", rc);
    for (uint64_t off = 0; off < size; off += CHUNK) {
        int64_t n = (int64_t)(CHUNK / 8);
        if ((rc = ba_array_append(a, src + off, 1, &n, &sp.dtype)) || (rc = ba_session_commit(s)))
            die("append", rc);
    }
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    munmap((void *)(uintptr_t)src, size);
}

/* Read a file through the page cache (to warm it). */
static void warm_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die(path, -errno);
    char *buf = malloc(8 * MIB);
    while (read(fd, buf, 8 * MIB) > 0) {
    }
    free(buf);
    close(fd);
}

static int cold; /* -c 1: drop the file from the page cache before each pass */

static void drop_file(const char *path)
{
    if (!cold)
        return;
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

/* GB/s of a sum over a fresh mmap of the raw file (the peer). */
static double mmap_pass(const char *raw, uint64_t size, uint64_t expect)
{
    drop_file(raw);
    double t0 = now_s();
    int fd = open(raw, O_RDONLY);
    const char *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        die("mmap", -errno);
    uint64_t s = sum_words(p, size);
    double gbs = (double)size / (now_s() - t0) / 1e9;
    munmap((void *)(uintptr_t)p, size);
    if (s != expect)
        die("mmap sum differs", BA_ECORRUPT);
    return gbs;
}

struct open_view {
    ba_db *db;
    ba_session *s;
    ba_array *a;
    ba_view v;
};

static void ov_open(struct open_view *o, const char *path, unsigned flags, uint64_t budget)
{
    o->db = db_open(path, flags, budget);
    int rc = ba_session_begin(o->db, &o->s);
    if (!rc)
        rc = ba_array_open(o->s, "a", &o->a);
    if (!rc)
        rc = ba_array_view(o->a, NULL, 0, BA_VIEW_READONLY, &o->v);
    if (rc)
        die("open view", rc);
}

static void ov_close(struct open_view *o, ba_pager_stat *st)
{
    if (st) {
        memset(st, 0, sizeof *st);
        st->size = sizeof *st;
        ba_db_pager_stat(o->db, st);
    }
    ba_view_release(&o->v);
    ba_array_close(o->a);
    ba_session_end(o->s);
    ba_db_close(o->db);
}

/* GB/s of a sum through a freshly opened database's view (open included, like the
 * peer's mmap). */
static double ba_pass(const char *path, unsigned flags, uint64_t budget, uint64_t size,
                      uint64_t expect, ba_pager_stat *st)
{
    struct open_view o;
    char mdb[4200];
    snprintf(mdb, sizeof mdb, "%s/data.mdb", path);
    drop_file(mdb);
    double t0 = now_s();
    ov_open(&o, path, flags, budget);
    uint64_t s = sum_words(o.v.data, size);
    double gbs = (double)size / (now_s() - t0) / 1e9;
    ov_close(&o, st);
    if (s != expect)
        die("bigarray sum differs", BA_ECORRUPT);
    return gbs;
}

/* Warm: one view kept open and already mapped, against a populated mmap. */
static void warm_passes(const char *db, const char *raw, uint64_t size, uint64_t budget,
                        uint64_t expect, int reps, double *warm, double *mwarm, double *rwarm,
                        ba_pager_stat *st)
{
    struct open_view o;
    ov_open(&o, db, 0, budget);
    int fd = open(raw, O_RDONLY);
    const char *p = mmap(NULL, size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        die("mmap", -errno);
    (void)sum_words(o.v.data, size);
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        uint64_t s = sum_words(o.v.data, size);
        warm[r] = (double)size / (now_s() - t0) / 1e9;
        t0 = now_s();
        uint64_t s2 = sum_words(p, size);
        mwarm[r] = (double)size / (now_s() - t0) / 1e9;
        if (s != expect || s2 != expect)
            die("warm sum differs", BA_ECORRUPT);
        rwarm[r] = warm[r] / mwarm[r];
    }
    ov_close(&o, st);
    munmap((void *)(uintptr_t)p, size);
}

int main(int argc, char **argv)
{
    const char *dir = getenv("TMPDIR");
    int reps = 5, keep = 0;
    uint64_t gib = 4, budget_mib = 512;
    if (!dir || !*dir)
        dir = "/var/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-d"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "-s"))
            gib = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "-r"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-b"))
            budget_mib = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "-k"))
            keep = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-c"))
            cold = atoi(argv[i + 1]);
    }
    if (reps < 1 || reps > 64)
        reps = 5;
    uint64_t size = gib << 30, budget = budget_mib * MIB;
    char raw[4096], db[4096], mdb[4200];
    snprintf(raw, sizeof raw, "%s/bench_zerocopy.raw", dir);
    snprintf(db, sizeof db, "%s/bench_zerocopy.db", dir);
    snprintf(mdb, sizeof mdb, "%s/data.mdb", db);
    nftw(db, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    make_raw(raw, size);
    make_db(db, raw, size, budget);
    warm_file(raw);
    warm_file(mdb);
    uint64_t expect;
    {
        int fd = open(raw, O_RDONLY);
        const char *p = mmap(NULL, size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
        close(fd);
        expect = sum_words(p, size);
        munmap((void *)(uintptr_t)p, size);
    }
    double zc[64], cp[64], mm[64], rzc[64], rcp[64];
    ba_pager_stat zst, cst;
    for (int r = 0; r < reps; r++) {
        /* Alternate the order, so that neither side always runs first. */
        if (r % 2) {
            mm[r] = mmap_pass(raw, size, expect);
            zc[r] = ba_pass(db, 0, budget, size, expect, &zst);
        } else {
            zc[r] = ba_pass(db, 0, budget, size, expect, &zst);
            mm[r] = mmap_pass(raw, size, expect);
        }
        cp[r] = ba_pass(db, BA_DB_NOZEROCOPY, budget, size, expect, &cst);
        rzc[r] = zc[r] / mm[r];
        rcp[r] = cp[r] / mm[r];
    }
    double warm[64] = {0}, mwarm[64] = {0}, rwarm[64] = {0};
    ba_pager_stat wst;
    memset(&wst, 0, sizeof wst);
    if (!cold)
        warm_passes(db, raw, size, budget, expect, reps, warm, mwarm, rwarm, &wst);
    printf("zerocopy_e2e size=%lluGiB budget=%lluMiB cache=%s reps=%d zerocopy_GBps_median=%.2f "
           "copy_GBps_median=%.2f mmap_fresh_GBps_median=%.2f ratio_zerocopy_vs_mmap_median=%.2f "
           "ratio_copy_vs_mmap_median=%.2f warm_GBps_median=%.2f mmap_warm_GBps_median=%.2f "
           "ratio_warm_median=%.2f zc_direct_loads=%llu zc_loads=%llu zc_ram_used=%llu "
           "copy_loads=%llu warm_view_faults=%llu blocks=%llu\n",
           (unsigned long long)gib, (unsigned long long)budget_mib, cold ? "cold" : "warm", reps,
           median(zc, reps), median(cp, reps), median(mm, reps), median(rzc, reps),
           median(rcp, reps), median(warm, reps), median(mwarm, reps), median(rwarm, reps),
           (unsigned long long)zst.direct_loads, (unsigned long long)zst.loads,
           (unsigned long long)zst.ram_used, (unsigned long long)cst.loads,
           (unsigned long long)wst.faults_read, (unsigned long long)(size / (2 * MIB)));
    if (!keep) {
        nftw(db, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        unlink(raw);
    }
    return 0;
}
