/* SPDX-License-Identifier: MIT */
/*
 * Check suite for store/ (part 4): store_block_locate() and store_block_verify(), the
 * store's half of zero-copy reads. A raw, page-aligned block record is located at a
 * page-aligned offset of data.mdb whose bytes (read or mapped MAP_PRIVATE) are the
 * block's; holes, tombstones, compressed records and small blocks are refused with
 * their codes; a snapshot keeps a located record's bytes in place while many commits
 * rewrite the block (LMDB reuses pages only past the oldest reader); damaged headers and
 * injected read failures are reported, quietly in fault context; blocks of two or more
 * 32 KiB pieces carry a sum per piece, so that one piece is checked alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ba_common.h"
#include "store.h"
#include "testutil.h"

/* ---- helpers -------------------------------------------------------------------------- */

static struct store *open_st(const char *dir)
{
    struct store_opts o;
    store_opts_init(&o);
    o.flags = STORE_CREATE | STORE_NOSYNC;
    struct store *st = NULL;
    int rc = store_open(dir, &o, &st);
    ck_assert_msg(rc == 0, "store_open %s: %s (%s)", dir, ba_strerror(rc), ba_errmsg());
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

static struct store_array mkarr(struct store *st, const char *name, uint8_t codec, uint32_t bs,
                                uint64_t nblocks)
{
    struct store_array a;
    memset(&a, 0, sizeof a);
    snprintf(a.name, sizeof a.name, "%s", name);
    snprintf(a.dtype, sizeof a.dtype, "<u8");
    a.itemsize = 8;
    a.ndim = 1;
    a.shape[0] = (int64_t)(nblocks * bs / 8);
    a.order = 'C';
    a.block_size = bs;
    a.codec = codec;
    a.level = 1;
    struct store_txn *tx;
    ck_assert_int_eq(store_txn_begin(st, last_seq(st), 0, &tx), 0);
    ck_assert_int_eq(store_txn_array_create(tx, &a), 0);
    ck_assert_int_eq(store_txn_commit(tx, NULL), 0);
    return a;
}

static void put_block(struct store *st, const struct store_array *a, uint64_t blkno,
                      const void *raw)
{
    struct store_txn *tx;
    ck_assert_int_eq(store_txn_begin(st, last_seq(st), a->block_size, &tx), 0);
    int rc = store_txn_block_write(tx, a, blkno, raw);
    ck_assert_msg(rc == 0, "write: %s", ba_errmsg());
    ck_assert_int_eq(store_txn_commit(tx, NULL), 0);
}

static void fill_counters(void *buf, size_t n, uint64_t start)
{
    uint64_t *p = buf;
    for (size_t i = 0; i < n / 8; i++)
        p[i] = start + i;
}

/* store_block_locate() for the tests that want the descriptor, offset and checksum. */
static int locate3(struct store_snap *sn, const struct store_array *a, uint64_t blkno, int *fd,
                   uint64_t *off, uint64_t *sum, unsigned flags)
{
    struct store_extent e;
    int rc = store_block_locate(sn, a, blkno, UINT64_MAX, &e, flags);
    if (!rc) {
        *fd = e.fd;
        *off = e.off;
        *sum = e.checksum;
    }
    return rc;
}

/* Map bs bytes of fd at off the way the pager does, or NULL. */
static void *map_private(int fd, uint64_t off, size_t bs)
{
    void *p = mmap(NULL, bs, PROT_READ, MAP_PRIVATE, fd, (off_t)off);
    return p == MAP_FAILED ? NULL : p;
}

/* Locate block blkno in a fresh snapshot, check it maps and verifies as `want`. */
static void expect_located(struct store *st, const struct store_array *a, uint64_t blkno,
                           const void *want)
{
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    int fd = -1;
    uint64_t off = 1, sum = 0;
    int rc = locate3(sn, a, blkno, &fd, &off, &sum, 0);
    ck_assert_msg(rc == 0, "locate %s block %llu: %d %s", a->name, (unsigned long long)blkno, rc,
                  ba_errmsg());
    ck_assert_int_ge(fd, 0);
    ck_assert_uint_eq(off % (uint64_t)sysconf(_SC_PAGESIZE), 0);
    void *p = map_private(fd, off, a->block_size);
    ck_assert_ptr_nonnull(p);
    ck_assert(!memcmp(p, want, a->block_size));
    ck_assert_int_eq(store_block_verify(p, a->block_size, sum), 0);
    munmap(p, a->block_size);
    unsigned char *buf = malloc(a->block_size);
    ck_assert_int_eq(pread(fd, buf, a->block_size, (off_t)off), (ssize_t)a->block_size);
    ck_assert(!memcmp(buf, want, a->block_size));
    /* A changed byte is caught. */
    buf[a->block_size / 2] ^= 1;
    ck_assert_int_eq(store_block_verify(buf, a->block_size, sum), BA_ECORRUPT);
    free(buf);
    store_snap_unref(sn);
}

static int locate_rc(struct store *st, const struct store_array *a, uint64_t blkno)
{
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    int fd;
    uint64_t off, sum;
    int rc = locate3(sn, a, blkno, &fd, &off, &sum, STORE_READ_QUIET);
    store_snap_unref(sn);
    return rc;
}

/* ---- tests ---------------------------------------------------------------------------- */

START_TEST(test_store_locate_raw_block_maps_its_bytes)
{
    char *dir = tu_mkdtemp("st-loc");
    struct store *st = open_st(dir);
    for (uint32_t bs = 64u << 10; bs <= (2u << 20); bs <<= 5) {
        char name[16];
        snprintf(name, sizeof name, "raw%u", bs);
        struct store_array a = mkarr(st, name, STORE_CODEC_NONE, bs, 4);
        unsigned char *in = malloc(bs);
        for (uint64_t b = 0; b < 4; b++) {
            tu_fill_random(in, bs, 7 * b + bs);
            put_block(st, &a, b, in);
        }
        for (uint64_t b = 0; b < 4; b++) {
            tu_fill_random(in, bs, 7 * b + bs);
            expect_located(st, &a, b, in);
        }
        free(in);
    }
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_locate_refuses_what_it_cannot_map)
{
    char *dir = tu_mkdtemp("st-loc-no");
    struct store *st = open_st(dir);
    uint32_t bs = 1u << 20;
    unsigned char *in = malloc(bs), *zero = calloc(1, bs);
    struct store_array raw = mkarr(st, "raw", STORE_CODEC_NONE, bs, 4);
    /* A hole and a tombstone read as zeros: BA_ENOTFOUND. */
    ck_assert_int_eq(locate_rc(st, &raw, 0), BA_ENOTFOUND);
    fill_counters(in, bs, 3);
    put_block(st, &raw, 1, in);
    ck_assert_int_eq(locate_rc(st, &raw, 1), 0);
    put_block(st, &raw, 1, zero);
    ck_assert_int_eq(locate_rc(st, &raw, 1), BA_ENOTFOUND);
    /* Compressed: not mappable. */
    struct store_array z = mkarr(st, "z", STORE_CODEC_ZSTD, bs, 2);
    put_block(st, &z, 0, in);
    ck_assert_int_eq(locate_rc(st, &z, 0), -EAGAIN);
    /* ...unless compression did not pay: then the block is stored raw and aligned. */
    tu_fill_random(in, bs, 11);
    put_block(st, &z, 1, in);
    expect_located(st, &z, 1, in);
    /* Blocks under 64 KiB are stored unaligned: never mappable. */
    for (uint32_t small = 4096; small < (64u << 10); small <<= 1) {
        char name[16];
        snprintf(name, sizeof name, "s%u", small);
        struct store_array s = mkarr(st, name, STORE_CODEC_NONE, small, 2);
        tu_fill_random(in, small, small);
        put_block(st, &s, 0, in);
        ck_assert_int_eq(locate_rc(st, &s, 0), -EAGAIN);
    }
    free(in);
    free(zero);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

/* A snapshot holds a located record's pages: many commits rewriting the same block (so
 * that LMDB's free list is reused again and again) never touch them. Once the snapshot
 * is released, the pages are reused by later commits. */
START_TEST(test_store_locate_snapshot_pins_the_bytes)
{
    char *dir = tu_mkdtemp("st-loc-pin");
    struct store *st = open_st(dir);
    uint32_t bs = 1u << 16;
    struct store_array a = mkarr(st, "pin", STORE_CODEC_NONE, bs, 2);
    unsigned char *in = malloc(bs), *first = malloc(bs);
    tu_fill_random(first, bs, 1);
    put_block(st, &a, 0, first);
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    int fd;
    uint64_t off, sum;
    ck_assert_int_eq(locate3(sn, &a, 0, &fd, &off, &sum, 0), 0);
    void *p = map_private(fd, off, bs);
    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < 200; i++) {
        tu_fill_random(in, bs, 100 + (uint64_t)i);
        put_block(st, &a, 0, in);
        if (i % 20 == 0)
            ck_assert_msg(!memcmp(p, first, bs), "pinned bytes changed after %d commits", i);
    }
    ck_assert(!memcmp(p, first, bs));
    ck_assert_int_eq(store_block_verify(p, bs, sum), 0);
    store_snap_unref(sn);
    /* Unpinned, the pages go back to the free list and rewrites reuse them. */
    int reused = 0;
    for (int i = 0; i < 200 && !reused; i++) {
        tu_fill_random(in, bs, 1000 + (uint64_t)i);
        put_block(st, &a, 0, in);
        reused = memcmp(p, first, bs) != 0;
    }
    ck_assert_msg(reused, "the released record's pages were never reused");
    munmap(p, bs);
    free(in);
    free(first);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_locate_reports_damage_and_injected_errors)
{
    char *dir = tu_mkdtemp("st-loc-bad");
    struct store *st = open_st(dir);
    uint32_t bs = 1u << 16;
    struct store_array a = mkarr(st, "bad", STORE_CODEC_NONE, bs, 2);
    unsigned char *in = malloc(bs);
    fill_counters(in, bs, 77);
    put_block(st, &a, 1, in);
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    int fd;
    uint64_t off, sum;
    ck_assert_int_eq(locate3(sn, &a, 1, &fd, &off, &sum, 0), 0);
    store_snap_unref(sn);
    store_close(st);
    /* Damage the record's header (it sits in the same page, before the payload). */
    char *path = tu_path(dir, "data.mdb");
    int wfd = open(path, O_RDWR);
    ck_assert_int_ge(wfd, 0);
    unsigned char c;
    off_t hdr = (off_t)off - (off_t)sysconf(_SC_PAGESIZE) + 16 + 20; /* the seq field */
    ck_assert_int_eq(pread(wfd, &c, 1, hdr), 1);
    c ^= 0x40;
    ck_assert_int_eq(pwrite(wfd, &c, 1, hdr), 1);
    close(wfd);
    free(path);
    st = open_st(dir);
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    ck_assert_int_eq(locate3(sn, &a, 1, &fd, &off, &sum, 0), BA_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "block 1"));
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "header"));
    ba_error_set(BA_EINVAL, "sentinel");
    ck_assert_int_eq(locate3(sn, &a, 1, &fd, &off, &sum, STORE_READ_QUIET), BA_ECORRUPT);
    ck_assert_str_eq(ba_errmsg(), "sentinel");
    /* The read seam fails locate too. */
    ba_inject_arm(BA_INJ_STORE_READ, -EIO, 0, 1);
    ck_assert_int_eq(locate3(sn, &a, 0, &fd, &off, &sum, STORE_READ_QUIET), -EIO);
    ba_inject_clear();
    ck_assert_int_eq(locate3(sn, &a, 0, &fd, &off, &sum, STORE_READ_QUIET), BA_ENOTFOUND);
    store_snap_unref(sn);
    free(in);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

static void count_problem(const struct store_problem *p, void *ctx)
{
    int *n = ctx;
    if (strstr(p->what, "piece checksum mismatch"))
        (*n)++;
}

/* A raw 2 MiB block (both write paths: LMDB's writable map and the read-only map) carries
 * one sum per 32 KiB piece: each piece of the located bytes checks alone, a changed byte
 * fails only its own piece; a damaged piece sum fails that piece and verify reports it,
 * while the block still reads (its whole checksum is intact). The smallest block that
 * maps (64 KiB) has two pieces (a piece is at least 32 KiB). */
START_TEST(test_store_locate_pieces_check_alone)
{
    for (int wm = 0; wm < 2; wm++) {
        char *dir = tu_mkdtemp("st-loc-pieces");
        struct store_opts o;
        store_opts_init(&o);
        o.flags = STORE_CREATE | STORE_NOSYNC | (wm ? STORE_WRITEMAP : 0);
        struct store *st = NULL;
        ck_assert_int_eq(store_open(dir, &o, &st), 0);
        uint32_t bs = 2u << 20, ps = 32u << 10;
        struct store_array a = mkarr(st, "p", STORE_CODEC_NONE, bs, 2);
        struct store_array small = mkarr(st, "s", STORE_CODEC_NONE, STORE_LOCATE_MIN, 2);
        unsigned char *in = malloc(bs), *buf = malloc(bs);
        tu_fill_random(in, bs, 5);
        put_block(st, &a, 1, in);
        put_block(st, &small, 0, in);
        struct store_snap *sn;
        ck_assert_int_eq(store_snap_begin(st, &sn), 0);
        struct store_extent e;
        ck_assert_int_eq(store_block_locate(sn, &small, 0, UINT64_MAX, &e, 0), 0);
        ck_assert_uint_eq(e.piece_shift, 15);
        ck_assert_uint_eq(STORE_LOCATE_MIN >> e.piece_shift, 2);
        ck_assert_int_eq(store_block_verify_piece(st, &e, 0, NULL), 0);
        ck_assert_int_eq(store_block_verify_piece(st, &e, 1, NULL), 0);
        ck_assert_int_eq(store_block_locate(sn, &a, 1, 5u << 15, &e, 0), 0);
        ck_assert_uint_eq(e.piece_shift, 15);
        ck_assert_uint_lt(e.sums_off, e.off);
        ck_assert_uint_eq(e.off - e.sums_off, (uint64_t)sysconf(_SC_PAGESIZE) - 16 - 48);
        unsigned char *p = map_private(e.fd, e.off, bs);
        ck_assert_ptr_nonnull(p);
        for (unsigned i = 0; i < bs / ps; i++) {
            ck_assert_int_eq(store_block_verify_piece(st, &e, i, p + (size_t)i * ps), 0);
            ck_assert_int_eq(store_block_verify_piece(st, &e, i, NULL), 0); /* LMDB's map */
        }
        ck_assert_int_eq(store_block_verify(p, bs, e.checksum), 0);
        memcpy(buf, p, bs);
        buf[7 * ps + 123] ^= 1;
        ck_assert_int_eq(store_block_verify_piece(st, &e, 7, buf + 7 * ps), BA_ECORRUPT);
        ck_assert_int_eq(store_block_verify_piece(st, &e, 6, buf + 6 * ps), 0);
        ck_assert_int_eq(store_block_verify_piece(st, &e, 8, buf + 8 * ps), 0);
        /* Piece 3 checked against piece 4's bytes: the sums are per piece. */
        ck_assert_int_eq(store_block_verify_piece(st, &e, 3, p + 4 * ps), BA_ECORRUPT);
        munmap(p, bs);
        store_snap_unref(sn);
        store_close(st);

        /* Damage the sum of piece 3 on disk. */
        char *path = tu_path(dir, "data.mdb");
        int wfd = open(path, O_RDWR);
        ck_assert_int_ge(wfd, 0);
        unsigned char c;
        ck_assert_int_eq(pread(wfd, &c, 1, (off_t)(e.sums_off + 8 * 3)), 1);
        c ^= 0x10;
        ck_assert_int_eq(pwrite(wfd, &c, 1, (off_t)(e.sums_off + 8 * 3)), 1);
        close(wfd);
        free(path);
        ck_assert_int_eq(store_open(dir, &o, &st), 0);
        ck_assert_int_eq(store_snap_begin(st, &sn), 0);
        ck_assert_int_eq(store_block_locate(sn, &a, 1, 5u << 15, &e, 0), 0);
        p = map_private(e.fd, e.off, bs);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(store_block_verify_piece(st, &e, 3, p + 3 * ps), BA_ECORRUPT);
        ck_assert_int_eq(store_block_verify_piece(st, &e, 3, NULL), BA_ECORRUPT);
        ck_assert_int_eq(store_block_verify_piece(st, &e, 2, p + 2 * ps), 0);
        ck_assert_int_eq(store_block_verify_piece(st, &e, 2, NULL), 0);
        munmap(p, bs);
        ck_assert_int_eq(store_block_read(sn, &a, 1, buf, 0), 0);
        ck_assert(!memcmp(buf, in, bs));
        store_snap_unref(sn);
        int npieces = 0;
        uint64_t np = 0;
        ck_assert_int_eq(store_verify(st, count_problem, &npieces, &np), 0);
        ck_assert_int_eq(npieces, 1);
        store_close(st);
        free(in);
        free(buf);
        tu_rmtree(dir);
    }
}
END_TEST

static Suite *store_locate_suite(void)
{
    Suite *s = suite_create("store_locate");
    TCase *tc = tcase_create("locate");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_store_locate_raw_block_maps_its_bytes);
    tcase_add_test(tc, test_store_locate_refuses_what_it_cannot_map);
    tcase_add_test(tc, test_store_locate_snapshot_pins_the_bytes);
    tcase_add_test(tc, test_store_locate_reports_damage_and_injected_errors);
    tcase_add_test(tc, test_store_locate_pieces_check_alone);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(store_locate_suite());
}
