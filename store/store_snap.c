/* SPDX-License-Identifier: MIT */
/*
 * Snapshots and block reads. A snapshot is one LMDB read transaction (MDB_NOTLS, so
 * any thread may use it), reference counted: the transaction ends with the last
 * reference. Many threads read blocks of one snapshot at once: the LMDB lookup runs
 * under the snapshot's mutex, decoding runs outside it but under the shared map
 * lock, straight from LMDB's mapped value into the caller's buffer; or, for blocks
 * stored raw and page-aligned, store_block_locate() says where their bytes lie in
 * data.mdb so that the caller can map them instead (zero-copy). The quiet read paths
 * allocate nothing and format nothing (fault context).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_internal.h"

int store_snap_begin(struct store *st, struct store_snap **out)
{
    *out = NULL;
    struct store_snap *sn = ba_calloc(1, sizeof *sn);
    if (!sn)
        return ba_error_set(-ENOMEM, "no memory for a snapshot");
    int rc;
    for (int tries = 0;; tries++) {
        store_map_rdlock(st);
        rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &sn->txn);
        store_map_unlock(st);
        if (rc != MDB_MAP_RESIZED || tries > 4)
            break;
        /* Another process grew the map: adopt its size (needs no write txn here). */
        int e = pthread_mutex_lock(&st->write_lock);
        if (e) {
            free(sn);
            return ba_error_set(BA_EBUSY, "%s: map resized while this thread writes", st->path);
        }
        e = store_map_adopt(st);
        pthread_mutex_unlock(&st->write_lock);
        if (e) {
            free(sn);
            return e;
        }
    }
    if (rc) {
        free(sn);
        if (rc == MDB_READERS_FULL)
            return ba_error_set(BA_EFULL, "%s: all LMDB reader slots are in use", st->path);
        return store_err_mdb(st, rc, "beginning a snapshot");
    }
    store_mvcc_observe(st);
    store_map_rdlock(st);
    rc = store_meta_u64(st, sn->txn, "seq", &sn->seq);
    store_map_unlock(st);
    if (rc) {
        store_mvcc_publish(st);
        mdb_txn_abort(sn->txn);
        free(sn);
        return rc;
    }
    sn->st = st;
    sn->refs = 1;
    pthread_mutex_init(&sn->lock, NULL);
    *out = sn;
    return 0;
}

void store_snap_ref(struct store_snap *sn)
{
    __atomic_add_fetch(&sn->refs, 1, __ATOMIC_RELAXED);
}

void store_snap_unref(struct store_snap *sn)
{
    if (!sn)
        return;
    if (__atomic_sub_fetch(&sn->refs, 1, __ATOMIC_ACQ_REL))
        return;
    store_mvcc_publish(sn->st);
    mdb_txn_abort(sn->txn);
    pthread_mutex_destroy(&sn->lock);
    free(sn);
}

uint64_t store_snap_seq(const struct store_snap *sn)
{
    return sn->seq;
}

struct store *store_snap_store(const struct store_snap *sn)
{
    return sn->st;
}

/* ---- block reads -------------------------------------------------------------------------- */

static int read_fail(const struct store_array *a, uint64_t blkno, unsigned flags, int code,
                     const char *why, const struct store *st)
{
    if (flags & STORE_READ_QUIET)
        return code;
    return ba_error_set(code, "%s: array '%s' (id %llu) block %llu: %s", st->path, a->name,
                        (unsigned long long)a->id, (unsigned long long)blkno, why);
}

int store_block_read(struct store_snap *sn, const struct store_array *a, uint64_t blkno, void *buf,
                     unsigned flags)
{
    struct store *st = sn->st;
    int rc = ba_inject(BA_INJ_STORE_READ);
    if (rc)
        return read_fail(a, blkno, flags, rc, "injected read failure", st);
    unsigned char k[STORE_KEY_LEN];
    store_key_make(k, a->id, blkno);
    MDB_val key = {STORE_KEY_LEN, k}, val;
    const char *why = NULL;

    store_map_rdlock(st);
    pthread_mutex_lock(&sn->lock);
    rc = mdb_get(sn->txn, st->dbi_blocks, &key, &val);
    pthread_mutex_unlock(&sn->lock);
    if (rc == MDB_NOTFOUND) {
        store_map_unlock(st);
        memset(buf, 0, a->block_size);
        return 0;
    }
    if (rc) {
        store_map_unlock(st);
        rc = store_err_mdb_quiet(st, rc);
        return read_fail(a, blkno, flags, rc, "LMDB lookup failed", st);
    }
    store_prefetch(st, &val);
    struct store_blk_hdr h;
    rc = store_blk_hdr_parse(val.mv_data, val.mv_size, &h, &why);
    if (!rc && !(h.flags & STORE_BLK_TOMBSTONE) && h.raw_len != a->block_size) {
        rc = BA_ECORRUPT;
        why = "record length differs from the array's block size";
    }
    if (rc) {
        store_map_unlock(st);
        return read_fail(a, blkno, flags, rc, why, st);
    }
    if (h.flags & STORE_BLK_TOMBSTONE) {
        store_map_unlock(st);
        memset(buf, 0, a->block_size);
        return 0;
    }
    const unsigned char *payload = (const unsigned char *)val.mv_data + h.payload_off;
    if (h.codec == STORE_CODEC_NONE) {
        rc = store_block_decode(NULL, &h, payload, buf, &why);
    } else {
        struct store_dslot *ds = store_dpool_get(&st->dpool);
        rc = store_block_decode(ds, &h, payload, buf, &why);
        store_dpool_put(&st->dpool, ds);
    }
    store_map_unlock(st);
    if (rc)
        return read_fail(a, blkno, flags, rc, why, st);
    return 0;
}

/* The file offset of the payload of a data record whose value LMDB placed at `value`
 * (a pointer into its map), after checking that the value is an overflow value whose
 * header is sane and whose payload starts on a page boundary. Returns 0, -EAGAIN (not
 * page-aligned: stored inline or in a layout without the prefix), BA_ECORRUPT. */
static int overflow_payload_off(const struct store *st, const MDB_val *val, uint32_t payload_off,
                                uint64_t len, uint64_t *off, const char **why)
{
    uintptr_t v = (uintptr_t)val->mv_data;
    if ((v + payload_off) % st->psize)
        return -EAGAIN;
    uint64_t pgno;
    uint32_t pages;
    int rc = store_overflow_run(st, val, &pgno, &pages);
    if (rc == BA_ECORRUPT)
        *why = "overflow page header is damaged";
    if (rc)
        return rc;
    uint64_t o = pgno * st->psize + STORE_OVERFLOW_HDR + payload_off;
    if (o % st->psize || o + len > (pgno + pages) * st->psize) {
        *why = "overflow page header is damaged";
        return BA_ECORRUPT;
    }
    *off = o;
    return 0;
}

/* A block header that takes longer than this to read came from disk. */
#define STORE_COLD_NS 30000u

/* Before the header of a raw record at `value` (a pointer into LMDB's map) is read from
 * disk: ask for it and for the pieces under the STORE_HINT_SPAN bytes from byte `hint`
 * of its payload at once (where the layout of an uncompressed block of this size puts
 * them): what the pager's piece check will read (PAGER_PIECE_SPAN). */
static void locate_prefetch(struct store *st, const struct store_array *a, const void *value,
                            uint64_t hint)
{
    uintptr_t mb = __atomic_load_n(&st->map_base, __ATOMIC_RELAXED);
    uint32_t poff = st->psize - STORE_OVERFLOW_HDR;
    unsigned shift = store_piece_shift(a->block_size, poff);
    int fd;
    if (!mb || (uintptr_t)value <= mb + STORE_OVERFLOW_HDR || !shift || hint >= a->block_size ||
        mdb_env_get_fd(st->env, &fd))
        return;
    uint64_t voff = (uintptr_t)value - mb, piece = (uint64_t)1 << shift;
    uint64_t from = hint >> shift << shift,
             to = a->block_size - hint <= STORE_HINT_SPAN
                      ? a->block_size
                      : (hint + STORE_HINT_SPAN + piece - 1) >> shift << shift,
             len = to - from;
    posix_fadvise(fd, (off_t)(voff - STORE_OVERFLOW_HDR), (off_t)st->psize, POSIX_FADV_WILLNEED);
    posix_fadvise(fd, (off_t)(voff + poff + from), (off_t)len, POSIX_FADV_WILLNEED);
}

int store_block_locate(struct store_snap *sn, const struct store_array *a, uint64_t blkno,
                       uint64_t hint, struct store_extent *out, unsigned flags)
{
    struct store *st = sn->st;
    if (a->block_size < STORE_ALIGN_MIN)
        return -EAGAIN; /* never aligned (docs/format.md): spare the lookup */
    int rc = ba_inject(BA_INJ_STORE_READ);
    if (rc)
        return read_fail(a, blkno, flags, rc, "injected read failure", st);
    unsigned char k[STORE_KEY_LEN];
    store_key_make(k, a->id, blkno);
    MDB_val key = {STORE_KEY_LEN, k}, val;
    const char *why = NULL;

    store_map_rdlock(st);
    pthread_mutex_lock(&sn->lock);
    rc = mdb_get(sn->txn, st->dbi_blocks, &key, &val);
    pthread_mutex_unlock(&sn->lock);
    if (rc == MDB_NOTFOUND) {
        store_map_unlock(st);
        return BA_ENOTFOUND;
    }
    if (rc) {
        store_map_unlock(st);
        rc = store_err_mdb_quiet(st, rc);
        return read_fail(a, blkno, flags, rc, "LMDB lookup failed", st);
    }
    /* mdb_get() found the value's place without reading it: its header page is read
     * here, from disk when cold. */
    int cold = __atomic_load_n(&st->locate_cold, __ATOMIC_RELAXED);
    if (cold && hint != UINT64_MAX && a->codec == STORE_CODEC_NONE)
        locate_prefetch(st, a, val.mv_data, hint);
    uint64_t t0 = ba_now_ns();
    struct store_blk_hdr h;
    rc = store_blk_hdr_parse(val.mv_data, val.mv_size, &h, &why);
    int now_cold = ba_now_ns() - t0 > STORE_COLD_NS;
    if (now_cold != cold)
        __atomic_store_n(&st->locate_cold, now_cold, __ATOMIC_RELAXED);
    if (!rc && !(h.flags & STORE_BLK_TOMBSTONE) && h.raw_len != a->block_size) {
        rc = BA_ECORRUPT;
        why = "record length differs from the array's block size";
    }
    if (!rc && (h.flags & STORE_BLK_TOMBSTONE))
        rc = BA_ENOTFOUND;
    else if (!rc && h.codec != STORE_CODEC_NONE)
        rc = -EAGAIN;
    else if (!rc)
        rc = overflow_payload_off(st, &val, h.payload_off, h.raw_len, &out->off, &why);
    if (!rc) /* where LMDB's map is, for store_block_verify_piece() (the map cannot move
              * while map_lock is held) */
        __atomic_store_n(&st->map_base,
                         (uintptr_t)val.mv_data - (uintptr_t)(out->off - h.payload_off),
                         __ATOMIC_RELAXED);
    store_map_unlock(st);
    if (rc == BA_ENOTFOUND || rc == -EAGAIN)
        return rc;
    if (rc)
        return read_fail(a, blkno, flags, rc, why, st);
    if (mdb_env_get_fd(st->env, &out->fd))
        return read_fail(a, blkno, flags, -EIO, "no descriptor of data.mdb", st);
    out->checksum = h.checksum;
    out->piece_shift = h.piece_shift;
    /* The value (header, then the piece sums) starts payload_off bytes before it. */
    out->sums_off = h.piece_shift ? out->off - h.payload_off + STORE_BLK_HDR : 0;
    return 0;
}

int store_block_verify(const void *p, size_t n, uint64_t checksum)
{
    return store_hash(p, n) == checksum ? 0 : BA_ECORRUPT;
}

int store_block_verify_piece(struct store *st, const struct store_extent *e, unsigned i,
                             const void *p)
{
    size_t n = (size_t)1 << e->piece_shift;
    if (!p) {
        /* Through LMDB's map: the pages the caller maps, no mapping of our own to make. */
        store_map_rdlock(st);
        MDB_envinfo info;
        int rc = mdb_env_info(st->env, &info) ? -EIO : 0;
        uintptr_t mb = __atomic_load_n(&st->map_base, __ATOMIC_RELAXED);
        uint64_t end = e->off + ((uint64_t)(i + 1) << e->piece_shift);
        if (!rc && (!mb || end > info.me_mapsize || e->sums_off + 8ull * (i + 1) > e->off))
            rc = -EAGAIN; /* the map moved since the locate (grown): the caller loads */
        if (!rc) {
            const unsigned char *base = (const unsigned char *)mb;
            uint64_t sum = store_le64_get(base + e->sums_off + 8ull * i);
            rc = sum == store_hash(base + e->off + ((uint64_t)i << e->piece_shift), n)
                     ? 0
                     : BA_ECORRUPT;
        }
        store_map_unlock(st);
        return rc;
    }
    unsigned char sum[8];
    ssize_t r;
    do
        r = pread(e->fd, sum, sizeof sum, (off_t)(e->sums_off + 8ull * i));
    while (r < 0 && errno == EINTR);
    if (r != (ssize_t)sizeof sum)
        return -EIO;
    return store_le64_get(sum) == store_hash(p, n) ? 0 : BA_ECORRUPT;
}

int store_block_info(struct store_snap *sn, uint64_t array_id, uint64_t blkno,
                     struct store_block_info *out)
{
    struct store *st = sn->st;
    unsigned char k[STORE_KEY_LEN];
    store_key_make(k, array_id, blkno);
    MDB_val key = {STORE_KEY_LEN, k}, val;
    memset(out, 0, sizeof *out);
    store_map_rdlock(st);
    pthread_mutex_lock(&sn->lock);
    int rc = mdb_get(sn->txn, st->dbi_blocks, &key, &val);
    pthread_mutex_unlock(&sn->lock);
    if (rc == MDB_NOTFOUND) {
        store_map_unlock(st);
        return 0;
    }
    if (rc) {
        store_map_unlock(st);
        return store_err_mdb(st, rc, "reading a block record");
    }
    struct store_blk_hdr h;
    const char *why = NULL;
    rc = store_blk_hdr_parse(val.mv_data, val.mv_size, &h, &why);
    size_t vlen = val.mv_size;
    store_map_unlock(st);
    if (rc)
        return ba_error_set(rc, "%s: array id %llu block %llu: %s", st->path,
                            (unsigned long long)array_id, (unsigned long long)blkno, why);
    out->present = (h.flags & STORE_BLK_TOMBSTONE) ? -1 : 1;
    out->codec = h.codec;
    out->filters = h.filters;
    out->stored_len = h.stored_len;
    out->value_len = (uint32_t)vlen;
    out->seq = h.seq;
    return 0;
}
