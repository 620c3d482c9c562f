/* SPDX-License-Identifier: MIT */
/*
 * lib/ internals: the structs behind the public handles and the functions the lib/
 * files call in each other. lib/ joins store/ (bytes on disk) and pager/ (RAM and
 * address space): every (session, array) pair gets one pager file whose ops.load
 * reads the session's current store snapshot.
 *
 * Objects and references
 *
 *   ba_db        one store + one pager. nref: the users' opens (ba_db_open() of a
 *                path already open in this process returns the same handle) + one
 *                per live session.
 *   ba_session   one snapshot (struct ba_snapref) and the array objects opened or
 *                created in it (a list the session owns). nref: the user's reference
 *                + one per open array handle + one per live mapping (view, DLPack).
 *   ba_array     per-session array object, shared by every handle of that name in
 *                the session; owns one pager file. nref counts handles and mappings;
 *                the session frees objects with nref 0 at transaction boundaries and
 *                when it is destroyed, so no object is freed while the session is in
 *                a call (the thread rules make boundaries exclusive).
 *   ba_mapping   one pager mapping (or none, for empty views) + an array reference.
 *                nref: the view + every DLPack tensor exported from it.
 *
 *   view/tensor --> mapping --> array object --> (owned by) session --> db
 *
 * Locks (lock order top to bottom; none is held while touching a pager mapping, so
 * a fault can never wait for a lock its own thread holds)
 *
 *   db_registry_mu   the process's list of open databases (ba_db.c)
 *   session.mu       the session's array list and metadata log; taken by API calls
 *                    that may run concurrently in one session (open, create, copy,
 *                    list, view)
 *   session.load_mu  leaf: the current snapshot pointer, its in-flight load count,
 *                    and every array's ld_* fields. Taken in fault context by
 *                    ops.load, only for a few loads and stores: no allocation, no
 *                    I/O and no memory access that can fault happens under it.
 *
 * Fault context (ops.load: a SIGSEGV handler, the userfaultfd service thread or a
 * readahead worker) runs session_load(), session_locate(), session_verify() and
 * session_verify_piece() only: they allocate nothing, format no message and never drop the last reference to
 * anything. A snapshot is freed by the API thread after it is swapped out and its
 * in-flight count drops to zero.
 *
 * Snapshots and zero-copy mappings
 *
 *   With zero-copy (the pager's DIRECT blocks) a view shows pages of data.mdb itself:
 *   the pages of a block record that session_locate() found in the session's snapshot.
 *   LMDB reuses a page only once no reader's snapshot contains it, so those pages stay
 *   as they are while a snapshot in which the record is live is held. A session holds
 *   exactly one snapshot except while moving (commit, abort), and moves in this order
 *   (session_rollback(), commit_finish() in ba_session.c):
 *
 *     1. take the new snapshot and swap it in (loads and locates now read it);
 *     2. invalidate every block another commit changed between the two snapshots
 *        (session_invalidate(): change records, or everything when they were pruned;
 *        a dropped array whole; a cut from its first cut block), dropped arrays made
 *        stale and discarded; pager_file_invalidate() unmaps DIRECT blocks at once and
 *        makes a locate in flight start over;
 *     3. only then release the old snapshot (snap_release() asserts, in debug
 *        builds, that the invalidation reached the new snapshot).
 *
 *   After step 2 every DIRECT block left is one whose record no commit between the
 *   snapshots touched: the same record, the same overflow pages (LMDB copies a value's
 *   overflow pages only when the value itself is written), live in the new snapshot,
 *   which now pins them. The session's own commit writes only blocks that are dirty in
 *   its pager (never DIRECT) and cuts only blocks it discarded at the shrink; its
 *   drops discard the array. An array copied in the transaction read its source's
 *   records (DIRECT blocks of the source's pages, which no later change record of the
 *   copy would name): its commit drops the copy's clean blocks. Closing an array
 *   (pager_file_close) unmaps everything before session_destroy() releases the last
 *   snapshot.
 *
 *   Growth of LMDB's map (mdb_env_set_mapsize) moves LMDB's own mapping, not the file:
 *   DIRECT blocks map the file descriptor of data.mdb, so they stay valid. LMDB never
 *   shrinks data.mdb on Linux.
 */
#ifndef BA_INTERNAL_H
#define BA_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "ba_common.h"
#include "bigarray.h"
#include "pager.h"
#include "store.h"

#define BA_NO_CUT UINT64_MAX

/* ---- databases (ba_db.c) ------------------------------------------------------------ */

struct ba_db {
    int nref;       /* atomic */
    unsigned flags; /* BA_DB_* */
    struct store *store;
    struct pager *pager;
    char *path;
    dev_t dev; /* identity of the directory in the registry */
    ino_t ino;
    pid_t pid; /* process that opened it (a forked child never reuses the handle) */
    struct ba_db *next;
};

void db_ref(struct ba_db *db);
void db_unref(struct ba_db *db);
/* Copy a filled output struct (its first field a size_t size) into the caller's,
 * which may be an older, smaller version: the caller's size field says how much. */
int struct_copy_out(void *dst, const void *src, size_t full);

/* ---- sessions (ba_session.c) -------------------------------------------------------- */

/* A store snapshot and the loads reading it right now. */
struct ba_snapref {
    struct store_snap *snap;
    uint64_t seq;
    unsigned inflight; /* loads using snap now; under session.load_mu */
};

enum meta_op_kind {
    META_CREATE = 1, /* create arr (its shape at commit time) */
    META_COPY,       /* create arr as a copy of arr->copy_src */
    META_DROP        /* drop arr->sa.id */
};

/* The session's metadata edits, replayed in order at commit. */
struct meta_op {
    enum meta_op_kind kind;
    struct ba_array *arr; /* in the session's list while the op exists */
};

struct ba_session {
    int nref; /* atomic */
    struct ba_db *db;
    pthread_mutex_t mu;
    pthread_mutex_t load_mu;
    pthread_cond_t load_cv; /* a snapshot's inflight count dropped to zero */
    struct ba_snapref *cur; /* written under load_mu by commit/abort only */
    uint64_t seq;           /* cur->seq, for API-context readers */
    uint64_t valid_seq;     /* cached blocks were invalidated up to this snapshot */
    struct ba_array *arrays;
    struct meta_op *ops;
    size_t nops, cap_ops;
    int failed; /* sticky BA_EFAILED state: nonzero until a successful abort */
    int ended;  /* ba_session_end() was called */
};

void session_ref(struct ba_session *s);
void session_unref(struct ba_session *s);
/* 0 when the session may take new work, else a code with its message set. */
int session_check(struct ba_session *s, int writing);
/* pager ops.load of every array object: see the fault-context rules above. */
int session_load(void *ctx, uint64_t blkno, void *buf);
/* pager ops.locate / ops.verify (zero-copy): where the session's snapshot keeps a raw
 * block in data.mdb (store_block_locate()), and its checksum check. Same rules. */
int session_locate(void *ctx, uint64_t blkno, struct pager_extent *out);
int session_verify(void *ctx, uint64_t blkno, const void *p, uint64_t tag);
int session_verify_piece(void *ctx, uint64_t blkno, const struct pager_extent *e, unsigned i);
/* Append an op to the metadata log (caller holds s->mu). */
int session_log_op(struct ba_session *s, enum meta_op_kind kind, struct ba_array *arr);
/* Remove every op naming arr (caller holds s->mu). */
void session_unlog(struct ba_session *s, struct ba_array *arr);
/* Set an array's fault-context state under load_mu. */
void session_set_cut(struct ba_session *s, struct ba_array *a, uint64_t cut);

/* ---- arrays (ba_array.c) ------------------------------------------------------------ */

enum {
    ARR_NEW = 0x1,     /* created in this transaction (not in the snapshot) */
    ARR_COPY = 0x2,    /* created as a copy of copy_src in this transaction */
    ARR_DROPPED = 0x4, /* dropped in this transaction; abort revives it */
    ARR_STALE = 0x8    /* gone for good: handles fail with BA_ESTALE, views read zeros */
};

struct ba_array {
    int nref; /* atomic: handles + mappings */
    struct ba_session *s;
    struct ba_array *next;
    struct pager_file *pf;
    unsigned state;          /* ARR_* */
    int meta_dirty;          /* shape differs from base's */
    int discard_pending;     /* scratch flag of session_rollback() */
    uint64_t copy_src;       /* ARR_COPY: id of the source */
    ba_dtype dtype;          /* parsed from sa.dtype */
    struct store_array sa;   /* metadata as the session sees it; id 0 while NEW/COPY */
    struct store_array base; /* as of the snapshot (NEW/COPY: as created) */
    /* Fault-context state, under s->load_mu (written only by exclusive API calls, which
     * may also read it without the lock). */
    int ld_zero;              /* loads fill zeros (new in this txn, or stale) */
    uint64_t ld_cut;          /* blocks >= ld_cut load as zeros (a shrink), or BA_NO_CUT */
    struct store_array ld_rd; /* the record loads read blocks of */
};

/* Number of bytes of a shape; -1 when a dim is negative, or when the product of the
 * nonzero dims times itemsize exceeds INT64_MAX (numpy's "array is too big"). */
int64_t layout_nbytes(uint32_t itemsize, int ndim, const int64_t *shape);
/* numpy's strides of a contiguous C or F array (a zero dim counts as 1). */
void layout_strides(char order, uint32_t itemsize, int ndim, const int64_t *shape,
                    int64_t *strides);
static inline uint64_t blocks_for(uint64_t nbytes, uint32_t bs)
{
    return nbytes / bs + (nbytes % bs != 0);
}
uint64_t array_nbytes(const struct ba_array *a);
/* Nonzero when the array has changes of any kind in the session's transaction. */
int array_is_dirty(struct ba_array *a);
/* Free an array object (nref 0, no mapping left); the caller unlinked it. */
void array_destroy(struct ba_array *a);
/* Check that a handle may be used (not stale, dropped, or in a failed session). */
int array_check(struct ba_array *a, int writing);

/* ---- views (ba_view.c) -------------------------------------------------------------- */

struct ba_mapping {
    int nref; /* atomic: the view + exported tensors */
    struct ba_array *arr;
    struct pager_mapping *pm; /* NULL for an empty view */
    int readonly;             /* mapped with BA_VIEW_READONLY */
};

void mapping_ref(struct ba_mapping *m);
void mapping_unref(struct ba_mapping *m);

/* ---- small helpers ------------------------------------------------------------------ */

/* Check a caller-filled dtype (ba_dtype.c). Returns 0 or BA_EDTYPE. */
int dtype_check(const ba_dtype *dt);
/* Set an error whose message is "array 'name': <what>: <the lower layer's message>". */
int array_error(const struct ba_array *a, int code, const char *fmt, ...) BA_PRINTF(3, 4);

/* Nonzero when the n bytes at p are all zero. */
int mem_is_zero(const void *p, size_t n);

#endif /* BA_INTERNAL_H */
