/* SPDX-License-Identifier: MIT */
/*
 * Check suite for store/ (part 3): injected failures (ENOSPC, EIO, ENOMEM and a full
 * map at every put, at commit, in allocation, at open, in reads and in compact) each
 * leave the committed data intact and a retry succeeds; verify reports flipped bytes
 * in payloads, block headers and catalog records (and blocks outside the shape)
 * without crashing; compact writes a copy that opens and reads identically, drops
 * tombstones and refuses a non-empty output directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ba_common.h"
#include "store.h"
#include "testutil.h"

#define BS   (1u << 16)
#define NBLK 6u

static struct store *open_st(const char *dir)
{
    struct store_opts o;
    store_opts_init(&o);
    o.flags = STORE_CREATE | STORE_NOSYNC;
    o.map_size = 64u << 20;
    o.workers = 2;
    struct store *st = NULL;
    int rc = store_open(dir, &o, &st);
    ck_assert_msg(rc == 0, "store_open: %s", ba_errmsg());
    return st;
}

static uint64_t last_seq(struct store *st)
{
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    uint64_t s = store_snap_seq(sn);
    store_snap_unref(sn);
    return s;
}

static struct store_array mkarr(struct store *st, const char *name, uint8_t codec)
{
    struct store_array a;
    memset(&a, 0, sizeof a);
    snprintf(a.name, sizeof a.name, "%s", name);
    strcpy(a.dtype, "<u8");
    a.itemsize = 8;
    a.ndim = 1;
    a.shape[0] = (int64_t)(NBLK * BS / 8);
    a.order = 'C';
    a.block_size = BS;
    a.codec = codec;
    a.level = codec ? 1 : 0;
    a.filters = codec ? STORE_FILTER_SHUFFLE : 0;
    struct store_txn *tx;
    ck_assert_int_eq(store_txn_begin(st, last_seq(st), 0, &tx), 0);
    ck_assert_int_eq(store_txn_array_create(tx, &a), 0);
    ck_assert_int_eq(store_txn_commit(tx, NULL), 0);
    return a;
}

static void pattern(void *buf, uint64_t v)
{
    uint64_t *p = buf;
    for (size_t i = 0; i < BS / 8; i++)
        p[i] = v * 1000003u + i;
}

/* One commit doing a bit of everything: batch write of all blocks with generation g
 * (block 2 zeroed), a new array, a shape change of it. */
static int big_commit(struct store *st, const struct store_array *a, uint64_t g)
{
    unsigned char *bufs[NBLK];
    const void *raws[NBLK];
    uint64_t blknos[NBLK];
    for (unsigned i = 0; i < NBLK; i++) {
        bufs[i] = malloc(BS);
        if (i == 2)
            memset(bufs[i], 0, BS);
        else
            pattern(bufs[i], g * 100 + i);
        raws[i] = bufs[i];
        blknos[i] = i;
    }
    struct store_txn *tx = NULL;
    struct store_snap *sn = NULL;
    int rc = store_snap_begin(st, &sn); /* may fail under BA_INJ_ALLOC */
    uint64_t base = sn ? store_snap_seq(sn) : 0;
    store_snap_unref(sn);
    if (!rc)
        rc = store_txn_begin(st, base, NBLK * BS, &tx);
    if (!rc)
        rc = store_txn_blocks_write(tx, a, NBLK, blknos, raws);
    if (!rc) {
        struct store_array n = *a;
        snprintf(n.name, sizeof n.name, "gen%llu", (unsigned long long)g);
        rc = store_txn_array_create(tx, &n);
        int64_t shape[2] = {3, 5};
        if (!rc)
            rc = store_txn_array_set_shape(tx, n.id, 2, shape);
    }
    if (!rc)
        rc = store_txn_commit(tx, NULL);
    else if (tx)
        store_txn_abort(tx);
    for (unsigned i = 0; i < NBLK; i++)
        free(bufs[i]);
    return rc;
}

/* The database holds generation g exactly (g = 0: nothing written yet). */
static void check_gen(struct store *st, const struct store_array *a, uint64_t g)
{
    unsigned char *out = malloc(BS), *want = malloc(BS);
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    for (unsigned i = 0; i < NBLK; i++) {
        if (g == 0 || i == 2)
            memset(want, 0, BS);
        else
            pattern(want, g * 100 + i);
        ck_assert_int_eq(store_block_read(sn, a, i, out, 0), 0);
        ck_assert_msg(!memcmp(out, want, BS), "block %u is not generation %llu", i,
                      (unsigned long long)g);
    }
    char name[32];
    struct store_array n;
    snprintf(name, sizeof name, "gen%llu", (unsigned long long)(g + 1));
    ck_assert_int_eq(store_array_by_name(sn, name, &n), BA_ENOTFOUND);
    if (g) {
        snprintf(name, sizeof name, "gen%llu", (unsigned long long)g);
        ck_assert_int_eq(store_array_by_name(sn, name, &n), 0);
        ck_assert_int_eq(n.ndim, 2);
    }
    store_snap_unref(sn);
    free(out);
    free(want);
}

/* For every hit k of point p: fail the k-th hit with code, check nothing changed, retry. */
static void inject_each(enum ba_inject_point p, int code, int expect)
{
    char *dir = tu_mkdtemp("st-inj");
    struct store *st = open_st(dir);
    struct store_array a = mkarr(st, "data", STORE_CODEC_ZSTD);
    ck_assert_int_eq(big_commit(st, &a, 1), 0);
    uint64_t g = 1;
    /* Count the hits of a clean commit. */
    ba_inject_clear();
    unsigned before = ba_inject_hits(p);
    ck_assert_int_eq(big_commit(st, &a, ++g), 0);
    unsigned hits = ba_inject_hits(p) - before;
    ck_assert_msg(hits > 0, "point %s never hit", ba_inject_point_name(p));
    for (unsigned k = 0; k < hits; k++) {
        uint64_t seq = last_seq(st);
        ba_inject_arm(p, code, k, 1);
        int rc = big_commit(st, &a, g + 1);
        unsigned seen = ba_inject_hits(p);
        ba_inject_clear();
        if (rc == 0) {
            /* Allowed only when this commit hit the point fewer than k+1 times (lazily
             * grown buffers make allocation counts vary between commits). */
            ck_assert_msg(seen <= k, "%s hit %u fired but the commit succeeded",
                          ba_inject_point_name(p), k);
            check_gen(st, &a, ++g);
            continue;
        }
        ck_assert_msg(rc == expect, "%s hit %u: got %d (%s), want %d", ba_inject_point_name(p), k,
                      rc, ba_errmsg(), expect);
        ck_assert_uint_eq(last_seq(st), seq);
        check_gen(st, &a, g);
        rc = big_commit(st, &a, ++g); /* the retry */
        ck_assert_msg(rc == 0, "retry after %s hit %u: %s", ba_inject_point_name(p), k,
                      ba_errmsg());
        check_gen(st, &a, g);
    }
    uint64_t np = 1;
    ck_assert_int_eq(store_verify(st, NULL, NULL, &np), 0);
    ck_assert_uint_eq(np, 0);
    store_close(st);
    tu_rmtree(dir);
}

START_TEST(test_store_put_enospc_keeps_data)
{
    inject_each(BA_INJ_STORE_PUT, -ENOSPC, -ENOSPC);
}
END_TEST

START_TEST(test_store_put_eio_keeps_data)
{
    inject_each(BA_INJ_STORE_PUT, -EIO, -EIO);
}
END_TEST

START_TEST(test_store_put_mapfull_keeps_data)
{
    inject_each(BA_INJ_STORE_PUT, BA_INJ_MAP_FULL, STORE_EMAPFULL);
}
END_TEST

START_TEST(test_store_commit_enospc_keeps_data)
{
    inject_each(BA_INJ_STORE_COMMIT, -ENOSPC, -ENOSPC);
}
END_TEST

START_TEST(test_store_commit_eio_keeps_data)
{
    inject_each(BA_INJ_STORE_COMMIT, -EIO, -EIO);
}
END_TEST

START_TEST(test_store_alloc_enomem_keeps_data)
{
    inject_each(BA_INJ_ALLOC, -ENOMEM, -ENOMEM);
}
END_TEST

START_TEST(test_store_open_injected_failure_then_retry)
{
    char *dir = tu_mkdtemp("st-inj");
    struct store *st = open_st(dir);
    struct store_array a = mkarr(st, "data", STORE_CODEC_NONE);
    ck_assert_int_eq(big_commit(st, &a, 1), 0);
    store_close(st);
    struct store_opts o;
    store_opts_init(&o);
    static const int codes[] = {-EIO, -ENOSPC};
    for (size_t i = 0; i < 2; i++) {
        ba_inject_arm(BA_INJ_STORE_OPEN, codes[i], 0, 1);
        ck_assert_int_eq(store_open(dir, &o, &st), codes[i]);
        ba_inject_clear();
    }
    /* Allocation failures at every point of open. */
    for (unsigned k = 0; k < 64; k++) {
        ba_inject_arm(BA_INJ_ALLOC, -ENOMEM, k, 1);
        int rc = store_open(dir, &o, &st);
        ba_inject_clear();
        if (rc == 0) {
            store_close(st);
            break;
        }
        ck_assert_int_eq(rc, -ENOMEM);
    }
    st = open_st(dir);
    check_gen(st, &a, 1);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_read_eio_reported_then_retry)
{
    char *dir = tu_mkdtemp("st-inj");
    struct store *st = open_st(dir);
    struct store_array a = mkarr(st, "data", STORE_CODEC_ZSTD);
    ck_assert_int_eq(big_commit(st, &a, 1), 0);
    unsigned char *out = malloc(BS);
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    ba_inject_arm(BA_INJ_STORE_READ, -EIO, 0, 1);
    ck_assert_int_eq(store_block_read(sn, &a, 0, out, 0), -EIO);
    ba_inject_clear();
    store_snap_unref(sn);
    free(out);
    check_gen(st, &a, 1);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

/* ---- verify ------------------------------------------------------------------------------------------- */

struct probs {
    unsigned n;
    char text[4096];
};

static void prob_cb(const struct store_problem *p, void *ctx)
{
    struct probs *pr = ctx;
    pr->n++;
    size_t l = strlen(pr->text);
    snprintf(pr->text + l, sizeof pr->text - l, "[%s|%lld|%s]", p->array ? p->array : "-",
             (long long)p->blkno, p->what);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    struct stat sb;
    ck_assert_int_eq(fstat(fd, &sb), 0);
    unsigned char *p = malloc((size_t)sb.st_size);
    ck_assert_int_eq(pread(fd, p, (size_t)sb.st_size, 0), sb.st_size);
    close(fd);
    *len = (size_t)sb.st_size;
    return p;
}

/* Flip the byte at `delta` from every occurrence of pat in data.mdb; returns the count. */
static size_t flip_at_pattern(const char *dir, const void *pat, size_t plen, long delta)
{
    char *path = tu_path(dir, "data.mdb");
    size_t len, n = 0;
    unsigned char *f = slurp(path, &len);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    for (size_t i = 0; i + plen <= len; i++) {
        if (memcmp(f + i, pat, plen))
            continue;
        off_t off = (off_t)i + delta;
        unsigned char c = (unsigned char)(f[off] ^ 0x20);
        ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
        n++;
    }
    close(fd);
    free(f);
    free(path);
    return n;
}

START_TEST(test_store_verify_clean_database_has_no_problems)
{
    char *dir = tu_mkdtemp("st-ver");
    struct store *st = open_st(dir);
    struct store_array a = mkarr(st, "data", STORE_CODEC_ZSTD);
    struct store_array r = mkarr(st, "raw", STORE_CODEC_NONE);
    ck_assert_int_eq(big_commit(st, &a, 1), 0);
    ck_assert_int_eq(big_commit(st, &r, 2), 0);
    struct probs pr = {0, ""};
    uint64_t np = 9;
    ck_assert_int_eq(store_verify(st, prob_cb, &pr, &np), 0);
    ck_assert_msg(np == 0 && pr.n == 0, "%s", pr.text);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_verify_reports_flipped_bytes)
{
    char *dir = tu_mkdtemp("st-ver");
    struct store *st = open_st(dir);
    struct store_array r = mkarr(st, "raw", STORE_CODEC_NONE);
    mkarr(st, "victim", STORE_CODEC_NONE);
    unsigned char *b0 = malloc(BS), *b1 = malloc(BS);
    tu_fill_random(b0, BS, 1);
    tu_fill_random(b1, BS, 2);
    struct store_txn *tx;
    ck_assert_int_eq(store_txn_begin(st, last_seq(st), 0, &tx), 0);
    ck_assert_int_eq(store_txn_block_write(tx, &r, 0, b0), 0);
    ck_assert_int_eq(store_txn_block_write(tx, &r, 1, b1), 0);
    ck_assert_int_eq(store_txn_commit(tx, NULL), 0);
    store_close(st);
    long psize = sysconf(_SC_PAGESIZE);
    /* payload byte of block 0; header byte (stored_len) of block 1 */
    ck_assert_uint_eq(flip_at_pattern(dir, b0, 64, 4000), 1);
    ck_assert_uint_eq(flip_at_pattern(dir, b1, 64, -(psize - 16) + 9), 1);
    /* a byte of the catalog record of "victim" (its name, inside the record) */
    ck_assert_uint_ge(flip_at_pattern(dir, "victim", 6, 2), 1);
    st = open_st(dir);
    struct probs pr = {0, ""};
    uint64_t np = 0;
    ck_assert_int_eq(store_verify(st, prob_cb, &pr, &np), 0);
    ck_assert_uint_eq(np, pr.n);
    ck_assert_ptr_nonnull(strstr(pr.text, "[raw|0|array 'raw' block 0: checksum mismatch]"));
    ck_assert_ptr_nonnull(strstr(pr.text, "[raw|1|array 'raw' block 1: header checksum"));
    ck_assert_msg(strstr(pr.text, "catalog record") || strstr(pr.text, "names index"), "%s",
                  pr.text);
    ck_assert_msg(np >= 3, "%s", pr.text);
    store_close(st);
    free(b0);
    free(b1);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_verify_reports_block_outside_shape)
{
    char *dir = tu_mkdtemp("st-ver");
    struct store *st = open_st(dir);
    struct store_array a = mkarr(st, "data", STORE_CODEC_ZSTD);
    ck_assert_int_eq(big_commit(st, &a, 1), 0);
    /* Shrink without cutting (a caller bug verify must catch). */
    struct store_txn *tx;
    ck_assert_int_eq(store_txn_begin(st, last_seq(st), 0, &tx), 0);
    int64_t shape[1] = {2 * BS / 8};
    ck_assert_int_eq(store_txn_array_set_shape(tx, a.id, 1, shape), 0);
    ck_assert_int_eq(store_txn_commit(tx, NULL), 0);
    struct probs pr = {0, ""};
    uint64_t np = 0;
    ck_assert_int_eq(store_verify(st, prob_cb, &pr, &np), 0);
    ck_assert_uint_eq(np, 3); /* blocks 3, 4, 5 (2 is a tombstone: zeros anywhere) */
    ck_assert_ptr_nonnull(strstr(pr.text, "block 4 lies outside its shape"));
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

/* ---- compact ------------------------------------------------------------------------------------------- */

START_TEST(test_store_compact_copy_reads_identically)
{
    char *dir = tu_mkdtemp("st-cmp");
    struct store *st = open_st(dir);
    struct store_array a = mkarr(st, "data", STORE_CODEC_ZSTD);
    struct store_array r = mkarr(st, "raw", STORE_CODEC_NONE);
    for (uint64_t g = 1; g <= 3; g++)
        ck_assert_int_eq(big_commit(st, &a, g), 0);
    ck_assert_int_eq(big_commit(st, &r, 9), 0);
    char *out = tu_path(dir, "copy");
    /* refuses a non-empty directory, and a file */
    ck_assert_int_eq(mkdir(out, 0755), 0);
    char *junk = tu_path(out, "junk");
    FILE *f = fopen(junk, "w");
    fclose(f);
    ck_assert_int_eq(store_compact(st, out), BA_EEXIST);
    ck_assert_int_eq(store_compact(st, junk), BA_EEXIST);
    unlink(junk);
    free(junk);
    /* injected failures leave no output behind, then a retry works */
    ba_inject_arm(BA_INJ_STORE_COMPACT, -ENOSPC, 3, 1);
    ck_assert_int_eq(store_compact(st, out), -ENOSPC);
    ba_inject_clear();
    char *data = tu_path(out, "data.mdb");
    ck_assert_int_ne(access(data, F_OK), 0);
    ck_assert_int_eq(store_compact(st, out), 0); /* empty dir is fine */
    struct store_stat s1, s2;
    ck_assert_int_eq(store_stat(st, &s1), 0);
    uint64_t seq = last_seq(st);
    store_close(st);
    struct store_opts o;
    store_opts_init(&o);
    struct store *c;
    ck_assert_int_eq(store_open(out, &o, &c), 0);
    ck_assert_int_eq(store_stat(c, &s2), 0);
    ck_assert_uint_eq(last_seq(c), seq);
    ck_assert_uint_eq(s2.narrays, s1.narrays);
    ck_assert_uint_eq(s2.change_records, s1.change_records);
    ck_assert_uint_lt(s2.file_size, s1.file_size);
    check_gen(c, &a, 3);
    struct store_snap *sn;
    struct store_block_info bi;
    ck_assert_int_eq(store_snap_begin(c, &sn), 0);
    ck_assert_int_eq(store_block_info(sn, a.id, 2, &bi), 0);
    ck_assert_int_eq(bi.present, 0); /* tombstone dropped */
    store_snap_unref(sn);
    uint64_t np = 1;
    ck_assert_int_eq(store_verify(c, NULL, NULL, &np), 0);
    ck_assert_uint_eq(np, 0);
    /* and it takes new commits */
    ck_assert_int_eq(big_commit(c, &a, 4), 0);
    check_gen(c, &a, 4);
    store_close(c);
    free(data);
    free(out);
    tu_rmtree(dir);
}
END_TEST

static Suite *store_fault_suite(void)
{
    Suite *s = suite_create("store_fault");
    TCase *tc = tcase_create("inject");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_store_put_enospc_keeps_data);
    tcase_add_test(tc, test_store_put_eio_keeps_data);
    tcase_add_test(tc, test_store_put_mapfull_keeps_data);
    tcase_add_test(tc, test_store_commit_enospc_keeps_data);
    tcase_add_test(tc, test_store_commit_eio_keeps_data);
    tcase_add_test(tc, test_store_alloc_enomem_keeps_data);
    tcase_add_test(tc, test_store_open_injected_failure_then_retry);
    tcase_add_test(tc, test_store_read_eio_reported_then_retry);
    suite_add_tcase(s, tc);
    tc = tcase_create("verify");
    tcase_add_test(tc, test_store_verify_clean_database_has_no_problems);
    tcase_add_test(tc, test_store_verify_reports_flipped_bytes);
    tcase_add_test(tc, test_store_verify_reports_block_outside_shape);
    suite_add_tcase(s, tc);
    tc = tcase_create("compact");
    tcase_add_test(tc, test_store_compact_copy_reads_identically);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(store_fault_suite());
}
