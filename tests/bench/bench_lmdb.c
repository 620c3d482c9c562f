/* SPDX-License-Identifier: MIT */
/*
 * The storage floor of issue #8: a bare C loop over LMDB with 2 MiB values (a program,
 * not a test). Same command line, workloads, data, sum kernel and result lines as
 * bench_ba (see bench_common.h), so bigarray's figures have their floor from the same run:
 *
 *   write    one write transaction putting every 2 MiB block (zstd-1 compressed with
 *            --codec zstd:1), committed durably (default env flags: no MDB_WRITEMAP, no
 *            MDB_NOSYNC, so mdb_txn_commit writes and fdatasyncs)       MB/s (W1)
 *            and the bytes on disk                                      bytes (W7)
 *   scan     fresh env, one read transaction per thread, sum straight from the map
 *            (zero copy) or after decompressing into a reused buffer    MB/s (W2f, W3, W9)
 *   scanhot  the same env and transaction, passes after an untimed one  MB/s (W2)
 *   rand     --count sums of 64 KiB at random rows: get the block(s), decompress the
 *            whole block for zstd (no cache)                            reads/s (W4)
 *   rewrite  one transaction per commit copying --blocks blocks (1% by default), one row
 *            patched in each (zstd: decompress, patch, recompress)     ms/commit (W5)
 *   append   1 MiB appends, one transaction each: the partial tail block is rewritten
 *            whole (every other append, for 2 MiB blocks); the sum of the
 *            transaction times, and the median and tail per append      s (W6)
 *
 * Layout: key = block number (u64 big-endian), value = the block's bytes (the tail block
 * holds only the bytes present) or its zstd frame; key "shape" = rows, cols, itemsize,
 * codec (4 x u64, native order).
 */
#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <zstd.h>

#include "bench_common.h"

#define BLK (2u << 20)

static void mdb_die(const char *what, int rc)
{
    fprintf(stderr, "bench_lmdb: %s: %s\n", what, mdb_strerror(rc));
    exit(1);
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

struct shape {
    uint64_t rows, cols, itemsize, codec;
};

static MDB_env *env_open(const char *dir, unsigned flags)
{
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (!rc)
        rc = mdb_env_set_mapsize(env, (size_t)1 << 40);
    if (!rc)
        rc = mdb_env_set_maxreaders(env, 126);
    if (!rc && !(flags & MDB_RDONLY) && mkdir(dir, 0755) && errno != EEXIST)
        bench_die(dir, strerror(errno));
    if (!rc)
        rc = mdb_env_open(env, dir, flags, 0644);
    if (rc)
        mdb_die(dir, rc);
    return env;
}

static void key_of(unsigned char *k, uint64_t blkno)
{
    for (int i = 0; i < 8; i++)
        k[i] = (unsigned char)(blkno >> (56 - 8 * i));
}

static struct shape shape_get(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_val k = {5, (void *)(uintptr_t) "shape"}, v;
    struct shape sh;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc)
        mdb_die("shape", rc);
    memcpy(&sh, v.mv_data, sizeof sh);
    return sh;
}

static void shape_put(MDB_txn *txn, MDB_dbi dbi, const struct shape *sh)
{
    MDB_val k = {5, (void *)(uintptr_t) "shape"}, v = {sizeof *sh, (void *)(uintptr_t)sh};
    int rc = mdb_put(txn, dbi, &k, &v, 0);
    if (rc)
        mdb_die("put shape", rc);
}

static int codec_of(const char *text)
{
    return !strncmp(text, "zstd", 4);
}

/* Put block blkno: raw bytes, or their zstd-1 frame (cctx non-NULL). */
static void put_block(MDB_txn *txn, MDB_dbi dbi, ZSTD_CCtx *cctx, unsigned char *zbuf,
                      uint64_t blkno, const void *raw, size_t len)
{
    unsigned char kb[8];
    key_of(kb, blkno);
    MDB_val k = {8, kb}, v;
    const void *p = raw;
    if (cctx) {
        len = ZSTD_compressCCtx(cctx, zbuf, ZSTD_compressBound(BLK), raw, len, 1);
        if (ZSTD_isError(len))
            bench_die("zstd", ZSTD_getErrorName(len));
        p = zbuf;
    }
    v.mv_size = len;
    int rc = mdb_put(txn, dbi, &k, &v, MDB_RESERVE);
    if (rc)
        mdb_die("put", rc);
    memcpy(v.mv_data, p, len);
}

/* The raw bytes of block blkno: a pointer into the map, or buf after decompressing. */
static const unsigned char *get_block(MDB_txn *txn, MDB_dbi dbi, const struct shape *sh,
                                      ZSTD_DCtx *dctx, unsigned char *buf, uint64_t blkno,
                                      size_t *len)
{
    unsigned char kb[8];
    key_of(kb, blkno);
    MDB_val k = {8, kb}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc)
        mdb_die("get", rc);
    if (!sh->codec) {
        *len = v.mv_size;
        return v.mv_data;
    }
    size_t n = ZSTD_decompressDCtx(dctx, buf, BLK, v.mv_data, v.mv_size);
    if (ZSTD_isError(n))
        bench_die("unzstd", ZSTD_getErrorName(n));
    *len = n;
    return buf;
}

/* ---- W1 ------------------------------------------------------------------------------------- */

static void op_write(const struct bench_args *a)
{
    size_t src_bytes;
    unsigned char *src = bench_load_src(a->src, &src_bytes);
    size_t item = bench_itemsize(a->dtype), row_bytes = (size_t)a->cols * item;
    int64_t src_rows = (int64_t)(src_bytes / row_bytes);
    int64_t rows = a->rows ? a->rows : src_rows;
    uint64_t nbytes = (uint64_t)rows * row_bytes, nblk = (nbytes + BLK - 1) / BLK;
    int z = codec_of(a->codec);
    ZSTD_CCtx *cctx = z ? ZSTD_createCCtx() : NULL;
    unsigned char *zbuf = malloc(ZSTD_compressBound(BLK)), *blk = malloc(BLK);
    double v[BENCH_MAX_SAMPLES];
    char extra[512] = "";
    uint64_t commit_blk = a->commit_rows ? (uint64_t)a->commit_rows * row_bytes / BLK : 0;
    for (int r = 0; r < a->reps; r++) {
        rmtree(a->store);
        bench_cache(a, a->store);
        double t0 = bench_now();
        MDB_env *env = env_open(a->store, 0);
        MDB_txn *txn;
        MDB_dbi dbi;
        int rc = mdb_txn_begin(env, NULL, 0, &txn);
        if (!rc)
            rc = mdb_dbi_open(txn, NULL, 0, &dbi);
        if (rc)
            mdb_die("begin", rc);
        struct shape sh = {(uint64_t)rows, (uint64_t)a->cols, item, (uint64_t)z};
        shape_put(txn, dbi, &sh);
        for (uint64_t b = 0; b < nblk; b++) {
            size_t len = nbytes - b * BLK < BLK ? (size_t)(nbytes - b * BLK) : BLK;
            bench_src_rows(blk, src, src_rows, row_bytes, (int64_t)(b * BLK / row_bytes),
                           (int64_t)(len / row_bytes));
            put_block(txn, dbi, cctx, zbuf, b, blk, len);
            if (commit_blk && (b + 1) % commit_blk == 0 && b + 1 < nblk) {
                if ((rc = mdb_txn_commit(txn)) || (rc = mdb_txn_begin(env, NULL, 0, &txn)))
                    mdb_die("commit", rc);
            }
        }
        double t1 = bench_now();
        if ((rc = mdb_txn_commit(txn)))
            mdb_die("commit", rc);
        double t2 = bench_now();
        mdb_env_close(env);
        v[r] = (double)nbytes / 1e6 / (t2 - t0);
        extra[0] = 0;
        bench_extra(extra, sizeof extra, "\"seconds\": %.3f, \"last_commit_s\": %.3f", t2 - t0,
                    t2 - t1);
        fprintf(stderr, "bench_lmdb write rep %d: %.0f MB/s (commit %.2f s)\n", r, v[r], t2 - t1);
    }
    bench_extra(extra, sizeof extra, "\"disk_bytes\": %llu, \"codec\": \"%s\"",
                (unsigned long long)bench_disk_bytes(a->store), a->codec);
    bench_emit(a, "W1", "MB/s", v, a->reps, extra);
    bench_emit_size(a, a->store, nbytes);
    ZSTD_freeCCtx(cctx);
    free(zbuf);
    free(blk);
    free(src);
}

/* ---- scans ----------------------------------------------------------------------------------- */

struct part {
    MDB_env *env;
    uint64_t b0, b1;
    double sum;
};

static void *scan_part(void *arg)
{
    struct part *pt = arg;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = mdb_txn_begin(pt->env, NULL, MDB_RDONLY, &txn);
    if (!rc)
        rc = mdb_dbi_open(txn, NULL, 0, &dbi);
    if (rc)
        mdb_die("read begin", rc);
    struct shape sh = shape_get(txn, dbi);
    ZSTD_DCtx *dctx = sh.codec ? ZSTD_createDCtx() : NULL;
    unsigned char *buf = sh.codec ? malloc(BLK) : NULL;
    double sum = 0;
    for (uint64_t b = pt->b0; b < pt->b1; b++) {
        size_t len;
        const unsigned char *p = get_block(txn, dbi, &sh, dctx, buf, b, &len);
        sum += bench_sum(p, len, sh.itemsize);
    }
    mdb_txn_abort(txn);
    ZSTD_freeDCtx(dctx);
    free(buf);
    pt->sum = sum;
    return NULL;
}

static double scan_env(MDB_env *env, int threads, uint64_t *nbytes)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (!rc)
        rc = mdb_dbi_open(txn, NULL, 0, &dbi);
    if (rc)
        mdb_die("read begin", rc);
    struct shape sh = shape_get(txn, dbi);
    mdb_txn_abort(txn);
    *nbytes = sh.rows * sh.cols * sh.itemsize;
    uint64_t nblk = (*nbytes + BLK - 1) / BLK,
             per = (nblk + (uint64_t)threads - 1) / (uint64_t)threads;
    struct part pt[64];
    pthread_t tid[64];
    double sum = 0;
    for (int t = 0; t < threads; t++) {
        uint64_t b0 = per * (uint64_t)t, b1 = b0 + per;
        pt[t] = (struct part){env, b0 < nblk ? b0 : nblk, b1 < nblk ? b1 : nblk, 0};
        if (threads == 1)
            scan_part(&pt[t]);
        else if (pthread_create(&tid[t], NULL, scan_part, &pt[t]))
            bench_die("pthread_create", strerror(errno));
    }
    for (int t = 0; t < threads; t++) {
        if (threads > 1)
            pthread_join(tid[t], NULL);
        sum += pt[t].sum;
    }
    return sum;
}

static void op_scan(const struct bench_args *a)
{
    double v[BENCH_MAX_SAMPLES], sum = 0;
    uint64_t res = 0;
    char extra[512] = "";
    for (int r = 0; r < a->reps; r++) {
        res = bench_cache(a, a->store);
        double t0 = bench_now();
        MDB_env *env = env_open(a->store, MDB_RDONLY);
        uint64_t nbytes;
        sum = scan_env(env, a->threads, &nbytes);
        v[r] = (double)nbytes / 1e6 / (bench_now() - t0);
        mdb_env_close(env);
    }
    bench_extra(extra, sizeof extra,
                "\"threads\": %d, \"cache\": \"%s\", \"resident_MiB_before\": %llu, \"sum\": %.17g",
                a->threads, a->cache, (unsigned long long)(res >> 20), sum);
    bench_emit(a, a->threads > 1 ? "W9" : (!strcmp(a->cache, "cold") ? "W3-cold" : "W2-fresh"),
               "MB/s", v, a->reps, extra);
}

static void op_scanhot(const struct bench_args *a)
{
    double v[BENCH_MAX_SAMPLES], sum;
    char extra[512] = "";
    bench_cache(a, a->store);
    MDB_env *env = env_open(a->store, MDB_RDONLY);
    uint64_t nbytes;
    double t0 = bench_now();
    sum = scan_env(env, a->threads, &nbytes);
    double first = (double)nbytes / 1e6 / (bench_now() - t0);
    for (int r = 0; r < a->reps; r++) {
        t0 = bench_now();
        sum = scan_env(env, a->threads, &nbytes);
        v[r] = (double)nbytes / 1e6 / (bench_now() - t0);
    }
    mdb_env_close(env);
    bench_extra(extra, sizeof extra, "\"first_pass_MBps\": %.1f, \"threads\": %d, \"sum\": %.17g",
                first, a->threads, sum);
    bench_emit(a, "W2", "MB/s", v, a->reps, extra);
}

/* ---- W4 ------------------------------------------------------------------------------------- */

static void op_rand(const struct bench_args *a)
{
    double v[BENCH_MAX_SAMPLES], sum = 0;
    int count = a->count ? a->count : 2000;
    uint64_t res = 0;
    char extra[512] = "";
    unsigned char *buf = malloc(BLK);
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    for (int r = 0; r < a->reps; r++) {
        res = bench_cache(a, a->store);
        double t0 = bench_now();
        MDB_env *env = env_open(a->store, MDB_RDONLY);
        MDB_txn *txn;
        MDB_dbi dbi;
        int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
        if (!rc)
            rc = mdb_dbi_open(txn, NULL, 0, &dbi);
        if (rc)
            mdb_die("read begin", rc);
        struct shape sh = shape_get(txn, dbi);
        size_t row_bytes = sh.cols * sh.itemsize;
        uint64_t nrow = 65536 / row_bytes ? 65536 / row_bytes : 1;
        uint64_t seed = a->seed;
        for (int i = 0; i < count; i++) {
            uint64_t row = bench_below(&seed, sh.rows - nrow + 1);
            uint64_t off = row * row_bytes, end = off + nrow * row_bytes;
            while (off < end) {
                size_t len;
                const unsigned char *p = get_block(txn, dbi, &sh, dctx, buf, off / BLK, &len);
                size_t in = (size_t)(off % BLK), n = BLK - in;
                n = n < end - off ? n : (size_t)(end - off);
                sum += bench_sum(p + in, n, sh.itemsize);
                off += n;
            }
        }
        mdb_txn_abort(txn);
        mdb_env_close(env);
        v[r] = count / (bench_now() - t0);
    }
    bench_extra(extra, sizeof extra,
                "\"reads\": %d, \"cache\": \"%s\", \"resident_MiB_before\": %llu, \"sum\": %.17g",
                count, a->cache, (unsigned long long)(res >> 20), sum);
    bench_emit(a, !strcmp(a->cache, "cold") ? "W4-cold" : "W4-warm", "reads/s", v, a->reps, extra);
    ZSTD_freeDCtx(dctx);
    free(buf);
}

/* ---- W5 ------------------------------------------------------------------------------------- */

static void op_rewrite(const struct bench_args *a)
{
    static double v[BENCH_MAX_SAMPLES];
    int count = a->count ? a->count : 10;
    bench_cache(a, a->store);
    MDB_env *env = env_open(a->store, 0);
    unsigned char *buf = malloc(BLK), *zbuf = malloc(ZSTD_compressBound(BLK));
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    uint64_t seed = a->seed;
    int64_t nchange = 0;
    for (int c = 0; c < count; c++) {
        double t0 = bench_now();
        MDB_txn *txn;
        MDB_dbi dbi;
        int rc = mdb_txn_begin(env, NULL, 0, &txn);
        if (!rc)
            rc = mdb_dbi_open(txn, NULL, 0, &dbi);
        if (rc)
            mdb_die("begin", rc);
        struct shape sh = shape_get(txn, dbi);
        size_t row_bytes = sh.cols * sh.itemsize;
        uint64_t nbytes = sh.rows * row_bytes, nblk = (nbytes + BLK - 1) / BLK;
        uint64_t rows_per_block = BLK / row_bytes;
        nchange = a->blocks ? a->blocks : (int64_t)(nblk + 50) / 100;
        nchange = nchange < 1 ? 1 : nchange;
        for (int64_t k = 0; k < nchange; k++) {
            uint64_t b = bench_below(&seed, nblk);
            uint64_t in = bench_below(&seed, rows_per_block) * row_bytes;
            size_t len;
            const unsigned char *p = get_block(txn, dbi, &sh, dctx, buf, b, &len);
            if (p != buf)
                memcpy(buf, p, len);
            in = in + row_bytes <= len ? in : len - row_bytes;
            for (uint64_t j = 0; j < sh.cols; j++) {
                double x = (double)(c + 1) + (double)j * 0.5;
                memcpy(buf + in + j * 8, &x, 8);
            }
            put_block(txn, dbi, sh.codec ? cctx : NULL, zbuf, b, buf, len);
        }
        if ((rc = mdb_txn_commit(txn)))
            mdb_die("commit", rc);
        v[c] = (bench_now() - t0) * 1e3;
    }
    mdb_env_close(env);
    char extra[256] = "";
    bench_extra(extra, sizeof extra, "\"blocks_per_commit\": %lld", (long long)nchange);
    bench_emit(a, a->blocks == 1 ? "W5-1block" : "W5", "ms/commit", v, count, extra);
    ZSTD_freeCCtx(cctx);
    ZSTD_freeDCtx(dctx);
    free(buf);
    free(zbuf);
}

/* ---- W6 ------------------------------------------------------------------------------------- */

static void op_append(const struct bench_args *a)
{
    size_t src_bytes;
    unsigned char *src = bench_load_src(a->src, &src_bytes);
    size_t item = bench_itemsize(a->dtype), row_bytes = (size_t)a->cols * item;
    int64_t src_rows = (int64_t)(src_bytes / row_bytes);
    size_t app = 1u << 20;
    uint64_t nrow = app / row_bytes;
    int count = a->count ? a->count : 1000;
    int z = codec_of(a->codec);
    unsigned char *blk = malloc(BLK), *zbuf = malloc(ZSTD_compressBound(BLK));
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    double tot[BENCH_MAX_SAMPLES];
    double *lat = malloc((size_t)count * (size_t)a->reps * sizeof *lat);
    int fresh = access(a->store, F_OK) != 0;
    uint64_t start_bytes = 0;
    for (int r = 0; r < a->reps; r++) {
        if (fresh)
            rmtree(a->store);
        MDB_env *env = env_open(a->store, 0);
        MDB_txn *txn;
        MDB_dbi dbi;
        int rc = mdb_txn_begin(env, NULL, 0, &txn);
        if (!rc)
            rc = mdb_dbi_open(txn, NULL, 0, &dbi);
        if (rc)
            mdb_die("begin", rc);
        if (fresh) {
            struct shape sh0 = {0, (uint64_t)a->cols, item, (uint64_t)z};
            shape_put(txn, dbi, &sh0);
        }
        if ((rc = mdb_txn_commit(txn)))
            mdb_die("commit", rc);
        tot[r] = 0;
        for (int i = 0; i < count; i++) {
            double t1 = bench_now();
            if ((rc = mdb_txn_begin(env, NULL, 0, &txn)))
                mdb_die("begin", rc);
            struct shape sh = shape_get(txn, dbi);
            if (i == 0 && r == 0)
                start_bytes = sh.rows * row_bytes;
            uint64_t off = sh.rows * row_bytes, end = off + nrow * row_bytes;
            while (off < end) {
                uint64_t b = off / BLK;
                size_t in = (size_t)(off % BLK), n = BLK - in;
                n = n < end - off ? n : (size_t)(end - off);
                if (in) { /* the partial tail block: read it back, extend it, put it whole */
                    size_t len;
                    const unsigned char *p = get_block(txn, dbi, &sh, dctx, blk, b, &len);
                    if (p != blk)
                        memcpy(blk, p, len);
                }
                bench_src_rows(blk + in, src, src_rows, row_bytes, (int64_t)(off / row_bytes),
                               (int64_t)(n / row_bytes));
                put_block(txn, dbi, z ? cctx : NULL, zbuf, b, blk, in + n);
                off += n;
            }
            sh.rows += nrow;
            shape_put(txn, dbi, &sh);
            if ((rc = mdb_txn_commit(txn)))
                mdb_die("commit", rc);
            /* the copy of the appended rows into the block is part of the append */
            double dt = bench_now() - t1;
            lat[r * count + i] = dt * 1e3;
            tot[r] += dt;
        }
        fprintf(stderr, "bench_lmdb append rep %d: %.2f s\n", r, tot[r]);
        mdb_env_close(env);
    }
    char extra[512] = "";
    bench_extra(extra, sizeof extra,
                "\"appends\": %d, \"append_bytes\": %zu, \"start_bytes\": %llu", count, app,
                (unsigned long long)start_bytes);
    bench_latency_extra(extra, sizeof extra, lat, count * a->reps);
    bench_emit(a, "W6", "s", tot, a->reps, extra);
    ZSTD_freeCCtx(cctx);
    ZSTD_freeDCtx(dctx);
    free(blk);
    free(zbuf);
    free(lat);
    free(src);
}

int main(int argc, char **argv)
{
    struct bench_args a;
    bench_parse(argc, argv, &a);
    if (!strcmp(a.op, "write"))
        op_write(&a);
    else if (!strcmp(a.op, "scan"))
        op_scan(&a);
    else if (!strcmp(a.op, "scanhot"))
        op_scanhot(&a);
    else if (!strcmp(a.op, "rand"))
        op_rand(&a);
    else if (!strcmp(a.op, "rewrite"))
        op_rewrite(&a);
    else if (!strcmp(a.op, "append"))
        op_append(&a);
    else
        bench_usage(argv[0]);
    return 0;
}
