/* SPDX-License-Identifier: MIT */
/*
 * Opening and closing a database: the directory, the LMDB environment (MDB_NOTLS,
 * stale-reader cleanup, named DBIs), the format record and its version rule, the
 * process-wide registry that refuses to open one environment twice in a process
 * (LMDB's POSIX locks would break), the map lock and map growth (mdb_env_set_mapsize
 * remaps, so it runs only with every map access excluded), and the translation of
 * LMDB codes into bigarray codes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"

#define STORE_DEFAULT_MAP     (1ull << 40)
#define STORE_DEFAULT_KEEP    100000u
#define STORE_DEFAULT_READERS 1024u
#define STORE_MIN_DEFAULT_MAP (1ull << 30) /* smallest fallback of the default map */

/* ---- errors ---------------------------------------------------------------------------- */

static int mdb_to_ba(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_MAP_FULL:
        return STORE_EMAPFULL;
    case MDB_READERS_FULL:
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
    case MDB_DBS_FULL:
    case MDB_TLS_FULL:
        return BA_EFULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
        return BA_ECORRUPT;
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE:
        return BA_ENOTDB;
    case MDB_NOTFOUND:
        return BA_ENOTFOUND;
    case MDB_KEYEXIST:
        return BA_EEXIST;
    case MDB_MAP_RESIZED:
        return BA_EBUSY;
    case MDB_PANIC:
    case MDB_BAD_TXN:
        return -EIO;
    case MDB_BAD_VALSIZE:
    case MDB_BAD_RSLOT:
    case MDB_BAD_DBI:
        return BA_EINVAL;
    default:
        break;
    }
    if (rc > 0 && rc < 4096)
        return -rc;
    return -EIO;
}

int store_err_mdb_quiet(struct store *st, int rc)
{
    if (rc == MDB_MAP_FULL && st)
        __atomic_store_n(&st->grow_wanted, 1, __ATOMIC_RELAXED);
    return mdb_to_ba(rc);
}

int store_err_mdb(struct store *st, int rc, const char *what)
{
    int code = store_err_mdb_quiet(st, rc);
    const char *path = st ? st->path : "?";
    if (rc == MDB_MAP_FULL)
        return ba_error_set(code,
                            "%s: %s: the LMDB map is full (it grows at the next "
                            "transaction)",
                            path, what);
    return ba_error_set(code, "%s: %s: %s", path, what, mdb_strerror(rc));
}

/* ---- the registry of open environments -------------------------------------------------- */

/* LMDB: "do not open the same environment twice in one process" (closing one handle
 * drops the other's POSIX locks). Entries of another pid were inherited over fork()
 * and do not count: the child may open the database anew. */
struct reg_entry {
    uint64_t dev, ino;
    pid_t pid;
    struct reg_entry *next;
};
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reg_entry *reg_head;

static int registry_add(uint64_t dev, uint64_t ino)
{
    pid_t me = getpid();
    pthread_mutex_lock(&reg_lock);
    for (struct reg_entry *e = reg_head; e; e = e->next)
        if (e->dev == dev && e->ino == ino && e->pid == me) {
            pthread_mutex_unlock(&reg_lock);
            return BA_EBUSY;
        }
    struct reg_entry *e = ba_malloc(sizeof *e);
    if (!e) {
        pthread_mutex_unlock(&reg_lock);
        return -ENOMEM;
    }
    e->dev = dev;
    e->ino = ino;
    e->pid = me;
    e->next = reg_head;
    reg_head = e;
    pthread_mutex_unlock(&reg_lock);
    return 0;
}

static void registry_remove(uint64_t dev, uint64_t ino)
{
    pid_t me = getpid();
    pthread_mutex_lock(&reg_lock);
    for (struct reg_entry **pp = &reg_head; *pp; pp = &(*pp)->next) {
        struct reg_entry *e = *pp;
        if (e->dev == dev && e->ino == ino && e->pid == me) {
            *pp = e->next;
            free(e);
            break;
        }
    }
    pthread_mutex_unlock(&reg_lock);
}

/* ---- map lock and growth ------------------------------------------------------------------ */

void store_map_rdlock(struct store *st)
{
    pthread_rwlock_rdlock(&st->map_lock);
}

void store_map_unlock(struct store *st)
{
    pthread_rwlock_unlock(&st->map_lock);
}

/* Records smaller than this are read with the page that holds their start. */
#define PREFETCH_MIN (16u << 10)
/* Sequential reads: a record starting at most PREFETCH_NEAR past the end of the last one
 * asks for PREFETCH_AHEAD more (the kernel's readahead window on this machine). */
#define PREFETCH_NEAR  (4u << 20)
#define PREFETCH_AHEAD (8u << 20)

void store_prefetch(struct store *st, const MDB_val *v)
{
    if (!(st->flags & STORE_WRITEMAP) || v->mv_size < PREFETCH_MIN)
        return;
    uintptr_t p = (uintptr_t)v->mv_data;
    uintptr_t base = __atomic_load_n(&st->map_base, __ATOMIC_RELAXED);
    if (!base) {
        /* Learn where the map is from this record's overflow page, whose header starts
         * with its page number (this reads that one page). */
        uint64_t pgno;
        uint32_t pages;
        if (store_overflow_run(st, v, &pgno, &pages) || pgno > (p - STORE_OVERFLOW_HDR) / st->psize)
            return;
        base = p - STORE_OVERFLOW_HDR - (uintptr_t)pgno * st->psize;
        __atomic_store_n(&st->map_base, base, __ATOMIC_RELAXED);
        return;
    }
    int fd;
    if (p <= base || mdb_env_get_fd(st->env, &fd))
        return;
    /* A record that starts near where the last one ended is a sequential read: ask
     * for PREFETCH_AHEAD more, as the kernel's readahead would, once per window. */
    uint64_t off = p - base, end = off + v->mv_size;
    uint64_t last = __atomic_exchange_n(&st->pf_last, end, __ATOMIC_RELAXED);
    uint64_t done = __atomic_load_n(&st->pf_done, __ATOMIC_RELAXED);
    uint64_t from = off, to = end;
    if (off >= last && off - last <= PREFETCH_NEAR) {
        if (done > from && done <= end + PREFETCH_AHEAD)
            from = done;
        to = end + PREFETCH_AHEAD;
        if (from >= end && to - from < PREFETCH_AHEAD / 2)
            return; /* most of the window is on its way already */
        __atomic_store_n(&st->pf_done, to, __ATOMIC_RELAXED);
    }
    posix_fadvise(fd, (off_t)from, (off_t)(to - from), POSIX_FADV_WILLNEED);
}

static int map_set(struct store *st, uint64_t size)
{
    /* With MDB_WRITEMAP, LMDB sets the file's size to the map's: never ask for less
     * than the file has, where another process's writer may be at work (adopting
     * with size 0 would take the last committed size). */
    int fd;
    struct stat sb;
    if ((st->flags & STORE_WRITEMAP) && mdb_env_get_fd(st->env, &fd) == 0 && fstat(fd, &sb) == 0) {
        MDB_envinfo info;
        mdb_env_info(st->env, &info);
        if (!size && (uint64_t)sb.st_size > info.me_mapsize)
            size = (uint64_t)sb.st_size;
        if (size && size < (uint64_t)sb.st_size)
            size = (uint64_t)sb.st_size;
    }
    pthread_rwlock_wrlock(&st->map_lock);
    __atomic_store_n(&st->map_base, 0, __ATOMIC_RELAXED); /* the map may move */
    int rc = mdb_env_set_mapsize(st->env, (size_t)size);
    pthread_rwlock_unlock(&st->map_lock);
    return rc;
}

int store_map_adopt(struct store *st)
{
    int rc = map_set(st, 0);
    if (rc)
        return store_err_mdb(st, rc, "adopting the map size another process set");
    return 0;
}

/* Under write_lock, before the LMDB write txn begins: make room for `hint` more bytes,
 * and double the map if the last transaction hit MDB_MAP_FULL. */
static int map_grow(struct store *st, uint64_t hint)
{
    MDB_envinfo info;
    mdb_env_info(st->env, &info);
    uint64_t cur = info.me_mapsize;
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * st->psize;
    uint64_t want = used + hint + hint / 8 + (1u << 20);
    int full = __atomic_exchange_n(&st->grow_wanted, 0, __ATOMIC_RELAXED);
    if (want <= cur && !full)
        return 0;
    uint64_t next = cur * 2;
    if (next < want)
        next = want;
    next = (next + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
    int rc = map_set(st, next);
    if (rc) {
        return ba_error_set(BA_EFULL, "%s: cannot grow the LMDB map from %llu to %llu bytes: %s",
                            st->path, (unsigned long long)cur, (unsigned long long)next,
                            mdb_strerror(rc));
    }
    return 0;
}

int store_map_prepare(struct store *st, uint64_t hint)
{
    return map_grow(st, hint);
}

/* ---- meta records ---------------------------------------------------------------------------- */

int store_meta_u64(struct store *st, MDB_txn *txn, const char *key, uint64_t *out)
{
    MDB_val k = {strlen(key), (void *)(uintptr_t)key}, v;
    int rc = mdb_get(txn, st->dbi_meta, &k, &v);
    if (rc)
        return rc == MDB_NOTFOUND
                   ? ba_error_set(BA_ECORRUPT, "%s: meta record '%s' is missing", st->path, key)
                   : store_err_mdb(st, rc, "reading a meta record");
    if (v.mv_size != 8)
        return ba_error_set(BA_ECORRUPT, "%s: meta record '%s' has length %zu, not 8", st->path,
                            key, v.mv_size);
    *out = store_le64_get(v.mv_data);
    return 0;
}

static void format_encode(unsigned char *d)
{
    memcpy(d, STORE_FORMAT_MAGIC, 8);
    store_le32_put(d + 8, STORE_FORMAT_VERSION);
    store_le32_put(d + 12, 0);
    store_le64_put(d + 16, store_hash(d, 16));
}

static int format_check(struct store *st, const MDB_val *v)
{
    const unsigned char *d = v->mv_data;
    if (v->mv_size < 16 || memcmp(d, STORE_FORMAT_MAGIC, 8))
        return ba_error_set(BA_ENOTDB, "%s: LMDB environment without bigarray's format record",
                            st->path);
    uint32_t version = store_le32_get(d + 8);
    if (version > STORE_FORMAT_VERSION)
        return ba_error_set(BA_EVERSION,
                            "%s: database format version %u is newer than this library's "
                            "(%u); upgrade bigarray to open it",
                            st->path, version, STORE_FORMAT_VERSION);
    if (v->mv_size != STORE_FORMAT_LEN || store_le64_get(d + 16) != store_hash(d, 16) ||
        version == 0)
        return ba_error_set(BA_ECORRUPT, "%s: the format record is damaged", st->path);
    return 0;
}

/* ---- opening ----------------------------------------------------------------------------------- */

void store_opts_init(struct store_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->lock_timeout_ms = -1;
}

/* The inter-process writer lock. LMDB's own write lock is a mutex in lock.mdb that
 * cannot be tried, so a writer busy in another process would block mdb_txn_begin()
 * for as long as that process takes. Every bigarray writer first takes an flock() on
 * writer.lock (released by the kernel if the process dies), which can be tried and
 * timed out. A foreign LMDB writer (mdb_load, ...) does not take it; then
 * mdb_txn_begin() still waits for LMDB's lock. */
int store_writer_lock(struct store *st)
{
    if (st->wlock_fd < 0)
        return 0;
    if (st->lock_timeout_ms < 0) {
        while (flock(st->wlock_fd, LOCK_EX) != 0)
            if (errno != EINTR)
                return ba_error_set(-errno, "%s: locking writer.lock: %s", st->path,
                                    strerror(errno));
        return 0;
    }
    uint64_t start = ba_now_ns();
    uint64_t limit = (uint64_t)st->lock_timeout_ms * 1000000u;
    long nap_us = 500;
    for (;;) {
        if (flock(st->wlock_fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno != EWOULDBLOCK && errno != EINTR)
            return ba_error_set(-errno, "%s: locking writer.lock: %s", st->path, strerror(errno));
        uint64_t waited = ba_now_ns() - start;
        if (waited >= limit)
            return ba_error_set(BA_EBUSY,
                                "%s: locked: another process is writing (waited %lld ms for it)",
                                st->path, (long long)st->lock_timeout_ms);
        uint64_t left_us = (limit - waited) / 1000u;
        struct timespec ts = {
            0, 1000 * (long)((uint64_t)nap_us < left_us ? (uint64_t)nap_us : left_us)};
        nanosleep(&ts, NULL);
        if (nap_us < 20000)
            nap_us *= 2;
    }
}

void store_writer_unlock(struct store *st)
{
    if (st->wlock_fd >= 0)
        flock(st->wlock_fd, LOCK_UN);
}

const char *store_path(const struct store *st)
{
    return st->path;
}

int store_readonly(const struct store *st)
{
    return (st->flags & STORE_RDONLY) != 0;
}

static const char *const dbi_names[] = {"meta", "names", "arrays", "blocks", "changes"};

static MDB_dbi *dbi_slot(struct store *st, int i)
{
    MDB_dbi *slots[] = {&st->dbi_meta, &st->dbi_names, &st->dbi_arrays, &st->dbi_blocks,
                        &st->dbi_changes};
    return slots[i];
}

/* Create the DBIs and the initial meta records in an empty environment. */
static int db_init(struct store *st)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc)
        return store_err_mdb(st, rc, "beginning the creating transaction");
    if (st->flags & STORE_WRITEMAP) {
        /* Room for what this transaction writes through the map (see store_reserve;
         * LMDB's write lock is held, so no other writer is at work past the end). */
        MDB_envinfo ei;
        mdb_env_info(st->env, &ei);
        uint64_t end = ((uint64_t)ei.me_last_pgno + 1) * st->psize;
        rc = store_reserve(st, end, end + (256u << 10));
        if (rc) {
            mdb_txn_abort(txn);
            return rc;
        }
    }
    /* Re-check inside the write txn: another process may have created it meanwhile. */
    MDB_dbi main_dbi;
    MDB_stat ms;
    rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (!rc)
        rc = mdb_stat(txn, main_dbi, &ms);
    if (rc) {
        mdb_txn_abort(txn);
        return store_err_mdb(st, rc, "reading the main database");
    }
    int fresh = ms.ms_entries == 0;
    for (int i = 0; i < 5; i++) {
        rc = mdb_dbi_open(txn, dbi_names[i], fresh ? MDB_CREATE : 0, dbi_slot(st, i));
        if (rc) {
            mdb_txn_abort(txn);
            if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE)
                return ba_error_set(
                    BA_ENOTDB, "%s: LMDB environment without bigarray's format record", st->path);
            return store_err_mdb(st, rc, "creating the named databases");
        }
    }
    if (fresh) {
        unsigned char fmt[STORE_FORMAT_LEN], zero[8], one[8];
        format_encode(fmt);
        store_le64_put(zero, 0);
        store_le64_put(one, 1);
        struct {
            const char *k;
            void *v;
            size_t n;
        } recs[] = {{"format", fmt, sizeof fmt}, {"seq", zero, 8}, {"next_id", one, 8}};
        for (size_t i = 0; i < 3 && !rc; i++) {
            MDB_val k = {strlen(recs[i].k), (void *)(uintptr_t)recs[i].k};
            MDB_val v = {recs[i].n, recs[i].v};
            rc = mdb_put(txn, st->dbi_meta, &k, &v, 0);
        }
        if (rc) {
            mdb_txn_abort(txn);
            return store_err_mdb(st, rc, "writing the format record");
        }
    }
    rc = mdb_txn_commit(txn);
    if (rc)
        return store_err_mdb(st, rc, "committing the new database");
    return 0;
}

/* Open the DBIs of an existing database and check its format record. Returns 0,
 * BA_ENOTFOUND when the environment holds nothing yet (caller may create it). */
static int db_attach(struct store *st)
{
    MDB_txn *txn;
    int rc;
    store_map_rdlock(st);
    rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    if (rc) {
        store_map_unlock(st);
        return store_err_mdb(st, rc, "beginning a read transaction");
    }
    MDB_dbi main_dbi;
    MDB_stat ms;
    rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (!rc)
        rc = mdb_stat(txn, main_dbi, &ms);
    if (rc) {
        rc = store_err_mdb(st, rc, "reading the main database");
        goto out;
    }
    if (ms.ms_entries == 0) {
        rc = BA_ENOTFOUND;
        goto out;
    }
    for (int i = 0; i < 5; i++) {
        rc = mdb_dbi_open(txn, dbi_names[i], 0, dbi_slot(st, i));
        if (rc) {
            if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE)
                rc = ba_error_set(
                    BA_ENOTDB, "%s: LMDB environment without bigarray's format record", st->path);
            else
                rc = store_err_mdb(st, rc, "opening the named databases");
            goto out;
        }
        if (i == 0) {
            MDB_val k = {6, (void *)(uintptr_t) "format"}, v;
            rc = mdb_get(txn, st->dbi_meta, &k, &v);
            if (rc == MDB_NOTFOUND) {
                rc = ba_error_set(
                    BA_ENOTDB, "%s: LMDB environment without bigarray's format record", st->path);
                goto out;
            }
            if (rc) {
                rc = store_err_mdb(st, rc, "reading the format record");
                goto out;
            }
            rc = format_check(st, &v);
            if (rc)
                goto out;
        }
    }
    uint64_t x;
    rc = store_meta_u64(st, txn, "seq", &x);
    if (!rc)
        rc = store_meta_u64(st, txn, "next_id", &x);
    if (rc)
        goto out;
    rc = mdb_txn_commit(txn); /* keeps the DBI handles */
    txn = NULL;
    if (rc)
        rc = store_err_mdb(st, rc, "opening the named databases");
out:
    if (txn)
        mdb_txn_abort(txn);
    store_map_unlock(st);
    return rc;
}

/* Is the directory empty (ignoring a lock.mdb left by LMDB)? */
static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "lock.mdb"))
            empty = 0;
    closedir(d);
    return empty;
}

/* Check the path before LMDB sees it: a directory holding data.mdb, or (with
 * STORE_CREATE) a missing or empty directory. *create is set when initialising. */
static int path_check(const char *path, unsigned flags, int *create)
{
    struct stat sb;
    *create = 0;
    if (stat(path, &sb)) {
        if (errno != ENOENT)
            return ba_error_set(-errno, "%s: %s", path, strerror(errno));
        if (!(flags & STORE_CREATE) || (flags & STORE_RDONLY))
            return ba_error_set(BA_ENOTFOUND, "%s: no such database", path);
        if (mkdir(path, 0777) && errno != EEXIST)
            return ba_error_set(-errno, "%s: cannot create the directory: %s", path,
                                strerror(errno));
        *create = 1;
        return 0;
    }
    if (!S_ISDIR(sb.st_mode))
        return ba_error_set(BA_ENOTDB, "%s: not a bigarray database (not a directory)", path);
    size_t n = strlen(path) + 16;
    char *data = ba_malloc(n);
    if (!data)
        return ba_error_set(-ENOMEM, "no memory");
    snprintf(data, n, "%s/data.mdb", path);
    int rc = stat(data, &sb);
    int err = errno;
    free(data);
    if (rc) {
        if (err != ENOENT)
            return ba_error_set(-err, "%s/data.mdb: %s", path, strerror(err));
        if (!dir_is_empty(path))
            return ba_error_set(BA_ENOTDB, "%s: not a bigarray database (no data.mdb)", path);
        if (!(flags & STORE_CREATE) || (flags & STORE_RDONLY))
            return ba_error_set(BA_ENOTFOUND, "%s: no database in this directory", path);
        *create = 1;
        return 0;
    }
    if (!S_ISREG(sb.st_mode))
        return ba_error_set(BA_ENOTDB, "%s: not a bigarray database (data.mdb is not a file)",
                            path);
    if (sb.st_size == 0 && !(flags & STORE_CREATE))
        return ba_error_set(BA_ENOTDB, "%s: not a bigarray database (empty data.mdb)", path);
    return 0;
}

static unsigned ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* Create and open the LMDB environment; on failure nothing is left (st->env NULL).
 * Returns an LMDB code. */
static int env_try_open(struct store *st, const char *path, unsigned eflags, uint64_t map,
                        unsigned max_readers)
{
    int rc = mdb_env_create(&st->env);
    if (rc) {
        st->env = NULL;
        return rc;
    }
    mdb_env_set_maxdbs(st->env, 8);
    mdb_env_set_maxreaders(st->env, max_readers ? max_readers : STORE_DEFAULT_READERS);
    rc = mdb_env_set_mapsize(st->env, (size_t)map);
    if (!rc)
        rc = mdb_env_open(st->env, path, eflags, 0644);
    if (rc) {
        mdb_env_close(st->env);
        st->env = NULL;
    }
    return rc;
}

/* Is path/data.mdb already open in this process? */
static int registry_busy(const char *path)
{
    size_t n = strlen(path) + 16;
    char *data = ba_malloc(n);
    if (!data)
        return 0; /* the check after opening still catches it */
    snprintf(data, n, "%s/data.mdb", path);
    struct stat sb;
    int busy = 0;
    if (stat(data, &sb) == 0) {
        pid_t me = getpid();
        pthread_mutex_lock(&reg_lock);
        for (struct reg_entry *e = reg_head; e; e = e->next)
            if (e->dev == (uint64_t)sb.st_dev && e->ino == (uint64_t)sb.st_ino && e->pid == me)
                busy = 1;
        pthread_mutex_unlock(&reg_lock);
    }
    free(data);
    return busy;
}

int store_open(const char *path, const struct store_opts *o, struct store **out)
{
    struct store_opts def;
    if (!o) {
        store_opts_init(&def);
        o = &def;
    }
    *out = NULL;
    if (!path || !*path)
        return ba_error_set(BA_EINVAL, "empty database path");
    if (o->size < sizeof(struct store_opts))
        return ba_error_set(BA_EINVAL, "store_opts.size is %zu, expected %zu", o->size,
                            sizeof(struct store_opts));
    int rc = ba_inject(BA_INJ_STORE_OPEN);
    if (rc)
        return ba_error_set(rc, "%s: cannot open: %s", path, ba_strerror(rc));
    int create;
    rc = path_check(path, o->flags, &create);
    if (rc)
        return rc;

    struct store *st = ba_calloc(1, sizeof *st);
    if (!st)
        return ba_error_set(-ENOMEM, "no memory for a store");
    st->path = ba_strdup(path);
    if (!st->path) {
        free(st);
        return ba_error_set(-ENOMEM, "no memory for a store");
    }
    st->flags = o->flags;
    if (st->flags & STORE_RDONLY)
        st->flags &= ~STORE_WRITEMAP; /* LMDB would truncate the file it may not write */
    st->wlock_fd = -1;
    st->lock_timeout_ms = o->lock_timeout_ms;
    st->change_keep = o->change_keep ? o->change_keep : STORE_DEFAULT_KEEP;
    st->class_steps = 8;
    const char *cls = getenv("BIGARRAY_STORE_CLASSES"); /* benchmark knob, see format.md */
    if (cls && *cls)
        st->class_steps = (unsigned)strtoul(cls, NULL, 10);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&st->map_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&st->write_lock, &ma);
    pthread_mutexattr_destroy(&ma);
    unsigned nworkers = o->workers ? o->workers : ncpus();
    store_workers_init(&st->workers, nworkers);

    rc = store_dpool_init(&st->dpool, 2 * ncpus() + 2);
    if (rc)
        goto fail_locks;

    /* Refuse a second open in this process before LMDB maps or locks anything. */
    if (registry_busy(path)) {
        rc = ba_error_set(BA_EBUSY, "%s: the database is already open in this process", path);
        goto fail_pool;
    }
    unsigned eflags = MDB_NOTLS;
    if (o->flags & STORE_RDONLY)
        eflags |= MDB_RDONLY;
    if (o->flags & STORE_NOSYNC)
        eflags |= MDB_NOSYNC;
    if (st->flags & STORE_WRITEMAP)
        eflags |= MDB_WRITEMAP | MDB_NORDAHEAD; /* see store_prefetch() */
    uint64_t map = o->map_size ? o->map_size : STORE_DEFAULT_MAP;
    for (;;) {
        rc = env_try_open(st, path, eflags, map, o->max_readers);
        /* The default map is only address space: where that is restricted (ulimit -v,
         * sanitizers), start smaller; the map grows on demand anyway. valgrind refuses
         * mappings past its own limit (32 GiB) with EINVAL rather than ENOMEM. With
         * MDB_WRITEMAP LMDB sets the file's size to the map's, which a file system with
         * a smaller file size limit refuses with EFBIG. */
        if ((rc == ENOMEM || rc == EINVAL || rc == EFBIG) && !o->map_size &&
            map > STORE_MIN_DEFAULT_MAP) {
            map /= 2;
            continue;
        }
        break;
    }
    if (rc) {
        if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
            rc =
                ba_error_set(BA_ENOTDB, "%s: not a bigarray database (%s)", path, mdb_strerror(rc));
        else if (rc == ENOENT)
            rc = ba_error_set(BA_ENOTFOUND, "%s: no such database", path);
        else
            rc = store_err_mdb(st, rc, "opening the LMDB environment");
        goto fail_pool;
    }
    int fd;
    struct stat sb;
    if (mdb_env_get_fd(st->env, &fd) == 0 && fstat(fd, &sb) == 0) {
        st->dev = (uint64_t)sb.st_dev;
        st->ino = (uint64_t)sb.st_ino;
    }
    rc = registry_add(st->dev, st->ino);
    if (rc) {
        rc = rc == BA_EBUSY
                 ? ba_error_set(rc, "%s: the database is already open in this process", path)
                 : ba_error_set(rc, "no memory");
        goto fail_env;
    }
    MDB_stat ms;
    mdb_env_stat(st->env, &ms);
    st->psize = ms.ms_psize;
    int dead = 0;
    mdb_reader_check(st->env, &dead);
    if (!(o->flags & STORE_RDONLY)) {
        char *lp = NULL;
        if (asprintf(&lp, "%s/writer.lock", path) < 0) {
            rc = ba_error_set(-ENOMEM, "no memory");
            goto fail_reg;
        }
        st->wlock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (st->wlock_fd < 0) {
            rc = ba_error_set(-errno, "%s: %s", lp, strerror(errno));
            free(lp);
            goto fail_reg;
        }
        free(lp);
    }

    rc = db_attach(st);
    if (rc == BA_ENOTFOUND) {
        if (!(o->flags & STORE_CREATE) || (o->flags & STORE_RDONLY)) {
            rc = ba_error_set(create ? BA_ENOTFOUND : BA_ENOTDB,
                              "%s: LMDB environment without bigarray's format record", path);
            goto fail_reg;
        }
        rc = db_init(st);
        if (!rc)
            rc = db_attach(st);
    }
    if (rc)
        goto fail_reg;
    *out = st;
    return 0;

fail_reg:
    if (st->wlock_fd >= 0)
        close(st->wlock_fd);
    registry_remove(st->dev, st->ino);
fail_env:
    mdb_env_close(st->env);
fail_pool:
    store_dpool_destroy(&st->dpool);
fail_locks:
    store_workers_destroy(&st->workers);
    pthread_mutex_destroy(&st->write_lock);
    pthread_rwlock_destroy(&st->map_lock);
    free(st->path);
    free(st);
    return rc;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    store_workers_destroy(&st->workers);
    store_dpool_destroy(&st->dpool);
    store_cctx_free(&st->wcctx);
    free(st->wbuf);
    mdb_env_close(st->env);
    if (st->wlock_fd >= 0)
        close(st->wlock_fd);
    registry_remove(st->dev, st->ino);
    pthread_mutex_destroy(&st->write_lock);
    pthread_rwlock_destroy(&st->map_lock);
    free(st->path);
    free(st);
}
