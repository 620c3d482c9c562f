/* SPDX-License-Identifier: MIT */
/*
 * Check suite for store/ (part 2): the LMDB map. Growth from a tiny map (with and
 * without MDB_WRITEMAP, with and without a size hint), and the writable map's duties:
 * disk reserved ahead of LMDB's writes (with fallocate and without), and the early
 * write-back of large durable transactions. Part 1 is check_store.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ba_common.h"
#include "store.h"
#include "store_fixture.h"
#include "testutil.h"

/* ---- map growth ------------------------------------------------------------------------------ */

static void grow_case(unsigned flags, int use_hint)
{
    char *dir = tu_mkdtemp("st-grow");
    struct store *st = open_st(dir, flags | STORE_NOSYNC, 64u << 10);
    uint32_t bs = 1u << 20;
    uint64_t nblk = 320; /* 320 MiB raw */
    struct store_array a = mkarr(st, "g", STORE_CODEC_NONE, 0, 0, 8, bs, nblk);
    unsigned char *in = malloc(bs), *out = malloc(bs);
    unsigned mapfull = 0;
    for (uint64_t b = 0; b < nblk;) {
        uint64_t n = nblk - b < 32 ? nblk - b : 32;
        struct store_txn *tx;
        ck_assert_int_eq(store_txn_begin(st, last_seq(st), use_hint ? n * bs : 0, &tx), 0);
        int rc = 0;
        for (uint64_t i = 0; i < n && !rc; i++) {
            fill_counters(in, bs, (b + i) << 20);
            rc = store_txn_block_write(tx, &a, b + i, in);
        }
        if (!rc) {
            rc = store_txn_commit(tx, NULL);
        } else {
            store_txn_abort(tx);
        }
        if (rc == STORE_EMAPFULL) {
            mapfull++;
            ck_assert_uint_lt(mapfull, 200);
            continue; /* retry: the next begin grows the map */
        }
        ck_assert_msg(rc == 0, "commit: %s", ba_errmsg());
        b += n;
    }
    if (!use_hint)
        ck_assert_uint_gt(mapfull, 0);
    struct store_stat ss;
    ck_assert_int_eq(store_stat(st, &ss), 0);
    ck_assert_uint_ge(ss.map_size, nblk * bs);
    store_close(st);
    st = open_st(dir, flags, 64u << 10);
    for (uint64_t b = 0; b < nblk; b += 37) {
        fill_counters(in, bs, b << 20);
        read_block(st, &a, b, out);
        ck_assert(!memcmp(in, out, bs));
    }
    store_close(st);
    free(in);
    free(out);
    tu_rmtree(dir);
}

START_TEST(test_store_map_grows_from_tiny_map_on_mapfull)
{
    grow_case(0, 0);
}
END_TEST

START_TEST(test_store_map_grows_from_tiny_map_with_hint)
{
    grow_case(0, 1);
}
END_TEST

START_TEST(test_store_map_grows_with_writemap)
{
    grow_case(STORE_WRITEMAP, 0);
}
END_TEST

/* Allocated bytes of data.mdb (the reservation is allocated, but SEEK_HOLE reports
 * allocated extents never written as holes unless their pages are cached). */
static uint64_t file_alloc(const char *dir)
{
    char *path = tu_path(dir, "data.mdb");
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    free(path);
    return (uint64_t)sb.st_blocks * 512;
}

static uint64_t used_end(struct store *st)
{
    struct store_stat ss;
    ck_assert_int_eq(store_stat(st, &ss), 0);
    return ss.pages_used * ss.page_size;
}

/* STORE_WRITEMAP: LMDB writes through a shared writable map, where a page of a sparse
 * file that cannot be allocated raises SIGBUS. The store allocates the file's blocks
 * ahead of every write that could need them, following the pages LMDB really uses (so
 * compressed records reserve what they take, not their raw size); a failed reservation
 * is -ENOSPC at begin or at the write, nothing is lost, and a retry commits. */
START_TEST(test_store_writemap_reserves_disk_ahead)
{
    char *dir = tu_mkdtemp("st-rsv");
    struct store *st = open_st(dir, STORE_WRITEMAP, 0);
    uint32_t bs = 1u << 20;
    struct store_array a = mkarr(st, "r", STORE_CODEC_NONE, 0, 0, 8, bs, 64);
    uint64_t end0 = used_end(st);
    struct store_txn *tx;
    ck_assert_int_eq(store_txn_begin(st, last_seq(st), 8 * (uint64_t)bs, &tx), 0);
    ck_assert_uint_ge(file_alloc(dir), end0 + (256u << 10));
    unsigned char *in = malloc(bs);
    for (uint64_t b = 0; b < 32; b++) {
        fill_counters(in, bs, b);
        ck_assert_int_eq(store_txn_block_write(tx, &a, b, in), 0);
        ck_assert_uint_ge(file_alloc(dir), end0 + (b + 1) * (uint64_t)bs);
    }
    ck_assert_int_eq(store_txn_commit(tx, NULL), 0);
    /* ahead of the pages used, by little */
    ck_assert_uint_ge(file_alloc(dir), used_end(st));
    ck_assert_uint_le(file_alloc(dir), used_end(st) + (4u << 20));

    /* 32 MiB of compressible blocks take a few pages, and so does the reservation */
    struct store_array z = mkarr(st, "z", STORE_CODEC_ZSTD, 1, 0, 8, bs, 32);
    uint64_t end1 = used_end(st);
    ck_assert_int_eq(store_txn_begin(st, last_seq(st), 32 * (uint64_t)bs, &tx), 0);
    for (uint64_t b = 0; b < 32; b++) {
        memset(in, (int)(b + 1), bs);
        ck_assert_int_eq(store_txn_block_write(tx, &z, b, in), 0);
    }
    ck_assert_int_eq(store_txn_commit(tx, NULL), 0);
    ck_assert_uint_lt(used_end(st), end1 + (1u << 20));
    ck_assert_uint_le(file_alloc(dir), end1 + (4u << 20));

    uint64_t seq = last_seq(st);
    /* every allocation fails: the begin (when it must allocate) or the first write
     * that needs room fails with -ENOSPC, and the transaction is dead */
    ba_inject_arm(BA_INJ_STORE_RESERVE, -ENOSPC, 0, 0);
    int rc = store_txn_begin(st, seq, 0, &tx);
    if (!rc) {
        for (uint64_t b = 0; b < 32 && !rc; b++) {
            fill_counters(in, bs, 100 + b);
            rc = store_txn_block_write(tx, &a, b, in);
        }
        store_txn_abort(tx);
    }
    ck_assert_int_eq(rc, -ENOSPC);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "the filesystem is full"));
    ck_assert_uint_ge(ba_inject_hits(BA_INJ_STORE_RESERVE), 1);
    ba_inject_clear();
    ck_assert_uint_eq(last_seq(st), seq);
    unsigned char *out = malloc(bs);
    fill_counters(in, bs, 31);
    read_block(st, &a, 31, out);
    ck_assert_mem_eq(in, out, bs);
    fill_counters(in, bs, 7);
    ck_assert_int_eq(put_block(st, &a, 31, in), 0);
    read_block(st, &a, 31, out);
    ck_assert_mem_eq(in, out, bs);
    free(in);
    free(out);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

/* A file system without fallocate(2) (the injected EOPNOTSUPP stands for its answer):
 * the store writes zeros ahead instead, never over a page in use. */
START_TEST(test_store_writemap_reserves_with_zeros_without_fallocate)
{
    char *dir = tu_mkdtemp("st-rsvz");
    ba_inject_arm(BA_INJ_STORE_RESERVE, -EOPNOTSUPP, 0, 1); /* the store's first reserve */
    struct store *st = open_st(dir, STORE_WRITEMAP, 0);
    ck_assert_uint_eq(ba_inject_hits(BA_INJ_STORE_RESERVE), 1);
    ba_inject_clear();
    uint32_t bs = 1u << 20;
    struct store_array a = mkarr(st, "r", STORE_CODEC_NONE, 0, 0, 8, bs, 64);
    unsigned char *in = malloc(bs), *out = malloc(bs);
    for (int round = 0; round < 2; round++) { /* the second rewrites every block */
        uint64_t end0 = used_end(st);
        struct store_txn *tx;
        ck_assert_int_eq(store_txn_begin(st, last_seq(st), 8 * (uint64_t)bs, &tx), 0);
        ck_assert_uint_ge(file_alloc(dir), end0 + (256u << 10));
        for (uint64_t b = 0; b < 32; b++) {
            fill_counters(in, bs, b + 100 * (uint64_t)round);
            ck_assert_int_eq(store_txn_block_write(tx, &a, b, in), 0);
        }
        ck_assert_int_eq(store_txn_commit(tx, NULL), 0);
        ck_assert_uint_ge(file_alloc(dir), used_end(st));
    }
    store_close(st);
    st = open_st(dir, 0, 0);
    for (uint64_t b = 0; b < 32; b++) {
        fill_counters(in, bs, b + 100);
        read_block(st, &a, b, out);
        ck_assert_mem_eq(in, out, bs);
    }
    free(in);
    free(out);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

/* cachestat(2) (Linux 6.5): the page-cache state of a file range. Defined here, as the
 * installed headers are older than the kernel. */
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct t_cachestat_range {
    uint64_t off, len; /* len 0: to the end of the file */
};
struct t_cachestat {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

/* Dirty pages of data.mdb in dir, or -1 where the kernel has no cachestat(2). */
static int64_t dirty_pages(const char *dir)
{
    char *path = tu_path(dir, "data.mdb");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    ck_assert_int_ge(fd, 0);
    struct t_cachestat_range r = {0, 0};
    struct t_cachestat cs;
    long rc = syscall(__NR_cachestat, fd, &r, &cs, 0u);
    close(fd);
    return rc ? -1 : (int64_t)cs.nr_dirty;
}

/* A durable transaction that writes more than a few MiB of block records hands them to
 * the disk before its commit (store_txn.c, "Early write-back"): before the commit, few
 * of its pages are still dirty in the page cache (the rest are being written or are
 * written). A transaction that is not durable leaves that to the commit and the kernel.
 * Both commit whole and read back. */
START_TEST(test_store_writemap_large_txn_writes_back_early)
{
    const uint32_t bs = 1u << 20;
    const uint64_t nblk = 32; /* 32 MiB in one transaction */
    for (int durable = 1; durable >= 0; durable--) {
        char *dir = tu_mkdtemp("st-ewb");
        struct store *st = open_st(dir, STORE_WRITEMAP | (durable ? 0 : STORE_NOSYNC), 0);
        struct store_array a = mkarr(st, "w", STORE_CODEC_NONE, 0, 0, 8, bs, nblk);
        int observable = dirty_pages(dir) >= 0;
        if (!observable && durable)
            fprintf(stderr, "SKIP (part): cachestat(2) is not available on this kernel: the "
                            "early write-back cannot be observed\n");
        unsigned char *in = malloc(bs), *out = malloc(bs);
        struct store_txn *tx;
        ck_assert_int_eq(store_txn_begin(st, last_seq(st), nblk * bs, &tx), 0);
        for (uint64_t b = 0; b < nblk; b++) {
            fill_counters(in, bs, b << 20);
            ck_assert_int_eq(store_txn_block_write(tx, &a, b, in), 0);
        }
        int64_t dirty = dirty_pages(dir) * 4096;
        if (durable && observable) {
            /* the first 4 MiB wait for the commit, with LMDB's own pages */
            ck_assert_msg(dirty <= (8 << 20), "%lld bytes of the transaction still dirty",
                          (long long)dirty);
        }
        ck_assert_int_eq(store_txn_commit(tx, NULL), 0);
        for (uint64_t b = 0; b < nblk; b += 5) {
            fill_counters(in, bs, b << 20);
            read_block(st, &a, b, out);
            ck_assert_mem_eq(in, out, bs);
        }
        store_close(st);
        free(in);
        free(out);
        tu_rmtree(dir);
    }
}
END_TEST

static Suite *store_map_suite(void)
{
    Suite *s = suite_create("store_map");
    TCase *tc = tcase_create("map");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_store_map_grows_from_tiny_map_on_mapfull);
    tcase_add_test(tc, test_store_map_grows_from_tiny_map_with_hint);
    tcase_add_test(tc, test_store_map_grows_with_writemap);
    tcase_add_test(tc, test_store_writemap_reserves_disk_ahead);
    tcase_add_test(tc, test_store_writemap_reserves_with_zeros_without_fallocate);
    tcase_add_test(tc, test_store_writemap_large_txn_writes_back_early);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(store_map_suite());
}
