/* SPDX-License-Identifier: MIT */
/*
 * Write transactions: begin (map growth first), block writes with their conflict
 * checks (first committer wins, decided from the seq in each record), tombstones,
 * cuts, parallel batch writes, and commit: catalog statistics, the change record
 * and the pruning of old ones go into the same LMDB transaction, which is then
 * committed durably. A failure anywhere kills the transaction; LMDB then discards
 * everything, so a failed commit writes nothing and the caller may retry.
 *
 * A transaction belongs to one thread: LMDB's write lock is a mutex, and so is the
 * store's write_lock, both held from begin to commit/abort.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "store_internal.h"

/* ---- small helpers shared with store_txn_array.c ----------------------------------------- */

int store_txn_fail(struct store_txn *tx, int rc)
{
    if (rc)
        tx->dead = 1;
    return rc;
}

/* STORE_WRITEMAP reservation (see store_reserve). LMDB takes new pages upward from the
 * base commit's last page, and writes them through its map; the allocated part of the
 * file is kept ahead of them: ahead of the frontier (a file offset known to be at or
 * past LMDB's next new page) by the worst case of the writes since the frontier was
 * last seen, plus RSV_FIXED. Each block record's overflow run shows where LMDB is (its
 * page header), so the reservation follows the pages really used, however much the
 * records were compressed, and what is reserved but unused stays small.
 *
 * Invariant: st->rsv_done >= LMDB's next new page + RSV_FIXED. store_reserve() writes
 * zeros only from rsv_done on, so it never touches a page of the transaction; an operation
 * would have to take RSV_FIXED (64 pages) more than its worst case to reach them.
 *
 * RSV_OP_PAGES: worst case of the pages one LMDB write adds besides its value's run:
 * copies of the leaf and branch pages on its path and a split at each level (depth
 * stays below 6 for any map), a new root, the overflow run's rounding. */
#define RSV_OP_PAGES 16u
/* Allocated beyond the need, so that small writes allocate in steps. */
#define RSV_STEP (64u << 10)
/* Always ahead: the catalog, meta and change records and their pruning at commit. */
#define RSV_FIXED (128u << 10)

int store_reserve(struct store *st, uint64_t from, uint64_t to)
{
    if (to <= from)
        return 0;
    int fd;
    if (mdb_env_get_fd(st->env, &fd))
        return ba_error_set(-EBADF, "%s: no data file descriptor", st->path);
    int rc = ba_inject(BA_INJ_STORE_RESERVE); /* stands for fallocate's outcome */
    if (!rc && !__atomic_load_n(&st->no_fallocate, __ATOMIC_RELAXED) &&
        fallocate(fd, 0, (off_t)from, (off_t)(to - from)) != 0)
        rc = -errno;
    if (rc == -EOPNOTSUPP || rc == -ENOSYS) {
        __atomic_store_n(&st->no_fallocate, 1, __ATOMIC_RELAXED);
        rc = 0;
    }
    if (!rc && __atomic_load_n(&st->no_fallocate, __ATOMIC_RELAXED))
        rc = store_write_zeros(fd, from, to);
    if (rc == -EDQUOT || rc == -EFBIG)
        rc = -ENOSPC;
    if (rc)
        return ba_error_set(rc, "%s: allocating disk for the transaction: %s", st->path,
                            rc == -ENOSPC ? "the filesystem is full" : ba_strerror(rc));
    return 0;
}

/* Keep the reservation ahead of a write of vbytes (STORE_WRITEMAP). */
static int txn_room(struct store_txn *tx, uint64_t vbytes)
{
    struct store *st = tx->st;
    if (!(st->flags & STORE_WRITEMAP))
        return 0;
    uint64_t ps = st->psize;
    tx->rsv_slack += ((vbytes + ps - 1) / ps + RSV_OP_PAGES) * ps;
    uint64_t need = tx->rsv_front + tx->rsv_slack + RSV_FIXED;
    if (need <= st->rsv_done)
        return 0;
    uint64_t to = (need + RSV_STEP + ps - 1) / ps * ps;
    int rc = store_reserve(st, st->rsv_done, to);
    if (rc)
        return store_txn_fail(tx, rc);
    st->rsv_done = to;
    return 0;
}

/* LMDB put a record in the overflow run [pgno, pgno + pages): move the frontier. */
static void txn_front(struct store_txn *tx, uint64_t pgno, uint32_t pages)
{
    uint64_t end = (pgno + pages) * tx->st->psize;
    if (end >= tx->rsv_front) {
        tx->rsv_front = end;
        tx->rsv_slack = (uint64_t)RSV_OP_PAGES * tx->st->psize;
    }
}

int store_txn_prep(struct store_txn *tx, uint64_t vbytes, const char *what)
{
    /* LMDB looks for the oldest live reader again whenever it allocates pages, so the
     * write that follows may reuse pages of snapshots that ended after this
     * transaction began: observe their end before each write, not only at begin. */
    store_mvcc_observe(tx->st);
    int rc = ba_inject(BA_INJ_STORE_PUT);
    if (rc == BA_INJ_MAP_FULL)
        return store_txn_fail(tx, store_err_mdb(tx->st, MDB_MAP_FULL, what));
    if (rc)
        return store_txn_fail(tx,
                              ba_error_set(rc, "%s: %s: %s", tx->st->path, what, ba_strerror(rc)));
    return txn_room(tx, vbytes);
}

int store_txn_put(struct store_txn *tx, MDB_dbi dbi, MDB_val *key, MDB_val *val, unsigned flags,
                  const char *what)
{
    int rc = store_txn_prep(tx, val->mv_size, what);
    if (rc)
        return rc;
    rc = mdb_put(tx->txn, dbi, key, val, flags);
    if (rc)
        return store_txn_fail(tx, store_err_mdb(tx->st, rc, what));
    return 0;
}

int store_txn_del(struct store_txn *tx, MDB_dbi dbi, MDB_val *key, const char *what)
{
    int rc = store_txn_prep(tx, 0, what);
    if (rc)
        return rc;
    rc = mdb_del(tx->txn, dbi, key, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return store_txn_fail(tx, store_err_mdb(tx->st, rc, what));
    return 0;
}

int store_txn_note_block(struct store_txn *tx, uint64_t id, uint64_t blkno)
{
    if (tx->nblks == tx->blks_cap) {
        size_t ncap = tx->blks_cap ? 2 * tx->blks_cap : 256;
        struct store_txn_blk *p = ba_realloc(tx->blks, ncap * sizeof *p);
        if (!p)
            return store_txn_fail(tx, ba_error_set(-ENOMEM, "no memory for the change list"));
        tx->blks = p;
        tx->blks_cap = ncap;
    }
    tx->blks[tx->nblks].id = id;
    tx->blks[tx->nblks].blkno = blkno;
    tx->nblks++;
    return 0;
}

struct store_txn_arr *store_txn_arr_add(struct store_txn *tx, const struct store_array *a)
{
    if (tx->narrs == tx->arrs_cap) {
        size_t ncap = tx->arrs_cap ? 2 * tx->arrs_cap : 8;
        struct store_txn_arr *p = ba_realloc(tx->arrs, ncap * sizeof *p);
        if (!p)
            return NULL;
        tx->arrs = p;
        tx->arrs_cap = ncap;
    }
    struct store_txn_arr *ta = &tx->arrs[tx->narrs++];
    memset(ta, 0, sizeof *ta);
    ta->a = *a;
    ta->orig_meta_seq = a->meta_seq;
    ta->orig_data_seq = a->data_seq;
    return ta;
}

struct store_txn_arr *store_txn_arr_get(struct store_txn *tx, uint64_t id, int *rc)
{
    for (size_t i = 0; i < tx->narrs; i++) {
        struct store_txn_arr *ta = &tx->arrs[i];
        if (ta->a.id != id)
            continue;
        if (ta->dropped) {
            *rc = ba_error_set(BA_ENOTFOUND, "array id %llu was dropped in this transaction",
                               (unsigned long long)id);
            return NULL;
        }
        return ta;
    }
    struct store_array a;
    *rc = store_arr_get(tx->st, tx->txn, id, &a);
    if (*rc == BA_ENOTFOUND && id && id < tx->next_id) {
        *rc = ba_error_set(BA_ECONFLICT, "%s: array id %llu was dropped by another commit",
                           tx->st->path, (unsigned long long)id);
        return NULL;
    }
    if (*rc) {
        store_txn_fail(tx, *rc == BA_ECORRUPT ? *rc : 0);
        return NULL;
    }
    struct store_txn_arr *ta = store_txn_arr_add(tx, &a);
    if (!ta) {
        *rc = ba_error_set(-ENOMEM, "no memory");
        return NULL;
    }
    return ta;
}

/* ---- begin / commit / abort ------------------------------------------------------------------ */

/* Nonzero when the filesystem holding path has (next to) no room left for this process:
 * less than 16 MiB, the most a short write at the end of a commit can leave (ext4 keeps
 * a little back for delayed allocation). */
static int fs_full(const char *path)
{
    struct statvfs sv;
    if (statvfs(path, &sv))
        return 0;
    uint64_t avail = geteuid() == 0 ? sv.f_bfree : sv.f_bavail;
    return avail * sv.f_frsize < (16u << 20);
}

int store_txn_begin(struct store *st, uint64_t base, uint64_t bytes_hint, struct store_txn **out)
{
    *out = NULL;
    if (st->flags & STORE_RDONLY)
        return ba_error_set(BA_EREADONLY, "%s: the database is open read-only", st->path);
    struct store_txn *tx = ba_calloc(1, sizeof *tx);
    if (!tx)
        return ba_error_set(-ENOMEM, "no memory for a transaction");
    tx->fd = -1;
    int rc = pthread_mutex_lock(&st->write_lock);
    if (rc) {
        free(tx);
        return ba_error_set(BA_EBUSY, "%s: this thread already has a write transaction open",
                            st->path);
    }
    tx->st = st;
    rc = store_writer_lock(st);
    if (rc) {
        pthread_mutex_unlock(&st->write_lock);
        free(tx);
        return rc;
    }
    rc = store_map_prepare(st, bytes_hint);
    if (rc)
        goto fail;
    for (int tries = 0;; tries++) {
        rc = mdb_txn_begin(st->env, NULL, 0, &tx->txn);
        if (rc != MDB_MAP_RESIZED || tries > 4)
            break;
        rc = store_map_adopt(st);
        if (rc)
            goto fail;
    }
    if (rc) {
        tx->txn = NULL;
        rc = store_err_mdb(st, rc, "beginning a write transaction");
        goto fail;
    }
    store_mvcc_observe(st);
    rc = store_meta_u64(st, tx->txn, "seq", &tx->last_seq);
    if (!rc)
        rc = store_meta_u64(st, tx->txn, "next_id", &tx->next_id);
    if (rc)
        goto fail;
    if (base > tx->last_seq) {
        rc = ba_error_set(BA_EINVAL, "%s: base seq %llu is newer than the last commit %llu",
                          st->path, (unsigned long long)base, (unsigned long long)tx->last_seq);
        goto fail;
    }
    tx->base = base;
    tx->seq = tx->last_seq + 1;
    if (st->flags & STORE_WRITEMAP) {
        /* Reserve ahead now, so that a disk already full fails the begin. */
        MDB_envinfo ei;
        store_map_rdlock(st);
        mdb_env_info(st->env, &ei);
        store_map_unlock(st);
        tx->rsv_front = ((uint64_t)ei.me_last_pgno + 1) * st->psize;
        if (mdb_env_get_fd(st->env, &tx->fd))
            tx->fd = -1;
        /* What earlier transactions reserved is still allocated, unless the file was
         * cut short meanwhile (LMDB sizes it as the map of whoever opens it). */
        struct stat sb;
        if (tx->fd < 0 || fstat(tx->fd, &sb) || (uint64_t)sb.st_size < st->rsv_done)
            st->rsv_done = 0;
        if (st->rsv_done < tx->rsv_front) /* committed pages are allocated */
            st->rsv_done = tx->rsv_front;
        rc = txn_room(tx, 0);
        if (rc)
            goto fail;
    }
    *out = tx;
    return 0;
fail:
    if (tx->txn)
        mdb_txn_abort(tx->txn);
    store_writer_unlock(st);
    pthread_mutex_unlock(&st->write_lock);
    free(tx);
    return rc;
}

uint64_t store_txn_seq(const struct store_txn *tx)
{
    return tx->seq;
}

static void txn_free(struct store_txn *tx)
{
    store_writer_unlock(tx->st);
    pthread_mutex_unlock(&tx->st->write_lock);
    free(tx->arrs);
    free(tx->blks);
    free(tx);
}

void store_txn_abort(struct store_txn *tx)
{
    if (!tx)
        return;
    if (tx->txn)
        mdb_txn_abort(tx->txn);
    txn_free(tx);
}

static int put_u64_meta(struct store_txn *tx, const char *k, uint64_t v)
{
    unsigned char b[8];
    store_le64_put(b, v);
    MDB_val key = {strlen(k), (void *)(uintptr_t)k}, val = {8, b};
    return store_txn_put(tx, tx->st->dbi_meta, &key, &val, 0, "writing a meta record");
}

/* Everything a commit writes besides the blocks: catalog records, meta, change record. */
static int commit_records(struct store_txn *tx)
{
    struct store *st = tx->st;
    int rc = 0;
    for (size_t i = 0; i < tx->narrs && !rc; i++) {
        struct store_txn_arr *ta = &tx->arrs[i];
        if (!ta->dirty || ta->dropped)
            continue;
        size_t len = store_arr_encoded_len(&ta->a);
        unsigned char k[8];
        store_be64_put(k, ta->a.id);
        MDB_val key = {8, k}, val = {len, NULL};
        rc = store_txn_put(tx, st->dbi_arrays, &key, &val, MDB_RESERVE, "writing a catalog record");
        if (!rc)
            store_arr_encode(&ta->a, val.mv_data, len);
    }
    if (!rc)
        rc = put_u64_meta(tx, "seq", tx->seq);
    if (!rc && tx->next_id_dirty)
        rc = put_u64_meta(tx, "next_id", tx->next_id);
    if (rc)
        return rc;
    struct store_chg_buf cb;
    rc = store_chg_build(tx, &cb);
    if (rc) {
        store_chg_free(&cb);
        return store_txn_fail(tx, ba_error_set(rc, "no memory for the change record"));
    }
    unsigned char k[8];
    store_be64_put(k, tx->seq);
    MDB_val key = {8, k}, val = {cb.len, cb.p};
    rc = store_txn_put(tx, st->dbi_changes, &key, &val, 0, "writing the change record");
    store_chg_free(&cb);
    if (rc)
        return rc;
    return store_chg_prune(tx);
}

int store_txn_commit(struct store_txn *tx, uint64_t *seq_out)
{
    struct store *st = tx->st;
    int rc;
    if (tx->dead) {
        rc = ba_error_pass(BA_EFAILED, "%s: an earlier failure killed this transaction", st->path);
        store_txn_abort(tx);
        return BA_EFAILED;
    }
    if (!tx->changed) {
        if (seq_out)
            *seq_out = tx->last_seq;
        store_txn_abort(tx);
        return 0;
    }
    rc = commit_records(tx);
    if (!rc) /* the free list LMDB saves: 8 bytes per page this transaction freed */
        rc = txn_room(tx, tx->freed / st->psize * 8);
    if (rc) {
        store_txn_abort(tx);
        return rc;
    }
    rc = ba_inject(BA_INJ_STORE_COMMIT);
    if (rc) {
        if (rc == BA_INJ_MAP_FULL)
            rc = store_err_mdb(st, MDB_MAP_FULL, "committing");
        else
            rc = ba_error_set(rc, "%s: committing: %s", st->path, ba_strerror(rc));
        store_txn_abort(tx);
        return rc;
    }
    store_mvcc_observe(st); /* the commit saves the free list: it allocates pages too */
    store_mvcc_publish(st);
    rc = mdb_txn_commit(tx->txn);
    tx->txn = NULL; /* freed by LMDB whatever the outcome */
    if (rc == EIO && fs_full(st->path)) {
        /* LMDB reports a short write (what pwritev does on a full filesystem) as EIO;
         * the caller must hear ENOSPC to know that freeing space helps. */
        rc = ba_error_set(-ENOSPC, "%s: committing: the filesystem is full", st->path);
        txn_free(tx);
        return rc;
    }
    if (rc) {
        rc = store_err_mdb(st, rc,
                           rc == EIO ? "committing (LMDB reports a short write as EIO: is the "
                                       "filesystem full?)"
                                     : "committing");
        txn_free(tx);
        return rc;
    }
    if (seq_out)
        *seq_out = tx->seq;
    txn_free(tx);
    return 0;
}

/* ---- block writes --------------------------------------------------------------------------- */

/* The array as this txn sees it, checked against the caller's description. */
static struct store_txn_arr *arr_for_write(struct store_txn *tx, const struct store_array *a,
                                           int *rc)
{
    if (tx->dead) {
        *rc = ba_error_pass(BA_EFAILED, "an earlier failure killed this transaction");
        return NULL;
    }
    struct store_txn_arr *ta = store_txn_arr_get(tx, a->id, rc);
    if (!ta)
        return NULL;
    if (ta->a.block_size != a->block_size) {
        *rc = ba_error_set(BA_EINVAL, "array '%s': block size %u differs from the catalog's %u",
                           ta->a.name, a->block_size, ta->a.block_size);
        return NULL;
    }
    return ta;
}

/* Existing record of (id, blkno): checks the conflict rule. *old_len = value length of
 * a data record (0 for none or a tombstone), *exists = a record exists. */
static int blk_check(struct store_txn *tx, struct store_txn_arr *ta, uint64_t blkno,
                     size_t *old_len, int *exists)
{
    struct store *st = tx->st;
    uint64_t nblocks = store_arr_nblocks(&ta->a);
    *old_len = 0;
    *exists = 0;
    if (blkno >= nblocks) {
        if (ta->orig_meta_seq > tx->base)
            return ba_error_set(BA_ECONFLICT,
                                "%s: array '%s' was reshaped by a newer commit (block %llu "
                                "lies outside its shape now)",
                                st->path, ta->a.name, (unsigned long long)blkno);
        return ba_error_set(BA_ERANGE, "array '%s': block %llu outside the shape (%llu blocks)",
                            ta->a.name, (unsigned long long)blkno, (unsigned long long)nblocks);
    }
    unsigned char k[STORE_KEY_LEN];
    store_key_make(k, ta->a.id, blkno);
    MDB_val key = {STORE_KEY_LEN, k}, val;
    int rc = mdb_get(tx->txn, st->dbi_blocks, &key, &val);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return store_txn_fail(tx, store_err_mdb(st, rc, "reading a block record"));
    *exists = 1;
    struct store_blk_hdr h;
    const char *why;
    if (store_blk_hdr_parse(val.mv_data, val.mv_size, &h, &why)) {
        /* A damaged record may be overwritten (that is how it gets repaired); its seq is
         * unknown, so it is treated as old. */
        *old_len = val.mv_size;
        return 0;
    }
    if (h.seq > tx->base && h.seq != tx->seq)
        return ba_error_set(BA_ECONFLICT,
                            "%s: array '%s' block %llu was %s by commit %llu, newer than this "
                            "transaction's snapshot %llu",
                            st->path, ta->a.name, (unsigned long long)blkno,
                            (h.flags & STORE_BLK_TOMBSTONE) ? "zeroed" : "written",
                            (unsigned long long)h.seq, (unsigned long long)tx->base);
    if (!(h.flags & STORE_BLK_TOMBSTONE))
        *old_len = val.mv_size;
    return 0;
}

/* STORE_WRITEMAP: the file offset of a value LMDB has just reserved in overflow pages
 * of its writable map, read from the page header LMDB wrote in front of it (and the
 * run's pages, for the reservation's frontier); -1 for a value inside a leaf page. */
static int64_t reserved_value_off(struct store_txn *tx, const MDB_val *val)
{
    uint64_t pgno;
    uint32_t pages;
    if (store_overflow_run(tx->st, val, &pgno, &pages))
        return -1;
    txn_front(tx, pgno, pages);
    return (int64_t)(pgno * tx->st->psize + STORE_OVERFLOW_HDR);
}

/* Early write-back. A durable commit ends in LMDB's fdatasync, which writes every page
 * the transaction dirtied and waits; until then the disk idles while the transaction
 * encodes and writes its blocks. Once a transaction has written more than EARLY_WB_AFTER
 * bytes of records, each further record is handed to the disk as soon as it is in the
 * page cache (sync_file_range, SYNC_FILE_RANGE_WRITE: start, do not wait), so the disk
 * writes while the next blocks are encoded and the fdatasync finds less left to do.
 * Measured (2026-12-07, bench_ba, 4 GiB store, 2 MiB blocks, interleaved pairs,
 * medians): rewriting 20 blocks + commit 54.1 -> 49.6 ms (the bare LMDB loop: 49.0);
 * writing 4 GiB + commit 247 -> 272 MB/s (docs/format.md). Smaller transactions (an
 * append of 1 MiB + commit) gain nothing, as the fdatasync follows at once. Safe for
 * atomicity: the pages are the transaction's new ones, which no committed meta page
 * names until the commit (LMDB spills dirty pages the same way). No error is lost:
 * the call does not wait, and a failed write-back is reported by the commit's
 * fdatasync. Not done for commits that are not durable (STORE_NOSYNC). */
#define EARLY_WB_AFTER (4u << 20)

static void txn_early_writeback(struct store_txn *tx, uint64_t off, uint64_t len)
{
    tx->written += len;
    if ((tx->st->flags & STORE_NOSYNC) || tx->written <= EARLY_WB_AFTER)
        return;
    sync_file_range(tx->fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
}

/* Put one encoded block (after blk_check). */
static int blk_put(struct store_txn *tx, struct store_txn_arr *ta, uint64_t blkno,
                   struct store_enc *enc, const void *raw)
{
    struct store *st = tx->st;
    size_t old_len;
    int exists;
    int rc = blk_check(tx, ta, blkno, &old_len, &exists);
    if (rc)
        return rc;
    if (enc->zero && !exists)
        return 0; /* a hole stays a hole */
    store_enc_layout(enc, raw, st->psize, st->class_steps);
    unsigned char k[STORE_KEY_LEN];
    store_key_make(k, ta->a.id, blkno);
    MDB_val key = {STORE_KEY_LEN, k}, val = {enc->value_len, NULL};
    rc = store_txn_put(tx, st->dbi_blocks, &key, &val, MDB_RESERVE, "writing a block record");
    if (rc)
        return rc;
    rc = 1;
    int64_t off = tx->fd >= 0 && !enc->zero ? reserved_value_off(tx, &val) : -1;
    if (off >= 0) {
        rc = store_enc_pwrite(tx->fd, (uint64_t)off, enc, tx->seq, st->psize);
        if (rc < 0)
            return store_txn_fail(
                tx, ba_error_set(rc, "%s: writing a block record: %s", st->path, ba_strerror(rc)));
        if (rc == 0)
            txn_early_writeback(tx, (uint64_t)off, enc->value_len);
    }
    if (rc)
        store_enc_fill(val.mv_data, enc, tx->seq);
    tx->freed += old_len;
    if (old_len) {
        ta->a.stored_bytes -= ta->a.stored_bytes >= old_len ? old_len : ta->a.stored_bytes;
        if (ta->a.stored_blocks)
            ta->a.stored_blocks--;
    }
    if (!enc->zero) {
        ta->a.stored_bytes += enc->value_len;
        ta->a.stored_blocks++;
    }
    ta->a.data_seq = tx->seq;
    ta->dirty = 1;
    tx->changed = 1;
    return store_txn_note_block(tx, ta->a.id, blkno);
}

int store_txn_block_write(struct store_txn *tx, const struct store_array *a, uint64_t blkno,
                          const void *raw)
{
    struct store *st = tx->st;
    int rc;
    struct store_txn_arr *ta = arr_for_write(tx, a, &rc);
    if (!ta)
        return store_txn_fail(tx, rc);
    struct store_enc enc;
    rc = store_block_encode(&st->wcctx, &ta->a, raw, &st->wbuf, &st->wcap, &enc, 0);
    if (rc)
        return store_txn_fail(tx, rc);
    return store_txn_fail(tx, blk_put(tx, ta, blkno, &enc, raw));
}

struct batch_ctx {
    struct store_txn *tx;
    struct store_txn_arr *ta;
    const uint64_t *blknos;
    const void *const *raws;
};

static int batch_put(size_t i, const struct store_enc *enc, void *ctx)
{
    struct batch_ctx *bc = ctx;
    struct store_enc e = *enc;
    return blk_put(bc->tx, bc->ta, bc->blknos[i], &e, bc->raws[i]);
}

int store_txn_blocks_write(struct store_txn *tx, const struct store_array *a, size_t n,
                           const uint64_t *blknos, const void *const *raws)
{
    struct store *st = tx->st;
    int rc;
    struct store_txn_arr *ta = arr_for_write(tx, a, &rc);
    if (!ta)
        return store_txn_fail(tx, rc);
    for (size_t i = 1; i < n; i++)
        if (blknos[i] <= blknos[i - 1])
            return store_txn_fail(tx, ba_error_set(BA_EINVAL, "block numbers not ascending"));
    /* Check every block before spending CPU on compression: conflicts fail fast. */
    for (size_t i = 0; i < n; i++) {
        size_t old_len;
        int exists;
        rc = blk_check(tx, ta, blknos[i], &old_len, &exists);
        if (rc)
            return store_txn_fail(tx, rc);
    }
    if (ta->a.codec == STORE_CODEC_NONE || n == 1) {
        for (size_t i = 0; i < n; i++) {
            struct store_enc enc;
            rc = store_block_encode(&st->wcctx, &ta->a, raws[i], &st->wbuf, &st->wcap, &enc, 0);
            if (!rc)
                rc = blk_put(tx, ta, blknos[i], &enc, raws[i]);
            if (rc)
                return store_txn_fail(tx, rc);
        }
        return 0;
    }
    struct batch_ctx bc = {tx, ta, blknos, raws};
    rc = store_workers_run(&st->workers, &ta->a, n, raws, batch_put, &bc);
    return store_txn_fail(tx, rc);
}

int store_txn_blocks_cut(struct store_txn *tx, const struct store_array *a, uint64_t first)
{
    struct store *st = tx->st;
    int rc;
    struct store_txn_arr *ta = arr_for_write(tx, a, &rc);
    if (!ta)
        return store_txn_fail(tx, rc);
    MDB_cursor *cur;
    rc = mdb_cursor_open(tx->txn, st->dbi_blocks, &cur);
    if (rc)
        return store_txn_fail(tx, store_err_mdb(st, rc, "cutting blocks"));
    unsigned char k[STORE_KEY_LEN];
    store_key_make(k, ta->a.id, first);
    MDB_val key = {STORE_KEY_LEN, k}, val;
    int cut = 0;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (!rc) {
        if (key.mv_size != STORE_KEY_LEN || store_be64_get(key.mv_data) != ta->a.id)
            break;
        uint64_t blkno = store_be64_get((const unsigned char *)key.mv_data + 8);
        struct store_blk_hdr h;
        const char *why;
        int damaged = store_blk_hdr_parse(val.mv_data, val.mv_size, &h, &why) != 0;
        if (!damaged && h.seq > tx->base && h.seq != tx->seq) {
            rc = ba_error_set(BA_ECONFLICT,
                              "%s: array '%s' block %llu was changed by commit %llu, newer "
                              "than this transaction's snapshot %llu",
                              st->path, ta->a.name, (unsigned long long)blkno,
                              (unsigned long long)h.seq, (unsigned long long)tx->base);
            break;
        }
        if (damaged || !(h.flags & STORE_BLK_TOMBSTONE)) {
            size_t old_len = val.mv_size;
            rc = store_txn_prep(tx, STORE_BLK_HDR, "cutting blocks");
            if (rc)
                break;
            unsigned char tomb[STORE_BLK_HDR];
            struct store_enc z = {
                .zero = 1, .payload_off = STORE_BLK_HDR, .value_len = STORE_BLK_HDR};
            store_enc_fill(tomb, &z, tx->seq);
            MDB_val tv = {STORE_BLK_HDR, tomb};
            /* A copy of the key: the cursor's points into the leaf page, which LMDB
             * rewrites (deletes the node, then adds it back under this key) when the
             * value changes size; a page already dirty in this transaction is changed
             * in place, so the key it read back would be other bytes. */
            unsigned char kc[STORE_KEY_LEN];
            memcpy(kc, key.mv_data, STORE_KEY_LEN);
            MDB_val kv = {STORE_KEY_LEN, kc};
            tx->freed += old_len;
            rc = mdb_cursor_put(cur, &kv, &tv, MDB_CURRENT);
            if (rc) {
                rc = store_err_mdb(st, rc, "cutting blocks");
                break;
            }
            ta->a.stored_bytes -= ta->a.stored_bytes >= old_len ? old_len : ta->a.stored_bytes;
            if (ta->a.stored_blocks)
                ta->a.stored_blocks--;
            cut = 1;
        }
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    else if (rc > 0 || (rc <= MDB_KEYEXIST && rc >= MDB_LAST_ERRCODE))
        rc = store_err_mdb(st, rc, "cutting blocks");
    if (rc)
        return store_txn_fail(tx, rc);
    if (cut) {
        if (!(ta->chflags & STORE_CHANGE_CUT) || first < ta->cut_first)
            ta->cut_first = first;
        ta->chflags |= STORE_CHANGE_CUT;
        ta->a.data_seq = tx->seq;
        ta->dirty = 1;
        tx->changed = 1;
    }
    return 0;
}
