/* SPDX-License-Identifier: MIT */
/*
 * The machine's limits at the moment of a benchmark run, so the side-by-side figures
 * can be read against them (a program, not a test; one result line per figure):
 *
 *   mem-sum          bench_common.h's sum kernel over 1 GiB already in RAM     MB/s
 *   mem-memcpy       memcpy of 2 MiB blocks between populated buffers          MB/s
 *   mem-first-touch  writing 2 MiB of fresh anonymous memory (page faults + zeroing
 *                    by the kernel), what every copying design pays per new frame  MB/s
 *   shmem-populate   MADV_POPULATE_WRITE of 2 MiB of a fresh memfd range (how the
 *                    pager populates its frames)                             us/2MiB
 *   disk-cold-read   read(2) of --src in 1 MiB pieces after drop_caches      MB/s
 *
 * Usage: bench_calib [--src FILE] [--reps N] [--system NAME]
 */
#include <sys/mman.h>

#include "bench_common.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define GiB (1ull << 30)
#define BLK (2u << 20)

static volatile double sink;

static void calib_mem(const struct bench_args *a)
{
    double v[BENCH_MAX_SAMPLES];
    unsigned char *buf = malloc(GiB), *dst = malloc(BLK);
    if (!buf || !dst)
        bench_die("calib", "out of memory");
    for (size_t i = 0; i < GiB; i += 8)
        *(double *)(void *)(buf + i) = (double)(i & 1023);
    memset(dst, 1, BLK);
    for (int r = 0; r < a->reps; r++) {
        double t0 = bench_now();
        sink = bench_sum(buf, GiB, 8);
        v[r] = (double)GiB / 1e6 / (bench_now() - t0);
    }
    bench_emit(a, "mem-sum", "MB/s", v, a->reps, "");
    for (int r = 0; r < a->reps; r++) {
        double t0 = bench_now();
        for (size_t off = 0; off < GiB; off += BLK)
            memcpy(off / BLK % 2 ? dst : buf + off, off / BLK % 2 ? buf + off : dst, BLK);
        v[r] = (double)GiB / 1e6 / (bench_now() - t0);
    }
    bench_emit(a, "mem-memcpy", "MB/s", v, a->reps, "");
    free(buf);
    for (int r = 0; r < a->reps; r++) {
        unsigned char *fresh =
            mmap(NULL, GiB / 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (fresh == MAP_FAILED)
            bench_die("mmap", strerror(errno));
        madvise(fresh, GiB / 4, MADV_NOHUGEPAGE);
        double t0 = bench_now();
        for (size_t off = 0; off < GiB / 4; off += BLK)
            memset(fresh + off, 2, BLK);
        v[r] = (double)(GiB / 4) / 1e6 / (bench_now() - t0);
        munmap(fresh, GiB / 4);
    }
    free(dst);
    bench_emit(a, "mem-first-touch", "MB/s", v, a->reps, "\"page\": \"4KiB\"");
    for (int r = 0; r < a->reps; r++) {
        int fd = memfd_create("bench-calib", MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, (off_t)(GiB / 4)))
            bench_die("memfd", strerror(errno));
        unsigned char *m = mmap(NULL, GiB / 4, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED)
            bench_die("mmap memfd", strerror(errno));
        double t0 = bench_now();
        for (size_t off = 0; off < GiB / 4; off += BLK)
            if (madvise(m + off, BLK, MADV_POPULATE_WRITE))
                bench_die("MADV_POPULATE_WRITE", strerror(errno));
        v[r] = (bench_now() - t0) * 1e6 / (double)(GiB / 4 / BLK);
        munmap(m, GiB / 4);
        close(fd);
    }
    bench_emit(a, "shmem-populate", "us/2MiB", v, a->reps, "");
}

static void calib_disk(const struct bench_args *a)
{
    double v[BENCH_MAX_SAMPLES];
    static char buf[1 << 20];
    for (int r = 0; r < a->reps; r++) {
        bench_drop_caches();
        int fd = open(a->src, O_RDONLY);
        if (fd < 0)
            bench_die(a->src, strerror(errno));
        double t0 = bench_now();
        uint64_t n = 0;
        ssize_t k;
        while (n < GiB && (k = read(fd, buf, sizeof buf)) > 0)
            n += (uint64_t)k;
        v[r] = (double)n / 1e6 / (bench_now() - t0);
        close(fd);
    }
    bench_emit(a, "disk-cold-read", "MB/s", v, a->reps, "\"bytes\": 1073741824, \"io\": \"1MiB\"");
}

int main(int argc, char **argv)
{
    struct bench_args a;
    char *args[64];
    int n = 0;
    /* Reuse the common parser: it wants an op and a store. */
    args[n++] = argv[0];
    args[n++] = (char *)(uintptr_t) "calib";
    for (int i = 1; i < argc && n < 60; i++)
        args[n++] = argv[i];
    args[n++] = (char *)(uintptr_t) "--store";
    args[n++] = (char *)(uintptr_t) "-";
    bench_parse(n, args, &a);
    if (!strcmp(a.system, "?"))
        a.system = "machine";
    a.dataset = "-";
    calib_mem(&a);
    if (a.src)
        calib_disk(&a);
    return 0;
}
