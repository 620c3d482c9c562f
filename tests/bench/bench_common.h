/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the side-by-side benchmark programs bench_ba.c (bigarray through its
 * public C API) and bench_lmdb.c (the bare LMDB loop, the storage floor): the command
 * line both accept, timing, page-cache control, the source data, the sum kernel and the
 * result line. Both programs measure the same workloads on the same source file with the
 * same kernel, so their figures compare; tests/bench/run.sh runs them next to the Python
 * peers (bench_py.py) and collects their lines.
 *
 * A result line is one JSON object on stdout per figure:
 *   {"system": ..., "workload": ..., "dataset": ..., "value": median, "unit": ...,
 *    "n": samples, "min": ..., "max": ..., "samples": [...], "extra": {...}}
 * Progress and errors go to stderr.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_SAMPLES 4096
#define BENCH_MiB         (1024.0 * 1024.0)

/* ---- command line ------------------------------------------------------------------------ */

/* What every workload needs; each program reads only what applies. */
struct bench_args {
    const char *op;       /* write, scan, scanhot, rand, rewrite, append */
    const char *system;   /* label in the result lines */
    const char *dataset;  /* label: sin, rand, i32 */
    const char *store;    /* database directory (bench_ba) or LMDB directory (bench_lmdb) */
    const char *src;      /* raw source file (write) */
    const char *codec;    /* "none", "zstd:1", "zstd:1+shuffle" */
    const char *cache;    /* before each repetition: "warm", "cold" or "asis" */
    const char *workload; /* label override (e.g. W6-16G) */
    const char *dtype;    /* "<f8" (default) or "<i4" */
    int64_t rows;         /* rows of the array (write), of `cols` elements each */
    int64_t cols;         /* elements per row (default 1024) */
    int reps;             /* repetitions */
    int threads;          /* reader threads (scan) */
    int count;            /* random reads (rand), commits (rewrite), appends (append) */
    int blocks;           /* rewrite: blocks changed per commit (0 = 1% of the blocks) */
    int64_t commit_rows;  /* write: commit every this many rows (0 = once at the end) */
    uint64_t seed;
};

static inline void bench_usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s write|scan|scanhot|rand|rewrite|append --store DIR [--src FILE]\n"
            "       [--system NAME] [--dataset NAME] [--workload NAME] [--codec C]\n"
            "       [--cache warm|cold|asis] [--rows R] [--cols C] [--dtype <f8|<i4]\n"
            "       [--reps N] [--threads T] [--count N] [--blocks B] [--commit-rows R]\n"
            "       [--seed S]\n",
            prog);
    exit(2);
}

static inline void bench_parse(int argc, char **argv, struct bench_args *a)
{
    memset(a, 0, sizeof *a);
    a->system = "?";
    a->dataset = "sin";
    a->codec = "none";
    a->cache = "asis";
    a->dtype = "<f8";
    a->cols = 1024;
    a->reps = 3;
    a->threads = 1;
    a->seed = 42;
    if (argc < 2)
        bench_usage(argv[0]);
    a->op = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i];
        if (i + 1 >= argc)
            bench_usage(argv[0]);
        const char *v = argv[++i];
        if (!strcmp(k, "--store"))
            a->store = v;
        else if (!strcmp(k, "--src"))
            a->src = v;
        else if (!strcmp(k, "--system"))
            a->system = v;
        else if (!strcmp(k, "--dataset"))
            a->dataset = v;
        else if (!strcmp(k, "--workload"))
            a->workload = v;
        else if (!strcmp(k, "--codec"))
            a->codec = v;
        else if (!strcmp(k, "--cache"))
            a->cache = v;
        else if (!strcmp(k, "--dtype"))
            a->dtype = v;
        else if (!strcmp(k, "--rows"))
            a->rows = strtoll(v, NULL, 10);
        else if (!strcmp(k, "--cols"))
            a->cols = strtoll(v, NULL, 10);
        else if (!strcmp(k, "--reps"))
            a->reps = atoi(v);
        else if (!strcmp(k, "--threads"))
            a->threads = atoi(v);
        else if (!strcmp(k, "--count"))
            a->count = atoi(v);
        else if (!strcmp(k, "--blocks"))
            a->blocks = atoi(v);
        else if (!strcmp(k, "--commit-rows"))
            a->commit_rows = strtoll(v, NULL, 10);
        else if (!strcmp(k, "--seed"))
            a->seed = strtoull(v, NULL, 10);
        else
            bench_usage(argv[0]);
    }
    if (!a->store || a->reps < 1 || a->reps > BENCH_MAX_SAMPLES || a->threads < 1 ||
        a->threads > 64 || a->cols < 1)
        bench_usage(argv[0]);
}

/* Bytes per element of the dtypes the suite uses. */
static inline size_t bench_itemsize(const char *dtype)
{
    return strstr(dtype, "4") ? 4 : 8;
}

/* ---- time, statistics, output -------------------------------------------------------------- */

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of n values; v is left as it is. */
static inline double bench_median(const double *v, int n)
{
    double c[BENCH_MAX_SAMPLES];
    memcpy(c, v, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, bench_cmp_double);
    return n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
}

/* One result line. extra is a JSON object's members without braces ("" for none), made
 * with bench_extra(). Samples beyond 64 are summarised, not listed. */
static inline void bench_emit(const struct bench_args *a, const char *workload, const char *unit,
                              const double *v, int n, const char *extra)
{
    double lo = v[0], hi = v[0];
    for (int i = 1; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    printf("{\"system\": \"%s\", \"workload\": \"%s\", \"dataset\": \"%s\", \"value\": %.6g, "
           "\"unit\": \"%s\", \"n\": %d, \"min\": %.6g, \"max\": %.6g, \"samples\": [",
           a->system, a->workload ? a->workload : workload, a->dataset, bench_median(v, n), unit, n,
           lo, hi);
    for (int i = 0; i < n && i < 64; i++)
        printf("%s%.6g", i ? ", " : "", v[i]);
    printf("], \"extra\": {%s}}\n", extra ? extra : "");
    fflush(stdout);
}

/* Append the median, 90th and 99th percentile and maximum of n latencies (ms) to extra
 * (at most BENCH_MAX_SAMPLES are used). */
static inline void bench_latency_extra(char *extra, size_t size, const double *lat, int n);

/* Append "key": value members to buf (size n) in printf style. */
static inline void bench_extra(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void bench_extra(char *buf, size_t n, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 2 >= n)
        return;
    if (len) {
        buf[len++] = ',';
        buf[len++] = ' ';
        buf[len] = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, n - len, fmt, ap);
    va_end(ap);
}

static inline void bench_die(const char *what, const char *why)
{
    fprintf(stderr, "bench: %s: %s\n", what, why);
    exit(1);
}

static inline void bench_latency_extra(char *extra, size_t size, const double *lat, int n)
{
    static double c[BENCH_MAX_SAMPLES];
    n = n < BENCH_MAX_SAMPLES ? n : BENCH_MAX_SAMPLES;
    if (n < 1)
        return;
    memcpy(c, lat, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, bench_cmp_double);
    bench_extra(extra, size,
                "\"ms_median\": %.3f, \"ms_p90\": %.3f, \"ms_p99\": %.3f, \"ms_max\": %.3f",
                c[n / 2], c[n * 9 / 10], c[n * 99 / 100], c[n - 1]);
}

/* ---- page cache -------------------------------------------------------------------------- */

/* sync; echo 3 > /proc/sys/vm/drop_caches. Exits when it cannot (needs root): a figure
 * labelled cold must be cold. */
static inline void bench_drop_caches(void)
{
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd < 0 || write(fd, "3\n", 2) != 2)
        bench_die("drop_caches (needs root)", strerror(errno));
    close(fd);
}

/* Read every regular file under path (recursively) so it sits in the page cache. */
static inline void bench_warm_path(const char *path)
{
    struct stat st;
    if (lstat(path, &st))
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d)
            return;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[4096];
            if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub)
                bench_warm_path(sub);
        }
        closedir(d);
        return;
    }
    if (!S_ISREG(st.st_mode))
        return;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    static char buf[8 << 20];
    /* A sparse LMDB file (data.mdb of a WRITEMAP env) may be huge: read what is allocated. */
    off_t end = st.st_size, off = 0;
    if ((uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size / 2) {
        off = lseek(fd, 0, SEEK_DATA);
        while (off >= 0 && off < end) {
            off_t hole = lseek(fd, off, SEEK_HOLE);
            if (hole < 0)
                break;
            for (off_t o = off; o < hole; o += (off_t)sizeof buf)
                if (pread(fd, buf, sizeof buf, o) <= 0)
                    break;
            off = lseek(fd, hole, SEEK_DATA);
        }
    } else {
        while (read(fd, buf, sizeof buf) > 0)
            ;
    }
    close(fd);
}

/* Bytes of path (recursively) in the page cache: mincore over the allocated extents. */
static inline uint64_t bench_resident(const char *path)
{
    struct stat st;
    if (lstat(path, &st))
        return 0;
    uint64_t sum = 0;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d)
            return 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            char sub[4096];
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub)
                sum += bench_resident(sub);
        }
        closedir(d);
        return sum;
    }
    int fd = S_ISREG(st.st_mode) ? open(path, O_RDONLY) : -1;
    if (fd < 0)
        return 0;
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), win = (size_t)1 << 30;
    static unsigned char vec[((size_t)1 << 30) / 4096];
    off_t off = 0;
    while (off < st.st_size && (off = lseek(fd, off, SEEK_DATA)) >= 0) {
        off_t hole = lseek(fd, off, SEEK_HOLE);
        if (hole < 0)
            break;
        for (off_t lo = off - off % (off_t)page; lo < hole; lo += (off_t)win) {
            size_t n = (size_t)(hole - lo) < win ? (size_t)(hole - lo) : win;
            void *m = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, lo);
            if (m == MAP_FAILED)
                break;
            if (!mincore(m, n, vec))
                for (size_t i = 0; i < (n + page - 1) / page; i++)
                    sum += (vec[i] & 1) ? page : 0;
            munmap(m, n);
        }
        off = hole;
    }
    close(fd);
    return sum;
}

/* Set the page-cache state of the store before a repetition ("asis": leave it); return
 * the store's bytes in the page cache afterwards (a cold repetition must start near 0). */
static inline uint64_t bench_cache(const struct bench_args *a, const char *path)
{
    if (!strcmp(a->cache, "cold"))
        bench_drop_caches();
    else if (!strcmp(a->cache, "warm"))
        bench_warm_path(path);
    return bench_resident(path);
}

/* Bytes allocated on disk under path (st_blocks, so sparse files count what they use). */
static inline uint64_t bench_disk_bytes(const char *path)
{
    struct stat st;
    if (lstat(path, &st))
        return 0;
    if (!S_ISDIR(st.st_mode))
        return S_ISREG(st.st_mode) ? (uint64_t)st.st_blocks * 512 : 0;
    uint64_t sum = 0;
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char sub[4096];
        if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub)
            sum += bench_disk_bytes(sub);
    }
    closedir(d);
    return sum;
}

/* The W7 line: bytes on disk under path for logical_bytes of array data (the label is
 * always W7, whatever --workload says). */
static inline void bench_emit_size(const struct bench_args *a, const char *path,
                                   uint64_t logical_bytes)
{
    struct bench_args b = *a;
    b.workload = NULL;
    double v = (double)bench_disk_bytes(path);
    char extra[128] = "";
    bench_extra(extra, sizeof extra, "\"logical_bytes\": %llu, \"codec\": \"%s\"",
                (unsigned long long)logical_bytes, a->codec);
    bench_emit(&b, "W7", "bytes", &v, 1, extra);
}

/* ---- data -------------------------------------------------------------------------------- */

static inline uint64_t bench_splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static inline uint64_t bench_below(uint64_t *s, uint64_t n)
{
    return bench_splitmix(s) % n;
}

/* Read the whole source file into anonymous memory (never timed: writers hold their
 * source in RAM before the clock starts, as in the anchors). *nbytes gets its size. */
static inline unsigned char *bench_load_src(const char *path, size_t *nbytes)
{
    if (!path)
        bench_die("write", "needs --src");
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st))
        bench_die(path, strerror(errno));
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf)
        bench_die(path, "out of memory");
    size_t done = 0;
    while (done < n) {
        ssize_t r = read(fd, buf + done, n - done > (64u << 20) ? (64u << 20) : n - done);
        if (r <= 0)
            bench_die(path, r < 0 ? strerror(errno) : "short read");
        done += (size_t)r;
    }
    close(fd);
    *nbytes = n;
    return buf;
}

/* The bytes of logical rows [row, row + nrows) of an array built from a source of
 * src_rows rows that repeats (arrays larger than the source, e.g. W6 at 16 GiB). */
static inline void bench_src_rows(unsigned char *dst, const unsigned char *src, int64_t src_rows,
                                  size_t row_bytes, int64_t row, int64_t nrows)
{
    while (nrows > 0) {
        int64_t r = row % src_rows, n = src_rows - r < nrows ? src_rows - r : nrows;
        memcpy(dst, src + (size_t)r * row_bytes, (size_t)n * row_bytes);
        dst += (size_t)n * row_bytes;
        row += n;
        nrows -= n;
    }
}

/* ---- the sum kernel ---------------------------------------------------------------------- */

/* Sum of n float64 (or int32, as float64) values: eight independent accumulators so the
 * loop runs at memory speed, the same kernel for every C system. */
static inline double bench_sum(const void *p, size_t nbytes, size_t itemsize)
{
    double acc[8] = {0};
    size_t n = nbytes / itemsize, full = n & ~(size_t)7;
    if (itemsize == 4) {
        const int32_t *v = p;
        for (size_t i = 0; i < full; i += 8)
            for (size_t k = 0; k < 8; k++)
                acc[k] += (double)v[i + k];
        for (size_t i = full; i < n; i++)
            acc[0] += (double)v[i];
    } else {
        const double *v = p;
        for (size_t i = 0; i < full; i += 8)
            for (size_t k = 0; k < 8; k++)
                acc[k] += v[i + k];
        for (size_t i = full; i < n; i++)
            acc[0] += v[i];
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

#endif /* BENCH_COMMON_H */
