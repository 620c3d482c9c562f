/* SPDX-License-Identifier: MIT */
/*
 * Benchmarks of store/, each next to its peer measured in the same run:
 *
 *   bench_store throughput [--dir D] [--total MiB] [--batch MiB] [--reps N]
 *       Write + durable commit, and warm read, of 2 MiB blocks through store/ (codec
 *       none with LMDB's map read-only and writable, zstd-1 writable, as the library
 *       opens it, on compressible data), next to a bare
 *       LMDB C loop doing the same puts/gets and commits, and (uncompressed writes) a
 *       plain mmap + memcpy + msync loop over a raw file, the numpy.memmap stand-in.
 *   bench_store steady [--quick] [--commits N] [--dir D] [--classes K] [--rdmap]
 *       5,000 durable commits, each rewriting a random 1% of the blocks of a 1 GiB
 *       zstd-1 array whose blocks compress to varying sizes: bytes the data file takes
 *       on disk against the live data, and commit time of the last 500 commits against
 *       the first 500. LMDB's map is writable, as the library opens it, unless --rdmap.
 *
 * Fixed seeds; several repetitions; one result line per figure with the median (and
 * min..max). Data generation is never timed. Throughput runs use a fresh database and a
 * fresh child process per measurement; note that this VM charges ~1.5 us per first
 * touch of a 4 KiB page.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "ba_common.h"
#include "store.h"

#define MiB (1024.0 * 1024.0)
#define BLK (2u << 20)

static volatile uint64_t sink; /* keeps checksums from being optimised away */

/* ---- small utilities --------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of n values (v is left as it is). */
static double median(const double *v, int n)
{
    double *c = malloc((size_t)n * sizeof *c);
    memcpy(c, v, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_d);
    double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    free(c);
    return m;
}

static void report(const char *what, double *v, int n, const char *unit)
{
    double lo = v[0], hi = v[0];
    for (int i = 1; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    double m = median(v, n);
    printf("%-44s %10.1f %s  (median of %d: %.1f..%.1f)\n", what, m, unit, n, lo, hi);
    fflush(stdout);
}

static int rm_one(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)sb;
    (void)f;
    (void)ftw;
    return remove(p);
}

static void rmtree(const char *p)
{
    nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* sin without libm (the bench links store/ only): range-reduce, then Taylor to x^11. */
static double bsin(double x)
{
    const double pi = 3.14159265358979323846;
    long long q = (long long)(x / (2 * pi));
    x -= (double)q * 2 * pi;
    if (x > pi)
        x -= 2 * pi;
    double x2 = x * x, t = x, s = x;
    for (int k = 1; k <= 5; k++) {
        t *= -x2 / (double)((2 * k) * (2 * k + 1));
        s += t;
    }
    return s;
}

/* The anchors' compressible data: float64 round(sin(i/1000)*1000)/1000 (zstd-1 ~50x). */
static void fill_sin(unsigned char *buf, size_t n, uint64_t first)
{
    double *d = (double *)(void *)buf;
    for (size_t i = 0; i < n / 8; i++) {
        double v = bsin((double)(first + i) / 1000.0) * 1000.0;
        d[i] = (double)(long long)(v < 0 ? v - 0.5 : v + 0.5) / 1000.0;
    }
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_store: %s: %s (%s)\n", what, ba_strerror(rc), ba_errmsg());
    exit(1);
}

static void mdb_die(const char *what, int rc)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, mdb_strerror(rc));
    exit(1);
}

/* ---- store/ paths ------------------------------------------------------------------------ */

static struct store *st_open(const char *dir, unsigned flags)
{
    struct store_opts o;
    store_opts_init(&o);
    o.flags = STORE_CREATE | flags;
    struct store *st;
    int rc = store_open(dir, &o, &st);
    if (rc)
        die("store_open", rc);
    return st;
}

static uint64_t st_seq(struct store *st)
{
    struct store_snap *sn;
    int rc = store_snap_begin(st, &sn);
    if (rc)
        die("snap", rc);
    uint64_t s = store_snap_seq(sn);
    store_snap_unref(sn);
    return s;
}

static struct store_array st_array(struct store *st, const char *name, uint8_t codec,
                                   uint64_t nblocks)
{
    struct store_array a;
    memset(&a, 0, sizeof a);
    snprintf(a.name, sizeof a.name, "%s", name);
    strcpy(a.dtype, "<f8");
    a.itemsize = 8;
    a.ndim = 1;
    a.shape[0] = (int64_t)(nblocks * BLK / 8);
    a.order = 'C';
    a.block_size = BLK;
    a.codec = codec;
    a.level = codec ? 1 : 0;
    struct store_txn *tx;
    int rc = store_txn_begin(st, st_seq(st), 0, &tx);
    if (!rc)
        rc = store_txn_array_create(tx, &a);
    if (!rc)
        rc = store_txn_commit(tx, NULL);
    if (rc)
        die("create", rc);
    return a;
}

/* Write nblk blocks from src (nblk*BLK bytes) in commits of `batch` blocks. */
static double st_write(const char *dir, unsigned flags, uint8_t codec, const unsigned char *src,
                       uint64_t nblk, uint64_t batch)
{
    rmtree(dir);
    struct store *st = st_open(dir, flags);
    struct store_array a = st_array(st, "a", codec, nblk);
    uint64_t *blknos = malloc(batch * sizeof *blknos);
    const void **raws = malloc(batch * sizeof *raws);
    double t0 = now_s();
    for (uint64_t b = 0; b < nblk; b += batch) {
        uint64_t n = nblk - b < batch ? nblk - b : batch;
        for (uint64_t i = 0; i < n; i++) {
            blknos[i] = b + i;
            raws[i] = src + (b + i) * BLK;
        }
        struct store_txn *tx;
        int rc = store_txn_begin(st, st_seq(st), n * BLK, &tx);
        if (!rc)
            rc = store_txn_blocks_write(tx, &a, n, blknos, raws);
        if (!rc)
            rc = store_txn_commit(tx, NULL);
        if (rc)
            die("write", rc);
    }
    double t = now_s() - t0;
    store_close(st);
    free(blknos);
    free(raws);
    return (double)nblk * BLK / MiB / t;
}

static double st_read(const char *dir, uint64_t nblk, unsigned char *buf)
{
    struct store *st = st_open(dir, 0);
    struct store_snap *sn;
    struct store_array a;
    int rc = store_snap_begin(st, &sn);
    if (!rc)
        rc = store_array_by_name(sn, "a", &a);
    if (rc)
        die("read setup", rc);
    double t0 = now_s();
    for (uint64_t b = 0; b < nblk; b++) {
        rc = store_block_read(sn, &a, b, buf, 0);
        if (rc)
            die("read", rc);
    }
    double t = now_s() - t0;
    store_snap_unref(sn);
    store_close(st);
    return (double)nblk * BLK / MiB / t;
}

/* ---- the bare LMDB loop --------------------------------------------------------------------- */

static void key_of(unsigned char *k, uint64_t blkno)
{
    memset(k, 0, 8);
    k[7] = 1; /* array id 1, big-endian */
    for (int i = 0; i < 8; i++)
        k[8 + i] = (unsigned char)(blkno >> (56 - 8 * i));
}

static MDB_env *bare_open(const char *dir, unsigned flags, MDB_dbi *dbi)
{
    MDB_env *env;
    MDB_txn *txn;
    mkdir(dir, 0755);
    int rc = mdb_env_create(&env);
    if (!rc)
        rc = mdb_env_set_mapsize(env, 1ull << 40);
    if (!rc)
        rc = mdb_env_set_maxdbs(env, 4);
    if (!rc)
        rc = mdb_env_open(env, dir, MDB_NOTLS | flags, 0644);
    if (!rc)
        rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (!rc)
        rc = mdb_dbi_open(txn, "blocks", MDB_CREATE, dbi);
    if (!rc)
        rc = mdb_txn_commit(txn);
    if (rc)
        mdb_die("bare open", rc);
    return env;
}

static double bare_write(const char *dir, unsigned flags, int zstd, const unsigned char *src,
                         uint64_t nblk, uint64_t batch)
{
    rmtree(dir);
    MDB_dbi dbi;
    MDB_env *env = bare_open(dir, flags, &dbi);
    ZSTD_CCtx *cx = ZSTD_createCCtx();
    size_t cap = ZSTD_compressBound(BLK);
    unsigned char *cbuf = malloc(cap);
    memset(cbuf, 0, cap);
    double t0 = now_s();
    for (uint64_t b = 0; b < nblk; b += batch) {
        uint64_t n = nblk - b < batch ? nblk - b : batch;
        MDB_txn *txn;
        int rc = mdb_txn_begin(env, NULL, 0, &txn);
        for (uint64_t i = 0; i < n && !rc; i++) {
            unsigned char k[16];
            key_of(k, b + i);
            MDB_val key = {16, k}, val = {BLK, (void *)(uintptr_t)(src + (b + i) * BLK)};
            if (zstd) {
                val.mv_size = ZSTD_compressCCtx(cx, cbuf, cap, val.mv_data, BLK, 1);
                val.mv_data = cbuf;
            }
            rc = mdb_put(txn, dbi, &key, &val, 0);
        }
        if (!rc)
            rc = mdb_txn_commit(txn);
        if (rc)
            mdb_die("bare write", rc);
    }
    double t = now_s() - t0;
    mdb_env_close(env);
    ZSTD_freeCCtx(cx);
    free(cbuf);
    return (double)nblk * BLK / MiB / t;
}

/* verify: also XXH3-64 each decoded block, the work store/ does on top of decoding. */
static double bare_read(const char *dir, int zstd, int verify, uint64_t nblk, unsigned char *buf)
{
    MDB_dbi dbi;
    MDB_env *env = bare_open(dir, 0, &dbi);
    ZSTD_DCtx *dx = ZSTD_createDCtx();
    MDB_txn *txn;
    int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc)
        mdb_die("bare read", rc);
    double t0 = now_s();
    for (uint64_t b = 0; b < nblk; b++) {
        unsigned char k[16];
        key_of(k, b);
        MDB_val key = {16, k}, val;
        rc = mdb_get(txn, dbi, &key, &val);
        if (rc)
            mdb_die("bare get", rc);
        if (zstd)
            ZSTD_decompressDCtx(dx, buf, BLK, val.mv_data, val.mv_size);
        else
            memcpy(buf, val.mv_data, BLK);
        if (verify)
            sink ^= XXH3_64bits(buf, BLK);
    }
    double t = now_s() - t0;
    mdb_txn_abort(txn);
    mdb_env_close(env);
    ZSTD_freeDCtx(dx);
    return (double)nblk * BLK / MiB / t;
}

/* ---- the memmap stand-in: mmap + memcpy + msync over a raw file -------------------------------- */

static double mmap_write(const char *dir, const unsigned char *src, uint64_t nblk, uint64_t batch)
{
    rmtree(dir);
    mkdir(dir, 0755);
    char path[4200];
    snprintf(path, sizeof path, "%s/raw.bin", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    size_t total = nblk * BLK;
    if (fd < 0 || ftruncate(fd, (off_t)total))
        die("mmap file", -errno);
    double t0 = now_s();
    unsigned char *m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        die("mmap", -errno);
    for (uint64_t b = 0; b < nblk; b += batch) {
        uint64_t n = nblk - b < batch ? nblk - b : batch;
        memcpy(m + b * BLK, src + b * BLK, n * BLK);
        if (msync(m + b * BLK, n * BLK, MS_SYNC))
            die("msync", -errno);
    }
    munmap(m, total);
    double t = now_s() - t0;
    close(fd);
    return (double)nblk * BLK / MiB / t;
}

/* ---- one measurement in a fresh process -------------------------------------------------- */

enum job_kind { JOB_STORE_WRITE, JOB_STORE_READ, JOB_BARE_WRITE, JOB_BARE_READ, JOB_MMAP_WRITE };

struct job {
    enum job_kind kind;
    unsigned flags; /* STORE_* or MDB_* environment flags */
    int codec;      /* store codec, or 1 = zstd for the bare loop */
    int verify;     /* bare reads: XXH3 each block too */
};

struct job_env {
    const char *store_dir, *bare_dir;
    const unsigned char *src;
    unsigned char *buf;
    uint64_t nblk, batch;
};

static double job_run(const struct job *j, const struct job_env *e)
{
    switch (j->kind) {
    case JOB_STORE_WRITE:
        return st_write(e->store_dir, j->flags, (uint8_t)j->codec, e->src, e->nblk, e->batch);
    case JOB_STORE_READ:
        return st_read(e->store_dir, e->nblk, e->buf);
    case JOB_BARE_WRITE:
        return bare_write(e->bare_dir, j->flags, j->codec, e->src, e->nblk, e->batch);
    case JOB_BARE_READ:
        return bare_read(e->bare_dir, j->codec, j->verify, e->nblk, e->buf);
    case JOB_MMAP_WRITE:
        return mmap_write(e->bare_dir, e->src, e->nblk, e->batch);
    }
    return 0;
}

/* Run a job in a child process (the source data is shared copy-on-write), so no system
 * inherits another's heap, arenas or freshly freed memory. Returns MB/s. */
static double measure(const struct job *j, const struct job_env *e)
{
    int pfd[2];
    if (pipe(pfd))
        die("pipe", -errno);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("fork", -errno);
    if (pid == 0) {
        double x = job_run(j, e);
        _exit(write(pfd[1], &x, sizeof x) == (ssize_t)sizeof x ? 0 : 1);
    }
    close(pfd[1]);
    double x = 0;
    ssize_t got = read(pfd[0], &x, sizeof x);
    close(pfd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got != (ssize_t)sizeof x || !WIFEXITED(status) || WEXITSTATUS(status))
        die("measurement child", -EIO);
    return x;
}

/* ---- throughput ---------------------------------------------------------------------------------- */

static int throughput(const char *dir, uint64_t total_mib, uint64_t batch_mib, int reps, int only)
{
    uint64_t nblk = total_mib * (1u << 20) / BLK, batch = batch_mib * (1u << 20) / BLK;
    unsigned char *src = malloc(nblk * BLK), *buf = malloc(BLK);
    fill_sin(src, nblk * BLK, 0);
    memset(buf, 0, BLK);
    printf("# throughput: %llu MiB of 2 MiB blocks, commits of %llu MiB, %d repetitions, "
           "durable commits\n",
           (unsigned long long)total_mib, (unsigned long long)batch_mib, reps);
    enum {
        W_ST,
        W_STWM,
        W_BARE,
        W_BAREWM,
        W_MMAP,
        W_STZ,
        W_BAREZ,
        R_ST,
        R_BARE,
        R_BAREH,
        R_STZ,
        R_BAREZ,
        R_BAREZH,
        NF
    };
    static const char *const names[NF] = {
        [W_ST] = "write none store/ (read-only map)",
        [W_STWM] = "write none store/ (WRITEMAP, lib default)",
        [W_BARE] = "write none bare LMDB",
        [W_BAREWM] = "write none bare LMDB (WRITEMAP)",
        [W_MMAP] = "write mmap+memcpy+msync",
        [W_STZ] = "write zstd-1 store/ (WRITEMAP, workers)",
        [W_BAREZ] = "write zstd-1 bare LMDB (1 thread)",
        [R_ST] = "read none store/ (+XXH3 verify)",
        [R_BARE] = "read none bare LMDB (memcpy)",
        [R_BAREH] = "read none bare LMDB (memcpy + XXH3)",
        [R_STZ] = "read zstd-1 store/ (+XXH3 verify)",
        [R_BAREZ] = "read zstd-1 bare LMDB",
        [R_BAREZH] = "read zstd-1 bare LMDB (+XXH3)",
    };
    double v[NF][32];
    char d1[3900], d2[3900];
    snprintf(d1, sizeof d1, "%s/store", dir);
    snprintf(d2, sizeof d2, "%s/bare", dir);
    static const struct job jobs[NF] = {
        [W_ST] = {JOB_STORE_WRITE, 0, STORE_CODEC_NONE, 0},
        [W_STWM] = {JOB_STORE_WRITE, STORE_WRITEMAP, STORE_CODEC_NONE, 0},
        [W_BARE] = {JOB_BARE_WRITE, 0, 0, 0},
        [W_BAREWM] = {JOB_BARE_WRITE, MDB_WRITEMAP, 0, 0},
        [W_MMAP] = {JOB_MMAP_WRITE, 0, 0, 0},
        [W_STZ] = {JOB_STORE_WRITE, STORE_WRITEMAP, STORE_CODEC_ZSTD, 0},
        [W_BAREZ] = {JOB_BARE_WRITE, 0, 1, 0},
        [R_ST] = {JOB_STORE_READ, 0, 0, 0},
        [R_BARE] = {JOB_BARE_READ, 0, 0, 0},
        [R_BAREH] = {JOB_BARE_READ, 0, 0, 1},
        [R_STZ] = {JOB_STORE_READ, 0, 0, 0},
        [R_BAREZ] = {JOB_BARE_READ, 0, 1, 0},
        [R_BAREZH] = {JOB_BARE_READ, 0, 1, 1},
    };
    struct job_env env = {d1, d2, src, buf, nblk, batch};
    /* Each step: a peer figure and the store/ figure measured next to it (-1: none). The
     * order inside a pair swaps every other repetition, and systems interleave, so drift
     * in the machine hits all of them alike. Every measurement runs in a fresh child
     * process (see measure()). */
    static const int steps[][2] = {
        {W_MMAP, -1},       {W_BARE, W_ST},   {R_BARE, R_ST},   {R_BAREH, -1},
        {W_BAREWM, W_STWM}, {W_BAREZ, W_STZ}, {R_BAREZ, R_STZ}, {R_BAREZH, -1},
    };
    for (int r = 0; r < reps; r++) {
        for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
            for (int k = 0; k < 2; k++) {
                int f = steps[i][(k + r) & 1];
                if (f >= 0 && (only < 0 || only == f))
                    v[f][r] = measure(&jobs[f], &env);
            }
        }
    }
    double med[NF];
    for (int f = 0; f < NF; f++) {
        if (only >= 0 && only != f)
            continue;
        report(names[f], v[f], reps, "MB/s");
        med[f] = median(v[f], reps);
    }
    if (only >= 0)
        return 0;
    /* Ratios: of the medians, and the median of per-repetition ratios (each pair ran
     * back to back, so it sees the same machine state: more robust to drift). */
    static const struct {
        const char *what;
        int a, b;
    } rat[] = {
        {"write none store/ rdmap / bare LMDB", W_ST, W_BARE},
        {"write none store/ WRITEMAP / bare WRITEMAP", W_STWM, W_BAREWM},
        {"write none store/ rdmap / mmap+msync", W_ST, W_MMAP},
        {"write none store/ WRITEMAP / mmap+msync", W_STWM, W_MMAP},
        {"write zstd-1 store/ / bare LMDB", W_STZ, W_BAREZ},
        {"read none store/ / bare LMDB", R_ST, R_BARE},
        {"read none store/ / bare LMDB + XXH3", R_ST, R_BAREH},
        {"read zstd-1 store/ / bare LMDB", R_STZ, R_BAREZ},
        {"read zstd-1 store/ / bare LMDB + XXH3", R_STZ, R_BAREZH},
    };
    for (size_t i = 0; i < sizeof rat / sizeof rat[0]; i++) {
        double pr[32];
        for (int r = 0; r < reps; r++)
            pr[r] = v[rat[i].a][r] / v[rat[i].b][r];
        printf("ratio %-44s %.2f (medians)  %.2f (median of paired ratios)\n", rat[i].what,
               med[rat[i].a] / med[rat[i].b], median(pr, reps));
    }
    rmtree(d1);
    rmtree(d2);
    free(src);
    free(buf);
    return 0;
}

/* ---- steady state ------------------------------------------------------------------------------- */

/* A block whose elements carry k random low bytes (k from the seed: 1..7), so zstd-1
 * output sizes spread over ~15%..90% of the block, like real data whose compressibility
 * changes between rewrites. */
static void fill_varying(unsigned char *buf, uint64_t *seed)
{
    unsigned k = 1 + (unsigned)(splitmix(seed) % 7);
    uint64_t mask = (1ull << (8 * k)) - 1;
    uint64_t *p = (uint64_t *)(void *)buf;
    for (size_t i = 0; i < BLK / 8; i++)
        p[i] = splitmix(seed) & mask;
}

/* Bytes data.mdb takes on disk: with the writable map the file is sparse, as long as the
 * map, so its length says nothing. */
static uint64_t file_size(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    struct stat sb;
    return stat(path, &sb) ? 0 : (uint64_t)sb.st_blocks * 512u;
}

static double mean(const double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    return s / n;
}

static int steady(const char *dir, int commits, int window, unsigned flags)
{
    const uint64_t nblk = 512; /* 1 GiB of 2 MiB blocks */
    char d[3900];
    snprintf(d, sizeof d, "%s/steady", dir);
    rmtree(d);
    struct store *st = st_open(d, flags);
    struct store_array a = st_array(st, "a", STORE_CODEC_ZSTD, nblk);
    uint64_t seed = 42;
    enum { MAXW = 8 };
    unsigned char *bufs[MAXW];
    const void *raws[MAXW];
    uint64_t blknos[MAXW];
    for (int i = 0; i < MAXW; i++) {
        bufs[i] = malloc(BLK);
        raws[i] = bufs[i];
    }
    /* initial content, 8 blocks per commit */
    for (uint64_t b = 0; b < nblk; b += MAXW) {
        for (int i = 0; i < MAXW; i++) {
            fill_varying(bufs[i], &seed);
            blknos[i] = b + (uint64_t)i;
        }
        struct store_txn *tx;
        int rc = store_txn_begin(st, st_seq(st), MAXW * BLK, &tx);
        if (!rc)
            rc = store_txn_blocks_write(tx, &a, MAXW, blknos, raws);
        if (!rc)
            rc = store_txn_commit(tx, NULL);
        if (rc)
            die("initial write", rc);
    }
    printf("# steady: 1 GiB zstd-1 array (512 x 2 MiB), %d durable commits each rewriting a "
           "random 1%% of the blocks; size classes per doubling: %s; LMDB's map %s\n",
           commits, getenv("BIGARRAY_STORE_CLASSES") ? getenv("BIGARRAY_STORE_CLASSES") : "8",
           flags & STORE_WRITEMAP ? "writable (the library's default)" : "read-only");
    double *t = malloc((size_t)commits * sizeof *t);
    uint64_t rnd = 7;
    for (int c = 0; c < commits; c++) {
        /* 5 distinct blocks, a 6th with probability 0.12: 1% of 512 on average */
        int n = 5 + (splitmix(&rnd) % 100 < 12);
        for (int i = 0; i < n; i++) {
            uint64_t b;
            int dup;
            do {
                b = splitmix(&rnd) % nblk;
                dup = 0;
                for (int j = 0; j < i; j++)
                    dup |= blknos[j] == b;
            } while (dup);
            blknos[i] = b;
        }
        /* ascending */
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && blknos[j] < blknos[j - 1]; j--) {
                uint64_t x = blknos[j];
                blknos[j] = blknos[j - 1];
                blknos[j - 1] = x;
            }
        for (int i = 0; i < n; i++)
            fill_varying(bufs[i], &seed);
        double t0 = now_s();
        struct store_txn *tx;
        int rc = store_txn_begin(st, st_seq(st), (uint64_t)n * BLK, &tx);
        if (!rc)
            rc = store_txn_blocks_write(tx, &a, (size_t)n, blknos, raws);
        if (!rc)
            rc = store_txn_commit(tx, NULL);
        if (rc)
            die("steady commit", rc);
        t[c] = (now_s() - t0) * 1e3;
        if ((c + 1) % window == 0 || c + 1 == commits) {
            struct store_snap *sn;
            struct store_array cur;
            struct store_stat ss;
            if (store_snap_begin(st, &sn) || store_array_by_id(sn, a.id, &cur) ||
                store_stat(st, &ss))
                die("stat", BA_EINVAL);
            uint64_t payload = 0;
            for (uint64_t b = 0; b < nblk; b++) {
                struct store_block_info bi;
                if (!store_block_info(sn, a.id, b, &bi))
                    payload += bi.stored_len;
            }
            store_snap_unref(sn);
            int lo = c + 1 - window < 0 ? 0 : c + 1 - window;
            double tmp[5000];
            int wn = c + 1 - lo;
            memcpy(tmp, t + lo, (size_t)wn * sizeof *t);
            double wmean = mean(tmp, wn), wmed = median(tmp, wn);
            uint64_t fs = file_size(d);
            printf("commits %5d: file %7.1f MiB, live %7.1f MiB (payload %7.1f MiB), "
                   "file/live %.2f, file/payload %.2f, free pages %llu, commit ms mean %.1f "
                   "median %.1f\n",
                   c + 1, (double)fs / MiB, (double)cur.stored_bytes / MiB, (double)payload / MiB,
                   (double)fs / (double)cur.stored_bytes, (double)fs / (double)payload,
                   (unsigned long long)ss.pages_free, wmean, wmed);
            fflush(stdout);
        }
    }
    int w = window < commits ? window : commits;
    double first[5000], last[5000];
    memcpy(first, t, (size_t)w * sizeof *t);
    memcpy(last, t + commits - w, (size_t)w * sizeof *t);
    double fm = mean(first, w), lm = mean(last, w);
    double fmed = median(first, w), lmed = median(last, w);
    printf("steady commit ms first %d: mean %.2f median %.2f; last %d: mean %.2f median %.2f; "
           "ratio last/first mean %.2f median %.2f\n",
           w, fm, fmed, w, lm, lmed, lm / fm, lmed / fmed);
    store_close(st);
    rmtree(d);
    for (int i = 0; i < MAXW; i++)
        free(bufs[i]);
    free(t);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "throughput";
    const char *dir = "/var/tmp/bench_store";
    uint64_t total = 1024, batch = 256;
    int reps = 5, commits = 5000, quick = 0, only = -1;
    unsigned steady_flags = STORE_WRITEMAP;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--total") && i + 1 < argc)
            total = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--commits") && i + 1 < argc)
            commits = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--classes") && i + 1 < argc)
            setenv("BIGARRAY_STORE_CLASSES", argv[++i], 1);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = atoi(argv[++i]); /* one figure (by its index), for profiling */
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--rdmap"))
            steady_flags = 0; /* LMDB's map read-only, as with BA_DB_NOWRITEMAP */
        else {
            fprintf(stderr, "usage: bench_store throughput|steady [--dir D] [--total MiB] "
                            "[--batch MiB] [--reps N] [--commits N] [--classes K] [--quick] "
                            "[--rdmap]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 32 || commits < 1 || commits > 5000 || batch < 2 || total < batch) {
        fprintf(stderr, "bench_store: bad numbers\n");
        return 2;
    }
    mkdir(dir, 0755);
    if (!strcmp(mode, "throughput"))
        return throughput(dir, total, batch, reps, only);
    if (!strcmp(mode, "steady"))
        return steady(dir, quick ? 1000 : commits, quick ? 100 : 500, steady_flags);
    fprintf(stderr, "bench_store: unknown mode '%s'\n", mode);
    return 2;
}
