/* SPDX-License-Identifier: MIT */
/*
 * Internal header of store/: the structures behind struct store, store_snap and
 * store_txn, the on-disk record layouts (docs/format.md is the byte-by-byte
 * reference; the constants here are the source of truth for the code), and the
 * helpers the store_*.c files share. Never included outside store/ (tests and the
 * benchmark excepted, which use only the few tuning hooks marked as such).
 *
 * Locks (the order is top to bottom; nothing takes a lock above one it holds):
 *
 *   st->write_lock   (mutex, error-checking) one write transaction per process at a
 *                    time, held from store_txn_begin() to commit/abort. Remapping the
 *                    LMDB map happens only under it, so a write transaction never sees
 *                    a remap and needs no map lock.
 *   st->map_lock     (rwlock, writer-preferring) shared by every reader that touches
 *                    LMDB's map (mdb_txn_begin of a reader, gets, cursors, decoding from
 *                    a mapped value); exclusive around mdb_env_set_mapsize(). A reader
 *                    holds it only for one short step and never calls user code or takes
 *                    it twice (writer preference would deadlock a recursive reader).
 *   sn->lock         (mutex) a snapshot's MDB_txn: LMDB's read txn is not safe for
 *                    concurrent gets (first use of a named DBI refreshes txn state).
 *                    Held only around mdb_get/cursor steps, never while decompressing.
 *   st->dpool.mu     (mutex) the pool of decompression slots.
 *   st->workers.mu   (mutex) the compression worker pool's job state.
 *   registry lock    (mutex, store_env.c) the process-wide list of open environments.
 *
 * Fault context (store_block_read with STORE_READ_QUIET) takes map_lock (shared),
 * sn->lock and dpool.mu, allocates nothing and formats nothing. No store code holds
 * any of those while touching user memory that could fault, except the read path
 * itself writing the caller's buffer (which the pager guarantees is populated).
 */
#ifndef BA_STORE_INTERNAL_H
#define BA_STORE_INTERNAL_H

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <zstd.h>

#include "ba_common.h"
#include "store.h"

/* ---- format constants (docs/format.md) -------------------------------------------- */

#define STORE_FORMAT_MAGIC   "BIGARRAY" /* 8 bytes, first field of meta/"format" */
#define STORE_FORMAT_VERSION 1u         /* this library writes and reads version 1 */
#define STORE_FORMAT_LEN     24u

#define STORE_ARR_MAGIC     0x52414142u /* "BAAR" little-endian: catalog record */
#define STORE_ARR_VERSION   1u
#define STORE_ARR_FIXED     96u /* bytes before the shape */
#define STORE_CHG_VERSION   1u
#define STORE_BLK_FORMAT    1u
#define STORE_BLK_HDR       48u  /* block record header bytes */
#define STORE_BLK_TOMBSTONE 0x1u /* header flag: block zeroed by commit `seq` */
#define STORE_PIECE_MIN     15u  /* pieces of raw records: at least 32 KiB, */
#define STORE_PIECES_MAX    64u  /* and at most this many per block */
#define STORE_KEY_LEN       16u  /* (array id, blkno), both u64 big-endian */

#define STORE_OVERFLOW_HDR 16u /* LMDB overflow page header (data starts after it) */
/* LMDB 0.9's page header, which precedes an overflow value by 16 bytes
 * (STORE_OVERFLOW_HDR): the page number, 2 bytes of padding, the page flags, and for
 * an overflow page the number of pages in its run. Read, never written. */
#define LMDB_P_OVERFLOW 0x04u

#define STORE_ALIGN_MIN         STORE_LOCATE_MIN /* raw payloads of blocks >= this start on a page */
#define STORE_SHUFFLE_CHUNK     (64u << 10)      /* shuffle works in independent chunks of this */
#define STORE_SHUFFLE_MAXSTRIDE 256u             /* larger items are stored unshuffled */
#define STORE_SMALL_VALUE       2000u            /* values up to this stay inside leaf pages */

/* ---- little helpers -------------------------------------------------------------- */

static inline void store_le32_put(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline void store_le64_put(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline void store_be64_put(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (56 - 8 * i));
}
static inline uint32_t store_le32_get(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static inline uint64_t store_le64_get(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static inline uint64_t store_be64_get(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}
static inline void store_key_make(unsigned char key[STORE_KEY_LEN], uint64_t id, uint64_t blkno)
{
    store_be64_put(key, id);
    store_be64_put(key + 8, blkno);
}

/* XXH3-64 (runtime-dispatched to the widest vector unit where libxxhash has it). */
uint64_t store_hash(const void *p, size_t n);

/* ---- block records (store_record.c) ---------------------------------------------- */

struct store_blk_hdr {
    uint8_t format, codec, filters, flags;
    uint32_t payload_off; /* payload offset inside the value */
    uint32_t stored_len;  /* payload bytes */
    uint32_t raw_len;     /* decoded bytes (the array's block size); 0 for a tombstone */
    uint64_t seq;         /* commit that wrote the record */
    uint64_t checksum;    /* XXH3-64 of the raw bytes (0 for a tombstone) */
    uint32_t stride;      /* shuffle element size (1 = not shuffled) */
    uint8_t piece_shift;  /* 0, or log2 of the piece size: the value holds a table of
                             XXH3-64 sums of each piece of the raw bytes right after the
                             header (STORE_BLK_HDR), raw_len >> piece_shift entries */
};

/* Parse and check a record header against the value length. Returns 0 or BA_ECORRUPT
 * with *why set to a static string (no formatting: usable in fault context). */
int store_blk_hdr_parse(const void *val, size_t len, struct store_blk_hdr *h, const char **why);
/* Check the piece sums of record val (header h, parsed) against its n raw bytes,
 * decoded and checked: 0 (also for a record without pieces) or BA_ECORRUPT. */
int store_pieces_check(const struct store_blk_hdr *h, const void *val, const void *raw,
                       const char **why);
/* Write the 48-byte header (with its own checksum) to dst. */
void store_blk_hdr_write(unsigned char *dst, const struct store_blk_hdr *h);
/* Rewrite only the seq of an encoded header (and its checksum). */
void store_blk_hdr_set_seq(unsigned char *dst, uint64_t seq);

/* A compression context with its scratch: one per worker and one for the writer. */
struct store_cctx {
    ZSTD_CCtx *z;
    unsigned char *shuf; /* shuffled copy of a block */
    size_t shuf_cap;
};
/* A decompression slot: context plus the unshuffle scratch (preallocated). */
struct store_dslot {
    ZSTD_DCtx *z;
    unsigned char *scratch; /* STORE_SHUFFLE_CHUNK bytes */
};

/* An encoded block ready to be put: the payload (borrowed: the raw block itself for
 * codec none, else the encoder's output buffer) and what the header will say. */
struct store_enc {
    int zero; /* the block is all zeros: nothing to encode */
    uint8_t codec, filters;
    uint32_t stride;
    uint32_t raw_len, stored_len;
    uint64_t checksum;
    const void *payload;
    /* layout chosen by store_enc_layout() */
    uint32_t payload_off, value_len;
    uint8_t piece_shift; /* raw payloads with piece sums (store_piece_shift()) */
};

/* The piece size (log2) of an uncompressed block of raw_len bytes whose record has room
 * for a table of piece sums before a payload at payload_off, or 0 when it gets none: a
 * block of at least two pieces of >= 32 KiB, at most STORE_PIECES_MAX of them. */
unsigned store_piece_shift(uint32_t raw_len, uint32_t payload_off);
/* The bytes from a locate's hint a read is expected to take (the pager checks the pieces
 * under them: PAGER_PIECE_SPAN); a cold locate asks for them with the header. */
#define STORE_HINT_SPAN (64u << 10)

void store_cctx_free(struct store_cctx *c);
/* Encode raw (a->block_size bytes) with the array's codec, filters and level. out_buf
 * (grown with ba_realloc as needed) receives compressed bytes. Returns 0, -ENOMEM,
 * BA_EINVAL (codec failure; message set unless quiet != 0). */
int store_block_encode(struct store_cctx *c, const struct store_array *a, const void *raw,
                       unsigned char **out_buf, size_t *out_cap, struct store_enc *enc, int quiet);
/* Choose payload offset and value length: page-aligned raw payloads for big blocks,
 * size classes for compressed ones, falling back to raw where that is not bigger. */
void store_enc_layout(struct store_enc *enc, const void *raw, unsigned psize, unsigned class_steps);
/* 64 KiB of zeros: padding written with pwritev, disk reserved by writing. */
extern const unsigned char store_zeros[1u << 16];
/* Write zeros over [from, to) of fd (resuming after short writes). Returns 0 or -errno. */
int store_write_zeros(int fd, uint64_t from, uint64_t to);
/* Fill a reserved value of enc->value_len bytes: header, zero padding, payload. */
void store_enc_fill(unsigned char *dst, const struct store_enc *enc, uint64_t seq);
/* The same written with pwritev() at file offset off of data.mdb (STORE_WRITEMAP: the
 * value lies in LMDB's writable map; writing through the map would fault on every page,
 * and read each page before overwriting it), then zeros to the end of its last page.
 * Returns 0, -errno, or 1 when the record needs store_enc_fill() instead (a tombstone,
 * or a header bigger than the stack buffer). */
int store_enc_pwrite(int fd, uint64_t off, const struct store_enc *enc, uint64_t seq,
                     unsigned psize);

/* Decode a data record's payload into buf (raw_len bytes) and verify the checksum.
 * Allocates nothing. Returns 0 or BA_ECORRUPT with *why set (static string). */
int store_block_decode(struct store_dslot *ds, const struct store_blk_hdr *h, const void *payload,
                       void *buf, const char **why);

/* Round a value length up to its size class (pages of overflow run). Exposed for tests
 * and docs/format.md's table. */
uint32_t store_value_class(uint32_t len, unsigned psize, unsigned class_steps);

/* Byte shuffle in independent STORE_SHUFFLE_CHUNK chunks (see docs/format.md). */
void store_shuffle(unsigned char *dst, const unsigned char *src, size_t n, uint32_t stride);
/* Inverse, in place, with a STORE_SHUFFLE_CHUNK scratch. */
void store_unshuffle_inplace(unsigned char *buf, size_t n, uint32_t stride, unsigned char *scratch);
/* Nonzero when every byte is zero. */
int store_is_zero(const void *p, size_t n);

/* ---- catalog records (store_catalog.c) ------------------------------------------- */

size_t store_arr_encoded_len(const struct store_array *a);
void store_arr_encode(const struct store_array *a, unsigned char *dst, size_t len);
/* Returns 0 or BA_ECORRUPT with *why (static string). */
int store_arr_decode(const void *val, size_t len, struct store_array *a, const char **why);
/* Validate user-supplied fields of a new array. Returns 0 or BA_EINVAL / BA_ESHAPE. */
int store_arr_validate(const struct store_array *a);
int store_shape_validate(uint32_t ndim, const int64_t *shape, uint32_t itemsize, uint64_t *nbytes);
/* Number of blocks covering the array's bytes (ceil(nbytes / block_size)). */
uint64_t store_arr_nblocks(const struct store_array *a);
/* Look up by id / name in an LMDB txn (caller holds whatever locks the txn needs). */
int store_arr_get(struct store *st, MDB_txn *txn, uint64_t id, struct store_array *out);
int store_name_get(struct store *st, MDB_txn *txn, const char *name, size_t len, uint64_t *id);

/* ---- change records (store_changes.c) -------------------------------------------- */

/* A change record being built (encoded incrementally). */
struct store_chg_buf {
    unsigned char *p;
    size_t len, cap;
    uint64_t count;
    int failed; /* allocation failed */
};
void store_chg_add(struct store_chg_buf *b, uint64_t array_id, unsigned flags, uint64_t first,
                   uint64_t n);
/* Finish: returns the encoded record in b->p/b->len (0, -ENOMEM). */
int store_chg_finish(struct store_chg_buf *b);
void store_chg_free(struct store_chg_buf *b);
/* Decode a record; calls cb for each entry. Returns 0, cb's nonzero, BA_ECORRUPT. */
int store_chg_decode(const void *val, size_t len, uint64_t seq,
                     int (*cb)(const struct store_change *c, void *ctx), void *ctx,
                     const char **why);

struct store_txn;
/* Build the change record of a commit from the txn's notes (sorts tx->blks). */
int store_chg_build(struct store_txn *tx, struct store_chg_buf *b);
/* Delete change records of commits <= tx->seq - change_keep. */
int store_chg_prune(struct store_txn *tx);

/* ---- the objects ------------------------------------------------------------------ */

struct store_dpool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned n, nfree;
    struct store_dslot *slots;
    unsigned *free_idx;
};

struct store_batch; /* store_workers.c */
struct store_slot;

struct store_workers {
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    unsigned n;       /* configured threads */
    unsigned started; /* threads running */
    unsigned ready;   /* threads that reached their loop */
    unsigned nslots;  /* ring of output slots: 2 per thread */
    int stop;
    pthread_t *threads;
    struct store_cctx *ctxs;
    struct store_slot *slots;
    struct store_batch *batch; /* current batch or NULL */
};

struct store {
    char *path;
    MDB_env *env;
    MDB_dbi dbi_meta, dbi_names, dbi_arrays, dbi_blocks, dbi_changes;
    unsigned flags; /* STORE_* */
    unsigned psize;
    unsigned class_steps; /* size classes per doubling (0 = exact sizes) */
    uint64_t change_keep;
    uint64_t dev, ino; /* identity of data.mdb for the open registry */

    pthread_mutex_t write_lock;
    int wlock_fd;            /* writer.lock (flock), -1 when read-only */
    int64_t lock_timeout_ms; /* < 0: wait forever */
    pthread_rwlock_t map_lock;
    int grow_wanted;  /* a txn hit MDB_MAP_FULL: grow at the next begin (atomic) */
    int no_fallocate; /* no fallocate(2) here: store_reserve writes zeros (atomic) */
    /* LMDB's MVCC as happens-before edges (store_mvcc_publish / store_mvcc_observe): a
     * commit publishes before mdb_txn_commit, a snapshot's end before its reader slot is
     * freed; a snapshot's or write transaction's begin observes after mdb_txn_begin. */
    uint64_t mvcc;
    /* STORE_WRITEMAP: data.mdb's blocks are allocated up to here (store_reserve), as
     * long as the file is at least that long; a write transaction's reservation moves
     * it forward (see store_txn.c). Under write_lock. */
    uint64_t rsv_done;
    uint64_t pf_last, pf_done; /* store_prefetch: end of the last record, of the window */
    int locate_cold;           /* the last block header a locate read came from disk
                                  (atomic; store_block_locate's prefetch) */
    uintptr_t map_base;        /* LMDB's map as learnt by store_prefetch and locate (0: not
                           yet; atomic; reset under map_lock held exclusively when the
                           map moves) */

    struct store_dpool dpool;
    struct store_workers workers;

    /* The writer's encoder (used under write_lock only). */
    struct store_cctx wcctx;
    unsigned char *wbuf;
    size_t wcap;
};

struct store_snap {
    struct store *st;
    MDB_txn *txn;
    uint64_t seq;
    int refs; /* atomic */
    pthread_mutex_t lock;
};

/* An array touched by a write transaction: its current record and what changed. */
struct store_txn_arr {
    struct store_array a;
    uint64_t orig_meta_seq, orig_data_seq; /* as the database had them (0: created here) */
    int dirty;                             /* record must be written at commit */
    int dropped;                           /* dropped in this txn */
    unsigned chflags;
    uint64_t cut_first;
};

struct store_txn_blk {
    uint64_t id, blkno;
};

struct store_txn {
    struct store *st;
    MDB_txn *txn;
    uint64_t base, seq, last_seq, next_id;
    int dead;    /* a failure left the LMDB txn unusable: only abort */
    int changed; /* something was written */
    int next_id_dirty;
    struct store_txn_arr *arrs;
    size_t narrs, arrs_cap;
    struct store_txn_blk *blks;
    size_t nblks, blks_cap;
    /* STORE_WRITEMAP: the disk reserved ahead of LMDB's page allocation (store_txn_prep). */
    uint64_t rsv_front; /* file offset at or past LMDB's next new page, as last seen */
    uint64_t rsv_slack; /* worst-case bytes of new pages written since */
    uint64_t freed;     /* bytes of records replaced or deleted (free-list room at commit) */
    int fd; /* STORE_WRITEMAP: data.mdb, where block records are written (pwrite); else -1 */
    uint64_t written; /* bytes of block records written with fd (early write-back) */
};

/* Before every LMDB write (put, delete, cursor put or delete) of a value of vbytes:
 * the fault-injection seam BA_INJ_STORE_PUT, then, with STORE_WRITEMAP, make sure
 * the file's blocks are allocated for every page the operation can add (see
 * store_reserve). Returns 0 or a code (the transaction is then dead). */
int store_txn_prep(struct store_txn *tx, uint64_t vbytes, const char *what);

/* STORE_WRITEMAP: allocate data.mdb's blocks in [from, to) (fallocate, mode 0: no data
 * changes, no size change inside the file), so that LMDB's writes through its writable
 * map cannot meet a full disk (SIGBUS). On a file system without fallocate(2) it
 * writes zeros there instead (the file system reserves room for written data at
 * write(2)), which is safe only where no one can be: past the pages LMDB may have used
 * in the current write transaction (whose LMDB lock the caller holds) and past the
 * last commit, as every caller ensures. Writing zeros everywhere was tried: it halved
 * bulk write throughput (the zeros are written back before the data replace them).
 * Returns 0, -ENOSPC (also for EDQUOT and EFBIG), -errno. */
int store_reserve(struct store *st, uint64_t from, uint64_t to);

/* ---- shared helpers (store_env.c) ------------------------------------------------- */

/* Translate an LMDB (or errno) code, set the message "<what>: <detail>" naming the
 * store's path, and return the bigarray code. MDB_MAP_FULL also asks for growth. */
int store_err_mdb(struct store *st, int rc, const char *what);
/* The same without a message (fault context). */
int store_err_mdb_quiet(struct store *st, int rc);

void store_map_rdlock(struct store *st);
/* LMDB's readers do not lock: a reader finds the newest commit through the meta page
 * and its reader slot in lock.mdb, and a writer reuses only pages that no live reader
 * can reach. With the writable map, the pages a commit wrote are plain memory stores
 * that a later reader loads, and a page a finished reader read may be written again by
 * a later writer; the ordering is LMDB's, through memory shared with other processes,
 * and invisible to ThreadSanitizer. These two calls state it in C11 terms, one atomic
 * read-modify-write or load each: publish after the last access (a writer's, before
 * mdb_txn_commit; a reader's, before mdb_txn_abort), observe before the first (after
 * mdb_txn_begin) and, in a writer, again before every write and the commit, because
 * LMDB re-reads the oldest live reader whenever it allocates pages (store_txn_prep). */
static inline void store_mvcc_publish(struct store *st)
{
    __atomic_fetch_add(&st->mvcc, 1, __ATOMIC_RELEASE);
}
static inline void store_mvcc_observe(struct store *st)
{
    (void)__atomic_load_n(&st->mvcc, __ATOMIC_ACQUIRE);
}

/* STORE_WRITEMAP opens LMDB with MDB_NORDAHEAD: the kernel's readahead on the map would
 * read (or zero) megabytes of the file ahead of every page a write transaction touches
 * for the first time. Readers ask instead for the file range of the record they are
 * about to read (posix_fadvise WILLNEED: a hint, never an error). Under map_lock
 * (shared); fault context safe (a system call, no allocation, no message). */
void store_prefetch(struct store *st, const MDB_val *v);
void store_map_unlock(struct store *st);
/* Under write_lock: adopt a size another process set (MDB_MAP_RESIZED). */
int store_map_adopt(struct store *st);
/* Under write_lock, before the LMDB write txn: grow the map for `hint` more bytes, or
 * double it after a transaction hit MDB_MAP_FULL. Returns 0 or BA_EFULL. */
int store_map_prepare(struct store *st, uint64_t hint);

/* Take / release the inter-process writer lock (flock on writer.lock) under write_lock.
 * Returns 0 or BA_EBUSY after st->lock_timeout_ms. */
int store_writer_lock(struct store *st);
void store_writer_unlock(struct store *st);

/* Read a u64 meta value ("seq", "next_id") in txn. */
int store_meta_u64(struct store *st, MDB_txn *txn, const char *key, uint64_t *out);

/* ---- worker pools (store_workers.c) ------------------------------------------------ */

int store_dpool_init(struct store_dpool *p, unsigned n);
void store_dpool_destroy(struct store_dpool *p);
struct store_dslot *store_dpool_get(struct store_dpool *p);
void store_dpool_put(struct store_dpool *p, struct store_dslot *s);

int store_workers_init(struct store_workers *w, unsigned n);
void store_workers_destroy(struct store_workers *w);
/* Encode n blocks in parallel and hand each to put(i, enc, ctx) in ascending order of
 * i on the calling thread. Stops at the first failure (encode or put) and returns it. */
int store_workers_run(struct store_workers *w, const struct store_array *a, size_t n,
                      const void *const *raws,
                      int (*put)(size_t i, const struct store_enc *enc, void *ctx), void *ctx);

/* ---- transactions (store_txn.c) ---------------------------------------------------- */

/* The txn's view of array id: loads the record on first use. Returns NULL with
 * *rc = BA_ECONFLICT / BA_ENOTFOUND / BA_ECORRUPT / -ENOMEM when it is missing. */
struct store_txn_arr *store_txn_arr_get(struct store_txn *tx, uint64_t id, int *rc);
struct store_txn_arr *store_txn_arr_add(struct store_txn *tx, const struct store_array *a);
/* Put with the injection seam; a failure kills the txn. */
int store_txn_put(struct store_txn *tx, MDB_dbi dbi, MDB_val *key, MDB_val *val, unsigned flags,
                  const char *what);
int store_txn_del(struct store_txn *tx, MDB_dbi dbi, MDB_val *key, const char *what);
int store_txn_fail(struct store_txn *tx, int rc);
int store_txn_note_block(struct store_txn *tx, uint64_t id, uint64_t blkno);

/* The overflow run LMDB placed the value `val` in (a pointer into its map), read from
 * the page header in front of it: the run's first page number and its length in pages.
 * Returns 0, -EAGAIN (not in an overflow run: the value lies inside a leaf page), or
 * BA_ECORRUPT (the header is damaged: not an overflow page, a page number out of range,
 * a run shorter than the value). Reads that one page; allocates nothing. */
static inline int store_overflow_run(const struct store *st, const MDB_val *val, uint64_t *pgno,
                                     uint32_t *pages)
{
    if ((uintptr_t)val->mv_data % st->psize != STORE_OVERFLOW_HDR)
        return -EAGAIN;
    const unsigned char *ph = (const unsigned char *)val->mv_data - STORE_OVERFLOW_HDR;
    uint16_t pflags;
    memcpy(pgno, ph, sizeof *pgno);
    memcpy(&pflags, ph + 10, sizeof pflags);
    memcpy(pages, ph + 12, sizeof *pages);
    if (!(pflags & LMDB_P_OVERFLOW) || *pgno < 2 || *pgno > (uint64_t)INT64_MAX / 2 / st->psize ||
        (uint64_t)*pages * st->psize < STORE_OVERFLOW_HDR + (uint64_t)val->mv_size)
        return BA_ECORRUPT;
    return 0;
}

#endif /* BA_STORE_INTERNAL_H */
