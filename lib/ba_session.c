/* SPDX-License-Identifier: MIT */
/*
 * Sessions and transactions: the session's snapshot and the loads that read it,
 * the metadata log, commit, abort, and invalidation at transaction boundaries.
 *
 * Snapshots and loads
 *
 *   Every array object's pager file loads blocks through session_load(), which reads
 *   the snapshot current at that moment. Commit and abort swap the snapshot pointer
 *   under load_mu, in the same critical section as the arrays' load state (cut,
 *   zero-fill, record) that belongs with it, and then wait until no load still uses
 *   the old snapshot before unreferencing it: fault context never drops the last
 *   reference to a read transaction.
 *
 *       fault thread                       API thread (commit/abort)
 *       lock load_mu
 *       sr = cur; sr->inflight++
 *       unlock
 *       store_block_read(sr->snap ...)     lock load_mu; cur = new
 *                                          while (old->inflight) wait(load_cv)
 *       lock; --inflight == 0: signal ---> (wakes) unlock
 *       unlock                             store_snap_unref(old)
 *
 *   A load that read the old snapshot finishes with old bytes; the invalidation that
 *   follows the swap makes the pager redo it (pager_file_invalidate() redoes loads in
 *   flight), so no stale block survives a boundary.
 *
 * Commit (docs/architecture.md, "Sessions and commits"), for every array changed:
 *
 *   1. store_txn_begin(base = the session's snapshot seq, bytes_hint).
 *   2. Metadata: the log of creates, copies and drops in the order they were made, then
 *      the new shape of every other array that changed shape.
 *   3. Cuts: store_txn_blocks_cut() for arrays shrunk in this transaction, before any
 *      block write.
 *   4. Dirty blocks through pager_writeout, in batches of at most
 *      PAGER_WRITEOUT_WINDOW, with store_txn_blocks_write(). Blocks past the end of
 *      the array are not written; the tail block is written with zeros past the end
 *      (from a scratch copy, so the bytes past the end are zeroed without touching a
 *      mapping or dirtying a clean tail).
 *   5. store_txn_commit().
 *   6. New snapshot; swap it in (with the arrays' new load state); invalidate what
 *      other commits changed since the old snapshot; pager_writeout_end(committed);
 *      read the arrays' new records; invalidate again what commits newer than ours
 *      changed (those blocks were still dirty, hence kept, at the first pass); drop
 *      cached blocks past the ends.
 *
 *   Any failure in 1-5 aborts the store transaction and ends the writeouts
 *   uncommitted: every change stays in the session for a retry or an abort.
 *   STORE_EMAPFULL restarts the whole commit (the store grows its map at the next
 *   begin) a few times before reporting BA_EFULL. A failure in 6 after the durable
 *   commit (no snapshot can be taken) ends the writeouts uncommitted, which keeps the
 *   session's view consistent, and makes the session fail with BA_EFAILED until an
 *   abort moves it to the new snapshot.
 *
 * Conflicts are decided by the store (first committer wins), including a block
 * written past the end of an array that a newer commit reshaped.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ba_internal.h"

#define COMMIT_MAPFULL_RETRIES      4
#define SNAPSHOT_AFTER_COMMIT_TRIES 3

/* ---- references ------------------------------------------------------------------ */

static int snapref_new(struct ba_db *db, struct ba_snapref **out)
{
    struct ba_snapref *sr = ba_calloc(1, sizeof *sr);
    if (!sr)
        return ba_error_set(-ENOMEM, "out of memory for a snapshot");
    int rc = store_snap_begin(db->store, &sr->snap);
    if (rc) {
        free(sr);
        return ba_error_pass(rc, "database '%s': cannot begin a snapshot: %s", db->path,
                             ba_strerror(rc));
    }
    sr->seq = store_snap_seq(sr->snap);
    *out = sr;
    return 0;
}

static void snapref_free(struct ba_snapref *sr)
{
    if (!sr)
        return;
    store_snap_unref(sr->snap);
    free(sr);
}

BA_API int ba_session_begin(ba_db *db, ba_session **out)
{
    if (!db || !out)
        return ba_error_set(BA_EINVAL, "ba_session_begin: NULL argument");
    *out = NULL;
    struct ba_session *s = ba_calloc(1, sizeof *s);
    if (!s)
        return ba_error_set(-ENOMEM, "ba_session_begin: out of memory");
    int rc = snapref_new(db, &s->cur);
    if (rc) {
        free(s);
        return rc;
    }
    s->nref = 1;
    s->seq = s->cur->seq;
    s->valid_seq = s->seq;
    s->db = db;
    db_ref(db);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->load_mu, NULL);
    pthread_cond_init(&s->load_cv, NULL);
    *out = s;
    return 0;
}

void session_ref(struct ba_session *s)
{
    __atomic_add_fetch(&s->nref, 1, __ATOMIC_RELAXED);
}

static void session_destroy(struct ba_session *s)
{
    /* No handle and no mapping is left, so no load is in flight. */
    while (s->arrays) {
        struct ba_array *a = s->arrays;
        s->arrays = a->next;
        array_destroy(a);
    }
    free(s->ops);
    snapref_free(s->cur);
    pthread_cond_destroy(&s->load_cv);
    pthread_mutex_destroy(&s->load_mu);
    pthread_mutex_destroy(&s->mu);
    struct ba_db *db = s->db;
    free(s);
    db_unref(db);
}

void session_unref(struct ba_session *s)
{
    if (s && !__atomic_sub_fetch(&s->nref, 1, __ATOMIC_ACQ_REL))
        session_destroy(s);
}

int session_check(struct ba_session *s, int writing)
{
    if (s->ended && writing)
        return ba_error_set(BA_EINVAL, "the session was ended: it takes no more changes");
    if (s->failed)
        return ba_error_set(BA_EFAILED, "an earlier failure left the session unusable; abort it");
    if (writing && (s->db->flags & BA_DB_RDONLY))
        return ba_error_set(BA_EREADONLY, "database '%s' is open read-only", s->db->path);
    return 0;
}

BA_API uint64_t ba_session_snapshot(const ba_session *s)
{
    return __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
}

/* ---- loads (fault context) ---------------------------------------------------------- */

int session_load(void *ctx, uint64_t blkno, void *buf)
{
    struct ba_array *a = ctx;
    struct ba_session *s = a->s;
    struct store_array rd;
    pthread_mutex_lock(&s->load_mu);
    if (a->ld_zero || blkno >= a->ld_cut) {
        uint32_t bs = a->ld_rd.block_size;
        pthread_mutex_unlock(&s->load_mu);
        memset(buf, 0, bs);
        return 0;
    }
    struct ba_snapref *sr = s->cur;
    sr->inflight++;
    rd = a->ld_rd;
    pthread_mutex_unlock(&s->load_mu);

    int rc = store_block_read(sr->snap, &rd, blkno, buf, STORE_READ_QUIET);

    pthread_mutex_lock(&s->load_mu);
    if (!--sr->inflight)
        pthread_cond_broadcast(&s->load_cv);
    pthread_mutex_unlock(&s->load_mu);
    return rc;
}

int session_locate(void *ctx, uint64_t blkno, struct pager_extent *out)
{
    struct ba_array *a = ctx;
    struct ba_session *s = a->s;
    struct store_array rd;
    pthread_mutex_lock(&s->load_mu);
    if (a->ld_zero || blkno >= a->ld_cut) {
        pthread_mutex_unlock(&s->load_mu);
        return BA_ENOTFOUND; /* zeros: session_load fills them */
    }
    struct ba_snapref *sr = s->cur;
    sr->inflight++;
    rd = a->ld_rd;
    pthread_mutex_unlock(&s->load_mu);

    struct store_extent e;
    int rc = store_block_locate(sr->snap, &rd, blkno, out->hint, &e, STORE_READ_QUIET);
    if (!rc)
        *out = (struct pager_extent){.fd = e.fd,
                                     .off = e.off,
                                     .tag = e.checksum,
                                     .piece_shift = e.piece_shift,
                                     .piece_tag = e.sums_off};

    pthread_mutex_lock(&s->load_mu);
    if (!--sr->inflight)
        pthread_cond_broadcast(&s->load_cv);
    pthread_mutex_unlock(&s->load_mu);
    return rc;
}

int session_verify(void *ctx, uint64_t blkno, const void *p, uint64_t tag)
{
    const struct ba_array *a = ctx;
    (void)blkno;
    return store_block_verify(p, pager_file_block_size(a->pf), tag);
}

int session_verify_piece(void *ctx, uint64_t blkno, const struct pager_extent *e, unsigned i)
{
    const struct ba_array *a = ctx;
    (void)blkno;
    struct store_extent se = {
        .fd = e->fd, .off = e->off, .piece_shift = e->piece_shift, .sums_off = e->piece_tag};
    return store_block_verify_piece(a->s->db->store, &se, i, NULL);
}

void session_set_cut(struct ba_session *s, struct ba_array *a, uint64_t cut)
{
    pthread_mutex_lock(&s->load_mu);
    a->ld_cut = cut;
    pthread_mutex_unlock(&s->load_mu);
}

/* Release the snapshot a move swapped out: only once the session's cached blocks were
 * invalidated up to the new one (ba_internal.h, "Snapshots and zero-copy mappings"):
 * DIRECT blocks may still show pages that only the old snapshot pins until then. */
static void snap_release(struct ba_session *s, struct ba_snapref *old)
{
    assert(!old || s->valid_seq == s->cur->seq);
    (void)s;
    snapref_free(old);
}

/* Swap in a new snapshot (caller holds load_mu) and wait until no load uses the old
 * one; returns the old one for the caller to release (snap_release) after
 * invalidating. */
static struct ba_snapref *snap_swap_locked(struct ba_session *s, struct ba_snapref *nw)
{
    struct ba_snapref *old = s->cur;
    s->cur = nw;
    __atomic_store_n(&s->seq, nw->seq, __ATOMIC_RELAXED);
    while (old->inflight)
        pthread_cond_wait(&s->load_cv, &s->load_mu);
    return old;
}

/* ---- the metadata log -------------------------------------------------------------- */

int session_log_op(struct ba_session *s, enum meta_op_kind kind, struct ba_array *arr)
{
    if (s->nops == s->cap_ops) {
        size_t cap = s->cap_ops ? 2 * s->cap_ops : 8;
        struct meta_op *ops = ba_realloc(s->ops, cap * sizeof *ops);
        if (!ops)
            return ba_error_set(-ENOMEM, "out of memory for the session's metadata log");
        s->ops = ops;
        s->cap_ops = cap;
    }
    s->ops[s->nops].kind = kind;
    s->ops[s->nops++].arr = arr;
    return 0;
}

void session_unlog(struct ba_session *s, struct ba_array *arr)
{
    size_t j = 0;
    for (size_t i = 0; i < s->nops; i++)
        if (s->ops[i].arr != arr)
            s->ops[j++] = s->ops[i];
    s->nops = j;
}

/* ---- boundaries: refresh, invalidate, prune ------------------------------------------ */

static int array_cmp_id(const void *x, const void *y)
{
    const struct ba_array *a = *(struct ba_array *const *)x, *b = *(struct ba_array *const *)y;
    return a->sa.id < b->sa.id ? -1 : a->sa.id > b->sa.id;
}

struct change_vec {
    struct store_change *v;
    size_t n, cap;
    int nomem;
};

static int change_collect(const struct store_change *c, void *ctx)
{
    struct change_vec *cv = ctx;
    if (cv->n == cv->cap) {
        size_t cap = cv->cap ? 2 * cv->cap : 64;
        struct store_change *v = ba_realloc(cv->v, cap * sizeof *v);
        if (!v) {
            cv->nomem = 1;
            return 1;
        }
        cv->v = v;
        cv->cap = cap;
    }
    cv->v[cv->n++] = *c;
    return 0;
}

static void invalidate_all(struct ba_session *s)
{
    for (struct ba_array *a = s->arrays; a; a = a->next)
        pager_file_invalidate(a->pf, 0, UINT64_MAX);
}

/* Drop cached blocks that commits in (since, sn->seq] other than skip_seq changed, in
 * the arrays this session has open. When the change records are gone (BA_ERANGE) or
 * cannot be read, drop every clean cached block instead: never a stale read. Never
 * fails: the old snapshot may be released only after it returned. */
static void session_invalidate(struct ba_session *s, uint64_t since, struct ba_snapref *sn,
                               uint64_t skip_seq)
{
    s->valid_seq = sn->seq;
    if (since >= sn->seq)
        return;
    struct change_vec cv = {0};
    int rc = store_changes(sn->snap, since, change_collect, &cv);
    size_t narr = 0;
    for (struct ba_array *a = s->arrays; a; a = a->next)
        narr++;
    struct ba_array **idx = narr ? ba_malloc(narr * sizeof *idx) : NULL;
    if (rc || cv.nomem || (narr && !idx)) {
        invalidate_all(s);
        goto out;
    }
    narr = 0;
    for (struct ba_array *a = s->arrays; a; a = a->next)
        if (a->sa.id && !(a->state & ARR_STALE))
            idx[narr++] = a;
    if (narr)
        qsort(idx, narr, sizeof *idx, array_cmp_id);
    for (size_t i = 0; i < cv.n; i++) {
        const struct store_change *c = &cv.v[i];
        if (c->seq == skip_seq)
            continue;
        struct ba_array key = {.sa.id = c->array_id}, *kp = &key;
        struct ba_array **hit = narr ? bsearch(&kp, idx, narr, sizeof *idx, array_cmp_id) : NULL;
        if (!hit)
            continue;
        if (c->flags & STORE_CHANGE_BLOCKS)
            pager_file_invalidate((*hit)->pf, c->first, c->n);
        if (c->flags & STORE_CHANGE_CUT)
            pager_file_invalidate((*hit)->pf, c->first, UINT64_MAX);
        /* The records of a dropped array are gone: drop what is cached of it now, even
         * if reading the new catalog fails below (zero-copy mappings must not outlive
         * the old snapshot). */
        if (c->flags & STORE_CHANGE_DROP)
            pager_file_invalidate((*hit)->pf, 0, UINT64_MAX);
        /* META and DROP: session_refresh_meta() reads the new records. */
    }
out:
    free(idx);
    free(cv.v);
}

/* Make an array gone for good: handles fail, views read zeros. */
static void array_make_stale(struct ba_session *s, struct ba_array *a)
{
    pthread_mutex_lock(&s->load_mu);
    a->ld_zero = 1;
    pthread_mutex_unlock(&s->load_mu);
    a->state = ARR_STALE;
    pager_file_discard(a->pf, 0, UINT64_MAX);
}

/* Read every open array's record from the new snapshot: shapes changed by others
 * appear, arrays dropped by others become stale. */
static int session_refresh_meta(struct ba_session *s)
{
    int rc = 0;
    for (struct ba_array *a = s->arrays; a; a = a->next) {
        if (a->state & ARR_STALE)
            continue;
        struct store_array rec;
        int r = store_array_by_id(s->cur->snap, a->sa.id, &rec);
        if (r == BA_ENOTFOUND) {
            array_make_stale(s, a);
            continue;
        }
        if (r) {
            rc = ba_error_pass(r, "array '%s': cannot read its record: %s", a->sa.name,
                               ba_strerror(r));
            continue;
        }
        a->sa = rec;
        a->base = rec;
        a->meta_dirty = 0;
    }
    return rc;
}

/* Free array objects nobody references any more (nothing uncommitted is left in them
 * at a boundary). */
static void session_prune(struct ba_session *s)
{
    pthread_mutex_lock(&s->mu);
    for (struct ba_array **pp = &s->arrays; *pp;) {
        struct ba_array *a = *pp;
        if (__atomic_load_n(&a->nref, __ATOMIC_ACQUIRE) == 0) {
            *pp = a->next;
            array_destroy(a);
        } else {
            pp = &a->next;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* Undo the transaction's changes in the arrays' state and caches. take_snapshot:
 * also move to the newest snapshot (abort); otherwise keep it (end). */
static int session_rollback(struct ba_session *s, int take_snapshot)
{
    struct ba_snapref *nw = NULL, *old = NULL;
    if (take_snapshot) {
        int rc = snapref_new(s->db, &nw);
        if (rc)
            return rc;
    }
    for (struct ba_array *a = s->arrays; a; a = a->next)
        a->discard_pending = !(a->state & ARR_STALE) && array_is_dirty(a);
    /* What loads return changes first, then cached copies are dropped (a load in
     * flight in between is redone by the discard). */
    pthread_mutex_lock(&s->load_mu);
    for (struct ba_array *a = s->arrays; a; a = a->next) {
        a->ld_cut = BA_NO_CUT;
        if (a->state & (ARR_NEW | ARR_COPY))
            a->ld_zero = 1;
    }
    uint64_t old_seq = s->cur->seq;
    if (nw)
        old = snap_swap_locked(s, nw);
    pthread_mutex_unlock(&s->load_mu);

    for (struct ba_array *a = s->arrays; a; a = a->next) {
        if (a->state & (ARR_NEW | ARR_COPY)) {
            a->state = ARR_STALE;
            pager_file_discard(a->pf, 0, UINT64_MAX);
            continue;
        }
        a->state &= ~(unsigned)ARR_DROPPED;
        if (a->discard_pending)
            pager_file_discard(a->pf, 0, UINT64_MAX);
        a->discard_pending = 0;
        if (!(a->state & ARR_STALE)) {
            a->sa = a->base;
            a->meta_dirty = 0;
        }
    }
    pthread_mutex_lock(&s->mu);
    s->nops = 0;
    pthread_mutex_unlock(&s->mu);
    int rc = 0;
    if (nw) {
        s->failed = 0;
        rc = session_refresh_meta(s);
        session_invalidate(s, old_seq, s->cur, 0);
        if (rc)
            s->failed = BA_EFAILED;
    }
    session_prune(s);
    snap_release(s, old);
    return rc;
}

BA_API int ba_session_abort(ba_session *s)
{
    if (!s)
        return ba_error_set(BA_EINVAL, "ba_session_abort: NULL session");
    if (s->ended)
        return ba_error_set(BA_EINVAL, "the session was ended");
    return session_rollback(s, 1);
}

BA_API void ba_session_end(ba_session *s)
{
    if (!s)
        return;
    if (!s->ended) {
        s->ended = 1;
        session_rollback(s, 0);
    }
    session_unref(s);
}

static int session_has_changes(struct ba_session *s)
{
    if (s->nops)
        return 1;
    for (struct ba_array *a = s->arrays; a; a = a->next)
        if (!(a->state & ARR_STALE) && array_is_dirty(a))
            return 1;
    return 0;
}

BA_API int ba_session_dirty(const ba_session *s)
{
    return session_has_changes((struct ba_session *)(uintptr_t)s);
}

/* ---- commit ---------------------------------------------------------------------- */

struct commit_item {
    struct ba_array *a;
    struct store_array target; /* the record blocks are written to (new id for NEW/COPY) */
    struct pager_writeout *wo;
    uint64_t discard_from; /* dirty blocks >= this lay past the end: drop after commit */
    int tail_fixed;        /* the tail block was written zeroed past the end */
};

struct commit {
    struct ba_session *s;
    struct commit_item *items;
    size_t n;
    struct store_txn *tx;
    uint64_t seq; /* the commit's seq, once committed */
};

static struct commit_item *commit_item_of(struct commit *c, struct ba_array *a)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->items[i].a == a)
            return &c->items[i];
    return NULL;
}

static int commit_plan(struct commit *c)
{
    struct ba_session *s = c->s;
    size_t n = 0;
    for (struct ba_array *a = s->arrays; a; a = a->next)
        n += !(a->state & ARR_STALE) && array_is_dirty(a);
    c->items = ba_calloc(n ? n : 1, sizeof *c->items);
    if (!c->items)
        return ba_error_set(-ENOMEM, "commit: out of memory");
    for (struct ba_array *a = s->arrays; a; a = a->next)
        if (!(a->state & ARR_STALE) && array_is_dirty(a))
            c->items[c->n++].a = a;
    return 0;
}

static uint64_t commit_bytes_hint(struct commit *c)
{
    uint64_t hint = 1u << 20;
    for (size_t i = 0; i < c->n; i++) {
        struct ba_array *a = c->items[i].a;
        if (a->state & ARR_DROPPED)
            continue;
        hint += pager_file_dirty_count(a->pf) * ((uint64_t)a->sa.block_size + 4096);
        if (a->state & ARR_COPY)
            hint += a->base.stored_bytes + a->base.stored_blocks * 4096;
    }
    return hint;
}

static int shape_equal(const struct store_array *x, uint32_t ndim, const int64_t *shape)
{
    return x->ndim == ndim && !memcmp(x->shape, shape, ndim * sizeof *shape);
}

/* A copy must copy what the session saw: the store copies the source's newest
 * records, so a source changed by a commit newer than the session's snapshot is a
 * conflict. While the transaction is open no other commit can happen, so a snapshot
 * taken now shows the newest state. */
static int commit_copy_check(struct commit *c, struct ba_array *a)
{
    struct store_snap *sn;
    int rc = store_snap_begin(c->s->db->store, &sn);
    if (rc)
        return ba_error_pass(rc, "commit: cannot read the newest state: %s", ba_strerror(rc));
    struct store_array src;
    rc = store_array_by_id(sn, a->copy_src, &src);
    store_snap_unref(sn);
    uint64_t changed = src.meta_seq > src.data_seq ? src.meta_seq : src.data_seq;
    if (rc == BA_ENOTFOUND || (!rc && changed > c->s->seq))
        return ba_error_set(BA_ECONFLICT,
                            "commit: array '%s', the source of the copy '%s', was %s by a "
                            "commit newer than this session's snapshot %llu",
                            a->base.name, a->sa.name, rc ? "dropped" : "changed",
                            (unsigned long long)c->s->seq);
    if (rc)
        return ba_error_pass(rc, "commit: cannot read array '%s': %s", a->base.name,
                             ba_strerror(rc));
    return 0;
}

/* Step 2: the metadata log, then shapes of the other arrays. */
static int commit_metadata(struct commit *c)
{
    struct ba_session *s = c->s;
    int rc;
    for (size_t i = 0; i < s->nops; i++) {
        struct ba_array *a = s->ops[i].arr;
        struct commit_item *it = commit_item_of(c, a);
        assert(it); /* every array in the log has changes, hence an item */
        switch (s->ops[i].kind) {
        case META_CREATE:
            it->target = a->sa;
            rc = store_txn_array_create(c->tx, &it->target);
            if (rc)
                return ba_error_pass(rc, "commit: cannot create array '%s': %s", a->sa.name,
                                     ba_strerror(rc));
            break;
        case META_COPY:
            if ((rc = commit_copy_check(c, a)))
                return rc;
            rc = store_txn_array_copy(c->tx, a->copy_src, a->sa.name, &it->target);
            if (rc)
                return ba_error_pass(rc, "commit: cannot copy array '%s' to '%s': %s", a->base.name,
                                     a->sa.name, ba_strerror(rc));
            if (!shape_equal(&it->target, a->sa.ndim, a->sa.shape)) {
                rc = store_txn_array_set_shape(c->tx, it->target.id, a->sa.ndim, a->sa.shape);
                if (rc)
                    return ba_error_pass(rc, "commit: cannot set the shape of '%s': %s", a->sa.name,
                                         ba_strerror(rc));
                it->target.ndim = a->sa.ndim;
                memcpy(it->target.shape, a->sa.shape, sizeof a->sa.shape);
            }
            break;
        case META_DROP:
            rc = store_txn_array_drop(c->tx, a->sa.id);
            if (rc == BA_ENOTFOUND)
                rc = ba_error_set(BA_ECONFLICT,
                                  "commit: array '%s' (id %llu) was dropped by a commit newer "
                                  "than this session's snapshot %llu",
                                  a->sa.name, (unsigned long long)a->sa.id,
                                  (unsigned long long)s->seq);
            if (rc)
                return ba_error_pass(rc, "commit: cannot drop array '%s': %s", a->sa.name,
                                     ba_strerror(rc));
            break;
        }
    }
    for (size_t i = 0; i < c->n; i++) {
        struct commit_item *it = &c->items[i];
        struct ba_array *a = it->a;
        if (a->state & (ARR_NEW | ARR_COPY | ARR_DROPPED))
            continue;
        it->target = a->sa;
        if (!a->meta_dirty)
            continue;
        rc = store_txn_array_set_shape(c->tx, a->sa.id, a->sa.ndim, a->sa.shape);
        if (rc)
            return ba_error_pass(rc, "commit: cannot set the shape of array '%s': %s", a->sa.name,
                                 ba_strerror(rc));
    }
    return 0;
}

static int flush_batch(struct commit *c, struct commit_item *it, size_t n, const uint64_t *blknos,
                       const void *const *raws)
{
    if (!n)
        return 0;
    int rc = store_txn_blocks_write(c->tx, &it->target, n, blknos, raws);
    if (rc)
        return ba_error_pass(rc, "commit: array '%s': writing blocks %llu..%llu failed: %s",
                             it->a->sa.name, (unsigned long long)blknos[0],
                             (unsigned long long)blknos[n - 1], ba_strerror(rc));
    return 0;
}

/* Step 4 for one array. The writeout stays open until the store commit decides. */
static int commit_blocks(struct commit *c, struct commit_item *it)
{
    struct ba_array *a = it->a;
    if (!pager_file_dirty_count(a->pf))
        return 0;
    uint32_t bs = a->sa.block_size;
    uint64_t nbytes = array_nbytes(a);
    uint64_t nblocks = blocks_for(nbytes, bs), tail_blk = nbytes / bs;
    size_t tail_off = (size_t)(nbytes % bs);
    int rc = pager_writeout_begin(a->pf, &it->wo);
    if (rc) {
        it->wo = NULL;
        return ba_error_pass(rc, "commit: array '%s': cannot start the writeout: %s", a->sa.name,
                             ba_strerror(rc));
    }
    uint64_t blknos[PAGER_WRITEOUT_WINDOW];
    const void *raws[PAGER_WRITEOUT_WINDOW];
    size_t n = 0;
    unsigned calls = 0; /* writeout_next calls since the batch's first pointer */
    void *scratch = NULL;
    for (;;) {
        /* A pointer stays valid for PAGER_WRITEOUT_WINDOW further calls: write the
         * batch before its first pointer could expire. */
        if (n && calls >= PAGER_WRITEOUT_WINDOW - 1) {
            if ((rc = flush_batch(c, it, n, blknos, raws)))
                goto out;
            n = 0;
        }
        uint64_t blk;
        const void *data;
        rc = pager_writeout_next(it->wo, &blk, &data);
        if (rc < 0) {
            rc = ba_error_pass(rc, "commit: array '%s': cannot read a dirty block back: %s",
                               a->sa.name, ba_strerror(rc));
            goto out;
        }
        if (rc == 0)
            break;
        calls = n ? calls + 1 : 0;
        if (blk >= nblocks) {
            if (it->discard_from > nblocks)
                it->discard_from = nblocks;
            continue;
        }
        if (blk == tail_blk && tail_off &&
            !mem_is_zero((const char *)data + tail_off, bs - tail_off)) {
            scratch = ba_malloc(bs);
            if (!scratch) {
                rc = ba_error_set(-ENOMEM, "commit: out of memory for the tail block of '%s'",
                                  a->sa.name);
                goto out;
            }
            memcpy(scratch, data, tail_off);
            memset((char *)scratch + tail_off, 0, bs - tail_off);
            data = scratch;
            it->tail_fixed = 1;
        }
        blknos[n] = blk;
        raws[n++] = data;
    }
    rc = flush_batch(c, it, n, blknos, raws);
out:
    free(scratch);
    return rc;
}

static void commit_end_writeouts(struct commit *c, int committed)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->items[i].wo) {
            pager_writeout_end(c->items[i].wo, committed);
            c->items[i].wo = NULL;
        }
}

/* Steps 1-5. On failure nothing is written and every change stays. */
static int commit_once(struct commit *c)
{
    struct ba_session *s = c->s;
    for (size_t i = 0; i < c->n; i++) {
        c->items[i].discard_from = UINT64_MAX;
        c->items[i].tail_fixed = 0;
    }
    int rc = store_txn_begin(s->db->store, s->seq, commit_bytes_hint(c), &c->tx);
    if (rc) {
        c->tx = NULL;
        return ba_error_pass(rc, "commit: cannot begin a write transaction: %s", ba_strerror(rc));
    }
    if ((rc = commit_metadata(c)))
        goto fail;
    for (size_t i = 0; i < c->n; i++) {
        struct commit_item *it = &c->items[i];
        struct ba_array *a = it->a;
        if (a->state & (ARR_NEW | ARR_DROPPED) || a->ld_cut == BA_NO_CUT)
            continue;
        rc = store_txn_blocks_cut(c->tx, &it->target, a->ld_cut);
        if (rc) {
            rc = ba_error_pass(rc, "commit: array '%s': cutting blocks from %llu failed: %s",
                               a->sa.name, (unsigned long long)a->ld_cut, ba_strerror(rc));
            goto fail;
        }
    }
    for (size_t i = 0; i < c->n; i++) {
        if (c->items[i].a->state & ARR_DROPPED)
            continue;
        if ((rc = commit_blocks(c, &c->items[i])))
            goto fail;
    }
    rc = store_txn_commit(c->tx, &c->seq);
    c->tx = NULL;
    if (rc) {
        rc = ba_error_pass(rc, "commit failed: %s", ba_strerror(rc));
        goto fail;
    }
    return 0;

fail:
    store_txn_abort(c->tx);
    c->tx = NULL;
    commit_end_writeouts(c, 0);
    return rc;
}

/* Step 6: the commit is durable; move the session onto it. */
static int commit_finish(struct commit *c)
{
    struct ba_session *s = c->s;
    struct ba_snapref *nw = NULL, *old;
    /* A failure here leaves the session behind its own durable commit: worth a few
     * tries (an allocation failure or a reader slot may well clear). */
    int rc = 0;
    for (int tries = 0; tries < SNAPSHOT_AFTER_COMMIT_TRIES; tries++)
        if (!(rc = snapref_new(s->db, &nw)))
            break;
    if (rc) {
        /* Keeping the blocks dirty keeps the session's view consistent (its old
         * snapshot plus its own, now committed, changes) until an abort. */
        commit_end_writeouts(c, 0);
        s->failed = BA_EFAILED;
        return ba_error_set(BA_EFAILED,
                            "the changes were committed durably as commit %llu, but the "
                            "session cannot move to a new snapshot (%s); abort the session "
                            "to continue",
                            (unsigned long long)c->seq, ba_strerror(rc));
    }
    uint64_t old_seq = s->seq;
    pthread_mutex_lock(&s->load_mu);
    for (size_t i = 0; i < c->n; i++) {
        struct ba_array *a = c->items[i].a;
        a->ld_cut = BA_NO_CUT;
        if (a->state & ARR_DROPPED) {
            a->ld_zero = 1;
        } else if (a->state & (ARR_NEW | ARR_COPY)) {
            a->ld_rd = c->items[i].target;
            a->ld_zero = 0;
        }
    }
    old = snap_swap_locked(s, nw);
    pthread_mutex_unlock(&s->load_mu);

    for (size_t i = 0; i < c->n; i++) {
        struct ba_array *a = c->items[i].a;
        if (a->state & ARR_DROPPED) {
            a->state = ARR_STALE;
            pager_file_discard(a->pf, 0, UINT64_MAX);
        } else if (a->state & (ARR_NEW | ARR_COPY)) {
            /* A copy read its source's records until now: blocks mapped zero-copy show
             * the source's pages, which later invalidations (keyed by the copy's own id)
             * would never drop. Drop them now; they map the copy's records next time.
             * (Its dirty blocks, being written, stay.) */
            if (a->state & ARR_COPY)
                pager_file_invalidate(a->pf, 0, UINT64_MAX);
            a->sa.id = c->items[i].target.id;
            a->state = 0;
        }
    }
    pthread_mutex_lock(&s->mu);
    s->nops = 0;
    pthread_mutex_unlock(&s->mu);
    session_invalidate(s, old_seq, nw, c->seq);
    commit_end_writeouts(c, 1);
    /* After the writeouts end: an array a newer commit dropped is discarded whole. */
    rc = session_refresh_meta(s);
    if (nw->seq > c->seq)
        session_invalidate(s, c->seq, nw, 0);
    for (size_t i = 0; i < c->n; i++) {
        struct commit_item *it = &c->items[i];
        if (it->a->state & ARR_STALE)
            continue;
        if (it->discard_from != UINT64_MAX)
            pager_file_discard(it->a->pf, it->discard_from, UINT64_MAX);
        if (it->tail_fixed)
            pager_file_invalidate(it->a->pf, array_nbytes(it->a) / it->a->sa.block_size, 1);
    }
    session_prune(s);
    snap_release(s, old);
    if (rc) {
        s->failed = BA_EFAILED;
        return ba_error_set(BA_EFAILED,
                            "the changes were committed durably as commit %llu, but reading "
                            "the new state failed (%s); abort the session to continue",
                            (unsigned long long)c->seq, ba_error_msg());
    }
    return 0;
}

BA_API int ba_session_commit(ba_session *s)
{
    if (!s)
        return ba_error_set(BA_EINVAL, "ba_session_commit: NULL session");
    int rc = session_check(s, 0);
    if (rc)
        return rc;
    if (!session_has_changes(s))
        return session_rollback(s, 1);
    if (s->db->flags & BA_DB_RDONLY)
        return ba_error_set(BA_EREADONLY,
                            "cannot commit: database '%s' is open read-only (abort to drop "
                            "the changes)",
                            s->db->path);
    struct commit c = {.s = s};
    if ((rc = commit_plan(&c)))
        return rc;
    for (int attempt = 0; attempt < COMMIT_MAPFULL_RETRIES; attempt++) {
        rc = commit_once(&c);
        if (rc != STORE_EMAPFULL)
            break;
    }
    if (rc == STORE_EMAPFULL)
        rc = ba_error_set(BA_EFULL,
                          "commit: the database map of '%s' stayed full after %d attempts to "
                          "grow it; nothing was written",
                          s->db->path, COMMIT_MAPFULL_RETRIES);
    if (!rc)
        rc = commit_finish(&c);
    free(c.items);
    return rc;
}
