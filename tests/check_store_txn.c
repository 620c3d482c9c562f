/* SPDX-License-Identifier: MIT */
/*
 * Check suite for store/ (part 2): the conflict rule (same block rewritten, created
 * from a hole or zeroed away; disjoint blocks; shape, cut, drop and create races;
 * nothing written by a failed commit), change records (content, ranges, pruning ->
 * BA_ERANGE) and several processes committing read-modify-write counters at once
 * with no lost update.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ba_common.h"
#include "store.h"
#include "testutil.h"

#define BS 4096u

static struct store *open_st(const char *dir, uint64_t keep)
{
    struct store_opts o;
    store_opts_init(&o);
    o.flags = STORE_CREATE | STORE_NOSYNC;
    o.change_keep = keep;
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

static struct store_array mkarr(struct store *st, const char *name, uint64_t nblocks)
{
    struct store_array a;
    memset(&a, 0, sizeof a);
    snprintf(a.name, sizeof a.name, "%s", name);
    strcpy(a.dtype, "<u8");
    a.itemsize = 8;
    a.ndim = 1;
    a.shape[0] = (int64_t)(nblocks * BS / 8);
    a.order = 'C';
    a.block_size = BS;
    a.codec = STORE_CODEC_ZSTD;
    a.level = 1;
    struct store_txn *tx;
    ck_assert_int_eq(store_txn_begin(st, last_seq(st), 0, &tx), 0);
    ck_assert_int_eq(store_txn_array_create(tx, &a), 0);
    ck_assert_int_eq(store_txn_commit(tx, NULL), 0);
    return a;
}

static void pattern(unsigned char *buf, uint64_t v)
{
    uint64_t *p = (uint64_t *)(void *)buf;
    for (size_t i = 0; i < BS / 8; i++)
        p[i] = v + i;
}

/* Write blocks {blknos} with value v in a txn based on `base`. Returns the commit's code
 * (or the write's, after aborting). */
static int write_at(struct store *st, uint64_t base, const struct store_array *a,
                    const uint64_t *blknos, size_t n, uint64_t v)
{
    unsigned char buf[BS];
    struct store_txn *tx;
    int rc = store_txn_begin(st, base, 0, &tx);
    if (rc)
        return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        if (v == 0)
            memset(buf, 0, BS);
        else
            pattern(buf, v);
        rc = store_txn_block_write(tx, a, blknos[i], buf);
    }
    if (rc) {
        store_txn_abort(tx);
        return rc;
    }
    return store_txn_commit(tx, NULL);
}

/* Block blkno holds pattern v (0 = zeros) in the newest snapshot. */
static int holds(struct store *st, const struct store_array *a, uint64_t blkno, uint64_t v)
{
    unsigned char buf[BS], want[BS];
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    ck_assert_int_eq(store_block_read(sn, a, blkno, buf, 0), 0);
    store_snap_unref(sn);
    if (v)
        pattern(want, v);
    else
        memset(want, 0, BS);
    return !memcmp(buf, want, BS);
}

/* ---- conflicts ---------------------------------------------------------------------------------- */

START_TEST(test_store_conflict_same_block_rewritten)
{
    char *dir = tu_mkdtemp("st-cf");
    struct store *st = open_st(dir, 0);
    struct store_array a = mkarr(st, "a", 8);
    uint64_t b3 = 3;
    ck_assert_int_eq(write_at(st, last_seq(st), &a, &b3, 1, 100), 0);
    uint64_t base = last_seq(st);
    ck_assert_int_eq(write_at(st, base, &a, &b3, 1, 200), 0);
    uint64_t after = last_seq(st);
    ck_assert_int_eq(write_at(st, base, &a, &b3, 1, 300), BA_ECONFLICT);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "block 3"));
    ck_assert_uint_eq(last_seq(st), after); /* nothing written */
    ck_assert(holds(st, &a, 3, 200));
    /* Based on the newest snapshot, the retry succeeds. */
    ck_assert_int_eq(write_at(st, after, &a, &b3, 1, 300), 0);
    ck_assert(holds(st, &a, 3, 300));
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_conflict_same_block_created_from_hole)
{
    char *dir = tu_mkdtemp("st-cf");
    struct store *st = open_st(dir, 0);
    struct store_array a = mkarr(st, "a", 8);
    uint64_t base = last_seq(st);
    uint64_t b5 = 5;
    ck_assert_int_eq(write_at(st, base, &a, &b5, 1, 7), 0);
    ck_assert_int_eq(write_at(st, base, &a, &b5, 1, 8), BA_ECONFLICT);
    ck_assert(holds(st, &a, 5, 7));
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_conflict_same_block_zeroed_away)
{
    char *dir = tu_mkdtemp("st-cf");
    struct store *st = open_st(dir, 0);
    struct store_array a = mkarr(st, "a", 8);
    uint64_t b1 = 1;
    ck_assert_int_eq(write_at(st, last_seq(st), &a, &b1, 1, 11), 0);
    uint64_t base = last_seq(st);
    ck_assert_int_eq(write_at(st, base, &a, &b1, 1, 0), 0); /* zeroed: tombstone */
    ck_assert(holds(st, &a, 1, 0));
    ck_assert_int_eq(write_at(st, base, &a, &b1, 1, 12), BA_ECONFLICT);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "zeroed"));
    ck_assert(holds(st, &a, 1, 0));
    /* The other order: written by one, zeroed by the other. */
    base = last_seq(st);
    ck_assert_int_eq(write_at(st, base, &a, &b1, 1, 13), 0);
    ck_assert_int_eq(write_at(st, base, &a, &b1, 1, 0), BA_ECONFLICT);
    ck_assert(holds(st, &a, 1, 13));
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_disjoint_blocks_both_commit)
{
    char *dir = tu_mkdtemp("st-cf");
    struct store *st = open_st(dir, 0);
    struct store_array a = mkarr(st, "a", 8);
    struct store_array b = mkarr(st, "b", 8);
    uint64_t base = last_seq(st);
    uint64_t x[2] = {0, 2}, y[2] = {1, 3};
    ck_assert_int_eq(write_at(st, base, &a, x, 2, 1), 0);
    ck_assert_int_eq(write_at(st, base, &a, y, 2, 2), 0);
    ck_assert_int_eq(write_at(st, base, &b, x, 2, 3), 0); /* same blknos, other array */
    ck_assert(holds(st, &a, 0, 1) && holds(st, &a, 2, 1));
    ck_assert(holds(st, &a, 1, 2) && holds(st, &a, 3, 2));
    ck_assert(holds(st, &b, 0, 3));
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

static int set_shape_at(struct store *st, uint64_t base, uint64_t id, int64_t n0)
{
    struct store_txn *tx;
    int rc = store_txn_begin(st, base, 0, &tx);
    if (rc)
        return rc;
    int64_t shape[1] = {n0};
    rc = store_txn_array_set_shape(tx, id, 1, shape);
    if (rc) {
        store_txn_abort(tx);
        return rc;
    }
    return store_txn_commit(tx, NULL);
}

START_TEST(test_store_conflict_shape_changed_by_other)
{
    char *dir = tu_mkdtemp("st-cf");
    struct store *st = open_st(dir, 0);
    struct store_array a = mkarr(st, "a", 8);
    uint64_t base = last_seq(st);
    ck_assert_int_eq(set_shape_at(st, base, a.id, 100 * BS / 8), 0);
    ck_assert_int_eq(set_shape_at(st, base, a.id, 50 * BS / 8), BA_ECONFLICT);
    struct store_snap *sn;
    struct store_array c;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    ck_assert_int_eq(store_array_by_id(sn, a.id, &c), 0);
    ck_assert_int_eq(c.shape[0], 100 * BS / 8);
    ck_assert_uint_eq(c.meta_seq, store_snap_seq(sn));
    store_snap_unref(sn);
    /* A write beyond the old shape after another commit shrank it: conflict. */
    base = last_seq(st);
    ck_assert_int_eq(set_shape_at(st, base, a.id, 2 * BS / 8), 0);
    uint64_t b50 = 50;
    ck_assert_int_eq(write_at(st, base, &a, &b50, 1, 9), BA_ECONFLICT);
    /* And in its own (newest) view it is simply out of range. */
    ck_assert_int_eq(write_at(st, last_seq(st), &a, &b50, 1, 9), BA_ERANGE);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

static int cut_at(struct store *st, uint64_t base, const struct store_array *a, uint64_t first,
                  int64_t n0)
{
    struct store_txn *tx;
    int rc = store_txn_begin(st, base, 0, &tx);
    if (rc)
        return rc;
    int64_t shape[1] = {n0};
    rc = store_txn_blocks_cut(tx, a, first);
    if (!rc)
        rc = store_txn_array_set_shape(tx, a->id, 1, shape);
    if (rc) {
        store_txn_abort(tx);
        return rc;
    }
    return store_txn_commit(tx, NULL);
}

START_TEST(test_store_conflict_cut_vs_write)
{
    char *dir = tu_mkdtemp("st-cf");
    struct store *st = open_st(dir, 0);
    struct store_array a = mkarr(st, "a", 8);
    uint64_t all[4] = {0, 1, 5, 6};
    ck_assert_int_eq(write_at(st, last_seq(st), &a, all, 4, 1), 0);
    /* cut first, then a write of a cut block: conflict */
    uint64_t base = last_seq(st);
    ck_assert_int_eq(cut_at(st, base, &a, 4, 4 * BS / 8), 0);
    ck_assert(holds(st, &a, 5, 0));
    ck_assert(holds(st, &a, 1, 1));
    struct store_snap *sn;
    struct store_block_info bi;
    struct store_array c;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    ck_assert_int_eq(store_block_info(sn, a.id, 6, &bi), 0);
    ck_assert_int_eq(bi.present, -1);
    ck_assert_int_eq(store_array_by_id(sn, a.id, &c), 0);
    ck_assert_uint_eq(c.stored_blocks, 2);
    store_snap_unref(sn);
    uint64_t b5 = 5;
    ck_assert_int_eq(write_at(st, base, &a, &b5, 1, 2), BA_ECONFLICT);
    /* write first, then a cut over it: conflict, nothing cut */
    ck_assert_int_eq(set_shape_at(st, last_seq(st), a.id, 8 * BS / 8), 0);
    base = last_seq(st);
    uint64_t b2 = 2;
    ck_assert_int_eq(write_at(st, base, &a, &b2, 1, 3), 0);
    uint64_t before = last_seq(st);
    ck_assert_int_eq(cut_at(st, base, &a, 1, 1 * BS / 8), BA_ECONFLICT);
    ck_assert_uint_eq(last_seq(st), before);
    ck_assert(holds(st, &a, 1, 1));
    ck_assert(holds(st, &a, 2, 3));
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

static int drop_at(struct store *st, uint64_t base, uint64_t id)
{
    struct store_txn *tx;
    int rc = store_txn_begin(st, base, 0, &tx);
    if (rc)
        return rc;
    rc = store_txn_array_drop(tx, id);
    if (rc) {
        store_txn_abort(tx);
        return rc;
    }
    return store_txn_commit(tx, NULL);
}

START_TEST(test_store_conflict_drop_vs_write)
{
    char *dir = tu_mkdtemp("st-cf");
    struct store *st = open_st(dir, 0);
    struct store_array a = mkarr(st, "a", 8);
    struct store_array b = mkarr(st, "b", 8);
    uint64_t b0 = 0;
    ck_assert_int_eq(write_at(st, last_seq(st), &a, &b0, 1, 1), 0);
    /* drop first: the write conflicts */
    uint64_t base = last_seq(st);
    ck_assert_int_eq(drop_at(st, base, a.id), 0);
    ck_assert_int_eq(write_at(st, base, &a, &b0, 1, 2), BA_ECONFLICT);
    struct store_snap *sn;
    struct store_array c;
    struct store_block_info bi;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    ck_assert_int_eq(store_array_by_name(sn, "a", &c), BA_ENOTFOUND);
    ck_assert_int_eq(store_block_info(sn, a.id, 0, &bi), 0);
    ck_assert_int_eq(bi.present, 0); /* records gone */
    store_snap_unref(sn);
    /* write first: the drop conflicts */
    base = last_seq(st);
    ck_assert_int_eq(write_at(st, base, &b, &b0, 1, 3), 0);
    ck_assert_int_eq(drop_at(st, base, b.id), BA_ECONFLICT);
    ck_assert(holds(st, &b, 0, 3));
    ck_assert_int_eq(drop_at(st, last_seq(st), 4242), BA_ENOTFOUND);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_conflict_create_same_name)
{
    char *dir = tu_mkdtemp("st-cf");
    struct store *st = open_st(dir, 0);
    uint64_t base = last_seq(st);
    struct store_array a = mkarr(st, "same", 4);
    struct store_array b;
    memset(&b, 0, sizeof b);
    strcpy(b.name, "same");
    strcpy(b.dtype, "<u8");
    b.itemsize = 8;
    b.ndim = 1;
    b.shape[0] = 1;
    b.order = 'C';
    b.block_size = BS;
    struct store_txn *tx;
    ck_assert_int_eq(store_txn_begin(st, base, 0, &tx), 0);
    ck_assert_int_eq(store_txn_array_create(tx, &b), BA_ECONFLICT);
    store_txn_abort(tx);
    ck_assert_int_eq(store_txn_begin(st, last_seq(st), 0, &tx), 0);
    ck_assert_int_eq(store_txn_array_create(tx, &b), BA_EEXIST);
    store_txn_abort(tx);
    (void)a;
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_commit_without_changes_keeps_seq)
{
    char *dir = tu_mkdtemp("st-cf");
    struct store *st = open_st(dir, 0);
    struct store_array a = mkarr(st, "a", 4);
    uint64_t s = last_seq(st);
    struct store_txn *tx;
    ck_assert_int_eq(store_txn_begin(st, s, 0, &tx), 0);
    ck_assert_uint_eq(store_txn_seq(tx), s + 1);
    unsigned char zero[BS] = {0};
    ck_assert_int_eq(store_txn_block_write(tx, &a, 0, zero), 0); /* hole stays a hole */
    uint64_t out = 0;
    ck_assert_int_eq(store_txn_commit(tx, &out), 0);
    ck_assert_uint_eq(out, s);
    ck_assert_uint_eq(last_seq(st), s);
    /* A base newer than the database is a caller bug. */
    ck_assert_int_eq(store_txn_begin(st, s + 5, 0, &tx), BA_EINVAL);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

/* ---- change records --------------------------------------------------------------------------------- */

struct chg_log {
    char text[4096];
};

static int chg_cb(const struct store_change *c, void *ctx)
{
    struct chg_log *l = ctx;
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%llu:%llu:%x:%llu:%llu;", (unsigned long long)c->seq,
             (unsigned long long)c->array_id, c->flags, (unsigned long long)c->first,
             (unsigned long long)c->n);
    return 0;
}

START_TEST(test_store_change_records_list_ranges)
{
    char *dir = tu_mkdtemp("st-chg");
    struct store *st = open_st(dir, 0);
    uint64_t s0 = last_seq(st);
    struct store_array a = mkarr(st, "a", 16); /* s0+1: create */
    uint64_t blks[6] = {1, 2, 3, 7, 9, 10};
    ck_assert_int_eq(write_at(st, last_seq(st), &a, blks, 6, 5), 0);       /* s0+2 */
    ck_assert_int_eq(set_shape_at(st, last_seq(st), a.id, 8 * BS / 8), 0); /* s0+3 */
    ck_assert_int_eq(cut_at(st, last_seq(st), &a, 2, 2 * BS / 8), 0);      /* s0+4 */
    ck_assert_int_eq(drop_at(st, last_seq(st), a.id), 0);                  /* s0+5 */
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    struct chg_log l = {""};
    ck_assert_int_eq(store_changes(sn, s0, chg_cb, &l), 0);
    char want[512];
    unsigned long long id = (unsigned long long)a.id, s = (unsigned long long)s0;
    snprintf(want, sizeof want,
             "%llu:%llu:4:0:0;"
             "%llu:%llu:1:1:3;%llu:%llu:1:7:1;%llu:%llu:1:9:2;"
             "%llu:%llu:2:0:0;"
             "%llu:%llu:2:0:0;%llu:%llu:10:2:0;"
             "%llu:%llu:8:0:0;",
             s + 1, id, s + 2, id, s + 2, id, s + 2, id, s + 3, id, s + 4, id, s + 4, id, s + 5,
             id);
    ck_assert_str_eq(l.text, want);
    /* A later start sees only the tail; the snapshot's own seq sees nothing. */
    struct chg_log l2 = {""};
    ck_assert_int_eq(store_changes(sn, s0 + 4, chg_cb, &l2), 0);
    snprintf(want, sizeof want, "%llu:%llu:8:0:0;", s + 5, id);
    ck_assert_str_eq(l2.text, want);
    struct chg_log l3 = {""};
    ck_assert_int_eq(store_changes(sn, store_snap_seq(sn), chg_cb, &l3), 0);
    ck_assert_str_eq(l3.text, "");
    store_snap_unref(sn);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_change_records_pruned_is_erange)
{
    char *dir = tu_mkdtemp("st-chg");
    struct store *st = open_st(dir, 5);
    struct store_array a = mkarr(st, "a", 16);
    for (uint64_t i = 0; i < 12; i++) {
        uint64_t b = i % 16;
        ck_assert_int_eq(write_at(st, last_seq(st), &a, &b, 1, i + 1), 0);
    }
    uint64_t s = last_seq(st);
    struct store_stat ss;
    ck_assert_int_eq(store_stat(st, &ss), 0);
    ck_assert_uint_eq(ss.change_records, 5);
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    struct chg_log l = {""};
    ck_assert_int_eq(store_changes(sn, s - 5, chg_cb, &l), 0); /* the kept window */
    ck_assert_int_eq(store_changes(sn, s - 6, chg_cb, &l), BA_ERANGE);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "pruned"));
    ck_assert_int_eq(store_changes(sn, 0, chg_cb, &l), BA_ERANGE);
    store_snap_unref(sn);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

/* ---- several processes ----------------------------------------------------------------------------- */

/* Child: `iters` read-modify-write increments of the u64 at word `slot` of block 0 and
 * of the shared total at word 0, retrying on conflict. Exit status 0 on success. */
static int child_counter(const char *dir, unsigned slot, unsigned iters)
{
    struct store_opts o;
    store_opts_init(&o);
    struct store *st;
    if (store_open(dir, &o, &st))
        return 10;
    struct store_snap *sn;
    struct store_array a;
    if (store_snap_begin(st, &sn) || store_array_by_name(sn, "ctr", &a))
        return 11;
    store_snap_unref(sn);
    uint64_t buf[BS / 8];
    unsigned done = 0, conflicts = 0;
    while (done < iters) {
        if (store_snap_begin(st, &sn))
            return 12;
        if (store_block_read(sn, &a, 0, buf, 0))
            return 13;
        uint64_t base = store_snap_seq(sn);
        store_snap_unref(sn);
        buf[0]++;
        buf[slot]++;
        struct store_txn *tx;
        if (store_txn_begin(st, base, 0, &tx))
            return 14;
        int rc = store_txn_block_write(tx, &a, 0, buf);
        if (!rc)
            rc = store_txn_commit(tx, NULL);
        else
            store_txn_abort(tx);
        if (rc == BA_ECONFLICT) {
            conflicts++;
            continue;
        }
        if (rc)
            return 15;
        done++;
    }
    store_close(st);
    return 0;
}

START_TEST(test_store_processes_commit_counters_without_lost_update)
{
    char *dir = tu_mkdtemp("st-proc");
    struct store *st = open_st(dir, 0);
    struct store_array a = mkarr(st, "ctr", 1);
    store_close(st); /* never fork with an open environment */
    enum { NP = 4, ITERS = 60 };
    pid_t pids[NP];
    for (unsigned i = 0; i < NP; i++) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0)
            _exit(child_counter(dir, i + 1, ITERS));
    }
    for (unsigned i = 0; i < NP; i++) {
        int status;
        ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %u status %d", i,
                      status);
    }
    st = open_st(dir, 0);
    uint64_t buf[BS / 8];
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    ck_assert_int_eq(store_block_read(sn, &a, 0, buf, 0), 0);
    ck_assert_uint_eq(buf[0], NP * ITERS);
    for (unsigned i = 0; i < NP; i++)
        ck_assert_uint_eq(buf[i + 1], ITERS);
    ck_assert_uint_eq(store_snap_seq(sn), 1 + NP * ITERS);
    store_snap_unref(sn);
    uint64_t np = 99;
    ck_assert_int_eq(store_verify(st, NULL, NULL, &np), 0);
    ck_assert_uint_eq(np, 0);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

/* A child grows the map far beyond the parent's (tiny) one; the parent, still open,
 * adopts the new size at its next snapshot or transaction (MDB_MAP_RESIZED). */
static int child_grow(const char *dir, const struct store_array *a)
{
    struct store_opts o;
    store_opts_init(&o);
    o.flags = STORE_NOSYNC;
    o.map_size = 1u << 20;
    struct store *st;
    if (store_open(dir, &o, &st))
        return 10;
    unsigned char buf[BS];
    for (uint64_t b = 0; b < 4096;) { /* 16 MiB in commits of 256 blocks */
        struct store_snap *sn;
        if (store_snap_begin(st, &sn))
            return 11;
        uint64_t base = store_snap_seq(sn);
        store_snap_unref(sn);
        struct store_txn *tx;
        if (store_txn_begin(st, base, 0, &tx))
            return 12;
        int rc = 0;
        for (uint64_t i = 0; i < 256 && !rc; i++) {
            pattern(buf, b + i + 1);
            rc = store_txn_block_write(tx, a, b + i, buf);
        }
        if (!rc)
            rc = store_txn_commit(tx, NULL);
        else
            store_txn_abort(tx);
        if (rc == STORE_EMAPFULL)
            continue; /* grows at the next begin */
        if (rc)
            return 13;
        b += 256;
    }
    store_close(st);
    return 0;
}

START_TEST(test_store_map_grown_by_other_process_is_adopted)
{
    char *dir = tu_mkdtemp("st-resz");
    struct store_opts o;
    store_opts_init(&o);
    o.flags = STORE_CREATE | STORE_NOSYNC;
    o.map_size = 1u << 20;
    struct store *st;
    ck_assert_int_eq(store_open(dir, &o, &st), 0);
    struct store_array a = mkarr(st, "big", 4096);
    struct store_stat s0;
    ck_assert_int_eq(store_stat(st, &s0), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(child_grow(dir, &a)); /* opens its own environment; never uses st */
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    /* Reading needs the bigger map now. */
    ck_assert(holds(st, &a, 4095, 4096));
    ck_assert(holds(st, &a, 7, 8));
    struct store_stat s1;
    ck_assert_int_eq(store_stat(st, &s1), 0);
    ck_assert_uint_gt(s1.map_size, s0.map_size);
    uint64_t b = 1;
    ck_assert_int_eq(write_at(st, last_seq(st), &a, &b, 1, 77), 0);
    ck_assert(holds(st, &a, 1, 77));
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

/* Child: commit generation after generation of all blocks, reporting each commit's
 * generation on fd; never returns (killed by the parent). */
static void child_generations(const char *dir, int fd)
{
    struct store_opts o;
    store_opts_init(&o);
    o.flags = STORE_NOSYNC; /* a killed process loses nothing the kernel has */
    struct store *st;
    if (store_open(dir, &o, &st))
        _exit(10);
    struct store_snap *sn;
    struct store_array a;
    if (store_snap_begin(st, &sn) || store_array_by_name(sn, "gen", &a))
        _exit(11);
    store_snap_unref(sn);
    unsigned char buf[BS];
    for (uint64_t g = 1;; g++) {
        struct store_txn *tx;
        if (store_snap_begin(st, &sn))
            _exit(12);
        uint64_t base = store_snap_seq(sn);
        store_snap_unref(sn);
        if (store_txn_begin(st, base, 0, &tx))
            _exit(13);
        for (uint64_t b = 0; b < 64; b++) {
            pattern(buf, g * 1000 + b);
            if (store_txn_block_write(tx, &a, b, buf))
                _exit(14);
        }
        if (store_txn_commit(tx, NULL))
            _exit(15);
        if (write(fd, &g, sizeof g) != (ssize_t)sizeof g)
            _exit(16);
    }
}

START_TEST(test_store_killed_writer_leaves_one_whole_commit)
{
    char *dir = tu_mkdtemp("st-kill");
    struct store *st = open_st(dir, 0);
    struct store_array a = mkarr(st, "gen", 64);
    store_close(st);
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(pfd[0]);
        child_generations(dir, pfd[1]);
    }
    close(pfd[1]);
    uint64_t g = 0;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(read(pfd[0], &g, sizeof g), (ssize_t)sizeof g);
    kill(pid, SIGKILL); /* most likely in the middle of the next commit */
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status));
    close(pfd[0]);
    st = open_st(dir, 0); /* clears the dead reader slot, if any */
    uint64_t np = 1;
    ck_assert_int_eq(store_verify(st, NULL, NULL, &np), 0);
    ck_assert_uint_eq(np, 0);
    /* All 64 blocks come from one generation, at least the third. */
    unsigned char buf[BS];
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    ck_assert_int_eq(store_block_read(sn, &a, 0, buf, 0), 0);
    uint64_t g0 = ((uint64_t *)(void *)buf)[0] / 1000;
    ck_assert_uint_ge(g0, g);
    for (uint64_t b = 0; b < 64; b++) {
        unsigned char want[BS];
        pattern(want, g0 * 1000 + b);
        ck_assert_int_eq(store_block_read(sn, &a, b, buf, 0), 0);
        ck_assert_msg(!memcmp(buf, want, BS), "block %llu is not from generation %llu",
                      (unsigned long long)b, (unsigned long long)g0);
    }
    ck_assert_uint_eq(store_snap_seq(sn), 1 + g0); /* create + g0 commits */
    store_snap_unref(sn);
    /* and it keeps working */
    uint64_t b5 = 5;
    ck_assert_int_eq(write_at(st, last_seq(st), &a, &b5, 1, 424242), 0);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

/* A writer in another process holds the writer lock: a begin with a lock timeout
 * fails with BA_EBUSY after about that long, and succeeds once the writer is done. */
START_TEST(test_store_txn_begin_times_out_while_another_process_writes)
{
    char *dir = tu_mkdtemp("stlock");
    struct store *st = open_st(dir, 0);
    store_close(st);
    int up[2], down[2];
    ck_assert_int_eq(pipe(up), 0);
    ck_assert_int_eq(pipe(down), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct store *cst;
        struct store_txn *tx;
        char ch = 'x';
        if (store_open(dir, NULL, &cst) || store_txn_begin(cst, 0, 0, &tx))
            _exit(1);
        if (write(up[1], &ch, 1) != 1 || read(down[0], &ch, 1) != 1)
            _exit(2);
        store_txn_abort(tx);
        store_close(cst);
        _exit(0);
    }
    char ch;
    ck_assert_int_eq(read(up[0], &ch, 1), 1);
    struct store_opts o;
    store_opts_init(&o);
    o.lock_timeout_ms = 150;
    ck_assert_int_eq(store_open(dir, &o, &st), 0);
    struct store_txn *tx = NULL;
    uint64_t t0 = ba_now_ns();
    ck_assert_int_eq(store_txn_begin(st, 0, 0, &tx), BA_EBUSY);
    uint64_t waited_ms = (ba_now_ns() - t0) / 1000000u;
    ck_assert_msg(waited_ms >= 150, "gave up after %llu ms", (unsigned long long)waited_ms);
    ck_assert_ptr_null(tx);
    ck_assert_ptr_nonnull(strstr(ba_error_msg(), "locked"));
    ck_assert_int_eq(write(down[1], "g", 1), 1);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    ck_assert_int_eq(store_txn_begin(st, 0, 0, &tx), 0);
    store_txn_abort(tx);
    store_close(st);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
    tu_rmtree(dir);
}
END_TEST

static Suite *store_txn_suite(void)
{
    Suite *s = suite_create("store_txn");
    TCase *tc = tcase_create("conflicts");
    tcase_add_test(tc, test_store_conflict_same_block_rewritten);
    tcase_add_test(tc, test_store_conflict_same_block_created_from_hole);
    tcase_add_test(tc, test_store_conflict_same_block_zeroed_away);
    tcase_add_test(tc, test_store_disjoint_blocks_both_commit);
    tcase_add_test(tc, test_store_conflict_shape_changed_by_other);
    tcase_add_test(tc, test_store_conflict_cut_vs_write);
    tcase_add_test(tc, test_store_conflict_drop_vs_write);
    tcase_add_test(tc, test_store_conflict_create_same_name);
    tcase_add_test(tc, test_store_commit_without_changes_keeps_seq);
    suite_add_tcase(s, tc);
    tc = tcase_create("changes");
    tcase_add_test(tc, test_store_change_records_list_ranges);
    tcase_add_test(tc, test_store_change_records_pruned_is_erange);
    suite_add_tcase(s, tc);
    tc = tcase_create("processes");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_store_processes_commit_counters_without_lost_update);
    tcase_add_test(tc, test_store_map_grown_by_other_process_is_adopted);
    tcase_add_test(tc, test_store_killed_writer_leaves_one_whole_commit);
    tcase_add_test(tc, test_store_txn_begin_times_out_while_another_process_writes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(store_txn_suite());
}
