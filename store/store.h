/* SPDX-License-Identifier: MIT */
/*
 * store/: the LMDB block store. It owns bytes on disk: the catalog of arrays, block
 * records (codec, checksum, the commit that wrote them), snapshots, commits with
 * conflict checks, change records, verify, compact and statistics. It knows bytes,
 * never signals or mappings: no <signal.h>, no <sys/mman.h> beyond what LMDB does.
 * LMDB and zstd error codes are translated here and never leave store/.
 *
 * Objects
 *   struct store       an open database directory (one LMDB environment). Thread-safe.
 *   struct store_snap  a snapshot: one LMDB read transaction (MDB_NOTLS) at the state
 *                      after commit `seq`. Reference counted; shared by threads.
 *   struct store_txn   a write transaction: block writes and metadata changes checked
 *                      against a base snapshot seq, committed atomically. One thread.
 *
 * Commit sequence numbers (seq) count commits: 0 is the empty database, each commit
 * that changes anything gets the next number. Every block record and catalog record
 * carries the seq of the commit that last wrote it; conflicts are decided from
 * those, so they never depend on pruned change records.
 *
 * Conflict rule (first committer wins): a transaction with base seq B fails with
 * BA_ECONFLICT, and writes nothing, if any block it writes or cuts, or any array whose
 * metadata it changes or drops, was written by a commit newer than B. A block
 * record deleted by a newer commit counts: deletions leave a tombstone record
 * carrying the deleting seq (tombstones read as zeros; compact drops them).
 *
 * Fault context: store_block_read() and store_block_locate() with STORE_READ_QUIET,
 * and store_block_verify(), may run inside a SIGSEGV handler or a userfaultfd service
 * thread. They then allocate nothing, format no message, take only the store's
 * internal locks (which no code holds while it can fault), and return a code.
 */
#ifndef BA_STORE_H
#define BA_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "bigarray.h"

struct store;
struct store_snap;
struct store_txn;

/* Internal code: an LMDB write hit the end of the map. The transaction is dead; abort
 * it and start again: the next store_txn_begin() grows the map first. Never returned
 * to users (lib/ retries, and reports BA_EFULL if growth is impossible). */
#define STORE_EMAPFULL (BA_ERRBASE - 100)

/* ---- opening ----------------------------------------------------------------- */

#define STORE_CREATE 0x1u /* create the directory and an empty database if missing */
#define STORE_RDONLY 0x2u /* read-only environment */
#define STORE_NOSYNC 0x4u /* commits are not fdatasync'ed (MDB_NOSYNC) */
/* MDB_WRITEMAP, with the disk allocated ahead of LMDB's writes (store_reserve; see
 * docs/format.md for the trade-off). Ignored with STORE_RDONLY. */
#define STORE_WRITEMAP 0x8u

struct store_opts {
    size_t size;             /* sizeof(struct store_opts) */
    unsigned flags;          /* STORE_* */
    uint64_t map_size;       /* initial map size; 0 = 1 TiB */
    unsigned max_readers;    /* 0 = 1024 */
    uint64_t change_keep;    /* change records kept (newest N commits); 0 = 100000 */
    unsigned workers;        /* threads compressing batches; 0 = number of CPUs */
    int64_t lock_timeout_ms; /* how long store_txn_begin() waits for another process's
                                writer: < 0 forever (store_opts_init), 0 not at all */
};

void store_opts_init(struct store_opts *o);

/* Open the database directory at path (a directory holding data.mdb and lock.mdb; see
 * docs/format.md). Runs mdb_reader_check() to clear stale reader slots. Returns 0,
 * BA_ENOTFOUND (missing and no STORE_CREATE), BA_ENOTDB (not a directory, not an LMDB
 * environment, or LMDB without bigarray's format record), BA_EVERSION (a newer format),
 * BA_EBUSY (already open in this process: LMDB forbids a second environment on the same
 * file; share the handle), -errno. Messages name the path. */
int store_open(const char *path, const struct store_opts *o, struct store **out);

/* Close. All snapshots must have been released and no txn may be open. NULL ok. */
void store_close(struct store *st);

const char *store_path(const struct store *st);
int store_readonly(const struct store *st);

/* ---- catalog records --------------------------------------------------------- */

#define STORE_CODEC_NONE     0
#define STORE_CODEC_ZSTD     1
#define STORE_FILTER_SHUFFLE 0x1u

struct store_array {
    uint64_t id; /* unique, never reused (assigned at create) */
    char name[BA_NAME_MAX + 1];
    char dtype[BA_DTYPE_STRLEN]; /* canonical numpy string ("<f8"); lib/ interprets it */
    uint32_t itemsize;           /* bytes per element (the shuffle filter's stride) */
    uint32_t ndim;
    int64_t shape[BA_MAX_DIMS];
    char order;             /* 'C' or 'F' */
    uint32_t block_size;    /* power of two >= 4096 */
    uint8_t codec;          /* STORE_CODEC_* */
    uint8_t level;          /* zstd level 1..19 */
    uint8_t filters;        /* STORE_FILTER_* */
    uint64_t created_seq;   /* commit that created it */
    uint64_t meta_seq;      /* last commit that changed its metadata (shape) */
    uint64_t data_seq;      /* last commit that changed any of its blocks */
    uint64_t stored_bytes;  /* bytes of its block records (value sizes), tombstones excluded */
    uint64_t stored_blocks; /* block records holding data (tombstones excluded) */
};

/* ---- snapshots ---------------------------------------------------------------- */

/* Begin a snapshot of the newest commit (reference count 1). Returns 0, BA_EFULL (no
 * reader slot), -errno. */
int store_snap_begin(struct store *st, struct store_snap **out);
void store_snap_ref(struct store_snap *sn);
/* Drop a reference; the read transaction ends with the last one. NULL ok. */
void store_snap_unref(struct store_snap *sn);
uint64_t store_snap_seq(const struct store_snap *sn);
struct store *store_snap_store(const struct store_snap *sn);

/* Look an array up by name or id. Returns 0, BA_ENOTFOUND, BA_ECORRUPT (a damaged
 * catalog record: message says which). */
int store_array_by_name(struct store_snap *sn, const char *name, struct store_array *out);
int store_array_by_id(struct store_snap *sn, uint64_t id, struct store_array *out);

/* Call cb for every array in name order; stop when cb returns nonzero and return it.
 * A damaged record stops the walk with BA_ECORRUPT. */
int store_array_list(struct store_snap *sn, int (*cb)(const struct store_array *a, void *ctx),
                     void *ctx);

/* ---- reading blocks ------------------------------------------------------------ */

#define STORE_READ_QUIET 0x1u /* fault context: no message formatting */

/* Fill buf (a->block_size bytes) with block blkno of array a as of the snapshot:
 * decompressed straight from LMDB's map into buf (no intermediate copy), checksum
 * verified; zeros for a hole or tombstone. Safe to call from many threads at once
 * on one snapshot. Returns 0, BA_ECORRUPT (bad header, bad length, checksum mismatch;
 * the message, unless QUIET, names array and block), -EIO. */
int store_block_read(struct store_snap *sn, const struct store_array *a, uint64_t blkno, void *buf,
                     unsigned flags);

/* Where block blkno's raw bytes lie verbatim in the database file, so that they can be
 * mapped instead of copied (zero-copy reads): see store_block_locate(). */
struct store_extent {
    int fd;               /* a descriptor of data.mdb, borrowed from the store (valid until
                         store_close()); map it MAP_PRIVATE and PROT_READ only */
    uint64_t off;         /* the payload's file offset (a multiple of the page size); the
                         payload is the array's block_size bytes */
    uint64_t checksum;    /* the record's XXH3-64 of those bytes: check what the mapping
                          shows with store_block_verify() before trusting it */
    unsigned piece_shift; /* 0, or log2 of the piece size: the record also holds a sum
                             of each piece, so that one piece can be checked alone with
                             store_block_verify_piece() (records written before
                             2026-12-07 have none) */
    uint64_t sums_off;    /* with piece_shift: file offset of the piece sums */
};

/* Where block blkno's raw bytes lie verbatim in data.mdb. Applies to a data record
 * stored uncompressed with its payload on a page boundary of data.mdb (arrays with
 * blocks of >= 64 KiB: docs/format.md, "Payload layouts"; also blocks of compressed
 * arrays that compression did not shrink). On success *out says where (see struct
 * store_extent); data stays checksummed: check the bytes (whole or by pieces) before
 * trusting them.
 * The bytes stay at that offset while snapshot sn, or any snapshot in which the record
 * is live, is held: LMDB reuses a page only after no reader's snapshot contains it. A
 * caller that keeps a mapping must drop it before releasing the last snapshot in which
 * the record is live. Growth of the LMDB map moves LMDB's own mapping, not the file's
 * bytes: a mapping of fd stays valid.
 * Returns 0; BA_ENOTFOUND (a hole or a tombstone: the block reads as zeros); -EAGAIN
 * (not mappable: compressed, a block smaller than 64 KiB, or a payload not on a page
 * boundary; read it with store_block_read()); BA_ECORRUPT (a damaged block header or
 * overflow page header); -EIO. Fault-context safe like store_block_read() with
 * STORE_READ_QUIET, which it honours the same way. Many threads may call it at once.
 * hint: the byte of the block the caller is about to read, or UINT64_MAX. While block
 * headers come from disk (the last one took more than STORE_COLD_NS to read), a hint
 * makes the locate ask the kernel for the pieces around that byte together with the
 * header, so that a cold random read waits for one round trip to the disk, not two. */
/* Blocks smaller than this are never stored page-aligned: store_block_locate() refuses
 * every one of them, so a caller may not even ask. */
#define STORE_LOCATE_MIN (64u << 10)

int store_block_locate(struct store_snap *sn, const struct store_array *a, uint64_t blkno,
                       uint64_t hint, struct store_extent *out, unsigned flags);

/* Check n bytes (a block located with store_block_locate(), as mapped) against the
 * record's checksum. Returns 0 or BA_ECORRUPT. Allocates nothing, formats nothing. */
int store_block_verify(const void *p, size_t n, uint64_t checksum);

/* Check piece i of a located block (the 2^e->piece_shift bytes at e->off + (i << shift)
 * of data.mdb: those at p, as mapped by the caller, or with p NULL those LMDB's own map
 * shows) against the record's sum of that piece (read from the file, or through the map
 * with p NULL): 0, BA_ECORRUPT, or -EIO. The extent must have pieces, and the snapshot
 * that located it must still be held. Allocates nothing, formats nothing (fault
 * context). */
int store_block_verify_piece(struct store *st, const struct store_extent *e, unsigned i,
                             const void *p);

struct store_block_info {
    int present; /* 1 data, 0 hole, -1 tombstone */
    uint8_t codec, filters;
    uint32_t stored_len; /* payload bytes */
    uint32_t value_len;  /* LMDB value size (header + payload + padding) */
    uint64_t seq;        /* commit that wrote it */
};

/* Describe one block record without decoding it (for info/du/tests). */
int store_block_info(struct store_snap *sn, uint64_t array_id, uint64_t blkno,
                     struct store_block_info *out);

/* ---- changes between snapshots ------------------------------------------------ */

#define STORE_CHANGE_BLOCKS 0x1u  /* blocks [first, first+n) were written or zeroed */
#define STORE_CHANGE_META   0x2u  /* the array's metadata (shape) changed */
#define STORE_CHANGE_CREATE 0x4u  /* the array was created */
#define STORE_CHANGE_DROP   0x8u  /* the array was dropped */
#define STORE_CHANGE_CUT    0x10u /* every block >= first was zeroed (a shrink) */

struct store_change {
    uint64_t seq;
    uint64_t array_id;
    unsigned flags;
    uint64_t first; /* first block (BLOCKS, CUT) */
    uint64_t n;     /* block count (BLOCKS) */
};

/* Call cb for every change made by commits in (since, store_snap_seq(sn)], oldest
 * first. Returns 0; BA_ERANGE when change records of some of those commits were
 * pruned (the caller must assume everything changed); BA_ECORRUPT. */
int store_changes(struct store_snap *sn, uint64_t since,
                  int (*cb)(const struct store_change *c, void *ctx), void *ctx);

/* ---- write transactions -------------------------------------------------------- */

/* Begin a write transaction checked against base seq `base` (the writer's snapshot).
 * bytes_hint is an upper bound of the raw bytes the transaction will write; the map
 * is grown first if it may not hold them. Blocks other writers (process-wide and
 * across processes) until commit/abort. Writers of all processes take an flock() on
 * writer.lock in the database directory before LMDB's own write lock, so a writer
 * busy in another process is noticed without blocking inside LMDB: after
 * lock_timeout_ms the call fails with BA_EBUSY. With STORE_WRITEMAP the file's blocks
 * are allocated ahead of the pages LMDB may write through its map (here, and before
 * any write that could pass them); a full disk fails the begin or that write with
 * -ENOSPC.
 * Returns 0, BA_EREADONLY, BA_EFULL, BA_EBUSY, -ENOSPC, -errno. */
int store_txn_begin(struct store *st, uint64_t base, uint64_t bytes_hint, struct store_txn **out);

/* The seq this transaction will commit as. */
uint64_t store_txn_seq(const struct store_txn *tx);

/* Create an array: a->name, dtype, itemsize, ndim, shape, order, block_size, codec,
 * level, filters are read; id and the seq fields are set on return. Returns 0,
 * BA_EEXIST (the name exists and existed at base), BA_ECONFLICT (created by a commit
 * newer than base), BA_EINVAL (bad field). */
int store_txn_array_create(struct store_txn *tx, struct store_array *a);

/* Set the shape of array id. Returns 0, BA_ECONFLICT (metadata changed after base, or
 * the array was dropped), BA_ESHAPE, BA_ENOTFOUND (no array ever had this id). */
int store_txn_array_set_shape(struct store_txn *tx, uint64_t id, uint32_t ndim,
                              const int64_t *shape);

/* Drop array id and all its block records. Returns 0, BA_ECONFLICT (anything of it
 * changed after base, or it was dropped already by a newer commit), BA_ENOTFOUND (no
 * array ever had this id). */
int store_txn_array_drop(struct store_txn *tx, uint64_t id);

/* Create array dst_name with src's fields and shape, holding copies of src's block
 * records as of the newest state (no recompression). *out describes the new array.
 * Returns 0, BA_ENOTFOUND, BA_EEXIST, BA_ECONFLICT, STORE_EMAPFULL, -errno. */
int store_txn_array_copy(struct store_txn *tx, uint64_t src_id, const char *dst_name,
                         struct store_array *out);

/* Write block blkno of array a from raw (a->block_size bytes): compressed with the
 * array's codec, checksummed; an all-zero block leaves a tombstone if a record exists,
 * nothing otherwise. Returns 0, BA_ECONFLICT (the record was written after base and
 * not by this txn, or the array was reshaped by a newer commit so blkno lies outside
 * it), BA_ERANGE (blkno outside the array's current shape: set the shape first),
 * BA_EINVAL (a->block_size differs from the catalog's), STORE_EMAPFULL, -ENOSPC, -EIO,
 * -ENOMEM. On any error the txn is dead: abort it (further calls return BA_EFAILED).
 * raw is only read during the call. */
int store_txn_block_write(struct store_txn *tx, const struct store_array *a, uint64_t blkno,
                          const void *raw);

/* Write n blocks (ascending blkno) at once, compressing them in parallel on the store's
 * workers; raws[i] are only read during the call. Same returns as above. */
int store_txn_blocks_write(struct store_txn *tx, const struct store_array *a, size_t n,
                           const uint64_t *blknos, const void *const *raws);

/* Zero every block >= first of array a (a shrink): data records become tombstones.
 * O(records cut). Returns 0, BA_ECONFLICT (a cut record was written after base),
 * STORE_EMAPFULL, -errno. Call before writing blocks >= first in the same txn. */
int store_txn_blocks_cut(struct store_txn *tx, const struct store_array *a, uint64_t first);

/* Commit durably (unless STORE_NOSYNC): the catalog statistics, the change record,
 * and the pruning of old change records go in the same LMDB transaction. *seq_out
 * (may be NULL) gets the new seq (or the newest seq if the txn changed nothing). The
 * txn is freed in every case. Returns 0, STORE_EMAPFULL, -ENOSPC, -EIO (LMDB reports
 * a short write, e.g. on a full filesystem, as EIO), BA_EFAILED (an earlier call
 * failed and killed the txn). */
int store_txn_commit(struct store_txn *tx, uint64_t *seq_out);

/* Abort and free. NULL ok. */
void store_txn_abort(struct store_txn *tx);

/* ---- maintenance ------------------------------------------------------------------ */

struct store_problem {
    uint64_t array_id; /* 0 if none */
    const char *array; /* name or NULL */
    int64_t blkno;     /* -1 if none */
    int code;          /* BA_ECORRUPT, ... */
    const char *what;
};

/* Walk every record of the newest snapshot (see ba_db_verify()). */
int store_verify(struct store *st, void (*cb)(const struct store_problem *p, void *ctx), void *ctx,
                 uint64_t *nproblems);

/* Write a compacted copy (free pages and tombstones dropped) of the newest snapshot
 * to directory out (created; must not exist or be empty). */
int store_compact(struct store *st, const char *out);

struct store_stat {
    uint64_t last_seq, map_size, file_size, page_size, pages_used, pages_free, narrays, readers,
        change_records;
};
int store_stat(struct store *st, struct store_stat *out);

#endif /* BA_STORE_H */
