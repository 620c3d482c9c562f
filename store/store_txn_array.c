/* SPDX-License-Identifier: MIT */
/*
 * Catalog changes inside a write transaction: create, set_shape, drop and copy of
 * arrays, with the conflict rule applied to array metadata (meta_seq, data_seq and
 * created_seq as the database had them before this transaction touched them).
 * The catalog record itself is written once, at commit (store_txn.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

static int txn_alive(struct store_txn *tx)
{
    if (tx->dead)
        return ba_error_pass(BA_EFAILED, "an earlier failure killed this transaction");
    return 0;
}

/* The name must be free: BA_EEXIST when it existed at base (or was made here),
 * BA_ECONFLICT when a newer commit created it. */
static int name_free(struct store_txn *tx, const char *name)
{
    size_t len = strnlen(name, BA_NAME_MAX + 1);
    if (len < 1 || len > BA_NAME_MAX)
        return ba_error_set(BA_EINVAL, "array name must have 1 to %d bytes", BA_NAME_MAX);
    uint64_t id;
    int rc = store_name_get(tx->st, tx->txn, name, len, &id);
    if (rc == BA_ENOTFOUND) {
        ba_error_clear();
        return 0;
    }
    if (rc)
        return store_txn_fail(tx, rc);
    struct store_txn_arr *ta = store_txn_arr_get(tx, id, &rc);
    if (!ta)
        return rc == BA_ECONFLICT
                   ? store_txn_fail(tx, ba_error_set(BA_ECORRUPT,
                                                     "%s: names index maps '%s' to missing "
                                                     "array id %llu",
                                                     tx->st->path, name, (unsigned long long)id))
                   : rc;
    if (ta->a.created_seq > tx->base && ta->a.created_seq != tx->seq)
        return ba_error_set(BA_ECONFLICT,
                            "%s: array '%s' was created by commit %llu, newer "
                            "than this transaction's snapshot %llu",
                            tx->st->path, name, (unsigned long long)ta->a.created_seq,
                            (unsigned long long)tx->base);
    return ba_error_set(BA_EEXIST, "an array named '%s' exists", name);
}

static int name_put(struct store_txn *tx, const struct store_array *a)
{
    unsigned char v[8];
    store_le64_put(v, a->id);
    MDB_val key = {strlen(a->name), (void *)(uintptr_t)a->name}, val = {8, v};
    return store_txn_put(tx, tx->st->dbi_names, &key, &val, 0, "writing the names index");
}

int store_txn_array_create(struct store_txn *tx, struct store_array *a)
{
    int rc = txn_alive(tx);
    if (rc)
        return rc;
    rc = store_arr_validate(a);
    if (rc)
        return rc;
    rc = name_free(tx, a->name);
    if (rc)
        return rc;
    struct store_array n = *a;
    size_t nl = strlen(n.name);
    memset(n.name + nl, 0, sizeof n.name - nl); /* no stale bytes past the name */
    n.id = tx->next_id;
    n.created_seq = n.meta_seq = n.data_seq = tx->seq;
    n.stored_bytes = n.stored_blocks = 0;
    struct store_txn_arr *ta = store_txn_arr_add(tx, &n);
    if (!ta)
        return store_txn_fail(tx, ba_error_set(-ENOMEM, "no memory"));
    ta->orig_meta_seq = ta->orig_data_seq = 0;
    ta->chflags = STORE_CHANGE_CREATE;
    ta->dirty = 1;
    rc = name_put(tx, &n);
    if (rc)
        return rc;
    tx->next_id++;
    tx->next_id_dirty = 1;
    tx->changed = 1;
    *a = n;
    return 0;
}

int store_txn_array_set_shape(struct store_txn *tx, uint64_t id, uint32_t ndim,
                              const int64_t *shape)
{
    int rc = txn_alive(tx);
    if (rc)
        return rc;
    struct store_txn_arr *ta = store_txn_arr_get(tx, id, &rc);
    if (!ta)
        return rc;
    if (ta->orig_meta_seq > tx->base)
        return ba_error_set(BA_ECONFLICT,
                            "%s: the shape of array '%s' was changed by commit "
                            "%llu, newer than this transaction's snapshot %llu",
                            tx->st->path, ta->a.name, (unsigned long long)ta->orig_meta_seq,
                            (unsigned long long)tx->base);
    rc = store_shape_validate(ndim, shape, ta->a.itemsize, NULL);
    if (rc)
        return rc;
    ta->a.ndim = ndim;
    memset(ta->a.shape, 0, sizeof ta->a.shape);
    memcpy(ta->a.shape, shape, ndim * sizeof *shape);
    ta->a.meta_seq = tx->seq;
    ta->chflags |= STORE_CHANGE_META;
    ta->dirty = 1;
    tx->changed = 1;
    return 0;
}

/* Delete every block record of array id (tombstones too). */
static int blocks_delete(struct store_txn *tx, uint64_t id)
{
    struct store *st = tx->st;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(tx->txn, st->dbi_blocks, &cur);
    if (rc)
        return store_txn_fail(tx, store_err_mdb(st, rc, "dropping blocks"));
    unsigned char k[STORE_KEY_LEN];
    store_key_make(k, id, 0);
    MDB_val key = {STORE_KEY_LEN, k}, val;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (!rc) {
        if (key.mv_size != STORE_KEY_LEN || store_be64_get(key.mv_data) != id)
            break;
        tx->freed += val.mv_size;
        int e = store_txn_prep(tx, 0, "dropping blocks");
        if (e) {
            mdb_cursor_close(cur);
            return e;
        }
        rc = mdb_cursor_del(cur, 0);
        if (!rc)
            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return store_txn_fail(tx, store_err_mdb(st, rc, "dropping blocks"));
    return 0;
}

int store_txn_array_drop(struct store_txn *tx, uint64_t id)
{
    int rc = txn_alive(tx);
    if (rc)
        return rc;
    struct store_txn_arr *ta = store_txn_arr_get(tx, id, &rc);
    if (!ta)
        return rc;
    uint64_t newest = ta->orig_meta_seq > ta->orig_data_seq ? ta->orig_meta_seq : ta->orig_data_seq;
    if (newest > tx->base)
        return ba_error_set(BA_ECONFLICT,
                            "%s: array '%s' was changed by commit %llu, newer "
                            "than this transaction's snapshot %llu",
                            tx->st->path, ta->a.name, (unsigned long long)newest,
                            (unsigned long long)tx->base);
    rc = blocks_delete(tx, id);
    if (rc)
        return rc;
    MDB_val nkey = {strlen(ta->a.name), ta->a.name};
    rc = store_txn_del(tx, tx->st->dbi_names, &nkey, "dropping a names index entry");
    if (rc)
        return rc;
    unsigned char k[8];
    store_be64_put(k, id);
    MDB_val akey = {8, k};
    rc = store_txn_del(tx, tx->st->dbi_arrays, &akey, "dropping a catalog record");
    if (rc)
        return rc;
    ta->dropped = 1;
    ta->dirty = 0;
    ta->chflags |= STORE_CHANGE_DROP;
    tx->changed = 1;
    return 0;
}

int store_txn_array_copy(struct store_txn *tx, uint64_t src_id, const char *dst_name,
                         struct store_array *out)
{
    struct store *st = tx->st;
    int rc = txn_alive(tx);
    if (rc)
        return rc;
    if (!dst_name)
        return ba_error_set(BA_EINVAL, "NULL array name");
    struct store_txn_arr *src = store_txn_arr_get(tx, src_id, &rc);
    if (!src)
        return rc;
    rc = name_free(tx, dst_name);
    if (rc)
        return rc;
    struct store_array n = src->a; /* src may move when the array list grows */
    memset(n.name, 0, sizeof n.name);
    memcpy(n.name, dst_name, strlen(dst_name));
    n.id = tx->next_id;
    n.created_seq = n.meta_seq = n.data_seq = tx->seq;
    struct store_txn_arr *ta = store_txn_arr_add(tx, &n);
    if (!ta)
        return store_txn_fail(tx, ba_error_set(-ENOMEM, "no memory"));
    ta->orig_meta_seq = ta->orig_data_seq = 0;
    ta->chflags = STORE_CHANGE_CREATE;
    ta->dirty = 1;
    tx->next_id++;
    tx->next_id_dirty = 1;
    tx->changed = 1;
    rc = name_put(tx, &n);
    if (rc)
        return rc;

    /* Copy the data records verbatim (no recompression), re-stamped with this seq. Each
     * value is copied out first: a put may split pages or spill dirty ones, which would
     * move a value a pointer still refers to. */
    MDB_cursor *cur;
    rc = mdb_cursor_open(tx->txn, st->dbi_blocks, &cur);
    if (rc)
        return store_txn_fail(tx, store_err_mdb(st, rc, "copying blocks"));
    unsigned char *tmp = NULL;
    size_t tmp_cap = 0;
    uint64_t next = 0;
    for (;;) {
        unsigned char k[STORE_KEY_LEN];
        store_key_make(k, src_id, next);
        MDB_val key = {STORE_KEY_LEN, k}, val;
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc) {
            rc = store_txn_fail(tx, store_err_mdb(st, rc, "copying blocks"));
            break;
        }
        if (key.mv_size != STORE_KEY_LEN || store_be64_get(key.mv_data) != src_id)
            break;
        uint64_t blkno = store_be64_get((const unsigned char *)key.mv_data + 8);
        next = blkno + 1;
        struct store_blk_hdr h;
        const char *why;
        if (store_blk_hdr_parse(val.mv_data, val.mv_size, &h, &why)) {
            rc = store_txn_fail(tx, ba_error_set(BA_ECORRUPT, "%s: array id %llu block %llu: %s",
                                                 st->path, (unsigned long long)src_id,
                                                 (unsigned long long)blkno, why));
            break;
        }
        if (h.flags & STORE_BLK_TOMBSTONE)
            continue;
        if (val.mv_size > tmp_cap) {
            unsigned char *p = ba_realloc(tmp, val.mv_size);
            if (!p) {
                rc = store_txn_fail(tx, ba_error_set(-ENOMEM, "no memory to copy a block"));
                break;
            }
            tmp = p;
            tmp_cap = val.mv_size;
        }
        size_t vlen = val.mv_size;
        memcpy(tmp, val.mv_data, vlen);
        store_blk_hdr_set_seq(tmp, tx->seq);
        unsigned char dk[STORE_KEY_LEN];
        store_key_make(dk, n.id, blkno);
        MDB_val dkey = {STORE_KEY_LEN, dk}, dval = {vlen, NULL};
        rc = store_txn_put(tx, st->dbi_blocks, &dkey, &dval, MDB_RESERVE, "copying blocks");
        if (rc)
            break;
        memcpy(dval.mv_data, tmp, vlen);
    }
    mdb_cursor_close(cur);
    free(tmp);
    if (rc)
        return rc;
    if (out)
        *out = n;
    return 0;
}
