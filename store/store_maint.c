/* SPDX-License-Identifier: MIT */
/*
 * Maintenance over the newest snapshot: verify (walk every record, decode every
 * block, cross-check catalog, names index, block placement and statistics, report
 * every problem and never crash on damaged bytes), compact (a fresh copy without
 * free pages and tombstones) and stat (map, file, page and table counts).
 *
 * Walks hold the map lock and the snapshot lock for a bounded chunk of records, then
 * drop both and re-seek after the last key, so growth is never blocked for long and
 * callbacks (user code) run with no store lock held.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_internal.h"

#define WALK_RECORDS 64u
#define WALK_BYTES   (16u << 20)

/* ---- chunked walk over one DBI of a snapshot ------------------------------------------------ */

/* fn is called with the locks held; it must not call user code. Returning nonzero stops. */
typedef int (*walk_fn)(void *ctx, const MDB_val *key, const MDB_val *val);

/* Walk every record of dbi in key order. Returns 0, fn's code, or (with *lmdb_rc set)
 * the LMDB failure that stopped the walk. after_chunk runs with no lock held. */
static int walk(struct store_snap *sn, MDB_dbi dbi, walk_fn fn, void *ctx,
                int (*after_chunk)(void *ctx), int *lmdb_rc)
{
    struct store *st = sn->st;
    unsigned char last[512];
    size_t last_len = 0;
    int have_last = 0, done = 0, rc = 0;
    *lmdb_rc = 0;
    while (!done && !rc) {
        MDB_cursor *cur = NULL;
        MDB_val key, val;
        unsigned n = 0;
        size_t bytes = 0;
        store_map_rdlock(st);
        pthread_mutex_lock(&sn->lock);
        int m = mdb_cursor_open(sn->txn, dbi, &cur);
        if (!m) {
            if (have_last) {
                key.mv_size = last_len;
                key.mv_data = last;
                m = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
                if (!m && key.mv_size == last_len && !memcmp(key.mv_data, last, last_len))
                    m = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
            } else {
                m = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
            }
        }
        while (!m && !rc) {
            store_prefetch(st, &val);
            rc = fn(ctx, &key, &val);
            n++;
            bytes += val.mv_size;
            if (key.mv_size <= sizeof last) {
                memcpy(last, key.mv_data, key.mv_size);
                last_len = key.mv_size;
                have_last = 1;
            } else {
                m = MDB_CORRUPTED; /* keys are never this long */
                break;
            }
            if (n >= WALK_RECORDS || bytes >= WALK_BYTES)
                break;
            m = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        pthread_mutex_unlock(&sn->lock);
        store_map_unlock(st);
        if (m == MDB_NOTFOUND) {
            done = 1;
        } else if (m) {
            *lmdb_rc = m;
            done = 1;
        }
        if (after_chunk) {
            int e = after_chunk(ctx);
            if (!rc)
                rc = e;
        }
    }
    return rc;
}

/* ---- verify ------------------------------------------------------------------------------------ */

struct varr {
    uint64_t id;
    uint64_t nblocks;
    uint32_t block_size;
    uint64_t stored_bytes, stored_blocks; /* from the catalog */
    uint64_t seen_bytes, seen_blocks;     /* counted from block records */
    int named;                            /* the names index points at it */
    char name[BA_NAME_MAX + 1];
};

struct vproblem {
    uint64_t array_id;
    int64_t blkno;
    int code;
    int has_name;
    char name[BA_NAME_MAX + 1];
    char what[200];
};

struct verify {
    struct store *st;
    struct store_snap *sn;
    uint64_t last_seq, next_id;
    struct varr *arrs;
    size_t narrs, arrs_cap;
    struct vproblem *probs; /* queued while locks are held */
    size_t nprobs, probs_cap;
    uint64_t total;
    int oom;
    unsigned char *scratch;
    size_t scratch_cap;
    void (*cb)(const struct store_problem *p, void *ctx);
    void *ctx;
};

static struct varr *varr_find(struct verify *v, uint64_t id)
{
    size_t lo = 0, hi = v->narrs; /* arrays are walked in id order: sorted */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v->arrs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < v->narrs && v->arrs[lo].id == id ? &v->arrs[lo] : NULL;
}

static void problem(struct verify *v, uint64_t id, int64_t blkno, int code, const char *fmt, ...)
    BA_PRINTF(5, 6);
static void problem(struct verify *v, uint64_t id, int64_t blkno, int code, const char *fmt, ...)
{
    v->total++;
    if (v->nprobs == v->probs_cap) {
        size_t ncap = v->probs_cap ? 2 * v->probs_cap : 16;
        struct vproblem *p = ba_realloc(v->probs, ncap * sizeof *p);
        if (!p) {
            v->oom = 1;
            return;
        }
        v->probs = p;
        v->probs_cap = ncap;
    }
    struct vproblem *p = &v->probs[v->nprobs++];
    p->array_id = id;
    p->blkno = blkno;
    p->code = code;
    struct varr *a = id ? varr_find(v, id) : NULL;
    p->has_name = a != NULL;
    if (a)
        memcpy(p->name, a->name, sizeof p->name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->what, sizeof p->what, fmt, ap);
    va_end(ap);
}

static int flush_problems(void *ctx)
{
    struct verify *v = ctx;
    for (size_t i = 0; i < v->nprobs; i++) {
        struct vproblem *p = &v->probs[i];
        struct store_problem sp = {
            .array_id = p->array_id,
            .array = p->has_name ? p->name : NULL,
            .blkno = p->blkno,
            .code = p->code,
            .what = p->what,
        };
        if (v->cb)
            v->cb(&sp, v->ctx);
    }
    v->nprobs = 0;
    return v->oom ? -ENOMEM : 0;
}

static int verify_array(void *ctx, const MDB_val *key, const MDB_val *val)
{
    struct verify *v = ctx;
    if (key->mv_size != 8) {
        problem(v, 0, -1, BA_ECORRUPT, "catalog record with a key of %zu bytes", key->mv_size);
        return 0;
    }
    uint64_t id = store_be64_get(key->mv_data);
    struct store_array a;
    const char *why;
    if (store_arr_decode(val->mv_data, val->mv_size, &a, &why)) {
        problem(v, id, -1, BA_ECORRUPT, "catalog record of array id %llu is damaged: %s",
                (unsigned long long)id, why);
        return 0;
    }
    if (a.id != id) {
        problem(v, id, -1, BA_ECORRUPT, "catalog record under id %llu holds id %llu",
                (unsigned long long)id, (unsigned long long)a.id);
        return 0;
    }
    if (v->narrs == v->arrs_cap) {
        size_t ncap = v->arrs_cap ? 2 * v->arrs_cap : 16;
        struct varr *p = ba_realloc(v->arrs, ncap * sizeof *p);
        if (!p)
            return -ENOMEM;
        v->arrs = p;
        v->arrs_cap = ncap;
    }
    struct varr *r = &v->arrs[v->narrs++];
    memset(r, 0, sizeof *r);
    r->id = id;
    r->nblocks = store_arr_nblocks(&a);
    r->block_size = a.block_size;
    r->stored_bytes = a.stored_bytes;
    r->stored_blocks = a.stored_blocks;
    memcpy(r->name, a.name, sizeof r->name);
    if (id >= v->next_id)
        problem(v, id, -1, BA_ECORRUPT, "array id %llu is not below next_id %llu",
                (unsigned long long)id, (unsigned long long)v->next_id);
    if (a.created_seq > v->last_seq || a.meta_seq > v->last_seq || a.data_seq > v->last_seq ||
        a.meta_seq < a.created_seq)
        problem(v, id, -1, BA_ECORRUPT,
                "array '%s': commit numbers (created %llu, meta %llu, data %llu) do not fit "
                "the last commit %llu",
                a.name, (unsigned long long)a.created_seq, (unsigned long long)a.meta_seq,
                (unsigned long long)a.data_seq, (unsigned long long)v->last_seq);
    return 0;
}

static int verify_name(void *ctx, const MDB_val *key, const MDB_val *val)
{
    struct verify *v = ctx;
    int nl = (int)(key->mv_size > BA_NAME_MAX ? BA_NAME_MAX : key->mv_size);
    if (key->mv_size < 1 || key->mv_size > BA_NAME_MAX || memchr(key->mv_data, 0, key->mv_size)) {
        problem(v, 0, -1, BA_ECORRUPT, "names index entry with a bad name of %zu bytes",
                key->mv_size);
        return 0;
    }
    if (val->mv_size != 8) {
        problem(v, 0, -1, BA_ECORRUPT, "names index entry '%.*s' is damaged (length %zu)", nl,
                (const char *)key->mv_data, val->mv_size);
        return 0;
    }
    uint64_t id = store_le64_get(val->mv_data);
    struct varr *a = varr_find(v, id);
    if (!a) {
        problem(v, 0, -1, BA_ECORRUPT,
                "names index maps '%.*s' to array id %llu, which has no "
                "valid catalog record",
                nl, (const char *)key->mv_data, (unsigned long long)id);
        return 0;
    }
    if (strlen(a->name) != key->mv_size || memcmp(a->name, key->mv_data, key->mv_size)) {
        problem(v, id, -1, BA_ECORRUPT, "names index maps '%.*s' to an array named '%s'", nl,
                (const char *)key->mv_data, a->name);
        return 0;
    }
    a->named = 1;
    return 0;
}

static int verify_block(void *ctx, const MDB_val *key, const MDB_val *val)
{
    struct verify *v = ctx;
    if (key->mv_size != STORE_KEY_LEN) {
        problem(v, 0, -1, BA_ECORRUPT, "block record with a key of %zu bytes", key->mv_size);
        return 0;
    }
    uint64_t id = store_be64_get(key->mv_data);
    uint64_t blkno = store_be64_get((const unsigned char *)key->mv_data + 8);
    int64_t b = blkno > INT64_MAX ? -1 : (int64_t)blkno;
    struct varr *a = varr_find(v, id);
    if (!a) {
        problem(v, id, b, BA_ECORRUPT, "block %llu belongs to array id %llu, which does not exist",
                (unsigned long long)blkno, (unsigned long long)id);
        return 0;
    }
    struct store_blk_hdr h;
    const char *why;
    if (store_blk_hdr_parse(val->mv_data, val->mv_size, &h, &why)) {
        problem(v, id, b, BA_ECORRUPT, "array '%s' block %llu: %s", a->name,
                (unsigned long long)blkno, why);
        return 0;
    }
    if (h.seq > v->last_seq || h.seq == 0)
        problem(v, id, b, BA_ECORRUPT,
                "array '%s' block %llu: written by commit %llu, after the "
                "last commit %llu",
                a->name, (unsigned long long)blkno, (unsigned long long)h.seq,
                (unsigned long long)v->last_seq);
    if (h.flags & STORE_BLK_TOMBSTONE)
        return 0;
    a->seen_bytes += val->mv_size;
    a->seen_blocks++;
    if (blkno >= a->nblocks)
        problem(v, id, b, BA_ECORRUPT, "array '%s' block %llu lies outside its shape (%llu blocks)",
                a->name, (unsigned long long)blkno, (unsigned long long)a->nblocks);
    if (h.raw_len != a->block_size) {
        problem(v, id, b, BA_ECORRUPT, "array '%s' block %llu: raw length %u, block size %u",
                a->name, (unsigned long long)blkno, h.raw_len, a->block_size);
        return 0;
    }
    if (v->scratch_cap < a->block_size) {
        unsigned char *p = ba_realloc(v->scratch, a->block_size);
        if (!p)
            return -ENOMEM;
        v->scratch = p;
        v->scratch_cap = a->block_size;
    }
    struct store_dslot *ds = store_dpool_get(&v->st->dpool);
    int rc = store_block_decode(ds, &h, (const unsigned char *)val->mv_data + h.payload_off,
                                v->scratch, &why);
    store_dpool_put(&v->st->dpool, ds);
    if (!rc)
        rc = store_pieces_check(&h, val->mv_data, v->scratch, &why);
    if (rc)
        problem(v, id, b, BA_ECORRUPT, "array '%s' block %llu: %s", a->name,
                (unsigned long long)blkno, why);
    return 0;
}

static int verify_change(void *ctx, const MDB_val *key, const MDB_val *val)
{
    struct verify *v = ctx;
    if (key->mv_size != 8) {
        problem(v, 0, -1, BA_ECORRUPT, "change record with a key of %zu bytes", key->mv_size);
        return 0;
    }
    uint64_t seq = store_be64_get(key->mv_data);
    const char *why;
    if (seq > v->last_seq || seq == 0)
        problem(v, 0, -1, BA_ECORRUPT, "change record of commit %llu, after the last commit %llu",
                (unsigned long long)seq, (unsigned long long)v->last_seq);
    if (store_chg_decode(val->mv_data, val->mv_size, seq, NULL, NULL, &why))
        problem(v, 0, -1, BA_ECORRUPT, "change record of commit %llu: %s", (unsigned long long)seq,
                why);
    return 0;
}

static int verify_walk(struct verify *v, MDB_dbi dbi, walk_fn fn, const char *table)
{
    int lrc;
    int rc = walk(v->sn, dbi, fn, v, flush_problems, &lrc);
    if (rc)
        return rc;
    if (lrc) {
        problem(v, 0, -1, store_err_mdb_quiet(v->st, lrc),
                "LMDB stopped the walk of the %s "
                "table: %s",
                table, mdb_strerror(lrc));
        return flush_problems(v);
    }
    return 0;
}

int store_verify(struct store *st, void (*cb)(const struct store_problem *p, void *ctx), void *ctx,
                 uint64_t *nproblems)
{
    struct verify v = {.st = st, .cb = cb, .ctx = ctx};
    if (nproblems)
        *nproblems = 0;
    int rc = store_snap_begin(st, &v.sn);
    if (rc)
        return rc;
    v.last_seq = v.sn->seq;
    store_map_rdlock(st);
    pthread_mutex_lock(&v.sn->lock);
    rc = store_meta_u64(st, v.sn->txn, "next_id", &v.next_id);
    pthread_mutex_unlock(&v.sn->lock);
    store_map_unlock(st);
    if (rc) {
        problem(&v, 0, -1, rc, "%s", ba_errmsg());
        v.next_id = UINT64_MAX;
        rc = flush_problems(&v);
    }
    if (!rc)
        rc = verify_walk(&v, st->dbi_arrays, verify_array, "catalog");
    if (!rc)
        rc = verify_walk(&v, st->dbi_names, verify_name, "names");
    for (size_t i = 0; i < v.narrs && !rc; i++)
        if (!v.arrs[i].named)
            problem(&v, v.arrs[i].id, -1, BA_ECORRUPT,
                    "array '%s' is missing from the names "
                    "index",
                    v.arrs[i].name);
    if (!rc)
        rc = flush_problems(&v);
    if (!rc)
        rc = verify_walk(&v, st->dbi_blocks, verify_block, "blocks");
    for (size_t i = 0; i < v.narrs && !rc; i++) {
        struct varr *a = &v.arrs[i];
        if (a->seen_bytes != a->stored_bytes || a->seen_blocks != a->stored_blocks)
            problem(&v, a->id, -1, BA_ECORRUPT,
                    "array '%s': catalog says %llu blocks in %llu bytes, records hold %llu "
                    "blocks in %llu bytes",
                    a->name, (unsigned long long)a->stored_blocks,
                    (unsigned long long)a->stored_bytes, (unsigned long long)a->seen_blocks,
                    (unsigned long long)a->seen_bytes);
    }
    if (!rc)
        rc = flush_problems(&v);
    if (!rc)
        rc = verify_walk(&v, st->dbi_changes, verify_change, "changes");
    if (nproblems)
        *nproblems = v.total;
    store_snap_unref(v.sn);
    free(v.arrs);
    free(v.probs);
    free(v.scratch);
    if (rc == -ENOMEM)
        return ba_error_set(rc, "no memory to verify");
    return rc;
}

/* ---- compact ------------------------------------------------------------------------------------ */

struct compact {
    struct store *st;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int is_blocks;
    size_t pending; /* bytes put since the last commit */
    int rc;         /* first failure */
};

#define COMPACT_COMMIT_BYTES (256u << 20)

static int compact_put(void *ctx, const MDB_val *key, const MDB_val *val)
{
    struct compact *c = ctx;
    if (c->is_blocks) {
        struct store_blk_hdr h;
        const char *why;
        if (store_blk_hdr_parse(val->mv_data, val->mv_size, &h, &why) == 0 &&
            (h.flags & STORE_BLK_TOMBSTONE))
            return 0;
    }
    int rc = ba_inject(BA_INJ_STORE_COMPACT);
    if (rc)
        return ba_error_set(rc, "writing the compacted copy: %s", ba_strerror(rc));
    MDB_val k = *key, v = *val;
    rc = mdb_put(c->txn, c->dbi, &k, &v, MDB_APPEND);
    if (rc)
        return store_err_mdb(c->st, rc, "writing the compacted copy");
    c->pending += val->mv_size;
    return 0;
}

/* Between chunks (no source lock held): commit the output every COMPACT_COMMIT_BYTES. */
static int compact_chunk(void *ctx)
{
    struct compact *c = ctx;
    if (c->pending < COMPACT_COMMIT_BYTES)
        return 0;
    int rc = mdb_txn_commit(c->txn);
    c->txn = NULL;
    if (rc)
        return store_err_mdb(c->st, rc, "committing the compacted copy");
    c->pending = 0;
    rc = mdb_txn_begin(c->env, NULL, 0, &c->txn);
    if (rc)
        return store_err_mdb(c->st, rc, "writing the compacted copy");
    return 0;
}

static int dir_state(const char *path, int *exists)
{
    struct stat sb;
    *exists = 0;
    if (stat(path, &sb)) {
        if (errno == ENOENT)
            return 0;
        return ba_error_set(-errno, "%s: %s", path, strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode))
        return ba_error_set(BA_EEXIST, "%s exists and is not a directory", path);
    *exists = 1;
    DIR *d = opendir(path);
    if (!d)
        return ba_error_set(-errno, "%s: %s", path, strerror(errno));
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            empty = 0;
    closedir(d);
    if (!empty)
        return ba_error_set(BA_EEXIST, "%s exists and is not empty", path);
    return 0;
}

static void remove_output(const char *out, int created)
{
    size_t n = strlen(out) + 16;
    char *p = malloc(n);
    if (p) {
        snprintf(p, n, "%s/data.mdb", out);
        unlink(p);
        snprintf(p, n, "%s/lock.mdb", out);
        unlink(p);
        free(p);
    }
    if (created)
        rmdir(out);
}

int store_compact(struct store *st, const char *out)
{
    int exists, created = 0;
    int rc = dir_state(out, &exists);
    if (rc)
        return rc;
    rc = ba_inject(BA_INJ_STORE_COMPACT);
    if (rc)
        return ba_error_set(rc, "%s: cannot write the compacted copy: %s", out, ba_strerror(rc));
    if (!exists) {
        if (mkdir(out, 0777))
            return ba_error_set(-errno, "%s: cannot create: %s", out, strerror(errno));
        created = 1;
    }
    struct store_snap *sn = NULL;
    struct compact c = {.st = st};
    MDB_envinfo info;
    store_map_rdlock(st); /* mdb_env_info reads the meta pages through the map */
    mdb_env_info(st->env, &info);
    store_map_unlock(st);
    rc = store_snap_begin(st, &sn);
    if (rc)
        goto fail;
    /* The copy's map starts as the source's; where the address space cannot hold a
     * second map that big (sanitizers, ulimit -v; valgrind says EINVAL), halve it, but
     * never below what the copy can need: the source's used pages and a margin. */
    uint64_t need = (uint64_t)(info.me_last_pgno + 1) * st->psize;
    need += need / 8 + (16u << 20);
    uint64_t map = info.me_mapsize;
    int m;
    for (;;) {
        m = mdb_env_create(&c.env);
        if (!m)
            m = mdb_env_set_maxdbs(c.env, 8);
        if (!m)
            m = mdb_env_set_mapsize(c.env, (size_t)map);
        if (!m)
            m = mdb_env_open(c.env, out, MDB_NOSYNC, 0644);
        if ((m == ENOMEM || m == EINVAL) && map / 2 >= need) {
            mdb_env_close(c.env);
            c.env = NULL;
            map /= 2;
            continue;
        }
        break;
    }
    if (m) {
        rc = store_err_mdb(st, m, "creating the compacted copy");
        goto fail;
    }
    static const char *const names[] = {"meta", "names", "arrays", "blocks", "changes"};
    const MDB_dbi src[] = {st->dbi_meta, st->dbi_names, st->dbi_arrays, st->dbi_blocks,
                           st->dbi_changes};
    for (int i = 0; i < 5 && !rc; i++) {
        m = mdb_txn_begin(c.env, NULL, 0, &c.txn);
        if (!m)
            m = mdb_dbi_open(c.txn, names[i], MDB_CREATE, &c.dbi);
        if (m) {
            rc = store_err_mdb(st, m, "creating the compacted copy");
            break;
        }
        c.is_blocks = src[i] == st->dbi_blocks;
        int lrc;
        rc = walk(sn, src[i], compact_put, &c, compact_chunk, &lrc);
        if (!rc && lrc)
            rc = store_err_mdb(st, lrc, "reading the source database");
        if (!rc) {
            rc = ba_inject(BA_INJ_STORE_COMPACT);
            if (rc)
                rc = ba_error_set(rc, "committing the compacted copy: %s", ba_strerror(rc));
        }
        if (!rc) {
            m = mdb_txn_commit(c.txn);
            c.txn = NULL;
            if (m)
                rc = store_err_mdb(st, m, "committing the compacted copy");
        }
    }
    if (rc)
        goto fail;
    m = mdb_env_sync(c.env, 1);
    if (m) {
        rc = store_err_mdb(st, m, "syncing the compacted copy");
        goto fail;
    }
    mdb_env_close(c.env);
    store_snap_unref(sn);
    return 0;
fail:
    if (c.txn)
        mdb_txn_abort(c.txn);
    if (c.env)
        mdb_env_close(c.env);
    store_snap_unref(sn);
    remove_output(out, created);
    return rc;
}

/* ---- stat --------------------------------------------------------------------------------------- */

static void count_reader(const char *msg, void *ctx)
{
    /* mdb_reader_list prints a header line, then one line per live reader slot. */
    unsigned long long *n = ctx;
    unsigned pid;
    if (sscanf(msg, " %u", &pid) == 1)
        (*n)++;
}

static int reader_line(const char *msg, void *ctx)
{
    count_reader(msg, ctx);
    return 0;
}

int store_stat(struct store *st, struct store_stat *out)
{
    memset(out, 0, sizeof *out);
    MDB_envinfo info;
    store_map_rdlock(st); /* mdb_env_info reads the meta pages through the map */
    mdb_env_info(st->env, &info);
    store_map_unlock(st);
    out->map_size = info.me_mapsize;
    out->page_size = st->psize;
    int fd;
    struct stat sb;
    if (mdb_env_get_fd(st->env, &fd) == 0 && fstat(fd, &sb) == 0)
        out->file_size = (uint64_t)sb.st_blocks * 512; /* sparse with MDB_WRITEMAP */
    unsigned long long readers = 0;
    mdb_reader_list(st->env, reader_line, &readers);

    struct store_snap *sn;
    int rc = store_snap_begin(st, &sn);
    if (rc)
        return rc;
    out->readers = readers; /* counted before our own snapshot began */
    out->last_seq = sn->seq;
    uint64_t last_pgno = 0, free_pages = 0;
    store_map_rdlock(st);
    pthread_mutex_lock(&sn->lock);
    MDB_stat ms;
    int m = mdb_stat(sn->txn, st->dbi_arrays, &ms);
    if (!m) {
        out->narrays = ms.ms_entries;
        m = mdb_stat(sn->txn, st->dbi_changes, &ms);
    }
    if (!m)
        out->change_records = ms.ms_entries;
    MDB_cursor *cur = NULL;
    if (!m)
        m = mdb_cursor_open(sn->txn, 0 /* FREE_DBI */, &cur);
    if (!m) {
        MDB_val k, v;
        int r = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (!r) {
            if (v.mv_size >= sizeof(size_t)) {
                size_t cnt;
                memcpy(&cnt, v.mv_data, sizeof cnt);
                free_pages += cnt;
            }
            r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        if (r != MDB_NOTFOUND)
            m = r;
        mdb_cursor_close(cur);
    }
    mdb_env_info(st->env, &info);
    last_pgno = info.me_last_pgno;
    pthread_mutex_unlock(&sn->lock);
    store_map_unlock(st);
    store_snap_unref(sn);
    if (m)
        return store_err_mdb(st, m, "reading statistics");
    out->pages_free = free_pages;
    out->pages_used = last_pgno + 1 >= free_pages ? last_pgno + 1 - free_pages : 0;
    return 0;
}
