/* SPDX-License-Identifier: MIT */
/*
 * Change records: one per commit, keyed by its seq, saying which arrays were
 * created, reshaped, cut or dropped and which block ranges were written. Encoded
 * compactly (LEB128 varints, consecutive blocks coalesced into ranges), checksummed,
 * written in the commit's own LMDB transaction, and pruned to the newest
 * change_keep commits. store_changes() answers "what changed between snapshot A and
 * B" from them, or BA_ERANGE when some of those records were pruned.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define CHG_HDR 8u /* u8 version, 3 reserved, u32 entry count */

/* ---- encoding ------------------------------------------------------------------------- */

static void put_byte(struct store_chg_buf *b, unsigned char c)
{
    if (b->failed)
        return;
    if (b->len == b->cap) {
        size_t ncap = b->cap ? 2 * b->cap : 256;
        unsigned char *p = ba_realloc(b->p, ncap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = ncap;
    }
    b->p[b->len++] = c;
}

static void put_varint(struct store_chg_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        put_byte(b, (unsigned char)(v | 0x80));
        v >>= 7;
    }
    put_byte(b, (unsigned char)v);
}

void store_chg_add(struct store_chg_buf *b, uint64_t array_id, unsigned flags, uint64_t first,
                   uint64_t n)
{
    if (b->len == 0)
        for (unsigned i = 0; i < CHG_HDR; i++)
            put_byte(b, 0);
    put_varint(b, array_id);
    put_varint(b, flags);
    if (flags & (STORE_CHANGE_BLOCKS | STORE_CHANGE_CUT))
        put_varint(b, first);
    if (flags & STORE_CHANGE_BLOCKS)
        put_varint(b, n);
    b->count++;
}

int store_chg_finish(struct store_chg_buf *b)
{
    if (b->len == 0)
        for (unsigned i = 0; i < CHG_HDR; i++)
            put_byte(b, 0);
    for (unsigned i = 0; i < 8; i++)
        put_byte(b, 0);
    if (b->failed)
        return -ENOMEM;
    b->p[0] = STORE_CHG_VERSION;
    store_le32_put(b->p + 4, (uint32_t)b->count);
    store_le64_put(b->p + b->len - 8, store_hash(b->p, b->len - 8));
    return 0;
}

void store_chg_free(struct store_chg_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- decoding ------------------------------------------------------------------------- */

static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return -1;
        unsigned char c = *(*p)++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

int store_chg_decode(const void *val, size_t len, uint64_t seq,
                     int (*cb)(const struct store_change *c, void *ctx), void *ctx,
                     const char **why)
{
    const unsigned char *d = val;
    if (len < CHG_HDR + 8) {
        *why = "change record too short";
        return BA_ECORRUPT;
    }
    if (store_le64_get(d + len - 8) != store_hash(d, len - 8)) {
        *why = "change record checksum mismatch";
        return BA_ECORRUPT;
    }
    if (d[0] != STORE_CHG_VERSION) {
        *why = "unknown change record version";
        return BA_ECORRUPT;
    }
    uint32_t count = store_le32_get(d + 4);
    const unsigned char *p = d + CHG_HDR, *end = d + len - 8;
    const unsigned known = STORE_CHANGE_BLOCKS | STORE_CHANGE_META | STORE_CHANGE_CREATE |
                           STORE_CHANGE_DROP | STORE_CHANGE_CUT;
    for (uint32_t i = 0; i < count; i++) {
        struct store_change c = {.seq = seq};
        uint64_t flags;
        if (get_varint(&p, end, &c.array_id) || get_varint(&p, end, &flags) ||
            (flags & ~(uint64_t)known)) {
            *why = "malformed change entry";
            return BA_ECORRUPT;
        }
        c.flags = (unsigned)flags;
        if ((flags & (STORE_CHANGE_BLOCKS | STORE_CHANGE_CUT)) && get_varint(&p, end, &c.first)) {
            *why = "malformed change entry";
            return BA_ECORRUPT;
        }
        if ((flags & STORE_CHANGE_BLOCKS) && get_varint(&p, end, &c.n)) {
            *why = "malformed change entry";
            return BA_ECORRUPT;
        }
        if (cb) {
            int rc = cb(&c, ctx);
            if (rc)
                return rc;
        }
    }
    if (p != end) {
        *why = "trailing bytes in change record";
        return BA_ECORRUPT;
    }
    return 0;
}

/* ---- reading changes through a snapshot ------------------------------------------------- */

struct chg_vec {
    struct store_change *v;
    size_t n, cap;
};

static int chg_collect(const struct store_change *c, void *ctx)
{
    struct chg_vec *cv = ctx;
    if (cv->n == cv->cap) {
        size_t ncap = cv->cap ? 2 * cv->cap : 64;
        struct store_change *p = ba_realloc(cv->v, ncap * sizeof *p);
        if (!p)
            return -ENOMEM;
        cv->v = p;
        cv->cap = ncap;
    }
    cv->v[cv->n++] = *c;
    return 0;
}

/* Decode the first record with key >= from (and <= upto) into cv; *seq_out = its seq,
 * or 0 when there is none. Locks are held only inside. */
static int chg_step(struct store_snap *sn, uint64_t from, uint64_t upto, struct chg_vec *cv,
                    uint64_t *seq_out)
{
    struct store *st = sn->st;
    MDB_cursor *cur = NULL;
    unsigned char k[8];
    store_be64_put(k, from);
    MDB_val key = {8, k}, val;
    *seq_out = 0;
    store_map_rdlock(st);
    pthread_mutex_lock(&sn->lock);
    int rc = mdb_cursor_open(sn->txn, st->dbi_changes, &cur);
    if (!rc)
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND) {
        rc = 0;
        goto out;
    }
    if (rc) {
        rc = store_err_mdb(st, rc, "reading change records");
        goto out;
    }
    if (key.mv_size != 8) {
        rc = ba_error_set(BA_ECORRUPT, "%s: a change record has a bad key", st->path);
        goto out;
    }
    uint64_t seq = store_be64_get(key.mv_data);
    if (seq > upto)
        goto out;
    const char *why = NULL;
    rc = store_chg_decode(val.mv_data, val.mv_size, seq, chg_collect, cv, &why);
    if (rc == BA_ECORRUPT)
        rc = ba_error_set(rc, "%s: change record of commit %llu: %s", st->path,
                          (unsigned long long)seq, why);
    else if (rc == -ENOMEM)
        rc = ba_error_set(rc, "no memory for change records");
    if (!rc)
        *seq_out = seq;
out:
    mdb_cursor_close(cur);
    pthread_mutex_unlock(&sn->lock);
    store_map_unlock(st);
    return rc;
}

int store_changes(struct store_snap *sn, uint64_t since,
                  int (*cb)(const struct store_change *c, void *ctx), void *ctx)
{
    if (since >= sn->seq)
        return 0;
    struct chg_vec cv = {0};
    uint64_t expect = since + 1, seq;
    int rc = 0;
    while (expect <= sn->seq) {
        cv.n = 0;
        rc = chg_step(sn, expect, sn->seq, &cv, &seq);
        if (rc)
            break;
        if (seq != expect) {
            /* Every commit writes a record, so a gap means pruning (or a damaged DBI). */
            rc = ba_error_set(BA_ERANGE,
                              "%s: change records of commits %llu..%llu were pruned (kept: "
                              "the newest %llu)",
                              sn->st->path, (unsigned long long)expect,
                              (unsigned long long)(seq ? seq - 1 : sn->seq),
                              (unsigned long long)sn->st->change_keep);
            break;
        }
        for (size_t i = 0; i < cv.n && !rc; i++)
            rc = cb(&cv.v[i], ctx);
        if (rc)
            break;
        expect = seq + 1;
    }
    free(cv.v);
    return rc;
}

/* ---- building the record of a commit -------------------------------------------------------- */

static int blk_cmp(const void *x, const void *y)
{
    const struct store_txn_blk *a = x, *b = y;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    if (a->blkno != b->blkno)
        return a->blkno < b->blkno ? -1 : 1;
    return 0;
}

int store_chg_build(struct store_txn *tx, struct store_chg_buf *b)
{
    memset(b, 0, sizeof *b);
    if (tx->nblks)
        qsort(tx->blks, tx->nblks, sizeof *tx->blks, blk_cmp);
    /* Per array: CREATE, META, CUT, then block ranges, then DROP. */
    for (size_t i = 0; i < tx->narrs; i++) {
        const struct store_txn_arr *ta = &tx->arrs[i];
        if (ta->chflags & STORE_CHANGE_CREATE)
            store_chg_add(b, ta->a.id, STORE_CHANGE_CREATE, 0, 0);
        if (ta->chflags & STORE_CHANGE_META)
            store_chg_add(b, ta->a.id, STORE_CHANGE_META, 0, 0);
        if (ta->chflags & STORE_CHANGE_CUT)
            store_chg_add(b, ta->a.id, STORE_CHANGE_CUT, ta->cut_first, 0);
        if (ta->chflags & STORE_CHANGE_DROP)
            continue; /* its blocks are gone: the DROP entry below says all */
        /* binary search the first block of this array */
        size_t lo = 0, hi = tx->nblks;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (tx->blks[mid].id < ta->a.id)
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t j = lo;
        while (j < tx->nblks && tx->blks[j].id == ta->a.id) {
            uint64_t first = tx->blks[j].blkno, last = first;
            j++;
            while (j < tx->nblks && tx->blks[j].id == ta->a.id && tx->blks[j].blkno <= last + 1) {
                last = tx->blks[j].blkno;
                j++;
            }
            store_chg_add(b, ta->a.id, STORE_CHANGE_BLOCKS, first, last - first + 1);
        }
    }
    for (size_t i = 0; i < tx->narrs; i++)
        if (tx->arrs[i].chflags & STORE_CHANGE_DROP)
            store_chg_add(b, tx->arrs[i].a.id, STORE_CHANGE_DROP, 0, 0);
    return store_chg_finish(b);
}

/* Delete change records of commits <= seq - change_keep. */
int store_chg_prune(struct store_txn *tx)
{
    struct store *st = tx->st;
    if (tx->seq <= st->change_keep)
        return 0;
    uint64_t limit = tx->seq - st->change_keep; /* delete keys <= limit */
    MDB_cursor *cur;
    int rc = mdb_cursor_open(tx->txn, st->dbi_changes, &cur);
    if (rc)
        return store_txn_fail(tx, store_err_mdb(st, rc, "pruning change records"));
    MDB_val key, val;
    rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (!rc) {
        if (key.mv_size != 8 || store_be64_get(key.mv_data) > limit)
            break;
        rc = store_txn_prep(tx, 0, "pruning change records");
        if (rc) {
            mdb_cursor_close(cur);
            return rc;
        }
        rc = mdb_cursor_del(cur, 0);
        if (rc)
            break;
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return store_txn_fail(tx, store_err_mdb(st, rc, "pruning change records"));
    return 0;
}
