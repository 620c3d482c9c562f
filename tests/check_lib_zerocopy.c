/* SPDX-License-Identifier: MIT */
/*
 * Check suite for zero-copy reads through the public API: uncompressed blocks of 64 KiB
 * and more are mapped straight from data.mdb (the pager's DIRECT blocks, located by
 * store_block_locate()) instead of being copied into RAM. Every test runs on both
 * backends; zero-copy is expected exactly where the database's backend is SIGSEGV
 * (userfaultfd turns it off), and the data must be the same either way.
 *
 * Data: a 1-D "<u8" array whose word at position p holds (version << 40) ^ p, so a
 * reader can tell which commit a block comes from and whether a block is torn.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_lib.h"

#define TEST_EXPORT __attribute__((visibility("default"), used))
TEST_EXPORT const char *__asan_default_options(void);
TEST_EXPORT const char *__asan_default_options(void)
{
    return "handle_segv=0";
}
TEST_EXPORT const char *__tsan_default_options(void);
TEST_EXPORT const char *__tsan_default_options(void)
{
    return "handle_segv=0";
}

#define BS  (64u << 10) /* block size: the smallest that is stored page-aligned */
#define WPB (BS / 8)    /* words per block */

static uint64_t val(uint64_t version, uint64_t pos)
{
    return (version << 40) ^ pos;
}

static ba_array *create(ba_session *s, const char *name, uint32_t bs, int codec, uint64_t nblk)
{
    ba_array_spec sp;
    ba_array_spec_init(&sp);
    TL_OK(ba_dtype_parse("<u8", &sp.dtype));
    sp.block_size = bs;
    sp.codec = codec;
    sp.ndim = 1;
    sp.shape[0] = (int64_t)(nblk * bs / 8);
    ba_array *a;
    TL_OK(ba_array_create(s, name, &sp, &a));
    return a;
}

/* Write `version` into words [first, first+n) of a through a view. */
static void fill(ba_array *a, uint64_t version, uint64_t first, uint64_t n)
{
    ba_view v;
    TL_OK(ba_array_view(a, NULL, 0, 0, &v));
    uint64_t *w = v.data;
    for (uint64_t i = first; i < first + n; i++)
        w[i] = val(version, i);
    ba_view_release(&v);
}

/* The version every word of block blk shows, or -1 when the block is torn or wrong. */
static int64_t block_version(const uint64_t *w, uint64_t blk, uint32_t bs)
{
    uint64_t wpb = bs / 8, first = blk * wpb;
    uint64_t k = (w[first] ^ first) >> 40;
    for (uint64_t i = first; i < first + wpb; i += 61)
        if (w[i] != val(k, i))
            return -1;
    return w[first + wpb - 1] == val(k, first + wpb - 1) ? (int64_t)k : -1;
}

static ba_pager_stat astat(ba_array *a)
{
    ba_pager_stat st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    TL_OK(ba_array_pager_stat(a, &st));
    return st;
}

/* Zero-copy is in effect for this database (SIGSEGV backend, not turned off). */
static int zc(const struct tl_db *t, unsigned flags)
{
    return ba_db_pager(t->db) == BA_PAGER_SIGSEGV && !(flags & BA_DB_NOZEROCOPY);
}

static ba_array *open_arr(ba_session *s, const char *name)
{
    ba_array *a;
    TL_OK(ba_array_open(s, name, &a));
    return a;
}

/* A database with array "a" of nblk blocks of bs holding version 1, committed. */
static void setup(struct tl_db *t, const char *tag, int i, uint32_t bs, int codec, uint64_t nblk)
{
    tl_db_open(t, tag, i, 8 * (uint64_t)bs);
    ba_session *s;
    TL_OK(ba_session_begin(t->db, &s));
    ba_array *a = create(s, "a", bs, codec, nblk);
    fill(a, 1, 0, nblk * bs / 8);
    TL_OK(ba_session_commit(s));
    ba_array_close(a);
    ba_session_end(s);
}

/* ---- tests ------------------------------------------------------------------------- */

/* A read maps the blocks without copying: no RAM frames, the right bytes, more blocks
 * than the RAM budget holds; a second pass faults nothing in. */
START_TEST(test_zerocopy_read_uses_no_ram)
{
    struct tl_db t;
    setup(&t, "zc-read", _i, BS, BA_CODEC_NONE, 32);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    ba_array *a = open_arr(s, "a");
    ba_view v = tl_view(a, "");
    for (uint64_t b = 0; b < 32; b++)
        ck_assert_int_eq(block_version(v.data, b, BS), 1);
    ba_pager_stat st = astat(a);
    if (zc(&t, 0)) {
        ck_assert_uint_eq(st.direct_loads, 32);
        ck_assert_uint_eq(st.direct_bytes, 32 * BS);
        ck_assert_uint_eq(st.loads, 0);
        ck_assert_uint_eq(st.ram_used, 0);
    } else {
        ck_assert_uint_eq(st.direct_loads, 0);
        ck_assert_uint_ge(st.loads, 32);
    }
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

/* A write through a view of a directly mapped block: the block moves into RAM with its
 * other bytes intact, commits, and reads back after the commit (mapped again). */
START_TEST(test_zerocopy_write_then_commit)
{
    struct tl_db t;
    setup(&t, "zc-write", _i, BS, BA_CODEC_NONE, 8);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    ba_array *a = open_arr(s, "a");
    ba_view v = tl_view(a, "");
    uint64_t *w = v.data;
    for (uint64_t b = 0; b < 8; b++)
        ck_assert_int_eq(block_version(w, b, BS), 1);
    w[2 * WPB + 5] = 4242;
    ck_assert_uint_eq(w[2 * WPB + 4], val(1, 2 * WPB + 4));
    ck_assert_uint_eq(w[2 * WPB + 6], val(1, 2 * WPB + 6));
    ba_pager_stat st = astat(a);
    if (zc(&t, 0)) {
        ck_assert_uint_eq(st.direct_copies, 1);
        ck_assert_uint_eq(st.direct_bytes, 7 * BS);
    }
    ck_assert_uint_eq(st.dirty_bytes, BS);
    TL_OK(ba_session_commit(s));
    ck_assert_uint_eq(w[2 * WPB + 5], 4242);
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    /* A new session sees the committed block. */
    TL_OK(ba_session_begin(t.db, &s));
    a = open_arr(s, "a");
    v = tl_view(a, "");
    w = v.data;
    ck_assert_uint_eq(w[2 * WPB + 5], 4242);
    ck_assert_uint_eq(w[2 * WPB + 7], val(1, 2 * WPB + 7));
    ck_assert_int_eq(block_version(w, 3, BS), 1);
    if (zc(&t, 0))
        ck_assert_uint_eq(astat(a).direct_loads, 2);
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

/* Find the file offset of block blk's payload (blocks of bs) in data.mdb by its first
 * words. */
static off_t payload_offset_bs(const char *dbpath, uint64_t blk, uint32_t bs)
{
    char *path = tu_path(dbpath, "data.mdb");
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    free(path);
    uint64_t wpb = bs / 8;
    uint64_t want[2] = {val(1, blk * wpb), val(1, blk * wpb + 1)}, got[2];
    off_t found = -1, end = (off_t)tu_data_len(fd);
    for (off_t off = 0; found < 0 && off < end; off += 4096) {
        ssize_t r = pread(fd, got, sizeof got, off);
        if (r != (ssize_t)sizeof got)
            break;
        if (!memcmp(got, want, sizeof got))
            found = off;
    }
    close(fd);
    ck_assert_int_ge(found, 0);
    return found;
}

static off_t payload_offset(const char *dbpath, uint64_t blk)
{
    return payload_offset_bs(dbpath, blk, BS);
}

/* Flip bit `bit` of the byte at off of data.mdb. */
static void flip_byte(const char *dbpath, off_t off, unsigned bit)
{
    char *path = tu_path(dbpath, "data.mdb");
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    unsigned char c;
    ck_assert_int_eq(pread(fd, &c, 1, off), 1);
    c ^= (unsigned char)(1u << bit);
    ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
    close(fd);
    free(path);
}

static void count_piece_problem(const ba_problem *p, void *ctx)
{
    int *n = ctx;
    *n += strstr(p->what, "piece checksum mismatch") != NULL;
}

#define PBS (2u << 20) /* a block of 64 pieces of 32 KiB */
#define PPS (32u << 10)
#define PWB (PBS / 8)
#define PPW (PPS / 8) /* words per piece */

/* Random reads of a few words in 2 MiB blocks map and check only the 32 KiB pieces under
 * the 64 KiB from the word read (zero-copy), with the right bytes. A damaged byte in
 * piece 20 of block 2: a read of piece 5 there is fine (zero-copy checks only pieces 5
 * to 7), a read of piece 20
 * gets SIGBUS, preload the code. A damaged piece sum in block 3 (its data intact): the
 * block reads right through the copying path, and verify reports the sum. Without
 * zero-copy (userfaultfd) the first read of block 2 gets SIGBUS. */
START_TEST(test_zerocopy_pieces_random_reads)
{
    struct tl_db t;
    setup(&t, "zc-pieces", _i, PBS, BA_CODEC_NONE, 4);
    ba_db_close(t.db);
    off_t p2 = payload_offset_bs(t.path, 2, PBS), p3 = payload_offset_bs(t.path, 3, PBS);
    flip_byte(t.path, p2 + 20 * PPS + 100, 3);
    /* The sum of piece 0 lies 4096 - 16 - 48 bytes before the payload (docs/format.md). */
    flip_byte(t.path, p3 - (4096 - 16 - 48), 5);
    tl_db_reopen(&t, BA_DB_NOSYNC, 8 * (uint64_t)PBS);
    int zero_copy = zc(&t, 0);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    ba_array *a = open_arr(s, "a");
    ba_view v = tl_view(a, "");
    const volatile uint64_t *w = v.data;
    uint64_t at = 1 * PWB + 3 * PPW + 17;
    ck_assert_uint_eq(w[at], val(1, at));
    at = 1 * PWB + 5 * PPW + 5; /* two pieces on: checked with the first */
    ck_assert_uint_eq(w[at], val(1, at));
    if (zero_copy) {
        ba_pager_stat st = astat(a);
        ck_assert_uint_eq(st.direct_pieces, 3);
        ck_assert_uint_eq(st.direct_loads, 1);
        ck_assert_uint_eq(st.loads, 0);
        at = 2 * PWB + 5 * PPW + 1;
        ck_assert_uint_eq(w[at], val(1, at));
        ck_assert(tu_sigbus_reading(&w[2 * PWB + 20 * PPW + 2], NULL));
    } else {
        ck_assert(tu_sigbus_reading(&w[2 * PWB + 5 * PPW + 1], NULL));
    }
    int64_t blk;
    TL_FAILS(ba_array_fault_error(a, &blk), BA_ECORRUPT);
    ck_assert_int_eq(blk, 2);
    ba_view part;
    TL_OK(ba_array_view_text(a, "524288:1048576", 0, &part)); /* block 2 */
    TL_FAILS(ba_view_preload(&part, 0), BA_ECORRUPT);
    ba_view_release(&part);
    /* Block 3: its piece sum is damaged, its bytes are not. */
    at = 3 * PWB + 7;
    ck_assert_uint_eq(w[at], val(1, at));
    ck_assert_int_eq(block_version((const uint64_t *)v.data, 3, PBS), 1);
    if (zero_copy)
        ck_assert_uint_eq(astat(a).loads, 1); /* the piece refused, the block loaded */
    ck_assert_int_eq(block_version((const uint64_t *)v.data, 0, PBS), 1);
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    int npiece = 0;
    uint64_t nprob = 0;
    TL_OK(ba_db_verify(t.db, count_piece_problem, &npiece, &nprob));
    ck_assert_int_eq(npiece, 1);
    ck_assert_uint_eq(nprob, 2); /* and block 2's checksum */
    tl_db_close(&t);
}
END_TEST

/* One changed payload byte in data.mdb: the checksum check refuses the mapping; the
 * reader gets SIGBUS, preload the code; the neighbours map fine. */
START_TEST(test_zerocopy_damaged_payload_sigbus)
{
    struct tl_db t;
    setup(&t, "zc-bad", _i, BS, BA_CODEC_NONE, 4);
    ba_db_close(t.db);
    flip_byte(t.path, payload_offset(t.path, 2) + 3000, 0);
    tl_db_reopen(&t, BA_DB_NOSYNC, 8 * BS);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    ba_array *a = open_arr(s, "a");
    ba_view v = tl_view(a, "");
    ba_view part;
    TL_OK(ba_array_view_text(a, "16384:24576", 0, &part)); /* block 2 */
    TL_FAILS(ba_view_preload(&part, 0), BA_ECORRUPT);
    ck_assert(tu_sigbus_reading(&((volatile uint64_t *)v.data)[2 * WPB + 9], NULL));
    int64_t blk;
    TL_FAILS(ba_array_fault_error(a, &blk), BA_ECORRUPT);
    ck_assert_int_eq(blk, 2);
    ck_assert_int_eq(block_version(v.data, 1, BS), 1);
    ck_assert_int_eq(block_version(v.data, 3, BS), 1);
    if (zc(&t, 0)) /* blocks 1 and 3, and block 2 located for its pieces, then refused */
        ck_assert_uint_eq(astat(a).direct_loads, 3);
    ba_view_release(&part);
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

/* Another session commits new data: this session keeps its snapshot's bytes until its
 * transaction boundary, then sees the new ones (the mapped blocks were invalidated). */
START_TEST(test_zerocopy_other_commit_invalidates)
{
    struct tl_db t;
    setup(&t, "zc-inval", _i, BS, BA_CODEC_NONE, 8);
    ba_session *r, *w;
    TL_OK(ba_session_begin(t.db, &r));
    TL_OK(ba_session_begin(t.db, &w));
    ba_array *ra = open_arr(r, "a"), *wa = open_arr(w, "a");
    ba_view v = tl_view(ra, "");
    for (uint64_t b = 0; b < 8; b++)
        ck_assert_int_eq(block_version(v.data, b, BS), 1);
    fill(wa, 2, 3 * WPB, 2 * WPB); /* blocks 3 and 4 */
    TL_OK(ba_session_commit(w));
    for (uint64_t b = 0; b < 8; b++)
        ck_assert_int_eq(block_version(v.data, b, BS), 1);
    TL_OK(ba_session_abort(r));
    for (uint64_t b = 0; b < 8; b++)
        ck_assert_int_eq(block_version(v.data, b, BS), b == 3 || b == 4 ? 2 : 1);
    ba_pager_stat st = astat(ra);
    if (zc(&t, 0)) {
        ck_assert_uint_eq(st.invalidations, 2);
        ck_assert_uint_eq(st.direct_loads, 10);
    }
    ba_view_release(&v);
    ba_array_close(ra);
    ba_array_close(wa);
    ba_session_end(r);
    ba_session_end(w);
    tl_db_close(&t);
}
END_TEST

/* Isolation under page reuse: a session keeps its view of a snapshot while another
 * rewrites the same blocks in 300 commits. Without the snapshot's pin LMDB would
 * reuse the freed pages at once (the second half shows it does, once the reader
 * moves on: the file stops growing). */
START_TEST(test_zerocopy_snapshot_survives_many_rewrites)
{
    enum { NB = 4, NCOMMITS = 300 };
    struct tl_db t;
    setup(&t, "zc-iso", _i, BS, BA_CODEC_NONE, NB);
    ba_session *r, *w;
    TL_OK(ba_session_begin(t.db, &r));
    TL_OK(ba_session_begin(t.db, &w));
    ba_array *ra = open_arr(r, "a"), *wa = open_arr(w, "a");
    ba_view v = tl_view(ra, "");
    for (uint64_t b = 0; b < NB; b++)
        ck_assert_int_eq(block_version(v.data, b, BS), 1);
    for (uint64_t k = 2; k < 2 + NCOMMITS; k++) {
        fill(wa, k, 0, NB * WPB);
        TL_OK(ba_session_commit(w));
        if (k % 25 == 0)
            for (uint64_t b = 0; b < NB; b++)
                ck_assert_msg(block_version(v.data, b, BS) == 1, "block %llu after commit %llu",
                              (unsigned long long)b, (unsigned long long)k);
    }
    for (uint64_t b = 0; b < NB; b++)
        ck_assert_int_eq(block_version(v.data, b, BS), 1);
    if (zc(&t, 0))
        ck_assert_uint_eq(astat(ra).direct_loads, NB);
    TL_OK(ba_session_abort(r));
    for (uint64_t b = 0; b < NB; b++)
        ck_assert_int_eq(block_version(v.data, b, BS), 1 + NCOMMITS);
    /* With the reader up to date, rewrites reuse pages: the file stops growing (its
     * allocated blocks: the file is sparse, as long as the map). */
    char *path = tu_path(t.path, "data.mdb");
    struct stat sb0, sb1;
    for (uint64_t k = 2 + NCOMMITS; k < 2 + NCOMMITS + 20; k++) {
        fill(wa, k, 0, NB * WPB);
        TL_OK(ba_session_commit(w));
        TL_OK(ba_session_abort(r));
        if (k == 2 + NCOMMITS + 9)
            ck_assert_int_eq(stat(path, &sb0), 0);
    }
    ck_assert_int_eq(stat(path, &sb1), 0);
    ck_assert_int_eq(sb1.st_blocks, sb0.st_blocks);
    for (uint64_t b = 0; b < NB; b++)
        ck_assert_int_eq(block_version(v.data, b, BS), 2 + NCOMMITS + 19);
    free(path);
    ba_view_release(&v);
    ba_array_close(ra);
    ba_array_close(wa);
    ba_session_end(r);
    ba_session_end(w);
    tl_db_close(&t);
}
END_TEST

struct scan_arg {
    ba_view v;
    uint64_t nb;
    int stop; /* atomic */
    uint64_t torn, scans;
    int64_t max_version; /* atomic: the newest version committed so far */
};

/* Each word must be one some commit wrote at its position. (A block may mix two
 * versions when the session moves in the middle of a read: its mapped copy is dropped
 * and the rest comes from the new snapshot.) */
static void *scanner(void *arg)
{
    struct scan_arg *sa = arg;
    const volatile uint64_t *w = sa->v.data;
    while (!__atomic_load_n(&sa->stop, __ATOMIC_ACQUIRE)) {
        for (uint64_t i = 0; i < sa->nb * WPB; i += 37) {
            uint64_t x = w[i] ^ i;
            int64_t k = (int64_t)(x >> 40);
            /* max_version rises before each commit: read it after the word. */
            int64_t max = __atomic_load_n(&sa->max_version, __ATOMIC_ACQUIRE);
            if ((x & ((1ull << 40) - 1)) || k < 1 || k > max)
                sa->torn++;
        }
        sa->scans++;
    }
    return NULL;
}

struct writer_arg {
    ba_array *wa;
    ba_session *w;
    struct scan_arg *sa;
    int rounds;
};

static void *writer_main(void *arg)
{
    struct writer_arg *wr = arg;
    uint64_t nb = wr->sa->nb;
    for (int64_t k = 2; k < 2 + wr->rounds; k++) {
        /* Rewrite half of the blocks, alternating halves. */
        fill(wr->wa, (uint64_t)k, (uint64_t)(k % 2) * (nb / 2) * WPB, (nb / 2) * WPB);
        __atomic_store_n(&wr->sa->max_version, k, __ATOMIC_RELEASE);
        TL_OK(ba_session_commit(wr->w));
    }
    __atomic_store_n(&wr->sa->stop, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Three threads: one reads the session's view without pause, one moves the session's
 * snapshot (abort) over and over, and another session's thread commits rewrites all
 * the while, so that LMDB reuses freed pages as early as it may. Every word read must
 * be one a commit wrote there: never a page LMDB reused while a view still mapped it
 * (the old snapshot is released only after the invalidation). */
START_TEST(test_zerocopy_readers_during_snapshot_moves)
{
    enum { NB = 8, ROUNDS = 400 };
    struct tl_db t;
    setup(&t, "zc-moves", _i, BS, BA_CODEC_NONE, NB);
    ba_session *r, *w;
    TL_OK(ba_session_begin(t.db, &r));
    TL_OK(ba_session_begin(t.db, &w));
    ba_array *ra = open_arr(r, "a"), *wa = open_arr(w, "a");
    struct scan_arg sa = {.nb = NB, .max_version = 1};
    TL_OK(ba_array_view(ra, NULL, 0, BA_VIEW_READONLY, &sa.v));
    TL_OK(ba_view_preload(&sa.v, 0));
    struct writer_arg wr = {wa, w, &sa, ROUNDS};
    pthread_t th, tw;
    pthread_create(&th, NULL, scanner, &sa);
    pthread_create(&tw, NULL, writer_main, &wr);
    unsigned moves = 0;
    while (!__atomic_load_n(&sa.stop, __ATOMIC_ACQUIRE)) {
        TL_OK(ba_session_abort(r));
        moves++;
    }
    pthread_join(tw, NULL);
    pthread_join(th, NULL);
    ck_assert_msg(sa.torn == 0, "%llu words no commit wrote, in %llu scans and %u moves",
                  (unsigned long long)sa.torn, (unsigned long long)sa.scans, moves);
    ck_assert_uint_gt(sa.scans, 0);
    ba_view_release(&sa.v);
    ba_array_close(ra);
    ba_array_close(wa);
    ba_session_end(r);
    ba_session_end(w);
    tl_db_close(&t);
}
END_TEST

/* A copy made in a session reads its source's records until the commit; blocks mapped
 * then show the source's pages. After the commit they must be the copy's own: when
 * others then rewrite the source over and over and the session moves on each time (so
 * LMDB reuses the source's old pages), the copy still reads what it was copied from. */
START_TEST(test_zerocopy_copy_survives_rewrites_of_its_source)
{
    enum { NB = 4 };
    struct tl_db t;
    setup(&t, "zc-copy", _i, BS, BA_CODEC_NONE, NB);
    ba_session *s, *w;
    TL_OK(ba_session_begin(t.db, &s));
    TL_OK(ba_session_begin(t.db, &w));
    TL_OK(ba_array_copy(s, "a", "b"));
    ba_array *b = open_arr(s, "b"), *wa = open_arr(w, "a");
    ba_view v = tl_view(b, "");
    for (uint64_t k = 0; k < NB; k++)
        ck_assert_int_eq(block_version(v.data, k, BS), 1);
    TL_OK(ba_session_commit(s));
    for (uint64_t k = 2; k < 60; k++) {
        fill(wa, k, 0, NB * WPB);
        TL_OK(ba_session_commit(w));
        TL_OK(ba_session_abort(s));
        for (uint64_t blk = 0; blk < NB; blk++)
            ck_assert_msg(block_version(v.data, blk, BS) == 1,
                          "copy block %llu after %llu rewrites of its source",
                          (unsigned long long)blk, (unsigned long long)k - 1);
    }
    ba_view_release(&v);
    ba_array_close(b);
    ba_array_close(wa);
    ba_session_end(s);
    ba_session_end(w);
    tl_db_close(&t);
}
END_TEST

/* Compressed blocks, holes and blocks under 64 KiB are copied; a compressed array's
 * block that compression did not shrink is stored raw and mapped. */
START_TEST(test_zerocopy_only_raw_aligned_blocks)
{
    struct tl_db t;
    tl_db_open(&t, "zc-kinds", _i, 1ull << 20);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    ba_array *z = create(s, "z", BS, BA_CODEC_ZSTD, 4);
    ba_array *small = create(s, "small", 16384, BA_CODEC_NONE, 4);
    ba_array *holes = create(s, "holes", BS, BA_CODEC_NONE, 4);
    fill(z, 1, 0, 2 * WPB); /* blocks 0, 1: compressible */
    {
        ba_view v;
        TL_OK(ba_array_view(z, NULL, 0, 0, &v));
        uint64_t x = 88172645463325252ull, *p = v.data;
        for (uint64_t i = 2 * WPB; i < 3 * WPB; i++) { /* block 2: random */
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            p[i] = x;
        }
        ba_view_release(&v);
    }
    fill(small, 1, 0, 4 * 16384 / 8);
    fill(holes, 1, WPB, WPB); /* block 1 only */
    TL_OK(ba_session_commit(s));
    ba_array_close(z);
    ba_array_close(small);
    ba_array_close(holes);
    ba_session_end(s);
    /* Without readahead, so that the counts below are the faults' own. */
    ba_db_close(t.db);
    tl_db_reopen(&t, BA_DB_NOSYNC | BA_DB_NOREADAHEAD, 1ull << 20);

    TL_OK(ba_session_begin(t.db, &s));
    z = open_arr(s, "z");
    small = open_arr(s, "small");
    holes = open_arr(s, "holes");
    ba_view vz = tl_view(z, ""), vs = tl_view(small, ""), vh = tl_view(holes, "");
    ck_assert_int_eq(block_version(vz.data, 0, BS), 1);
    ck_assert_int_eq(block_version(vz.data, 1, BS), 1);
    (void)((volatile uint64_t *)vz.data)[2 * WPB];
    for (uint64_t b = 0; b < 4; b++)
        ck_assert_int_eq(block_version(vs.data, b, 16384), 1);
    ck_assert_uint_eq(((uint64_t *)vh.data)[0], 0);
    ck_assert_int_eq(block_version(vh.data, 1, BS), 1);
    ck_assert_uint_eq(((uint64_t *)vh.data)[2 * WPB + 7], 0);
    int on = zc(&t, 0);
    ba_pager_stat st = astat(z);
    ck_assert_uint_eq(st.direct_loads, on ? 1 : 0); /* the random block */
    ck_assert_uint_eq(st.loads, on ? 2 : 3);
    st = astat(small);
    ck_assert_uint_eq(st.direct_loads, 0);
    ck_assert_uint_eq(st.loads, 4);
    st = astat(holes);
    ck_assert_uint_eq(st.direct_loads, on ? 1 : 0);
    ck_assert_uint_eq(st.loads, on ? 2 : 3); /* the holes read zeros from a copy */
    ba_view_release(&vz);
    ba_view_release(&vs);
    ba_view_release(&vh);
    ba_array_close(z);
    ba_array_close(small);
    ba_array_close(holes);
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

/* Shrinking cuts mapped blocks and the tail: growing again shows zeros there, in the
 * same transaction and after the commit. */
START_TEST(test_zerocopy_shrink_then_grow_zeros)
{
    struct tl_db t;
    setup(&t, "zc-shrink", _i, BS, BA_CODEC_NONE, 8);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    ba_array *a = open_arr(s, "a");
    ba_view v = tl_view(a, "");
    for (uint64_t b = 0; b < 8; b++)
        ck_assert_int_eq(block_version(v.data, b, BS), 1);
    int64_t n = (int64_t)(3 * WPB + 100);
    TL_OK(ba_array_resize(a, 1, &n));
    n = 8 * WPB;
    TL_OK(ba_array_resize(a, 1, &n));
    ba_view g = tl_view(a, "");
    const uint64_t *w = g.data;
    ck_assert_uint_eq(w[3 * WPB + 99], val(1, 3 * WPB + 99));
    ck_assert_uint_eq(w[3 * WPB + 100], 0);
    ck_assert_uint_eq(w[5 * WPB + 3], 0);
    TL_OK(ba_session_commit(s));
    ck_assert_uint_eq(w[3 * WPB + 100], 0);
    ck_assert_uint_eq(w[6 * WPB], 0);
    ck_assert_int_eq(block_version(w, 2, BS), 1);
    ba_view_release(&g);
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

/* BA_DB_NOZEROCOPY and BIGARRAY_ZEROCOPY=0 copy every block. */
START_TEST(test_zerocopy_off_copies)
{
    struct tl_db t;
    setup(&t, "zc-off", _i, BS, BA_CODEC_NONE, 8);
    for (int how = 0; how < 2; how++) {
        ba_db_close(t.db);
        if (how)
            setenv("BIGARRAY_ZEROCOPY", "0", 1);
        tl_db_reopen(&t, BA_DB_NOSYNC | (how ? 0 : BA_DB_NOZEROCOPY), 8 * BS);
        unsetenv("BIGARRAY_ZEROCOPY");
        ba_session *s;
        TL_OK(ba_session_begin(t.db, &s));
        ba_array *a = open_arr(s, "a");
        ba_view v = tl_view(a, "");
        for (uint64_t b = 0; b < 8; b++)
            ck_assert_int_eq(block_version(v.data, b, BS), 1);
        ba_pager_stat st = astat(a);
        ck_assert_uint_eq(st.direct_loads, 0);
        ck_assert_uint_ge(st.loads, 8);
        ba_view_release(&v);
        ba_array_close(a);
        ba_session_end(s);
    }
    tl_db_close(&t);
}
END_TEST

/* The writer process of the next test: a fresh program (exec'ed, so that it starts
 * clean under the sanitizers too), rewriting block 5 in 38 commits. */
static int writer_process(const char *path, int backend)
{
    alarm(60);
    ba_db *db;
    ba_session *w;
    ba_array *wa;
    if (tl_writer_open(path, backend, &db, &w, &wa))
        return 2;
    for (uint64_t k = 2; k < 40; k++) { /* enough commits to reuse free pages */
        ba_view wv;
        if (ba_array_view(wa, NULL, 0, 0, &wv))
            return 3;
        uint64_t *p = wv.data;
        for (uint64_t i = 5 * WPB; i < 6 * WPB; i++)
            p[i] = val(k, i);
        ba_view_release(&wv);
        if (ba_session_commit(w))
            return 4;
    }
    ba_array_close(wa);
    ba_session_end(w);
    ba_db_close(db);
    return 0;
}

/* A writer in another process: the reader's mapped blocks keep the old data until its
 * boundary, then show the child's. */
START_TEST(test_zerocopy_writer_in_another_process)
{
    struct tl_db t;
    setup(&t, "zc-fork", _i, BS, BA_CODEC_NONE, 8);
    ba_session *r;
    TL_OK(ba_session_begin(t.db, &r));
    ba_array *ra = open_arr(r, "a");
    ba_view v = tl_view(ra, "");
    for (uint64_t b = 0; b < 8; b++)
        ck_assert_int_eq(block_version(v.data, b, BS), 1);
    tl_run_writer("check_lib_zerocopy", &t);
    for (uint64_t b = 0; b < 8; b++)
        ck_assert_int_eq(block_version(v.data, b, BS), 1);
    TL_OK(ba_session_abort(r));
    for (uint64_t b = 0; b < 8; b++)
        ck_assert_int_eq(block_version(v.data, b, BS), b == 5 ? 39 : 1);
    ba_view_release(&v);
    ba_array_close(ra);
    ba_session_end(r);
    tl_db_close(&t);
}
END_TEST

static Suite *zerocopy_suite(void)
{
    Suite *s = suite_create("lib_zerocopy");
    TCase *tc = tcase_create("zerocopy");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_zerocopy_read_uses_no_ram, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_zerocopy_write_then_commit, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_zerocopy_damaged_payload_sigbus, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_zerocopy_other_commit_invalidates, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_zerocopy_snapshot_survives_many_rewrites, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_zerocopy_readers_during_snapshot_moves, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_zerocopy_copy_survives_rewrites_of_its_source, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_zerocopy_only_raw_aligned_blocks, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_zerocopy_shrink_then_grow_zeros, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_zerocopy_off_copies, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_zerocopy_writer_in_another_process, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_zerocopy_pieces_random_reads, 0, TL_NBACKENDS);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--writer"))
        return writer_process(argv[2], atoi(argv[3]));
    return tu_run(zerocopy_suite());
}
