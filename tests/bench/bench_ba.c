/* SPDX-License-Identifier: MIT */
/*
 * bigarray through its public C API, the workloads of issue #8 (a program, not a test):
 *
 *   write    create a 2-D array (rows x cols, 2 MiB blocks, --codec), fill it through a
 *            view from the source held in RAM, commit durably          MB/s    (W1)
 *            and the bytes the database takes on disk                 bytes   (W7)
 *   scan     fresh open, sum the whole array through a read-only view in --threads
 *            contiguous parts; --cache warm|cold before each rep       MB/s    (W2f, W3, W9)
 *   scanhot  one open, one untimed pass, then timed passes over the same view: the
 *            data already in the process                               MB/s    (W2)
 *   rand     fresh open, --count sums of 8 rows (64 KiB) at uniform random rows
 *                                                                      reads/s (W4)
 *   rewrite  --count commits, each writing one row in each of --blocks random blocks
 *            (default 1% of the blocks)                                ms/commit (W5)
 *   append   --count appends of 1 MiB with a durable commit after each, to a new
 *            empty array (no database at --store) or to the existing one: the sum of
 *            the append + commit times (preparing the data is not timed), with the
 *            median and tail of the per-append times                    s (W6)
 *
 * The array is "a" in the database directory --store. Seeds are fixed (--seed), so every
 * system reads the same rows. BIGARRAY_RAM_LIMIT and BIGARRAY_PAGER pick the budget and
 * the backend; BIGARRAY_ZEROCOPY=0 the copying read path. The sum kernel and the result lines are bench_common.h's, shared with
 * bench_lmdb (the storage floor measured the same way).
 */
#include <ftw.h>
#include <pthread.h>

#include "bench_common.h"
#include "bigarray.h"

static void ba_die(const char *what, int rc)
{
    fprintf(stderr, "bench_ba: %s: %s (%s)\n", what, ba_strerror(rc), ba_errmsg());
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

/* An open database, session, array and whole-array view. */
struct handle {
    ba_db *db;
    ba_session *s;
    ba_array *a;
    ba_view v;
    int64_t rows, cols;
    size_t itemsize, row_bytes;
    uint64_t nbytes;
};

static void h_open(struct handle *h, const char *store, unsigned view_flags)
{
    memset(h, 0, sizeof *h);
    int rc = ba_db_open(store, NULL, &h->db);
    if (!rc)
        rc = ba_session_begin(h->db, &h->s);
    if (!rc)
        rc = ba_array_open(h->s, "a", &h->a);
    if (!rc)
        rc = ba_array_view(h->a, NULL, 0, view_flags, &h->v);
    if (rc)
        ba_die(store, rc);
    h->rows = h->v.shape[0];
    h->cols = h->v.ndim > 1 ? h->v.shape[1] : 1;
    h->itemsize = h->v.dtype.itemsize;
    h->row_bytes = (size_t)h->cols * h->itemsize;
    h->nbytes = (uint64_t)h->rows * h->row_bytes;
}

static void h_close(struct handle *h)
{
    ba_view_release(&h->v);
    ba_array_close(h->a);
    ba_session_end(h->s);
    ba_db_close(h->db);
}

static void pager_extra(char *extra, size_t n, ba_db *db)
{
    ba_pager_stat ps;
    memset(&ps, 0, sizeof ps);
    ps.size = sizeof ps;
    if (ba_db_pager_stat(db, &ps))
        return;
    bench_extra(extra, n,
                "\"pager\": \"%s\", \"loads\": %llu, \"readahead_loads\": %llu, "
                "\"evictions\": %llu, \"fault_us_mean\": %.1f, \"ram_limit\": %llu",
                ba_db_pager(db) == BA_PAGER_UFFD ? "uffd" : "sigsegv", (unsigned long long)ps.loads,
                (unsigned long long)ps.readahead_loads, (unsigned long long)ps.evictions,
                ps.faults_read + ps.faults_write
                    ? (double)ps.fault_ns_total / 1e3 / (double)(ps.faults_read + ps.faults_write)
                    : 0.0,
                (unsigned long long)ps.ram_limit);
    bench_extra(extra, n,
                "\"direct_loads\": %llu, \"direct_copies\": %llu, \"direct_pieces\": %llu",
                (unsigned long long)ps.direct_loads, (unsigned long long)ps.direct_copies,
                (unsigned long long)ps.direct_pieces);
}

/* ---- W1: write + durable commit ------------------------------------------------------------ */

static void op_write(const struct bench_args *a)
{
    size_t src_bytes;
    unsigned char *src = bench_load_src(a->src, &src_bytes);
    size_t item = bench_itemsize(a->dtype), row_bytes = (size_t)a->cols * item;
    int64_t src_rows = (int64_t)(src_bytes / row_bytes);
    int64_t rows = a->rows ? a->rows : src_rows;
    int64_t chunk_rows = (int64_t)(BA_BLOCK_SIZE_DEFAULT / row_bytes);
    if (chunk_rows < 1)
        chunk_rows = 1;
    double v[BENCH_MAX_SAMPLES], commit_s = 0;
    char extra[1024] = "";
    for (int r = 0; r < a->reps; r++) {
        rmtree(a->store);
        bench_cache(a, a->store);
        double t0 = bench_now();
        ba_db *db;
        ba_session *s;
        ba_array *arr;
        ba_array_spec spec;
        ba_array_spec_init(&spec);
        int rc = ba_dtype_parse(a->dtype, &spec.dtype);
        if (!rc)
            rc = ba_codec_parse(a->codec, &spec);
        spec.ndim = 2;
        spec.shape[0] = rows;
        spec.shape[1] = a->cols;
        ba_db_options o;
        ba_db_options_init(&o);
        o.flags = BA_DB_CREATE;
        if (!rc)
            rc = ba_db_open(a->store, &o, &db);
        if (!rc)
            rc = ba_session_begin(db, &s);
        if (!rc)
            rc = ba_array_create(s, "a", &spec, &arr);
        ba_view view;
        if (!rc)
            rc = ba_array_view(arr, NULL, 0, 0, &view);
        if (rc)
            ba_die("write setup", rc);
        unsigned char *dst = view.data;
        for (int64_t row = 0; row < rows; row += chunk_rows) {
            int64_t n = rows - row < chunk_rows ? rows - row : chunk_rows;
            bench_src_rows(dst + (size_t)row * row_bytes, src, src_rows, row_bytes, row, n);
            if (a->commit_rows && (row + n) % a->commit_rows == 0 && row + n < rows &&
                (rc = ba_session_commit(s)))
                ba_die("commit", rc);
        }
        double t1 = bench_now();
        if ((rc = ba_session_commit(s)))
            ba_die("commit", rc);
        double t2 = bench_now();
        v[r] = (double)rows * (double)row_bytes / 1e6 / (t2 - t0);
        commit_s = t2 - t1;
        if (r == a->reps - 1) {
            extra[0] = 0;
            bench_extra(extra, sizeof extra, "\"seconds\": %.3f, \"last_commit_s\": %.3f", t2 - t0,
                        commit_s);
            pager_extra(extra, sizeof extra, db);
        }
        ba_view_release(&view);
        ba_array_close(arr);
        ba_session_end(s);
        ba_db_close(db);
        fprintf(stderr, "bench_ba write rep %d: %.0f MB/s (commit %.2f s)\n", r, v[r], commit_s);
    }
    bench_extra(extra, sizeof extra, "\"disk_bytes\": %llu, \"codec\": \"%s\"",
                (unsigned long long)bench_disk_bytes(a->store), a->codec);
    bench_emit(a, "W1", "MB/s", v, a->reps, extra);
    bench_emit_size(a, a->store, (uint64_t)rows * row_bytes);
    free(src);
}

/* ---- W2/W3/W9: scans ------------------------------------------------------------------------ */

struct part {
    const unsigned char *p;
    size_t nbytes, itemsize;
    double sum;
};

static void *sum_part(void *arg)
{
    struct part *pt = arg;
    pt->sum = bench_sum(pt->p, pt->nbytes, pt->itemsize);
    return NULL;
}

/* Sum the view in `threads` contiguous parts (block-aligned). */
static double sum_view(const struct handle *h, int threads)
{
    if (threads == 1)
        return bench_sum(h->v.data, h->nbytes, h->itemsize);
    struct part pt[64];
    pthread_t tid[64];
    uint64_t per = (h->nbytes / (uint64_t)threads + BA_BLOCK_SIZE_DEFAULT - 1) /
                   BA_BLOCK_SIZE_DEFAULT * BA_BLOCK_SIZE_DEFAULT;
    double sum = 0;
    for (int t = 0; t < threads; t++) {
        uint64_t lo = per * (uint64_t)t, hi = lo + per;
        lo = lo < h->nbytes ? lo : h->nbytes;
        hi = hi < h->nbytes ? hi : h->nbytes;
        pt[t] = (struct part){(const unsigned char *)h->v.data + lo, hi - lo, h->itemsize, 0};
        if (pthread_create(&tid[t], NULL, sum_part, &pt[t]))
            bench_die("pthread_create", strerror(errno));
    }
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        sum += pt[t].sum;
    }
    return sum;
}

static void op_scan(const struct bench_args *a)
{
    double v[BENCH_MAX_SAMPLES], sum = 0;
    uint64_t res = 0;
    char extra[1024] = "";
    for (int r = 0; r < a->reps; r++) {
        res = bench_cache(a, a->store);
        double t0 = bench_now();
        struct handle h;
        h_open(&h, a->store, BA_VIEW_READONLY);
        sum = sum_view(&h, a->threads);
        double t1 = bench_now();
        v[r] = (double)h.nbytes / 1e6 / (t1 - t0);
        if (r == a->reps - 1) {
            bench_extra(
                extra, sizeof extra,
                "\"threads\": %d, \"cache\": \"%s\", \"resident_MiB_before\": %llu, \"sum\": %.17g",
                a->threads, a->cache, (unsigned long long)(res >> 20), sum);
            pager_extra(extra, sizeof extra, h.db);
        }
        h_close(&h);
    }
    bench_emit(a, a->threads > 1 ? "W9" : (!strcmp(a->cache, "cold") ? "W3-cold" : "W2-fresh"),
               "MB/s", v, a->reps, extra);
}

static void op_scanhot(const struct bench_args *a)
{
    double v[BENCH_MAX_SAMPLES], sum;
    char extra[1024] = "";
    struct handle h;
    bench_cache(a, a->store);
    h_open(&h, a->store, BA_VIEW_READONLY);
    double t0 = bench_now();
    sum = sum_view(&h, a->threads);
    double first = (double)h.nbytes / 1e6 / (bench_now() - t0);
    for (int r = 0; r < a->reps; r++) {
        t0 = bench_now();
        sum = sum_view(&h, a->threads);
        v[r] = (double)h.nbytes / 1e6 / (bench_now() - t0);
    }
    bench_extra(extra, sizeof extra, "\"first_pass_MBps\": %.1f, \"threads\": %d, \"sum\": %.17g",
                first, a->threads, sum);
    pager_extra(extra, sizeof extra, h.db);
    h_close(&h);
    bench_emit(a, "W2", "MB/s", v, a->reps, extra);
}

/* ---- W4: random 64 KiB reads ---------------------------------------------------------------- */

static void op_rand(const struct bench_args *a)
{
    double v[BENCH_MAX_SAMPLES], sum = 0;
    int count = a->count ? a->count : 2000;
    uint64_t res = 0;
    char extra[1024] = "";
    for (int r = 0; r < a->reps; r++) {
        res = bench_cache(a, a->store);
        double t0 = bench_now();
        struct handle h;
        h_open(&h, a->store, BA_VIEW_READONLY);
        int64_t nrow = (int64_t)(65536 / h.row_bytes);
        nrow = nrow < 1 ? 1 : nrow;
        uint64_t seed = a->seed;
        for (int i = 0; i < count; i++) {
            int64_t row = (int64_t)bench_below(&seed, (uint64_t)(h.rows - nrow + 1));
            sum += bench_sum((const unsigned char *)h.v.data + (size_t)row * h.row_bytes,
                             (size_t)nrow * h.row_bytes, h.itemsize);
        }
        v[r] = count / (bench_now() - t0);
        if (r == a->reps - 1) {
            bench_extra(
                extra, sizeof extra,
                "\"reads\": %d, \"cache\": \"%s\", \"resident_MiB_before\": %llu, \"sum\": %.17g",
                count, a->cache, (unsigned long long)(res >> 20), sum);
            pager_extra(extra, sizeof extra, h.db);
        }
        h_close(&h);
    }
    bench_emit(a, !strcmp(a->cache, "cold") ? "W4-cold" : "W4-warm", "reads/s", v, a->reps, extra);
}

/* ---- W5: rewrite random blocks + commit ------------------------------------------------------ */

static void op_rewrite(const struct bench_args *a)
{
    static double v[BENCH_MAX_SAMPLES];
    int count = a->count ? a->count : 10;
    struct handle h;
    bench_cache(a, a->store);
    h_open(&h, a->store, 0);
    int64_t rows_per_block = (int64_t)(BA_BLOCK_SIZE_DEFAULT / h.row_bytes);
    int64_t nblocks = (h.rows + rows_per_block - 1) / rows_per_block;
    int64_t nchange = a->blocks ? a->blocks : (nblocks + 50) / 100;
    nchange = nchange < 1 ? 1 : nchange;
    uint64_t seed = a->seed;
    for (int c = 0; c < count; c++) {
        double t0 = bench_now();
        for (int64_t k = 0; k < nchange; k++) {
            int64_t b = (int64_t)bench_below(&seed, (uint64_t)nblocks);
            int64_t row =
                b * rows_per_block + (int64_t)bench_below(&seed, (uint64_t)rows_per_block);
            row = row < h.rows ? row : h.rows - 1;
            unsigned char *p = (unsigned char *)h.v.data + (size_t)row * h.row_bytes;
            if (h.itemsize == 8)
                for (int64_t j = 0; j < h.cols; j++)
                    ((double *)(void *)p)[j] = (double)(c + 1) + (double)j * 0.5;
            else
                memset(p, c + 1, h.row_bytes);
        }
        int rc = ba_session_commit(h.s);
        if (rc)
            ba_die("commit", rc);
        v[c] = (bench_now() - t0) * 1e3;
    }
    char extra[1024] = "";
    bench_extra(extra, sizeof extra, "\"blocks_per_commit\": %lld, \"row_bytes\": %zu",
                (long long)nchange, h.row_bytes);
    pager_extra(extra, sizeof extra, h.db);
    h_close(&h);
    bench_emit(a, a->blocks == 1 ? "W5-1block" : "W5", "ms/commit", v, count, extra);
}

/* ---- W6: appends with a commit each ---------------------------------------------------------- */

static void op_append(const struct bench_args *a)
{
    size_t src_bytes;
    unsigned char *src = bench_load_src(a->src, &src_bytes);
    size_t item = bench_itemsize(a->dtype), row_bytes = (size_t)a->cols * item;
    int64_t src_rows = (int64_t)(src_bytes / row_bytes);
    int64_t nrow = (int64_t)((1u << 20) / row_bytes); /* 1 MiB per append */
    int count = a->count ? a->count : 1000;
    double tot[BENCH_MAX_SAMPLES];
    double *lat = malloc((size_t)count * (size_t)a->reps * sizeof *lat);
    unsigned char *buf = malloc((size_t)nrow * row_bytes);
    int64_t start_rows = 0;
    char extra[1024] = "";
    int fresh = access(a->store, F_OK) != 0;
    for (int r = 0; r < a->reps; r++) {
        ba_db *db;
        ba_session *s;
        ba_array *arr;
        int rc;
        if (fresh) {
            rmtree(a->store);
            ba_db_options o;
            ba_db_options_init(&o);
            o.flags = BA_DB_CREATE;
            ba_array_spec spec;
            ba_array_spec_init(&spec);
            rc = ba_dtype_parse(a->dtype, &spec.dtype);
            if (!rc)
                rc = ba_codec_parse(a->codec, &spec);
            spec.ndim = 2;
            spec.shape[0] = 0;
            spec.shape[1] = a->cols;
            if (!rc)
                rc = ba_db_open(a->store, &o, &db);
            if (!rc)
                rc = ba_session_begin(db, &s);
            if (!rc)
                rc = ba_array_create(s, "a", &spec, &arr);
            if (!rc)
                rc = ba_session_commit(s);
        } else {
            rc = ba_db_open(a->store, NULL, &db);
            if (!rc)
                rc = ba_session_begin(db, &s);
            if (!rc)
                rc = ba_array_open(s, "a", &arr);
        }
        if (rc)
            ba_die("append setup", rc);
        ba_array_info info;
        memset(&info, 0, sizeof info);
        info.size = sizeof info;
        if ((rc = ba_array_info_get(arr, &info)))
            ba_die("info", rc);
        int64_t row = info.shape[0];
        if (r == 0)
            start_rows = row;
        int64_t shape[2] = {nrow, a->cols};
        tot[r] = 0;
        for (int i = 0; i < count; i++) {
            bench_src_rows(buf, src, src_rows, row_bytes, row, nrow); /* not timed */
            double t1 = bench_now();
            if ((rc = ba_array_append(arr, buf, 2, shape, NULL)) || (rc = ba_session_commit(s)))
                ba_die("append", rc);
            double dt = bench_now() - t1;
            lat[r * count + i] = dt * 1e3;
            tot[r] += dt;
            row += nrow;
        }
        fprintf(stderr, "bench_ba append rep %d: %.2f s\n", r, tot[r]);
        if (r == a->reps - 1)
            pager_extra(extra, sizeof extra, db);
        ba_array_close(arr);
        ba_session_end(s);
        ba_db_close(db);
    }
    bench_extra(extra, sizeof extra,
                "\"appends\": %d, \"append_bytes\": %zu, \"start_bytes\": %llu", count,
                (size_t)nrow * row_bytes, (unsigned long long)((uint64_t)start_rows * row_bytes));
    bench_latency_extra(extra, sizeof extra, lat, count * a->reps);
    bench_emit(a, "W6", "s", tot, a->reps, extra);
    free(lat);
    free(buf);
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
