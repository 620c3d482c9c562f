/* SPDX-License-Identifier: MIT */
/*
 * The store suites' fixture (check_store.c, check_store_map.c): open a store with
 * flags, the newest snapshot's sequence, make an array, write a block in its own
 * commit, read one back, fill a block with counters. Included once per suite.
 */
#ifndef BA_TEST_STORE_FIXTURE_H
#define BA_TEST_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ba_common.h"
#include "store.h"
#include "testutil.h"

static inline struct store *open_st(const char *dir, unsigned flags, uint64_t map)
{
    struct store_opts o;
    store_opts_init(&o);
    o.flags = flags | STORE_CREATE;
    o.map_size = map;
    struct store *st = NULL;
    int rc = store_open(dir, &o, &st);
    ck_assert_msg(rc == 0, "store_open %s: %s (%s)", dir, ba_strerror(rc), ba_errmsg());
    return st;
}

static inline uint64_t last_seq(struct store *st)
{
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    uint64_t s = store_snap_seq(sn);
    store_snap_unref(sn);
    return s;
}

static inline struct store_array mkarr(struct store *st, const char *name, uint8_t codec,
                                       uint8_t level, uint8_t filters, uint32_t itemsize,
                                       uint32_t bs, uint64_t nblocks)
{
    struct store_array a;
    memset(&a, 0, sizeof a);
    snprintf(a.name, sizeof a.name, "%s", name);
    snprintf(a.dtype, sizeof a.dtype, "|V%u", itemsize);
    a.itemsize = itemsize;
    a.ndim = 1;
    a.shape[0] = (int64_t)(nblocks * bs / itemsize);
    a.order = 'C';
    a.block_size = bs;
    a.codec = codec;
    a.level = level;
    a.filters = filters;
    struct store_txn *tx;
    ck_assert_int_eq(store_txn_begin(st, last_seq(st), 0, &tx), 0);
    int rc = store_txn_array_create(tx, &a);
    ck_assert_msg(rc == 0, "create: %s", ba_errmsg());
    uint64_t seq;
    ck_assert_int_eq(store_txn_commit(tx, &seq), 0);
    ck_assert_uint_eq(a.created_seq, seq);
    return a;
}

/* Write one block in its own commit based on the newest snapshot. */
static inline int put_block(struct store *st, const struct store_array *a, uint64_t blkno,
                            const void *raw)
{
    struct store_txn *tx;
    int rc = store_txn_begin(st, last_seq(st), a->block_size, &tx);
    if (rc)
        return rc;
    rc = store_txn_block_write(tx, a, blkno, raw);
    if (rc) {
        store_txn_abort(tx);
        return rc;
    }
    return store_txn_commit(tx, NULL);
}

static inline void read_block(struct store *st, const struct store_array *a, uint64_t blkno,
                              void *buf)
{
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    int rc = store_block_read(sn, a, blkno, buf, 0);
    ck_assert_msg(rc == 0, "read block %llu: %s", (unsigned long long)blkno, ba_errmsg());
    store_snap_unref(sn);
}

static inline void fill_counters(void *buf, size_t n, uint64_t start)
{
    uint64_t *p = buf;
    for (size_t i = 0; i < n / 8; i++)
        p[i] = start + i;
}

#endif
