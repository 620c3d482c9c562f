/* SPDX-License-Identifier: MIT */
/*
 * Sessions and transactions through the public API: isolation (a reader keeps its
 * snapshot even when its cache is evicted), conflicts (same block, disjoint blocks,
 * concurrent resizes, an append racing a write to the tail block), invalidation
 * across processes, abort, read-only databases, load errors (preload codes, SIGBUS
 * and ba_array_fault_error()), threads, database handles, statistics, verify and
 * compact, and every injected failure at commit: the commit fails cleanly, the
 * session keeps its data, and a retry succeeds. Both pager backends.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ba_common.h"
#include "ba_internal.h"
#include "check_lib.h"

#define BS 4096

/* Write byte value `val` over blocks [first, first+n) of a u1 array. */
static void write_blocks(ba_array *a, int64_t first, int64_t n, uint8_t val)
{
    char sl[64];
    snprintf(sl, sizeof sl, "%lld:%lld", (long long)(first * BS), (long long)((first + n) * BS));
    ba_view v = tl_view(a, sl);
    memset(v.data, val, (size_t)(n * BS));
    ba_view_release(&v);
}

/* Assert every byte of blocks [first, first+n) equals val. */
static void expect_blocks(ba_array *a, int64_t first, int64_t n, uint8_t val)
{
    char sl[64];
    snprintf(sl, sizeof sl, "%lld:%lld", (long long)(first * BS), (long long)((first + n) * BS));
    ba_view v = tl_view(a, sl);
    const uint8_t *p = v.data;
    for (int64_t i = 0; i < n * BS; i++)
        if (p[i] != val)
            ck_abort_msg("block %lld byte %lld: %u, expected %u", (long long)(first + i / BS),
                         (long long)(i % BS), p[i], val);
    ba_view_release(&v);
}

static ba_array *open_array(ba_session *s, const char *name)
{
    ba_array *a;
    TL_OK(ba_array_open(s, name, &a));
    return a;
}

/* A database holding u1 array "a" of nblocks blocks filled with 1. */
/* Create u1 array `name` of nblocks blocks of val in db, committed. */
static void create_filled(ba_db *db, const char *name, int64_t nblocks, uint8_t val)
{
    ba_session *s;
    TL_OK(ba_session_begin(db, &s));
    int64_t n = nblocks * BS;
    ba_array *a = tl_create(s, name, "u1", 'C', BS, 1, &n);
    write_blocks(a, 0, nblocks, val);
    TL_OK(ba_session_commit(s));
    ba_array_close(a);
    ba_session_end(s);
}

static void setup_db(struct tl_db *t, const char *tag, int backend, int64_t nblocks,
                     uint64_t ram_limit)
{
    tl_db_open(t, tag, backend, ram_limit);
    create_filled(t->db, "a", nblocks, 1);
}

/* ---- isolation -------------------------------------------------------------------------- */

START_TEST(test_isolation_reader_keeps_snapshot_after_eviction)
{
    struct tl_db t;
    /* 256 blocks of 4 KiB (1 MiB) through a 256 KiB budget: reading evicts. */
    setup_db(&t, "txn-iso", _i, 256, 256 << 10);
    ba_session *w, *r;
    TL_OK(ba_session_begin(t.db, &w));
    TL_OK(ba_session_begin(t.db, &r));
    ba_array *wa = open_array(w, "a"), *ra = open_array(r, "a");
    expect_blocks(ra, 0, 4, 1);
    write_blocks(wa, 0, 256, 2);
    TL_OK(ba_session_commit(w));
    ck_assert_uint_gt(ba_session_snapshot(w), ba_session_snapshot(r));
    expect_blocks(ra, 0, 256, 1); /* reloads after eviction read r's snapshot */
    pager_reclaim(t.db->pager, 0);
    expect_blocks(ra, 0, 256, 1);
    ba_pager_stat st;
    st.size = sizeof st;
    TL_OK(ba_array_pager_stat(ra, &st));
    ck_assert_uint_gt(st.evictions + st.loads, 256);
    /* After r's boundary it sees w's data. */
    TL_OK(ba_session_abort(r));
    ck_assert_uint_eq(ba_session_snapshot(r), ba_session_snapshot(w));
    expect_blocks(ra, 0, 256, 2);
    /* And a shape change shows only after the boundary too. */
    int64_t more = 300 * BS;
    TL_OK(ba_array_resize(wa, 1, &more));
    TL_OK(ba_session_commit(w));
    ck_assert_int_eq(tl_info(ra).shape[0], 256 * BS);
    TL_OK(ba_session_commit(r)); /* nothing to commit: only moves the snapshot */
    ck_assert_int_eq(tl_info(ra).shape[0], 300 * BS);
    ba_array_close(wa);
    ba_array_close(ra);
    ba_session_end(w);
    ba_session_end(r);
    tl_db_close(&t);
}
END_TEST

START_TEST(test_boundary_with_no_array_open)
{
    /* A session that opened nothing moves past others' commits (UBSan once caught a
     * qsort of an empty index here). */
    struct tl_db t;
    setup_db(&t, "txn-empty", _i, 2, 0);
    ba_session *r, *w;
    TL_OK(ba_session_begin(t.db, &r));
    TL_OK(ba_session_begin(t.db, &w));
    ba_array *wa = open_array(w, "a");
    write_blocks(wa, 0, 1, 5);
    TL_OK(ba_session_commit(w));
    TL_OK(ba_session_abort(r));
    TL_OK(ba_session_commit(r));
    ck_assert_uint_eq(ba_session_snapshot(r), ba_session_snapshot(w));
    ba_array *ra = open_array(r, "a");
    expect_blocks(ra, 0, 1, 5);
    ba_array_close(ra);
    ba_array_close(wa);
    ba_session_end(r);
    ba_session_end(w);
    tl_db_close(&t);
}
END_TEST

/* ---- conflicts ---------------------------------------------------------------------------- */

START_TEST(test_conflict_same_block_loser_retries)
{
    struct tl_db t;
    setup_db(&t, "txn-conflict", _i, 8, 0);
    ba_session *a, *b;
    TL_OK(ba_session_begin(t.db, &a));
    TL_OK(ba_session_begin(t.db, &b));
    ba_array *aa = open_array(a, "a"), *ba = open_array(b, "a");
    write_blocks(aa, 2, 1, 10);
    write_blocks(ba, 2, 2, 20);
    TL_OK(ba_session_commit(a));
    TL_FAILS(ba_session_commit(b), BA_ECONFLICT);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "block 2"));
    /* The loser's changes are intact until it aborts. */
    ck_assert(ba_session_dirty(b));
    expect_blocks(ba, 2, 2, 20);
    TL_FAILS(ba_session_commit(b), BA_ECONFLICT);
    TL_OK(ba_session_abort(b));
    expect_blocks(ba, 2, 1, 10);
    expect_blocks(ba, 3, 1, 1);
    write_blocks(ba, 2, 2, 20);
    TL_OK(ba_session_commit(b));
    TL_OK(ba_session_abort(a));
    expect_blocks(aa, 2, 2, 20);
    ba_array_close(aa);
    ba_array_close(ba);
    ba_session_end(a);
    ba_session_end(b);
    tl_db_close(&t);
}
END_TEST

START_TEST(test_disjoint_blocks_do_not_conflict)
{
    struct tl_db t;
    setup_db(&t, "txn-disjoint", _i, 8, 0);
    ba_session *a, *b;
    TL_OK(ba_session_begin(t.db, &a));
    TL_OK(ba_session_begin(t.db, &b));
    ba_array *aa = open_array(a, "a"), *ba = open_array(b, "a");
    expect_blocks(aa, 0, 8, 1);
    expect_blocks(ba, 0, 8, 1);
    write_blocks(aa, 0, 2, 10);
    write_blocks(ba, 5, 3, 20);
    TL_OK(ba_session_commit(a));
    TL_OK(ba_session_commit(b));
    /* b moved past a's commit: it sees both; a sees b's after its boundary. */
    expect_blocks(ba, 0, 2, 10);
    expect_blocks(aa, 5, 3, 1);
    TL_OK(ba_session_abort(a));
    expect_blocks(aa, 5, 3, 20);
    expect_blocks(aa, 2, 3, 1);
    ba_array_close(aa);
    ba_array_close(ba);
    ba_session_end(a);
    ba_session_end(b);
    tl_db_close(&t);
}
END_TEST

START_TEST(test_concurrent_resizes_conflict)
{
    struct tl_db t;
    setup_db(&t, "txn-resize", _i, 2, 0);
    ba_session *a, *b;
    TL_OK(ba_session_begin(t.db, &a));
    TL_OK(ba_session_begin(t.db, &b));
    ba_array *aa = open_array(a, "a"), *ba = open_array(b, "a");
    int64_t n11 = 11, n12 = 12, n13 = 13;
    TL_OK(ba_array_resize(aa, 1, &n11));
    TL_OK(ba_array_resize(ba, 1, &n12));
    TL_OK(ba_session_commit(a));
    TL_FAILS(ba_session_commit(b), BA_ECONFLICT);
    TL_OK(ba_session_abort(b));
    ck_assert_int_eq(tl_info(ba).shape[0], 11);
    TL_OK(ba_array_resize(ba, 1, &n13));
    TL_OK(ba_session_commit(b));
    ck_assert_int_eq(tl_info(aa).shape[0], 11);
    TL_OK(ba_session_abort(a));
    ck_assert_int_eq(tl_info(aa).shape[0], 13);
    ba_array_close(aa);
    ba_array_close(ba);
    ba_session_end(a);
    ba_session_end(b);
    tl_db_close(&t);
}
END_TEST

START_TEST(test_append_races_tail_write)
{
    for (int appender_first = 0; appender_first < 2; appender_first++) {
        struct tl_db t;
        tl_db_open(&t, "txn-append", _i, 0);
        ba_session *s;
        TL_OK(ba_session_begin(t.db, &s));
        int64_t n = 10;
        ba_array *x = tl_create(s, "x", "<f8", 'C', BS, 1, &n);
        TL_OK(ba_session_commit(s));
        ba_array_close(x);
        ba_session_end(s);

        ba_session *ap, *wr;
        TL_OK(ba_session_begin(t.db, &ap));
        TL_OK(ba_session_begin(t.db, &wr));
        ba_array *aa = open_array(ap, "x"), *wa = open_array(wr, "x");
        double vals[5] = {1, 2, 3, 4, 5};
        int64_t five = 5;
        TL_OK(ba_array_append(aa, vals, 1, &five, NULL));
        ba_view v = tl_view(wa, "9");
        *(double *)v.data = 42;
        ba_view_release(&v);
        ba_session *first = appender_first ? ap : wr, *second = appender_first ? wr : ap;
        TL_OK(ba_session_commit(first));
        TL_FAILS(ba_session_commit(second), BA_ECONFLICT);
        TL_OK(ba_session_abort(second));
        if (appender_first) {
            v = tl_view(wa, "9");
            *(double *)v.data = 42;
            ba_view_release(&v);
        } else {
            TL_OK(ba_array_append(aa, vals, 1, &five, NULL));
        }
        TL_OK(ba_session_commit(second));
        TL_OK(ba_session_abort(first));
        ba_array *check = appender_first ? aa : wa;
        ba_view all = tl_view(check, "");
        ck_assert_int_eq(all.shape[0], 15);
        ck_assert(((double *)all.data)[9] == 42);
        ck_assert(((double *)all.data)[14] == 5);
        ba_view_release(&all);
        ba_array_close(aa);
        ba_array_close(wa);
        ba_session_end(ap);
        ba_session_end(wr);
        tl_db_close(&t);
    }
}
END_TEST

/* ---- invalidation across processes ---------------------------------------------------------- */

/* The writer process of test_invalidation_across_processes: it never touches the
 * parent's handles. It rewrites block 3 with 7s and grows the array to 20 blocks. */
static int writer_process(const char *path, int backend)
{
    alarm(60); /* a hang becomes a quick failure */
    ba_db *db;
    ba_session *w;
    ba_array *wa;
    if (tl_writer_open(path, backend, &db, &w, &wa))
        return 2;
    ba_view v;
    if (ba_array_view_text(wa, "12288:16384", 0, &v)) /* block 3 */
        return 3;
    memset(v.data, 7, BS);
    ba_view_release(&v);
    int64_t n = 20 * BS;
    if (ba_array_resize(wa, 1, &n) || ba_session_commit(w))
        return 4;
    ba_array_close(wa);
    ba_session_end(w);
    ba_db_close(db);
    return 0;
}

START_TEST(test_invalidation_across_processes)
{
    struct tl_db t;
    setup_db(&t, "txn-fork", _i, 16, 0);
    ba_session *r;
    TL_OK(ba_session_begin(t.db, &r));
    ba_array *ra = open_array(r, "a");
    expect_blocks(ra, 0, 16, 1); /* cached */
    tl_run_writer("check_lib_txn", &t);
    /* Before the boundary: the old data and shape, cached or not. */
    expect_blocks(ra, 0, 16, 1);
    pager_reclaim(t.db->pager, 0);
    expect_blocks(ra, 0, 16, 1);
    ck_assert_int_eq(tl_info(ra).shape[0], 16 * BS);
    TL_OK(ba_session_abort(r));
    expect_blocks(ra, 0, 3, 1);
    expect_blocks(ra, 3, 1, 7);
    expect_blocks(ra, 4, 12, 1);
    expect_blocks(ra, 16, 4, 0);
    ck_assert_int_eq(tl_info(ra).shape[0], 20 * BS);
    ba_pager_stat st;
    st.size = sizeof st;
    TL_OK(ba_array_pager_stat(ra, &st));
    ba_array_close(ra);
    ba_session_end(r);
    tl_db_close(&t);
}
END_TEST

/* ---- abort, read-only ------------------------------------------------------------------------ */

START_TEST(test_abort_discards_everything)
{
    struct tl_db t;
    setup_db(&t, "txn-abort", _i, 4, 0);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    ba_array *a = open_array(s, "a");
    write_blocks(a, 1, 2, 9);
    int64_t small = BS + 5, big = 8 * BS;
    TL_OK(ba_array_resize(a, 1, &small));
    TL_OK(ba_array_resize(a, 1, &big));
    int64_t n = 3;
    ba_array *c = tl_create(s, "c", "u1", 'C', 0, 1, &n);
    ck_assert(ba_session_dirty(s));
    TL_OK(ba_session_abort(s));
    ck_assert(!ba_session_dirty(s));
    ck_assert_int_eq(tl_info(a).shape[0], 4 * BS);
    expect_blocks(a, 0, 4, 1);
    ba_array_info info;
    info.size = sizeof info;
    TL_FAILS(ba_array_info_get(c, &info), BA_ESTALE);
    ba_array *x;
    TL_FAILS(ba_array_open(s, "c", &x), BA_ENOTFOUND);
    ba_array_close(c);
    ba_array_close(a);
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

START_TEST(test_readonly_database)
{
    struct tl_db t;
    setup_db(&t, "txn-rdonly", _i, 4, 0);
    ba_db_close(t.db);
    tl_db_reopen(&t, BA_DB_RDONLY, 0);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    ba_array *a = open_array(s, "a");
    expect_blocks(a, 0, 4, 1);
    int64_t n = 3;
    ba_array_spec sp;
    ba_array_spec_init(&sp);
    sp.ndim = 1;
    sp.shape[0] = 3;
    ba_array *c;
    TL_FAILS(ba_array_create(s, "c", &sp, &c), BA_EREADONLY);
    TL_FAILS(ba_array_resize(a, 1, &n), BA_EREADONLY);
    TL_FAILS(ba_array_append(a, "abc", 1, &n, NULL), BA_EREADONLY);
    TL_FAILS(ba_array_drop(s, "a"), BA_EREADONLY);
    TL_FAILS(ba_array_copy(s, "a", "b"), BA_EREADONLY);
    /* Views are writable scratch space; committing the writes is refused. */
    write_blocks(a, 0, 1, 5);
    TL_FAILS(ba_session_commit(s), BA_EREADONLY);
    expect_blocks(a, 0, 1, 5);
    TL_OK(ba_session_abort(s));
    expect_blocks(a, 0, 1, 1);
    TL_OK(ba_session_commit(s));
    /* A read-write open of the same path in this process is refused meanwhile. */
    ba_db *rw;
    TL_FAILS(ba_db_open(t.path, NULL, &rw), BA_EBUSY);
    ba_array_close(a);
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

/* ---- load errors -------------------------------------------------------------------------- */

START_TEST(test_load_errors_preload_code_and_sigbus)
{
    struct tl_db t;
    setup_db(&t, "txn-ioerr", _i, 4, 0);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    ba_array *a = open_array(s, "a");
    ba_view v = tl_view(a, "");
    ba_inject_arm(BA_INJ_STORE_READ, -EIO, 0, 0);
    TL_FAILS(ba_view_preload(&v, 0), -EIO);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "'a'"));
    /* Touching the memory: SIGBUS to this thread, the error recorded on the array. */
    int bus = tu_sigbus_reading((const char *)v.data + 2 * BS + 1, NULL);
    ba_inject_clear();
    ck_assert(bus);
    int64_t blk;
    TL_FAILS(ba_array_fault_error(a, &blk), -EIO);
    ck_assert_int_eq(blk, 2);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "block 2"));
    TL_OK(ba_array_fault_error(a, &blk));
    ck_assert_int_eq(blk, -1);
    /* Once the disk behaves, the same view works. */
    TL_OK(ba_view_preload(&v, 0));
    expect_blocks(a, 0, 4, 1);
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

/* ---- injected failures at commit ---------------------------------------------------------- */

/* A session with changes of every kind: block writes in two arrays, a shrink with a cut,
 * a created array with data. */
static void make_changes(ba_session *s)
{
    ba_array *a = open_array(s, "a"), *b = open_array(s, "b");
    write_blocks(a, 0, 3, 30);
    int64_t n = 6 * BS + 10;
    TL_OK(ba_array_resize(b, 1, &n));
    write_blocks(b, 1, 1, 31);
    int64_t m = 2 * BS;
    ba_array *c = tl_create(s, "c", "u1", 'C', BS, 1, &m);
    write_blocks(c, 0, 2, 32);
    ba_array_close(a);
    ba_array_close(b);
    ba_array_close(c);
}

static void expect_changes(ba_session *s)
{
    ba_array *a = open_array(s, "a"), *b = open_array(s, "b"), *c = open_array(s, "c");
    expect_blocks(a, 0, 3, 30);
    expect_blocks(a, 3, 5, 1);
    ck_assert_int_eq(tl_info(b).shape[0], 6 * BS + 10);
    expect_blocks(b, 0, 1, 1);
    expect_blocks(b, 1, 1, 31);
    expect_blocks(b, 2, 4, 1);
    expect_blocks(c, 0, 2, 32);
    ba_array_close(a);
    ba_array_close(b);
    ba_array_close(c);
}

/* Nothing of the changes is visible to a fresh session. */
static void expect_unchanged(struct tl_db *t)
{
    ba_session *o;
    TL_OK(ba_session_begin(t->db, &o));
    ba_array *a = open_array(o, "a"), *b = open_array(o, "b"), *c;
    expect_blocks(a, 0, 8, 1);
    ck_assert_int_eq(tl_info(b).shape[0], 8 * BS);
    TL_FAILS(ba_array_open(o, "c", &c), BA_ENOTFOUND);
    ba_array_close(a);
    ba_array_close(b);
    ba_session_end(o);
}

static const struct {
    enum ba_inject_point point;
    int code, expect;
} inject_cases[] = {
    {BA_INJ_STORE_PUT, -ENOSPC, -ENOSPC},      {BA_INJ_STORE_PUT, -EIO, -EIO},
    {BA_INJ_STORE_PUT, -ENOMEM, -ENOMEM},      {BA_INJ_STORE_PUT, BA_INJ_MAP_FULL, 0},
    {BA_INJ_STORE_COMMIT, -ENOSPC, -ENOSPC},   {BA_INJ_STORE_COMMIT, -EIO, -EIO},
    {BA_INJ_STORE_COMMIT, BA_INJ_MAP_FULL, 0}, {BA_INJ_ALLOC, -ENOMEM, -ENOMEM},
    {BA_INJ_SPILL_READ, -EIO, -EIO},           {BA_INJ_STORE_RESERVE, -ENOSPC, -ENOSPC},
    {BA_INJ_STORE_RESERVE, -EDQUOT, -ENOSPC},
};

/* A fresh database with u1 arrays "a" and "b" of 8 blocks of ones, and a session
 * holding make_changes(). */
static ba_session *inject_setup(struct tl_db *t, int backend)
{
    setup_db(t, "txn-inject", backend, 8, 0);
    create_filled(t->db, "b", 8, 1);
    ba_session *s;
    TL_OK(ba_session_begin(t->db, &s));
    make_changes(s);
    return s;
}

START_TEST(test_commit_injected_failures_keep_data)
{
    for (size_t ci = 0; ci < sizeof inject_cases / sizeof inject_cases[0]; ci++) {
        struct tl_db t;
        ba_session *s = inject_setup(&t, _i);
        /* Fail the k-th hit, for every k the commit reaches. A failed commit must
         * keep every change and write nothing; a commit that recovered from the
         * failure by itself (a full map grows, a failed allocation has a fallback)
         * must have written everything. */
        int done = 0;
        for (unsigned k = 0; !done && k < 5000; k++) {
            ba_inject_arm(inject_cases[ci].point, inject_cases[ci].code, k, 1);
            int rc = ba_session_commit(s);
            unsigned hits = ba_inject_hits(inject_cases[ci].point);
            ba_inject_clear();
            if (rc == 0) {
                done = hits <= k;
                ba_session_end(s);
                TL_OK(ba_session_begin(t.db, &s));
                expect_changes(s);
                ba_session_end(s);
                tl_db_close(&t);
                if (!done)
                    s = inject_setup(&t, _i);
                continue;
            }
            ck_assert_msg(rc == inject_cases[ci].expect || rc == BA_EFULL,
                          "case %zu (%s) k %u: rc %d %s (%s)", ci,
                          ba_inject_point_name(inject_cases[ci].point), k, rc, ba_strerror(rc),
                          ba_errmsg());
            ck_assert_msg(strlen(ba_errmsg()) > 0, "no message");
            ck_assert(ba_session_dirty(s));
            expect_changes(s);
            expect_unchanged(&t);
        }
        ck_assert_msg(done, "case %zu never succeeded", ci);
    }
}
END_TEST

START_TEST(test_commit_map_full_forever_is_efull_then_retry)
{
    struct tl_db t;
    setup_db(&t, "txn-mapfull", _i, 8, 0);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    ba_array *a = open_array(s, "a");
    write_blocks(a, 0, 2, 44);
    ba_inject_arm(BA_INJ_STORE_PUT, BA_INJ_MAP_FULL, 0, 0);
    TL_FAILS(ba_session_commit(s), BA_EFULL);
    ba_inject_clear();
    expect_blocks(a, 0, 2, 44);
    TL_OK(ba_session_commit(s));
    ba_session *o;
    TL_OK(ba_session_begin(t.db, &o));
    ba_array *oa = open_array(o, "a");
    expect_blocks(oa, 0, 2, 44);
    ba_array_close(oa);
    ba_session_end(o);
    ba_array_close(a);
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

START_TEST(test_bigarray_inject_environment)
{
    /* BIGARRAY_INJECT is read once, at the first ba_db_open() of the process: each test
     * runs in a fresh forked process, so this one is the first. */
    const char *fork_mode = getenv("CK_FORK");
    if (fork_mode && !strcmp(fork_mode, "no"))
        return; /* not a fresh process: the variable was read already */
    struct tl_db t;
    t.dir = tu_mkdtemp("txn-env");
    t.path = tu_path(t.dir, "db");
    t.backend = tl_backend(_i);
    setenv("BIGARRAY_INJECT", "store_commit:EIO:1:1,nonsense", 1);
    ba_db_options o;
    ba_db_options_init(&o);
    o.flags = BA_DB_CREATE;
    ba_db *db;
    TL_FAILS(ba_db_open(t.path, &o, &db), BA_EINVAL);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "BIGARRAY_INJECT"));
    unsetenv("BIGARRAY_INJECT");
    TL_FAILS(ba_db_open(t.path, &o, &db), BA_EINVAL); /* read once: the answer stays */
    free(t.path);
    tu_rmtree(t.dir);
}
END_TEST

START_TEST(test_bigarray_inject_environment_arms_points)
{
    const char *fork_mode = getenv("CK_FORK");
    if (fork_mode && !strcmp(fork_mode, "no"))
        return;
    /* The second commit of the process fails once with EIO, then works. */
    setenv("BIGARRAY_INJECT", "store_commit:EIO:1:1", 1);
    struct tl_db t;
    setup_db(&t, "txn-env2", _i, 2, 0);
    unsetenv("BIGARRAY_INJECT");
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    ba_array *a = open_array(s, "a");
    write_blocks(a, 0, 1, 3);
    TL_FAILS(ba_session_commit(s), -EIO);
    expect_blocks(a, 0, 1, 3);
    TL_OK(ba_session_commit(s));
    ba_array_close(a);
    ba_session_end(s);
    ba_inject_clear();
    tl_db_close(&t);
}
END_TEST

START_TEST(test_commit_larger_than_ram_and_spill_read_errors)
{
    /* 2 MiB of dirty blocks through a 256 KiB budget: most spill to the spill file and
     * come back at commit. A failed read-back fails the commit cleanly, and a retry
     * writes everything. */
    struct tl_db t;
    setup_db(&t, "txn-spill", _i, 512, 256 << 10);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    ba_array *a = open_array(s, "a");
    for (int64_t b = 0; b < 512; b += 64)
        write_blocks(a, b, 64, (uint8_t)(2 + b / 64));
    ba_pager_stat st;
    st.size = sizeof st;
    TL_OK(ba_db_pager_stat(t.db, &st));
    ck_assert_uint_gt(st.spills, 0);
    ba_inject_arm(BA_INJ_SPILL_READ, -EIO, 3, 1);
    int rc = ba_session_commit(s);
    unsigned hits = ba_inject_hits(BA_INJ_SPILL_READ);
    ba_inject_clear();
    ck_assert_uint_gt(hits, 3);
    TL_FAILS(rc, -EIO);
    ck_assert(ba_session_dirty(s));
    ba_session *o;
    TL_OK(ba_session_begin(t.db, &o));
    ba_array *oa = open_array(o, "a");
    expect_blocks(oa, 0, 512, 1);
    ba_array_close(oa);
    ba_session_end(o);
    for (int64_t b = 0; b < 512; b += 64)
        expect_blocks(a, b, 64, (uint8_t)(2 + b / 64));
    TL_OK(ba_session_commit(s));
    TL_OK(ba_session_begin(t.db, &o));
    oa = open_array(o, "a");
    for (int64_t b = 0; b < 512; b += 64)
        expect_blocks(oa, b, 64, (uint8_t)(2 + b / 64));
    ba_array_close(oa);
    ba_session_end(o);
    ba_array_close(a);
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

START_TEST(test_destructors_under_enomem)
{
    /* Releasing views, closing arrays, ending sessions and closing the database must
     * work (and free everything: ASan checks) while every allocation fails. */
    struct tl_db t;
    setup_db(&t, "txn-enomem", _i, 8, 0);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    ba_array *a = open_array(s, "a");
    expect_blocks(a, 0, 8, 1);
    write_blocks(a, 2, 2, 9);
    ba_view v = tl_view(a, "");
    ba_inject_arm(BA_INJ_ALLOC, -ENOMEM, 0, 0);
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(t.db);
    t.db = NULL;
    ba_inject_clear();
    tl_db_close(&t);
}
END_TEST

/* ---- threads -------------------------------------------------------------------------------- */

struct writer_arg {
    ba_db *db;
    int id;
    int rounds;
    int conflicts;
};

/* Each thread its own session, writing its own block of "a" and committing. */
static void *writer_thread(void *p)
{
    struct writer_arg *w = p;
    ba_session *s;
    if (ba_session_begin(w->db, &s))
        return (void *)1;
    ba_array *a;
    if (ba_array_open(s, "a", &a))
        return (void *)2;
    for (int r = 0; r < w->rounds; r++) {
        char sl[64];
        snprintf(sl, sizeof sl, "%d:%d", w->id * BS, (w->id + 1) * BS);
        ba_view v;
        if (ba_array_view_text(a, sl, 0, &v))
            return (void *)3;
        memset(v.data, (int)(r + 1), BS);
        ba_view_release(&v);
        int rc = ba_session_commit(s);
        if (rc == BA_ECONFLICT) {
            w->conflicts++;
            ba_session_abort(s);
            r--;
            continue;
        }
        if (rc)
            return (void *)4;
    }
    ba_array_close(a);
    ba_session_end(s);
    return NULL;
}

struct reader_arg {
    ba_view *v;
    volatile int *stop;
    long reads;
};

static void *reader_thread(void *p)
{
    struct reader_arg *r = p;
    while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE)) {
        const volatile uint8_t *b = r->v->data;
        uint8_t first = b[0];
        if (first < 1)
            return (void *)1;
        r->reads++;
    }
    return NULL;
}

START_TEST(test_threads_sessions_commit_concurrently)
{
    struct tl_db t;
    setup_db(&t, "txn-threads", _i, 8, 0);
    enum { NW = 4 };
    pthread_t th[NW], rt;
    struct writer_arg wa[NW];
    /* A reader in another session, reading through a view while the writers commit. */
    ba_session *rs;
    TL_OK(ba_session_begin(t.db, &rs));
    ba_array *ra = open_array(rs, "a");
    ba_view rv = tl_view(ra, "");
    volatile int stop = 0;
    struct reader_arg rarg = {&rv, &stop, 0};
    ck_assert_int_eq(pthread_create(&rt, NULL, reader_thread, &rarg), 0);
    for (int i = 0; i < NW; i++) {
        wa[i] = (struct writer_arg){t.db, i, 20, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, writer_thread, &wa[i]), 0);
    }
    for (int i = 0; i < NW; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        ck_assert_msg(ret == NULL, "writer %d failed at step %ld: %s", i, (long)(intptr_t)ret,
                      ba_errmsg());
        ck_assert_int_eq(wa[i].conflicts, 0);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    void *ret;
    pthread_join(rt, &ret);
    ck_assert_ptr_null(ret);
    expect_blocks(ra, 0, 8, 1); /* the reader's snapshot */
    TL_OK(ba_session_abort(rs));
    expect_blocks(ra, 0, NW, 20);
    expect_blocks(ra, NW, 8 - NW, 1);
    ba_view_release(&rv);
    ba_array_close(ra);
    ba_session_end(rs);
    tl_db_close(&t);
}
END_TEST

struct same_session_reader {
    ba_view *v;
    volatile int *stop;
    int64_t nblocks;
    long bad;
};

/* Touch one byte per block: every value must be one some commit wrote (1..20). */
static void *same_session_reader(void *p)
{
    struct same_session_reader *r = p;
    while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE))
        for (int64_t b = 0; b < r->nblocks; b++) {
            uint8_t x = ((const volatile uint8_t *)r->v->data)[b * BS + (b * 7) % BS];
            if (x < 1 || x > 20)
                r->bad++;
        }
    return NULL;
}

START_TEST(test_readers_in_the_session_during_its_boundaries)
{
    struct tl_db t;
    /* 128 blocks through a 128 KiB budget: the readers keep loading while the snapshot
     * under them moves. */
    setup_db(&t, "txn-readers", _i, 128, 128 << 10);
    ba_session *r, *w;
    TL_OK(ba_session_begin(t.db, &r));
    TL_OK(ba_session_begin(t.db, &w));
    ba_array *ra = open_array(r, "a"), *wa = open_array(w, "a");
    ba_view rv = tl_view(ra, "");
    volatile int stop = 0;
    enum { NR = 2 };
    pthread_t th[NR];
    struct same_session_reader arg[NR];
    for (int i = 0; i < NR; i++) {
        arg[i] = (struct same_session_reader){&rv, &stop, 128, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, same_session_reader, &arg[i]), 0);
    }
    for (int round = 2; round <= 20; round++) {
        write_blocks(wa, 0, 128, (uint8_t)round);
        TL_OK(ba_session_commit(w));
        if (round % 2)
            TL_OK(ba_session_commit(r)); /* no changes: moves the snapshot */
        else
            TL_OK(ba_session_abort(r));
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < NR; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(arg[i].bad, 0);
    }
    expect_blocks(ra, 0, 128, 20);
    ba_view_release(&rv);
    ba_array_close(ra);
    ba_array_close(wa);
    ba_session_end(r);
    ba_session_end(w);
    tl_db_close(&t);
}
END_TEST

/* ---- database handles, statistics, verify, compact ----------------------------------------- */

struct opener_arg {
    const char *path;
    int backend;
    int failures;
};

static void *opener_thread(void *p)
{
    struct opener_arg *o = p;
    for (int i = 0; i < 50; i++) {
        ba_db_options opts;
        ba_db_options_init(&opts);
        opts.pager = o->backend;
        ba_db *db;
        ba_session *s;
        if (ba_db_open(o->path, &opts, &db)) {
            o->failures++;
            continue;
        }
        if (ba_session_begin(db, &s) == 0)
            ba_session_end(s);
        else
            o->failures++;
        ba_db_close(db);
    }
    return NULL;
}

START_TEST(test_db_open_close_from_threads)
{
    /* Opens and closes of one path race: the handle is shared or made anew, never
     * refused because a closing one is still half open. */
    struct tl_db t;
    setup_db(&t, "txn-open", _i, 1, 0);
    ba_db_close(t.db);
    t.db = NULL;
    pthread_t th[3];
    struct opener_arg arg[3];
    for (int i = 0; i < 3; i++) {
        arg[i] = (struct opener_arg){t.path, t.backend, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, opener_thread, &arg[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(arg[i].failures, 0);
    }
    tl_db_close(&t);
}
END_TEST

static void count_problem(const ba_problem *p, void *ctx)
{
    (void)p;
    (*(int *)ctx)++;
}

START_TEST(test_db_handles_stat_verify_compact)
{
    struct tl_db t;
    setup_db(&t, "txn-db", _i, 8, 0);
    ba_db *again;
    TL_OK(ba_db_open(t.path, NULL, &again));
    ck_assert_ptr_eq(again, t.db); /* one handle per database per process */
    ba_db_close(again);
    ck_assert(ba_db_pager(t.db) == BA_PAGER_UFFD || ba_db_pager(t.db) == BA_PAGER_SIGSEGV);
    if (t.backend == BA_PAGER_SIGSEGV)
        ck_assert_int_eq(ba_db_pager(t.db), BA_PAGER_SIGSEGV);
    ba_db_stat st;
    st.size = sizeof st;
    TL_OK(ba_db_stat_get(t.db, &st));
    ck_assert_uint_eq(st.last_commit, 1);
    ck_assert_uint_eq(st.narrays, 1);
    ck_assert_uint_gt(st.page_size, 0);
    /* An older, smaller struct gets only its fields. */
    struct {
        size_t size;
        uint64_t last_commit;
    } small = {sizeof small, 0};
    TL_OK(ba_db_stat_get(t.db, (ba_db_stat *)&small));
    ck_assert_uint_eq(small.last_commit, 1);
    ba_pager_stat ps;
    ps.size = sizeof ps;
    TL_OK(ba_db_pager_stat(t.db, &ps));
    ck_assert_uint_gt(ps.ram_limit, 0);
    int problems = 0;
    uint64_t n = 99;
    TL_OK(ba_db_verify(t.db, count_problem, &problems, &n));
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(problems, 0);
    char *out = tu_path(t.dir, "compacted");
    TL_OK(ba_db_compact(t.db, out));
    ba_db *c;
    TL_OK(ba_db_open(out, NULL, &c));
    ba_session *s;
    TL_OK(ba_session_begin(c, &s));
    ba_array *a = open_array(s, "a");
    expect_blocks(a, 0, 8, 1);
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(c);
    free(out);
    /* Options and paths that do not work. */
    ba_db *bad;
    TL_FAILS(ba_db_open(NULL, NULL, &bad), BA_EINVAL);
    char *missing = tu_path(t.dir, "missing");
    TL_FAILS(ba_db_open(missing, NULL, &bad), BA_ENOTFOUND);
    ba_db_options o;
    ba_db_options_init(&o);
    o.flags = 0x100;
    TL_FAILS(ba_db_open(missing, &o, &bad), BA_EINVAL);
    o.flags = 0;
    o.pager = 9;
    TL_FAILS(ba_db_open(missing, &o, &bad), BA_EINVAL);
    free(missing);
    tl_db_close(&t);
}
END_TEST

/* Open t's database in the given mode, check blocks hold `expect`, write `next`, commit. */
static void wm_round(struct tl_db *t, unsigned flags, uint8_t expect, uint8_t next)
{
    tl_db_reopen(t, BA_DB_NOSYNC | flags, 64ull << 20);
    ba_session *s;
    TL_OK(ba_session_begin(t->db, &s));
    ba_array *a;
    TL_OK(ba_array_open(s, "a", &a));
    expect_blocks(a, 0, 8, expect);
    write_blocks(a, 0, 8, next);
    TL_OK(ba_session_commit(s));
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(t->db);
    t->db = NULL;
}

static uint64_t data_file_size(const char *dbpath)
{
    char *p = tu_path(dbpath, "data.mdb");
    struct stat sb;
    ck_assert_int_eq(stat(p, &sb), 0);
    free(p);
    return (uint64_t)sb.st_size;
}

/* The writable map is the default (LMDB sizes data.mdb as the map: a sparse file);
 * BA_DB_NOWRITEMAP and BIGARRAY_WRITEMAP=0 keep LMDB's map read-only (a file as long
 * as its pages); the modes share one database; a bad BIGARRAY_WRITEMAP is refused. */
START_TEST(test_writemap_modes_share_a_database)
{
    struct tl_db t;
    setup_db(&t, "txn-wm", _i, 8, 0);
    ck_assert_uint_eq(data_file_size(t.path), 1ull << 30); /* tl_db_reopen's map */
    ba_db_close(t.db);
    t.db = NULL;
    wm_round(&t, BA_DB_NOWRITEMAP, 1, 2);
    setenv("BIGARRAY_WRITEMAP", "0", 1);
    wm_round(&t, 0, 2, 3);
    unsetenv("BIGARRAY_WRITEMAP");
    wm_round(&t, 0, 3, 4);
    setenv("BIGARRAY_WRITEMAP", "1", 1);
    wm_round(&t, 0, 4, 5);
    setenv("BIGARRAY_WRITEMAP", "maybe", 1);
    ba_db_options o;
    ba_db_options_init(&o);
    ba_db *db = NULL;
    TL_FAILS(ba_db_open(t.path, &o, &db), BA_EINVAL);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "BIGARRAY_WRITEMAP"));
    unsetenv("BIGARRAY_WRITEMAP");
    tl_db_reopen(&t, BA_DB_NOSYNC, 64ull << 20);

    /* A database created with the read-only map is not sparse. */
    struct tl_db u = {.dir = tu_mkdtemp("txn-wm2"), .backend = t.backend};
    u.path = tu_path(u.dir, "db");
    tl_db_reopen(&u, BA_DB_CREATE | BA_DB_NOSYNC | BA_DB_NOWRITEMAP, 64ull << 20);
    create_filled(u.db, "a", 8, 9);
    ck_assert_uint_lt(data_file_size(u.path), 16u << 20);
    tl_db_close(&u);
    tl_db_close(&t);
}
END_TEST

static Suite *lib_txn_suite(void)
{
    Suite *s = suite_create("lib_txn");
    TCase *tc = tcase_create("isolation");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_isolation_reader_keeps_snapshot_after_eviction, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_boundary_with_no_array_open, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_conflict_same_block_loser_retries, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_disjoint_blocks_do_not_conflict, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_concurrent_resizes_conflict, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_append_races_tail_write, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_invalidation_across_processes, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_abort_discards_everything, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_readonly_database, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_threads_sessions_commit_concurrently, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_readers_in_the_session_during_its_boundaries, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_db_handles_stat_verify_compact, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_db_open_close_from_threads, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_writemap_modes_share_a_database, 0, TL_NBACKENDS);
    suite_add_tcase(s, tc);
    tc = tcase_create("failures");
    tcase_set_timeout(tc, 900);
    tcase_add_loop_test(tc, test_load_errors_preload_code_and_sigbus, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_commit_injected_failures_keep_data, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_commit_map_full_forever_is_efull_then_retry, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_commit_larger_than_ram_and_spill_read_errors, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_destructors_under_enomem, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_bigarray_inject_environment, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_bigarray_inject_environment_arms_points, 0, TL_NBACKENDS);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--writer"))
        return writer_process(argv[2], atoi(argv[3]));
    return tu_run(lib_txn_suite());
}
