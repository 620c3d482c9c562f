/* SPDX-License-Identifier: MIT */
/*
 * Pager benchmarks (a program, not a test). Fixed seeds, several repetitions, medians,
 * one result line per figure:
 *
 *   fault   per-block fault cost with a no-op load, for each backend: a sequential
 *           read touch of the first byte of 10,000 blocks of 2 MiB through one mapping,
 *           with a budget (256 MiB) far smaller than that, so eviction and frame reuse
 *           are in the loop. Readahead off: every touch is a full fault. The goal is
 *           below 30 us per block on the faster backend (wendelin.core: 170-270 us).
 *   seq     sequential read of a 4 GiB file through the pager with a 512 MiB budget:
 *           ops.load memcpy's the block from the file mmapped (and populated) from the
 *           page cache, the reader sums the array as uint64 words; next to a plain mmap
 *           loop summing the same file in the same run (a fresh mapping per repetition,
 *           as numpy.memmap pays it, and a warm mapping). Goal: >= 0.6x the mmap loop.
 *           Also in the same run, as a calibration: an ideal copy pipeline (one thread
 *           memcpy's the blocks into a ring, another sums them; no pager), the ceiling of
 *           any copying design on the machine at that moment.
 *           With the SIGSEGV backend, also zero-copy (a second line, zerocopy_seqread):
 *           ops.locate names the file and the block's offset, ops.verify checks an
 *           XXH3-64 per block (as store/ does), so the pager maps the page cache instead
 *           of copying. Twice: with blocks at 2 MiB-aligned file offsets (like the mmap
 *           loop's, so the kernel may map page-cache folios with PMD entries) and shifted
 *           by 4 KiB (how LMDB places them: page-aligned only, so only PTEs), plus a warm
 *           pass (everything still mapped from the previous pass). Goal: >= 0.9x the
 *           mmap loop. And the cost of one zero-copy fault without readahead (a touch of
 *           each block's first byte: locate, map into a staging slot, checksum, move in),
 *           and of a remap of a block already checked (a fresh mapping of the file).
 *
 * Usage: bench_pager [fault|seq|all] [-r reps] [-d dir] [-s GiB] [-b backend]
 *   dir: where the raw file for `seq` goes (default $TMPDIR or /var/tmp); it is created
 *   once, kept in the page cache by reading it, and removed at exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>
#define bench_hash XXH3_64bits_dispatch
#else
#define bench_hash XXH3_64bits
#endif

#include "pager.h"

#define MIB (1ull << 20)

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

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char *bname(int b)
{
    return b == PAGER_BACKEND_UFFD ? "uffd" : "sigsegv";
}

static struct pager *mkpager(int backend, uint64_t ram, int readahead)
{
    struct pager_opts o;
    pager_opts_init(&o);
    o.backend = backend;
    o.ram_limit = ram;
    o.readahead = readahead;
    struct pager *pg;
    if (pager_create(&o, &pg)) {
        fprintf(stderr, "pager_create failed\n");
        exit(1);
    }
    return pg;
}

/* ---- fault cost ------------------------------------------------------------------------ */

static int noop_load(void *ctx, uint64_t blkno, void *buf)
{
    (void)ctx;
    (void)blkno;
    (void)buf;
    return 0;
}

static void bench_fault(int backend, int reps)
{
    enum { NBLK = 10000 };
    const uint32_t bs = 2u << 20;
    const uint64_t budget = 256 * MIB;
    struct pager *pg = mkpager(backend, budget, 0);
    if (pager_backend(pg) != backend) {
        printf("fault_noop backend=%s unavailable (fell back)\n", bname(backend));
        pager_destroy(pg);
        return;
    }
    static const struct pager_ops ops = {.load = noop_load};
    struct pager_file *f;
    struct pager_mapping *m;
    if (pager_file_open(pg, bs, &ops, NULL, &f) || pager_map(f, 0, NBLK, 0, &m)) {
        fprintf(stderr, "open/map failed\n");
        exit(1);
    }
    const volatile char *a = pager_mapping_addr(m);
    double us[64];
    volatile char sink = 0;
    /* Warm-up pass: populates the pool's frames (a one-time cost per frame). */
    for (uint64_t i = 0; i < NBLK; i++)
        sink = (char)(sink + a[i * bs]);
    for (int r = 0; r < reps; r++) {
        pager_file_invalidate(f, 0, UINT64_MAX);
        double t0 = now_s();
        for (uint64_t i = 0; i < NBLK; i++)
            sink = (char)(sink + a[i * bs]);
        us[r] = (now_s() - t0) * 1e6 / NBLK;
    }
    ba_pager_stat st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    pager_stat_get(pg, &st);
    double med = median(us, reps);
    printf("fault_noop backend=%s blocks=%d bs=2MiB budget=256MiB reps=%d us_per_fault_median=%.1f "
           "min=%.1f max=%.1f evictions=%llu faults=%llu\n",
           bname(backend), NBLK, reps, med, us[0], us[reps - 1], (unsigned long long)st.evictions,
           (unsigned long long)(st.faults_read));
    pager_unmap(m);
    pager_file_close(f);
    pager_destroy(pg);
}

/* ---- sequential read --------------------------------------------------------------------- */

struct src {
    const char *map;
    uint32_t bs;
    int fd;               /* zero-copy: the file, */
    uint64_t shift;       /* where block 0 starts in it, */
    const uint64_t *sums; /* and each block's XXH3-64 */
};

static int raw_locate(void *ctx, uint64_t blkno, struct pager_extent *out)
{
    const struct src *s = ctx;
    out->fd = s->fd;
    out->off = s->shift + blkno * s->bs;
    out->tag = s->sums[blkno];
    return 0;
}

static int raw_verify(void *ctx, uint64_t blkno, const void *p, uint64_t tag)
{
    const struct src *s = ctx;
    (void)blkno;
    return bench_hash(p, s->bs) == tag ? 0 : -EIO;
}

static int memcpy_load(void *ctx, uint64_t blkno, void *buf)
{
    const struct src *s = ctx;
    memcpy(buf, s->map + blkno * s->bs, s->bs);
    return 0;
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

/* Calibration: the best a copying design can do on this machine right now. One thread
 * copies 2 MiB blocks from the source into a ring of 256 populated buffers, the other
 * sums them as soon as they are ready; no pager, no system calls. */
struct pipe_ctx {
    const char *src;
    char *ring;
    uint64_t nblk;
    uint32_t bs;
    uint64_t produced, consumed; /* atomic */
};

static void *pipe_producer(void *arg)
{
    struct pipe_ctx *p = arg;
    for (uint64_t i = 0; i < p->nblk; i++) {
        while (i - __atomic_load_n(&p->consumed, __ATOMIC_ACQUIRE) >= 248)
            sched_yield();
        memcpy(p->ring + (i % 256) * p->bs, p->src + i * p->bs, p->bs);
        __atomic_store_n(&p->produced, i + 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static double pipeline_gbps(const char *src, uint64_t size, uint32_t bs, uint64_t expect)
{
    struct pipe_ctx p = {src, NULL, size / bs, bs, 0, 0};
    p.ring = mmap(NULL, 256ull * bs, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p.ring == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    pthread_t th;
    double t0 = now_s();
    pthread_create(&th, NULL, pipe_producer, &p);
    uint64_t s = 0;
    for (uint64_t i = 0; i < p.nblk; i++) {
        while (__atomic_load_n(&p.produced, __ATOMIC_ACQUIRE) <= i)
            sched_yield();
        s += sum_words(p.ring + (i % 256) * bs, bs);
        __atomic_store_n(&p.consumed, i + 1, __ATOMIC_RELEASE);
    }
    pthread_join(th, NULL);
    double t = now_s() - t0;
    munmap(p.ring, 256ull * bs);
    if (s != expect)
        exit(2);
    return (double)size / t / 1e9;
}

static char *make_file(const char *dir, uint64_t size)
{
    size_t n = strlen(dir) + 32;
    char *path = malloc(n);
    snprintf(path, n, "%s/bench_pager.raw", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        exit(1);
    }
    size_t chunk = 64 * MIB;
    uint64_t *buf = malloc(chunk);
    uint64_t x = 0x9e3779b97f4a7c15ull; /* fixed seed */
    for (uint64_t off = 0; off < size; off += chunk) {
        for (size_t i = 0; i < chunk / 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = x;
        }
        if (pwrite(fd, buf, chunk, (off_t)off) != (ssize_t)chunk) {
            fprintf(stderr, "write %s: %s\n", path, strerror(errno));
            exit(1);
        }
    }
    free(buf);
    close(fd);
    return path;
}

static double mmap_loop(const char *path, uint64_t size, uint64_t *sum, int warm_map,
                        const char *warm)
{
    double t0 = now_s();
    const char *p = warm;
    if (!warm_map) {
        int fd = open(path, O_RDONLY);
        p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        close(fd);
        if (p == MAP_FAILED) {
            perror("mmap");
            exit(1);
        }
    }
    *sum = sum_words(p, size);
    double t = now_s() - t0;
    if (!warm_map)
        munmap((void *)(uintptr_t)p, size);
    return t;
}

/* One zero-copy pager file over the raw file at `shift`, mapped whole. */
struct zc {
    struct src src;
    uint64_t *sums;
    struct pager_file *f;
    struct pager_mapping *m;
    uint64_t nblk, expect;
};

static void zc_open(struct zc *z, struct pager *pg, const struct src *base, uint64_t size,
                    uint64_t shift)
{
    static const struct pager_ops ops = {
        .load = memcpy_load, .locate = raw_locate, .verify = raw_verify};
    z->src = *base;
    z->nblk = size / base->bs;
    z->sums = malloc(z->nblk * sizeof *z->sums);
    for (uint64_t i = 0; i < z->nblk; i++)
        z->sums[i] = bench_hash(base->map + shift + i * base->bs, base->bs);
    z->src.map = base->map + shift; /* the copy path (not taken) reads the same bytes */
    z->src.shift = shift;
    z->src.sums = z->sums;
    z->expect = sum_words(z->src.map, size);
    if (pager_file_open(pg, base->bs, &ops, &z->src, &z->f) ||
        pager_map(z->f, 0, z->nblk, 0, &z->m)) {
        fprintf(stderr, "zero-copy open/map failed\n");
        exit(1);
    }
}

static void zc_close(struct zc *z);

/* A pass over the whole mapping: GB/s; cold = the pager forgets the blocks first. */
static double zc_pass(struct zc *z, int cold)
{
    if (cold)
        pager_file_invalidate(z->f, 0, UINT64_MAX);
    double t0 = now_s();
    uint64_t s = sum_words(pager_mapping_addr(z->m), z->nblk * z->src.bs);
    double gbs = (double)(z->nblk * z->src.bs) / (now_s() - t0) / 1e9;
    if (s != z->expect) {
        fprintf(stderr, "zero-copy sum differs from the file's\n");
        exit(2);
    }
    return gbs;
}

/* Per-fault cost of zero-copy without readahead (shifted layout): a first touch of every
 * block (locate, stage, verify, move), then, after pager_unmap, of every block again
 * (DIRECT and checked already: a lazy mmap of the extent). Microseconds per block. */
static void zc_fault_cost(const struct src *base, uint64_t size, int reps, double *first_us,
                          double *remap_us)
{
    double f[64], m[64];
    struct pager *pg = mkpager(PAGER_BACKEND_SIGSEGV, 512 * MIB, 0);
    struct zc z;
    zc_open(&z, pg, base, size, 4096);
    volatile char sink = 0;
    for (int r = 0; r < reps; r++) {
        pager_file_invalidate(z.f, 0, UINT64_MAX);
        const volatile char *a = pager_mapping_addr(z.m);
        double t0 = now_s();
        for (uint64_t i = 0; i < z.nblk; i++)
            sink = (char)(sink + a[i * base->bs]);
        f[r] = (now_s() - t0) * 1e6 / (double)z.nblk;
        pager_unmap(z.m);
        if (pager_map(z.f, 0, z.nblk, 0, &z.m))
            exit(1);
        a = pager_mapping_addr(z.m);
        t0 = now_s();
        for (uint64_t i = 0; i < z.nblk; i++)
            sink = (char)(sink + a[i * base->bs]);
        m[r] = (now_s() - t0) * 1e6 / (double)z.nblk;
    }
    *first_us = median(f, reps);
    *remap_us = median(m, reps);
    zc_close(&z);
    pager_destroy(pg);
}

static void zc_close(struct zc *z)
{
    pager_unmap(z->m);
    pager_file_close(z->f);
    free(z->sums);
}

static void bench_seq(int backend, int reps, const char *dir, uint64_t size)
{
    const uint32_t bs = 2u << 20;
    const uint64_t budget = 512 * MIB;
    /* One spare chunk past `size`: the shifted zero-copy layout reads 4 KiB into it. */
    char *path = make_file(dir, size + 64 * MIB);
    int fd = open(path, O_RDONLY);
    /* The load's source: the file in the page cache, mapped and populated once. */
    struct src src = {mmap(NULL, size + 64 * MIB, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0), bs,
                      fd, 0, NULL};
    if (src.map == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    struct pager *pg = mkpager(backend, budget, 1);
    if (pager_backend(pg) != backend) {
        printf("seqread backend=%s unavailable (fell back)\n", bname(backend));
        pager_destroy(pg);
        goto out;
    }
    int zerocopy = pager_zerocopy(pg);
    struct zc za, zs;
    if (zerocopy) {
        zc_open(&za, pg, &src, size, 0);
        zc_open(&zs, pg, &src, size, 4096);
    }
    static const struct pager_ops ops = {.load = memcpy_load};
    struct pager_file *f;
    struct pager_mapping *m;
    uint64_t nblk = size / bs;
    if (pager_file_open(pg, bs, &ops, &src, &f) || pager_map(f, 0, nblk, 0, &m)) {
        fprintf(stderr, "open/map failed\n");
        exit(1);
    }
    const char *a = pager_mapping_addr(m);
    double gbs_pager[64], gbs_mmap[64], gbs_warm[64], gbs_pipe[64], ratio[64];
    double zc_al[64], zc_sh[64], zc_warm[64], zr_al[64], zr_sh[64], zr_warm[64];
    uint64_t expect;
    mmap_loop(path, size, &expect, 0, NULL); /* warm the page cache */
    /* Warm-up: populate the pager's frames once. */
    if (sum_words(a, size) != expect) {
        fprintf(stderr, "pager sum differs from the file's\n");
        exit(1);
    }
    for (int r = 0; r < reps; r++) {
        uint64_t s;
        gbs_mmap[r] = (double)size / mmap_loop(path, size, &s, 0, NULL) / 1e9;
        if (s != expect)
            exit(2);
        gbs_warm[r] = (double)size / mmap_loop(path, size, &s, 1, src.map) / 1e9;
        if (s != expect)
            exit(2);
        gbs_pipe[r] = pipeline_gbps(src.map, size, bs, expect);
        pager_file_invalidate(f, 0, UINT64_MAX);
        double t0 = now_s();
        s = sum_words(a, size);
        gbs_pager[r] = (double)size / (now_s() - t0) / 1e9;
        if (s != expect) {
            fprintf(stderr, "pager sum differs from the file's\n");
            exit(2);
        }
        ratio[r] = gbs_pager[r] / gbs_mmap[r];
        if (zerocopy) {
            pager_file_invalidate(f, 0, UINT64_MAX); /* frames free: not the point here */
            zc_al[r] = zc_pass(&za, 1);
            zr_al[r] = zc_al[r] / gbs_mmap[r];
            /* Unmapped, so that the next file's blocks all stay mapped for the warm pass
             * (mapped blocks are capped at max_map_count / 16: 8 GiB of 2 MiB blocks). */
            pager_file_invalidate(za.f, 0, UINT64_MAX);
            zc_sh[r] = zc_pass(&zs, 1);
            zr_sh[r] = zc_sh[r] / gbs_mmap[r];
            zc_warm[r] = zc_pass(&zs, 0);
            zr_warm[r] = zc_warm[r] / gbs_warm[r];
            pager_file_invalidate(zs.f, 0, UINT64_MAX);
        }
    }
    ba_pager_stat st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    pager_stat_get(pg, &st);
    printf("seqread backend=%s size=%lluGiB budget=512MiB reps=%d pager_GBps_median=%.2f "
           "mmap_fresh_GBps_median=%.2f mmap_warm_GBps_median=%.2f ratio_vs_fresh_median=%.2f "
           "copy_pipeline_GBps_median=%.2f readahead_loads=%llu readahead_hits=%llu "
           "loads=%llu\n",
           bname(backend), (unsigned long long)(size >> 30), reps, median(gbs_pager, reps),
           median(gbs_mmap, reps), median(gbs_warm, reps), median(ratio, reps),
           median(gbs_pipe, reps), (unsigned long long)st.readahead_loads,
           (unsigned long long)st.readahead_hits, (unsigned long long)st.loads);
    if (zerocopy) {
        zc_close(&za);
        zc_close(&zs);
        double first_us, remap_us;
        zc_fault_cost(&src, size, reps, &first_us, &remap_us);
        printf("zerocopy_seqread backend=%s size=%lluGiB budget=512MiB reps=%d "
               "aligned_GBps_median=%.2f shift4k_GBps_median=%.2f warm_GBps_median=%.2f "
               "mmap_fresh_GBps_median=%.2f mmap_warm_GBps_median=%.2f "
               "ratio_aligned_vs_fresh_median=%.2f ratio_shift4k_vs_fresh_median=%.2f "
               "ratio_warm_vs_warm_median=%.2f fault_us_median=%.1f remap_us_median=%.1f "
               "direct_loads=%llu direct_bytes=%llu ram_used=%llu\n",
               bname(backend), (unsigned long long)(size >> 30), reps, median(zc_al, reps),
               median(zc_sh, reps), median(zc_warm, reps), median(gbs_mmap, reps),
               median(gbs_warm, reps), median(zr_al, reps), median(zr_sh, reps),
               median(zr_warm, reps), first_us, remap_us, (unsigned long long)st.direct_loads,
               (unsigned long long)st.direct_bytes, (unsigned long long)st.ram_used);
    }
    pager_unmap(m);
    pager_file_close(f);
    pager_destroy(pg);
out:
    munmap((void *)(uintptr_t)src.map, size + 64 * MIB);
    close(fd);
    unlink(path);
    free(path);
}

int main(int argc, char **argv)
{
    const char *what = "all", *dir = getenv("TMPDIR");
    int reps = 5, only = 0;
    uint64_t gib = 4;
    if (!dir || !*dir)
        dir = "/var/tmp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-r") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-d") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "-s") && i + 1 < argc)
            gib = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-b") && i + 1 < argc) {
            i++;
            only = !strcmp(argv[i], "uffd") ? PAGER_BACKEND_UFFD : PAGER_BACKEND_SIGSEGV;
        } else
            what = argv[i];
    }
    if (reps < 1 || reps > 64)
        reps = 5;
    int backends[2] = {PAGER_BACKEND_SIGSEGV, PAGER_BACKEND_UFFD};
    for (int k = 0; k < 2; k++) {
        if (only && backends[k] != only)
            continue;
        if (!strcmp(what, "fault") || !strcmp(what, "all"))
            bench_fault(backends[k], reps);
        if (!strcmp(what, "seq") || !strcmp(what, "all"))
            bench_seq(backends[k], reps, dir, gib << 30);
    }
    return 0;
}
