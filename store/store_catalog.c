/* SPDX-License-Identifier: MIT */
/*
 * The catalog: array records (versioned, little-endian, length-checked, with their
 * own checksum: any damage is BA_ECORRUPT naming the record, never a wild read), the
 * names index, validation of new arrays and shapes, and the lookups a snapshot
 * offers (by name, by id, list in name order).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define STORE_BLOCK_MAX (1u << 30) /* block_size limit: 1 GiB */

/* ---- record layout (docs/format.md, "Catalog records") ------------------------------ */

static size_t name_len_of(const struct store_array *a)
{
    return strnlen(a->name, sizeof a->name);
}

size_t store_arr_encoded_len(const struct store_array *a)
{
    size_t n = STORE_ARR_FIXED + 8 * (size_t)a->ndim + name_len_of(a);
    return ((n + 7) & ~(size_t)7) + 8;
}

void store_arr_encode(const struct store_array *a, unsigned char *d, size_t len)
{
    memset(d, 0, len);
    size_t nl = name_len_of(a);
    store_le32_put(d, STORE_ARR_MAGIC);
    d[4] = (unsigned char)STORE_ARR_VERSION;
    d[5] = 0;
    d[6] = (unsigned char)a->ndim;
    d[7] = (unsigned char)(a->ndim >> 8);
    store_le32_put(d + 8, (uint32_t)len);
    store_le32_put(d + 12, a->itemsize);
    store_le64_put(d + 16, a->id);
    store_le64_put(d + 24, a->created_seq);
    store_le64_put(d + 32, a->meta_seq);
    store_le64_put(d + 40, a->data_seq);
    store_le64_put(d + 48, a->stored_bytes);
    store_le64_put(d + 56, a->stored_blocks);
    store_le32_put(d + 64, a->block_size);
    d[68] = a->codec;
    d[69] = a->level;
    d[70] = a->filters;
    d[71] = (unsigned char)a->order;
    memcpy(d + 72, a->dtype, strnlen(a->dtype, BA_DTYPE_STRLEN));
    d[88] = (unsigned char)nl;
    d[89] = (unsigned char)(nl >> 8);
    for (uint32_t i = 0; i < a->ndim; i++)
        store_le64_put(d + STORE_ARR_FIXED + 8 * i, (uint64_t)a->shape[i]);
    memcpy(d + STORE_ARR_FIXED + 8 * (size_t)a->ndim, a->name, nl);
    store_le64_put(d + len - 8, store_hash(d, len - 8));
}

int store_arr_decode(const void *val, size_t len, struct store_array *a, const char **why)
{
    const unsigned char *d = val;
    memset(a, 0, sizeof *a);
    if (len < STORE_ARR_FIXED + 8 || (len & 7)) {
        *why = "bad record length";
        return BA_ECORRUPT;
    }
    if (store_le32_get(d) != STORE_ARR_MAGIC) {
        *why = "bad magic";
        return BA_ECORRUPT;
    }
    if (store_le32_get(d + 8) != len) {
        *why = "stored length differs from the record's size";
        return BA_ECORRUPT;
    }
    if (store_le64_get(d + len - 8) != store_hash(d, len - 8)) {
        *why = "checksum mismatch";
        return BA_ECORRUPT;
    }
    if (d[4] != STORE_ARR_VERSION || d[5]) {
        *why = "unknown record version";
        return BA_ECORRUPT;
    }
    a->ndim = (uint32_t)d[6] | (uint32_t)d[7] << 8;
    size_t nl = (size_t)d[88] | (size_t)d[89] << 8;
    if (a->ndim > BA_MAX_DIMS) {
        *why = "too many dimensions";
        return BA_ECORRUPT;
    }
    if (nl < 1 || nl > BA_NAME_MAX) {
        *why = "bad name length";
        return BA_ECORRUPT;
    }
    size_t want = STORE_ARR_FIXED + 8 * (size_t)a->ndim + nl;
    if (((want + 7) & ~(size_t)7) + 8 != len) {
        *why = "length does not match ndim and name";
        return BA_ECORRUPT;
    }
    a->itemsize = store_le32_get(d + 12);
    a->id = store_le64_get(d + 16);
    a->created_seq = store_le64_get(d + 24);
    a->meta_seq = store_le64_get(d + 32);
    a->data_seq = store_le64_get(d + 40);
    a->stored_bytes = store_le64_get(d + 48);
    a->stored_blocks = store_le64_get(d + 56);
    a->block_size = store_le32_get(d + 64);
    a->codec = d[68];
    a->level = d[69];
    a->filters = d[70];
    a->order = (char)d[71];
    memcpy(a->dtype, d + 72, BA_DTYPE_STRLEN);
    if (a->dtype[BA_DTYPE_STRLEN - 1]) {
        *why = "dtype not terminated";
        return BA_ECORRUPT;
    }
    for (uint32_t i = 0; i < a->ndim; i++)
        a->shape[i] = (int64_t)store_le64_get(d + STORE_ARR_FIXED + 8 * i);
    memcpy(a->name, d + STORE_ARR_FIXED + 8 * (size_t)a->ndim, nl);
    a->name[nl] = '\0';
    if (strlen(a->name) != nl) {
        *why = "NUL inside the name";
        return BA_ECORRUPT;
    }
    if (store_arr_validate(a)) {
        ba_error_clear();
        *why = "invalid field";
        return BA_ECORRUPT;
    }
    return 0;
}

/* ---- validation -------------------------------------------------------------------------- */

int store_shape_validate(uint32_t ndim, const int64_t *shape, uint32_t itemsize, uint64_t *nbytes)
{
    if (ndim > BA_MAX_DIMS)
        return ba_error_set(BA_ESHAPE, "%u dimensions (at most %d)", ndim, BA_MAX_DIMS);
    if (itemsize == 0)
        return ba_error_set(BA_EINVAL, "itemsize 0");
    uint64_t n = itemsize;
    int zero = 0;
    for (uint32_t i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return ba_error_set(BA_ESHAPE, "negative extent %lld on axis %u", (long long)shape[i],
                                i);
        /* The nonzero extents must multiply to at most 2^63 bytes even when another
         * extent is 0: strides of a view are products of them (numpy refuses too). */
        if (shape[i] == 0)
            zero = 1;
        else if (n > (UINT64_C(1) << 63) / (uint64_t)shape[i])
            return ba_error_set(BA_ESHAPE, "array larger than 2^63 bytes");
        else
            n *= (uint64_t)shape[i];
    }
    if (nbytes)
        *nbytes = zero ? 0 : n;
    return 0;
}

int store_arr_validate(const struct store_array *a)
{
    size_t nl = name_len_of(a);
    if (nl < 1 || nl > BA_NAME_MAX)
        return ba_error_set(BA_EINVAL, "array name must have 1 to %d bytes", BA_NAME_MAX);
    size_t dl = strnlen(a->dtype, BA_DTYPE_STRLEN);
    if (dl == 0 || dl == BA_DTYPE_STRLEN)
        return ba_error_set(BA_EINVAL, "array '%s': bad dtype string", a->name);
    if (a->order != 'C' && a->order != 'F')
        return ba_error_set(BA_EINVAL, "array '%s': order must be 'C' or 'F'", a->name);
    if (!ba_is_pow2(a->block_size) || a->block_size < 4096 || a->block_size > STORE_BLOCK_MAX)
        return ba_error_set(BA_EINVAL,
                            "array '%s': block size %u is not a power of two in [4096, 1 GiB]",
                            a->name, a->block_size);
    if (a->codec == STORE_CODEC_ZSTD) {
        if (a->level < 1 || a->level > 19)
            return ba_error_set(BA_EINVAL, "array '%s': zstd level %u not in 1..19", a->name,
                                a->level);
    } else if (a->codec != STORE_CODEC_NONE) {
        return ba_error_set(BA_EINVAL, "array '%s': unknown codec %u", a->name, a->codec);
    }
    if (a->filters & ~(unsigned)STORE_FILTER_SHUFFLE)
        return ba_error_set(BA_EINVAL, "array '%s': unknown filters 0x%x", a->name, a->filters);
    return store_shape_validate(a->ndim, a->shape, a->itemsize, NULL);
}

uint64_t store_arr_nblocks(const struct store_array *a)
{
    uint64_t nbytes = 0;
    if (store_shape_validate(a->ndim, a->shape, a->itemsize, &nbytes))
        return 0;
    return nbytes / a->block_size + (nbytes % a->block_size != 0);
}

/* ---- lookups in an LMDB txn ----------------------------------------------------------------- */

int store_arr_get(struct store *st, MDB_txn *txn, uint64_t id, struct store_array *out)
{
    unsigned char k[8];
    store_be64_put(k, id);
    MDB_val key = {8, k}, val;
    int rc = mdb_get(txn, st->dbi_arrays, &key, &val);
    if (rc == MDB_NOTFOUND)
        return ba_error_set(BA_ENOTFOUND, "%s: no array with id %llu", st->path,
                            (unsigned long long)id);
    if (rc)
        return store_err_mdb(st, rc, "reading a catalog record");
    const char *why = NULL;
    if (store_arr_decode(val.mv_data, val.mv_size, out, &why))
        return ba_error_set(BA_ECORRUPT, "%s: catalog record of array id %llu is damaged: %s",
                            st->path, (unsigned long long)id, why);
    if (out->id != id)
        return ba_error_set(BA_ECORRUPT,
                            "%s: catalog record of array id %llu is damaged: it holds id %llu",
                            st->path, (unsigned long long)id, (unsigned long long)out->id);
    return 0;
}

int store_name_get(struct store *st, MDB_txn *txn, const char *name, size_t len, uint64_t *id)
{
    MDB_val key = {len, (void *)(uintptr_t)name}, val;
    int rc = mdb_get(txn, st->dbi_names, &key, &val);
    if (rc == MDB_NOTFOUND)
        return ba_error_set(BA_ENOTFOUND, "no array named '%.*s'", (int)len, name);
    if (rc)
        return store_err_mdb(st, rc, "reading the names index");
    if (val.mv_size != 8)
        return ba_error_set(BA_ECORRUPT, "%s: names index entry of '%.*s' is damaged (length %zu)",
                            st->path, (int)len, name, val.mv_size);
    *id = store_le64_get(val.mv_data);
    return 0;
}

/* ---- snapshot lookups ------------------------------------------------------------------------- */

static int name_check(const char *name, size_t *len)
{
    if (!name)
        return ba_error_set(BA_EINVAL, "NULL array name");
    *len = strnlen(name, BA_NAME_MAX + 1);
    if (*len < 1 || *len > BA_NAME_MAX)
        return ba_error_set(BA_EINVAL, "array name must have 1 to %d bytes", BA_NAME_MAX);
    return 0;
}

int store_array_by_name(struct store_snap *sn, const char *name, struct store_array *out)
{
    size_t len = 0;
    int rc = name_check(name, &len);
    if (rc)
        return rc;
    struct store *st = sn->st;
    uint64_t id = 0;
    store_map_rdlock(st);
    pthread_mutex_lock(&sn->lock);
    rc = store_name_get(st, sn->txn, name, len, &id);
    if (!rc)
        rc = store_arr_get(st, sn->txn, id, out);
    pthread_mutex_unlock(&sn->lock);
    store_map_unlock(st);
    if (rc == BA_ENOTFOUND && id)
        return ba_error_set(BA_ECORRUPT,
                            "%s: names index maps '%s' to array id %llu, which has "
                            "no catalog record",
                            st->path, name, (unsigned long long)id);
    if (!rc && strcmp(out->name, name))
        return ba_error_set(BA_ECORRUPT,
                            "%s: names index maps '%s' to array id %llu, which is named '%s'",
                            st->path, name, (unsigned long long)id, out->name);
    return rc;
}

int store_array_by_id(struct store_snap *sn, uint64_t id, struct store_array *out)
{
    struct store *st = sn->st;
    store_map_rdlock(st);
    pthread_mutex_lock(&sn->lock);
    int rc = store_arr_get(st, sn->txn, id, out);
    pthread_mutex_unlock(&sn->lock);
    store_map_unlock(st);
    return rc;
}

/* One step of the name-ordered walk: the first entry after `prev` (or the first one).
 * The cursor lives only inside the locks, so callbacks run with nothing held. */
static int list_step(struct store_snap *sn, const char *prev, size_t prev_len, char *name,
                     size_t *name_len, struct store_array *a)
{
    struct store *st = sn->st;
    MDB_cursor *cur = NULL;
    MDB_val key, val;
    int rc;
    store_map_rdlock(st);
    pthread_mutex_lock(&sn->lock);
    rc = mdb_cursor_open(sn->txn, st->dbi_names, &cur);
    if (rc) {
        rc = store_err_mdb(st, rc, "walking the names index");
        goto out;
    }
    if (prev) {
        key.mv_size = prev_len;
        key.mv_data = (void *)(uintptr_t)prev;
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
        if (!rc && key.mv_size == prev_len && !memcmp(key.mv_data, prev, prev_len))
            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    } else {
        rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    }
    if (rc == MDB_NOTFOUND) {
        rc = 1; /* end */
        goto out;
    }
    if (rc) {
        rc = store_err_mdb(st, rc, "walking the names index");
        goto out;
    }
    if (key.mv_size < 1 || key.mv_size > BA_NAME_MAX || val.mv_size != 8) {
        rc = ba_error_set(BA_ECORRUPT, "%s: a names index entry is damaged", st->path);
        goto out;
    }
    memcpy(name, key.mv_data, key.mv_size);
    name[key.mv_size] = '\0';
    *name_len = key.mv_size;
    uint64_t id = store_le64_get(val.mv_data);
    rc = store_arr_get(st, sn->txn, id, a);
    if (rc == BA_ENOTFOUND)
        rc = ba_error_set(BA_ECORRUPT,
                          "%s: names index maps '%s' to array id %llu, which has no record",
                          st->path, name, (unsigned long long)id);
    else if (!rc && strcmp(a->name, name))
        rc = ba_error_set(BA_ECORRUPT, "%s: names index maps '%s' to a record named '%s'", st->path,
                          name, a->name);
out:
    mdb_cursor_close(cur);
    pthread_mutex_unlock(&sn->lock);
    store_map_unlock(st);
    return rc;
}

int store_array_list(struct store_snap *sn, int (*cb)(const struct store_array *a, void *ctx),
                     void *ctx)
{
    char prev[BA_NAME_MAX + 1], name[BA_NAME_MAX + 1];
    size_t prev_len = 0, name_len = 0;
    int have_prev = 0;
    struct store_array a;
    for (;;) {
        int rc = list_step(sn, have_prev ? prev : NULL, prev_len, name, &name_len, &a);
        if (rc == 1)
            return 0;
        if (rc)
            return rc;
        rc = cb(&a, ctx);
        if (rc)
            return rc;
        memcpy(prev, name, name_len + 1);
        prev_len = name_len;
        have_prev = 1;
    }
}
