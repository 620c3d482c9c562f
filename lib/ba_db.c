/* SPDX-License-Identifier: MIT */
/*
 * Databases: ba_db_open()/ba_db_close(), options, statistics, verify, compact and the
 * pager's counters. A database is one store (an LMDB environment) and one pager (a
 * RAM pool and a fault backend) shared by all its sessions.
 *
 * LMDB forbids opening one environment twice in a process (closing either would drop
 * the other's file locks), so the process keeps a registry of open databases keyed
 * by the directory's device and inode: opening a path that is already open returns
 * the same handle with one more reference. Entries opened by a parent process are
 * never handed out in a forked child (which must open the database anew).
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ba_internal.h"

static pthread_mutex_t db_registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ba_db *db_registry;

static pthread_once_t process_once = PTHREAD_ONCE_INIT;
static int inject_rc;
static char inject_msg[256];

/* A child forked while another thread held the registry lock must not inherit it
 * locked: the child may open databases anew. */
static void registry_prefork(void)
{
    pthread_mutex_lock(&db_registry_mu);
}

static void registry_postfork(void)
{
    pthread_mutex_unlock(&db_registry_mu);
}

static void process_init(void)
{
    /* The pager's fork handlers first: ours then run before its prepare handler (which
     * waits for faults that hold a pager lock, while ba_db_close() holds our lock
     * waiting for a pager lock). */
    pager_process_init();
    pthread_atfork(registry_prefork, registry_postfork, registry_postfork);
    inject_rc = ba_inject_from_env();
    if (inject_rc)
        snprintf(inject_msg, sizeof inject_msg, "%s", ba_error_msg());
}

BA_API void ba_db_options_init(ba_db_options *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->pager = BA_PAGER_AUTO;
    o->lock_timeout_ms = -1;
}

/* Read the caller's options, tolerating an older (smaller) struct. */
static int options_read(const ba_db_options *in, ba_db_options *o)
{
    ba_db_options_init(o);
    if (!in)
        return 0;
    if (in->size < offsetof(ba_db_options, flags) + sizeof in->flags)
        return ba_error_set(BA_EINVAL, "ba_db_options.size is %zu: call ba_db_options_init()",
                            in->size);
    memcpy(o, in, in->size < sizeof *o ? in->size : sizeof *o);
    o->size = sizeof *o;
    const unsigned known = BA_DB_CREATE | BA_DB_RDONLY | BA_DB_NOSYNC | BA_DB_NOREADAHEAD |
                           BA_DB_NOZEROCOPY | BA_DB_NOWRITEMAP;
    if (o->flags & ~known)
        return ba_error_set(BA_EINVAL, "ba_db_options.flags: unknown bits 0x%x", o->flags & ~known);
    if ((o->flags & BA_DB_CREATE) && (o->flags & BA_DB_RDONLY))
        return ba_error_set(BA_EINVAL, "BA_DB_CREATE and BA_DB_RDONLY exclude each other");
    if (o->pager != BA_PAGER_AUTO && o->pager != BA_PAGER_UFFD && o->pager != BA_PAGER_SIGSEGV)
        return ba_error_set(BA_EINVAL, "ba_db_options.pager: unknown backend %d", o->pager);
    return 0;
}

static struct ba_db *registry_find(dev_t dev, ino_t ino)
{
    pid_t pid = getpid();
    for (struct ba_db *db = db_registry; db; db = db->next)
        if (db->dev == dev && db->ino == ino && db->pid == pid)
            return db;
    return NULL;
}

BA_API int ba_db_open(const char *path, const ba_db_options *opts, ba_db **out)
{
    if (!path || !*path || !out)
        return ba_error_set(BA_EINVAL, "ba_db_open: NULL or empty argument");
    *out = NULL;
    pthread_once(&process_once, process_init);
    if (inject_rc)
        return ba_error_set(inject_rc, "%s", inject_msg);
    ba_db_options o;
    int rc = options_read(opts, &o);
    if (rc)
        return rc;

    pthread_mutex_lock(&db_registry_mu);
    struct stat sb;
    if (stat(path, &sb) == 0) {
        struct ba_db *db = registry_find(sb.st_dev, sb.st_ino);
        if (db) {
            if ((db->flags & BA_DB_RDONLY) != (o.flags & BA_DB_RDONLY)) {
                pthread_mutex_unlock(&db_registry_mu);
                return ba_error_set(BA_EBUSY,
                                    "database '%s' is already open %s in this process; "
                                    "close it first to open it %s",
                                    path, (db->flags & BA_DB_RDONLY) ? "read-only" : "read-write",
                                    (o.flags & BA_DB_RDONLY) ? "read-only" : "read-write");
            }
            __atomic_add_fetch(&db->nref, 1, __ATOMIC_RELAXED);
            pthread_mutex_unlock(&db_registry_mu);
            *out = db;
            return 0;
        }
    }

    struct ba_db *db = ba_calloc(1, sizeof *db);
    if (!db) {
        rc = ba_error_set(-ENOMEM, "ba_db_open '%s': out of memory", path);
        goto err_unlock;
    }
    db->nref = 1;
    db->flags = o.flags;
    db->pid = getpid();
    db->path = ba_strdup(path);
    if (!db->path) {
        rc = ba_error_set(-ENOMEM, "ba_db_open '%s': out of memory", path);
        goto err_free;
    }

    struct store_opts so;
    store_opts_init(&so);
    so.flags = ((o.flags & BA_DB_CREATE) ? STORE_CREATE : 0) |
               ((o.flags & BA_DB_RDONLY) ? STORE_RDONLY : 0) |
               ((o.flags & BA_DB_NOSYNC) ? STORE_NOSYNC : 0);
    const char *wm = getenv("BIGARRAY_WRITEMAP");
    if (wm && *wm && strcmp(wm, "0") && strcmp(wm, "1")) {
        rc = ba_error_set(BA_EINVAL, "BIGARRAY_WRITEMAP='%s': expected 0 or 1", wm);
        goto err_free;
    }
    if (!(o.flags & (BA_DB_RDONLY | BA_DB_NOWRITEMAP)) && !(wm && !strcmp(wm, "0")))
        so.flags |= STORE_WRITEMAP;
    so.map_size = o.map_size;
    so.max_readers = o.max_readers;
    so.lock_timeout_ms = o.lock_timeout_ms;
    rc = store_open(path, &so, &db->store);
    if (rc) {
        rc = ba_error_pass(rc, "cannot open database '%s': %s", path, ba_strerror(rc));
        goto err_free;
    }

    struct pager_opts po;
    pager_opts_init(&po);
    po.ram_limit = o.ram_limit;
    po.backend = o.pager == BA_PAGER_UFFD      ? PAGER_BACKEND_UFFD
                 : o.pager == BA_PAGER_SIGSEGV ? PAGER_BACKEND_SIGSEGV
                                               : PAGER_BACKEND_AUTO;
    po.spill_dir = o.spill_dir;
    po.readahead = !(o.flags & BA_DB_NOREADAHEAD);
    po.zerocopy = !(o.flags & BA_DB_NOZEROCOPY);
    rc = pager_create(&po, &db->pager);
    if (rc) {
        rc = ba_error_pass(rc, "database '%s': cannot start the pager: %s", path, ba_strerror(rc));
        goto err_store;
    }

    if (stat(path, &sb)) {
        rc = ba_error_set(-errno, "database '%s': stat: %s", path, ba_strerror(-errno));
        goto err_pager;
    }
    db->dev = sb.st_dev;
    db->ino = sb.st_ino;
    db->next = db_registry;
    db_registry = db;
    pthread_mutex_unlock(&db_registry_mu);
    *out = db;
    return 0;

err_pager:
    pager_destroy(db->pager);
err_store:
    store_close(db->store);
err_free:
    free(db->path);
    free(db);
err_unlock:
    pthread_mutex_unlock(&db_registry_mu);
    return rc;
}

void db_ref(struct ba_db *db)
{
    __atomic_add_fetch(&db->nref, 1, __ATOMIC_RELAXED);
}

void db_unref(struct ba_db *db)
{
    if (!db)
        return;
    /* The registry lock makes "last reference gone" and "found in the registry"
     * exclusive, so ba_db_open() never revives a handle being destroyed; holding it
     * until the environment is closed makes a concurrent open of the same path wait
     * instead of finding the store still open (BA_EBUSY). */
    pthread_mutex_lock(&db_registry_mu);
    if (__atomic_sub_fetch(&db->nref, 1, __ATOMIC_ACQ_REL)) {
        pthread_mutex_unlock(&db_registry_mu);
        return;
    }
    for (struct ba_db **pp = &db_registry; *pp; pp = &(*pp)->next)
        if (*pp == db) {
            *pp = db->next;
            break;
        }
    pager_destroy(db->pager);
    store_close(db->store);
    pthread_mutex_unlock(&db_registry_mu);
    free(db->path);
    free(db);
}

BA_API void ba_db_close(ba_db *db)
{
    db_unref(db);
}

BA_API int ba_db_pager(const ba_db *db)
{
    return pager_backend(db->pager) == PAGER_BACKEND_UFFD ? BA_PAGER_UFFD : BA_PAGER_SIGSEGV;
}

/* Copy a filled output struct into the caller's, which may be older (smaller). */
int struct_copy_out(void *dst, const void *src, size_t full)
{
    size_t want;
    memcpy(&want, dst, sizeof want);
    if (want < sizeof(size_t))
        return ba_error_set(BA_EINVAL, "the struct's size field is %zu: set it to sizeof", want);
    memcpy((char *)dst + sizeof want, (const char *)src + sizeof want,
           (want < full ? want : full) - sizeof want);
    return 0;
}

BA_API int ba_db_stat_get(ba_db *db, ba_db_stat *st)
{
    if (!db || !st)
        return ba_error_set(BA_EINVAL, "ba_db_stat_get: NULL argument");
    struct store_stat ss;
    int rc = store_stat(db->store, &ss);
    if (rc)
        return ba_error_pass(rc, "database '%s': stat: %s", db->path, ba_strerror(rc));
    ba_db_stat full = {
        .size = sizeof full,
        .last_commit = ss.last_seq,
        .map_size = ss.map_size,
        .file_size = ss.file_size,
        .page_size = ss.page_size,
        .pages_used = ss.pages_used,
        .pages_free = ss.pages_free,
        .narrays = ss.narrays,
        .readers = ss.readers,
    };
    return struct_copy_out(st, &full, sizeof full);
}

struct verify_ctx {
    void (*cb)(const ba_problem *p, void *ctx);
    void *ctx;
};

static void verify_cb(const struct store_problem *sp, void *ctx)
{
    struct verify_ctx *vc = ctx;
    if (!vc->cb)
        return;
    ba_problem p = {
        .array = sp->array,
        .array_id = sp->array_id,
        .blkno = sp->blkno,
        .code = sp->code,
        .what = sp->what,
    };
    vc->cb(&p, vc->ctx);
}

BA_API int ba_db_verify(ba_db *db, void (*cb)(const ba_problem *p, void *ctx), void *ctx,
                        uint64_t *nproblems)
{
    if (!db)
        return ba_error_set(BA_EINVAL, "ba_db_verify: NULL database");
    struct verify_ctx vc = {cb, ctx};
    uint64_t n = 0;
    int rc = store_verify(db->store, verify_cb, &vc, &n);
    if (nproblems)
        *nproblems = n;
    if (rc)
        return ba_error_pass(rc, "database '%s': verify could not run: %s", db->path,
                             ba_strerror(rc));
    return 0;
}

BA_API int ba_db_compact(ba_db *db, const char *out_path)
{
    if (!db || !out_path || !*out_path)
        return ba_error_set(BA_EINVAL, "ba_db_compact: NULL or empty argument");
    int rc = store_compact(db->store, out_path);
    if (rc)
        return ba_error_pass(rc, "database '%s': compact to '%s' failed: %s", db->path, out_path,
                             ba_strerror(rc));
    return 0;
}

BA_API int ba_db_pager_stat(ba_db *db, ba_pager_stat *st)
{
    if (!db || !st)
        return ba_error_set(BA_EINVAL, "ba_db_pager_stat: NULL argument");
    ba_pager_stat full;
    memset(&full, 0, sizeof full);
    full.size = sizeof full;
    pager_stat_get(db->pager, &full);
    return struct_copy_out(st, &full, sizeof full);
}
