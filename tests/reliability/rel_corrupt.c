/* SPDX-License-Identifier: MIT */
/*
 * Corrupt bytes (issue #7 item 4). A database with raw (64 KiB and 4 KiB blocks), zstd
 * and zstd+shuffle arrays, a tombstone and several commits is copied once per trial,
 * and one byte of the copy's data.mdb is changed (xor with a nonzero value) at a
 * seeded random place of a seeded random kind: a raw payload, a zstd payload, a block
 * record header, a catalog record, a names-index value, a change record, a meta
 * record, a B-tree leaf page (keys, node offsets, page header), an LMDB meta page, or
 * anywhere. Then, each in a child process so that a crash is a finding, not the end:
 *
 *  - ba_db_verify runs to the end (or the open fails with a code);
 *  - every block is preloaded through a view of its own: a block that loads must hold
 *    exactly its original bytes; one that does not gives the code from preload, and
 *    touching it through a view (at the damaged byte when it lies in a raw payload:
 *    zero-copy reads check blocks with piece sums by pieces) raises SIGBUS in that
 *    thread (caught with
 *    sigsetjmp/siglongjmp), ba_array_fault_error() names it, and the array's other
 *    blocks stay readable;
 *  - damage that reads see, verify reports; damage to a record (payload, header,
 *    catalog, names, change record, format record) is always reported;
 *  - the CLI (`bigarray verify`, `bigarray get` of a damaged block) exits non-zero
 *    with a message, and `bigarray verify` exits 0 when nothing was found.
 *
 * A changed byte in LMDB's own structures (a key in a leaf page, say) can make a record
 * answer for another key: bigarray's checksums cover a record's bytes, not its key, so
 * such a block reads back as another block's valid data. Those cases are counted and
 * printed ("silently wrong") rather than failed; damage to bigarray's records never
 * may be silent. See docs/reliability.md.
 *
 *   rel_corrupt [--long] [--seed N] [--backend uffd|sigsegv] [--cli PATH] [TRIALS]
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <ucontext.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rel_util.h"

/* ---- the pristine database --------------------------------------------------------------- */

enum { NARR = 5, MAXBLK = 16 };

struct arr_def {
    const char *name, *dtype;
    uint32_t itemsize, block_size, nblocks;
    int codec;
    unsigned filters;
};

static const struct arr_def defs[NARR] = {
    {"raw64k", "u1", 1, 64u << 10, 10, BA_CODEC_NONE, 0},
    {"raw4k", "u1", 1, 4096, 16, BA_CODEC_NONE, 0},
    {"zf8", "<f8", 8, 64u << 10, 8, BA_CODEC_ZSTD, 0},
    {"zi4s", "<i4", 4, 16u << 10, 8, BA_CODEC_ZSTD, BA_FILTER_SHUFFLE},
    {"tomb", "u1", 1, 4096, 6, BA_CODEC_NONE, 0},
};

static unsigned char *pristine[NARR]; /* every array's bytes */

static void make_bytes(int k, unsigned char *p, uint64_t n)
{
    uint64_t st = 1000 + (uint64_t)k;
    for (uint64_t i = 0; i < n; i += 8) {
        uint64_t v = rel_rand(&st);
        if (k == 2) { /* smooth doubles: compressible */
            double d = (double)(i / 8) * 0.25 + (double)(v % 4);
            memcpy(&v, &d, 8);
        } else if (k == 3) { /* small integers: shuffle + zstd compress them well */
            uint32_t a = (uint32_t)(i / 8 + v % 7), b = a + 1;
            v = (uint64_t)a | (uint64_t)b << 32;
        }
        memcpy(p + i, &v, n - i < 8 ? n - i : 8);
    }
}

static void build_pristine(const char *path, const char *spill)
{
    ba_db *db = rel_db_open(path, BA_DB_CREATE, BA_PAGER_UFFD, 0, spill);
    ba_session *s;
    REL_OK(ba_session_begin(db, &s));
    for (int k = 0; k < NARR; k++) {
        const struct arr_def *d = &defs[k];
        uint64_t nbytes = (uint64_t)d->block_size * d->nblocks;
        pristine[k] = malloc(nbytes);
        REL_CHECK(pristine[k], "out of memory");
        make_bytes(k, pristine[k], nbytes);
        ba_array_spec sp;
        ba_array_spec_init(&sp);
        REL_OK(ba_dtype_parse(d->dtype, &sp.dtype));
        sp.ndim = 1;
        sp.shape[0] = (int64_t)(nbytes / d->itemsize);
        sp.block_size = d->block_size;
        sp.codec = d->codec;
        sp.level = d->codec ? 3 : 0;
        sp.filters = d->filters;
        ba_array *a;
        REL_OK(ba_array_create(s, d->name, &sp, &a));
        ba_view v;
        REL_OK(ba_array_view(a, NULL, 0, 0, &v));
        memcpy(v.data, pristine[k], nbytes);
        ba_view_release(&v);
        ba_array_close(a);
        REL_OK(ba_session_commit(s)); /* one commit per array: change records */
    }
    /* A tombstone: block 2 of "tomb" zeroed by a later commit. */
    ba_array *a;
    REL_OK(ba_array_open(s, "tomb", &a));
    ba_view v;
    REL_OK(ba_array_view_text(a, "8192:12288", 0, &v));
    memset(v.data, 0, 4096);
    ba_view_release(&v);
    memset(pristine[4] + 8192, 0, 4096);
    ba_array_close(a);
    REL_OK(ba_session_commit(s));
    ba_session_end(s);
    uint64_t np = 1;
    REL_OK(ba_db_verify(db, NULL, NULL, &np));
    REL_CHECK(np == 0, "the pristine database has %llu problems", (unsigned long long)np);
    ba_db_close(db);
}

/* ---- where things are in data.mdb --------------------------------------------------------- */

enum target {
    T_RAW_PAYLOAD,
    T_ZSTD_PAYLOAD,
    T_BLOCK_HEADER,
    T_CATALOG,
    T_NAMES,
    T_CHANGES,
    T_META_RECORD,
    T_LEAF_PAGE,
    T_LMDB_META,
    T_ANY,
    T_N
};
static const char *const target_names[T_N] = {
    "raw payload",   "zstd payload", "block header",     "catalog record", "names index",
    "change record", "meta record",  "B-tree leaf page", "LMDB meta page", "anywhere"};
/* Damage to bigarray's own records (checksummed) must always be reported. */
static const int target_must_detect[T_N] = {1, 1, 1, 1, 1, 1, 0, 0, 0, 0};

struct region {
    uint64_t off, len;
    int arr;       /* block regions: the array index and block; else -1 */
    int64_t blkno; /* -1 if none */
};

struct layout {
    unsigned char *file;
    uint64_t file_len, psize;
    struct region *r[T_N];
    size_t n[T_N], cap[T_N];
};

static void add_region(struct layout *L, int t, uint64_t off, uint64_t len, int arr, int64_t blk)
{
    if (!len)
        return;
    if (L->n[t] == L->cap[t]) {
        L->cap[t] = L->cap[t] ? 2 * L->cap[t] : 64;
        L->r[t] = realloc(L->r[t], L->cap[t] * sizeof *L->r[t]);
        REL_CHECK(L->r[t], "out of memory");
    }
    L->r[t][L->n[t]++] = (struct region){off, len, arr, blk};
}

/* The file offset of a value LMDB returned: its distance from the start of LMDB's map
 * (the file, mapped whole). The map's address is found once from a large value whose
 * bytes are unique in the file (a random block): small records also have stale copies
 * in freed pages, so searching for them would find the wrong place. */
static uintptr_t map_base;

static uint64_t value_offset(const struct layout *L, const MDB_val *v)
{
    uint64_t off = (uint64_t)((uintptr_t)v->mv_data - map_base);
    REL_CHECK((uintptr_t)v->mv_data >= map_base && off + v->mv_size <= L->file_len &&
                  !memcmp(L->file + off, v->mv_data, v->mv_size < 64 ? v->mv_size : 64),
              "a record of %zu bytes is not where LMDB's map says", v->mv_size);
    return off;
}

static void find_map_base(const struct layout *L, MDB_txn *txn)
{
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val key, val;
    REL_CHECK(!mdb_dbi_open(txn, "blocks", 0, &dbi) && !mdb_cursor_open(txn, dbi, &cur),
              "opening the blocks DBI");
    int rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (!rc && val.mv_size < 65536)
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    REL_CHECK(!rc, "no large block record");
    const unsigned char *probe = (const unsigned char *)val.mv_data + val.mv_size - 4096;
    const unsigned char *hit = memmem(L->file, L->file_len, probe, 4096);
    REL_CHECK(hit && !memmem(hit + 1, L->file_len - (uint64_t)(hit + 1 - L->file), probe, 4096),
              "a random block's bytes are not unique in data.mdb");
    map_base = (uintptr_t)probe - (uintptr_t)(hit - L->file);
    mdb_cursor_close(cur);
}

static int arr_of_id(const uint64_t *ids, uint64_t id)
{
    for (int k = 0; k < NARR; k++)
        if (ids[k] == id)
            return k;
    return -1;
}

static uint64_t be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void map_layout(const char *path, struct layout *L)
{
    memset(L, 0, sizeof *L);
    char *data = rel_path(path, "data.mdb");
    int fd = open(data, O_RDONLY);
    REL_CHECK(fd >= 0, "open %s: %s", data, strerror(errno));
    struct stat sb;
    REL_CHECK(fstat(fd, &sb) == 0, "fstat");
    /* Up to the first hole: with the writable map the file is as long as the map. */
    off_t hole = lseek(fd, 0, SEEK_HOLE);
    L->file_len = hole > 0 && hole < sb.st_size ? (uint64_t)hole : (uint64_t)sb.st_size;
    L->file = malloc(L->file_len);
    REL_CHECK(L->file && pread(fd, L->file, L->file_len, 0) == (ssize_t)L->file_len, "reading %s",
              data);
    close(fd);
    free(data);
    L->psize = (uint64_t)sysconf(_SC_PAGESIZE);

    MDB_env *env;
    MDB_txn *txn;
    REL_CHECK(!mdb_env_create(&env) && !mdb_env_set_maxdbs(env, 8) &&
                  !mdb_env_set_mapsize(env, 1ull << 30) &&
                  !mdb_env_open(env, path, MDB_RDONLY | MDB_NOLOCK, 0644) &&
                  !mdb_txn_begin(env, NULL, MDB_RDONLY, &txn),
              "opening the pristine environment with LMDB");
    find_map_base(L, txn);
    static const char *const dbis[] = {"names", "arrays", "blocks", "changes", "meta"};
    uint64_t ids[NARR] = {0};
    unsigned char leaf_seen[4096] = {0}; /* pages holding small values: leaf pages */
    for (int di = 0; di < 5; di++) {
        MDB_dbi dbi;
        MDB_cursor *cur;
        REL_CHECK(!mdb_dbi_open(txn, dbis[di], 0, &dbi) && !mdb_cursor_open(txn, dbi, &cur),
                  "opening DBI %s", dbis[di]);
        MDB_val key, val;
        int rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
        for (; !rc; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
            uint64_t off = value_offset(L, &val);
            if (val.mv_size < 2000 && off / L->psize < sizeof leaf_seen &&
                !leaf_seen[off / L->psize]) {
                leaf_seen[off / L->psize] = 1;
                add_region(L, T_LEAF_PAGE, off / L->psize * L->psize, L->psize, -1, -1);
            }
            if (di == 0) { /* names: value = u64 LE id */
                uint64_t id;
                memcpy(&id, val.mv_data, 8);
                for (int k = 0; k < NARR; k++)
                    if (key.mv_size == strlen(defs[k].name) &&
                        !memcmp(key.mv_data, defs[k].name, key.mv_size))
                        ids[k] = id;
                add_region(L, T_NAMES, off, val.mv_size, -1, -1);
            } else if (di == 1) {
                add_region(L, T_CATALOG, off, val.mv_size, -1, -1);
            } else if (di == 2) {
                const unsigned char *h = val.mv_data;
                int k = arr_of_id(ids, be64(key.mv_data));
                int64_t blk = (int64_t)be64((const unsigned char *)key.mv_data + 8);
                add_region(L, T_BLOCK_HEADER, off, 48, k, blk);
                uint32_t poff = le32(h + 4), slen = le32(h + 8);
                int tomb = h[3] & 1;
                if (!tomb)
                    add_region(L, h[1] ? T_ZSTD_PAYLOAD : T_RAW_PAYLOAD, off + poff, slen, k, blk);
            } else if (di == 3) {
                add_region(L, T_CHANGES, off, val.mv_size, -1, -1);
            } else {
                add_region(L, T_META_RECORD, off, val.mv_size, -1, -1);
            }
        }
        REL_CHECK(rc == MDB_NOTFOUND, "walking %s: %s", dbis[di], mdb_strerror(rc));
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    /* The meta pages' header and MDB_meta (the rest of each page is unused). */
    add_region(L, T_LMDB_META, 0, 16 + 136, -1, -1);
    add_region(L, T_LMDB_META, L->psize, 16 + 136, -1, -1);
    add_region(L, T_ANY, 0, L->file_len, -1, -1);
    for (int t = 0; t < T_N; t++)
        REL_CHECK(L->n[t] > 0, "no region of kind %s found", target_names[t]);
}

/* ---- one trial ----------------------------------------------------------------------------- */

struct result {
    int done;
    int open_rc;
    int verify_rc;
    uint64_t nproblems;
    char problem[200];
    int arrays_unopenable;
    int blocks_bad, blocks_silent, blocks_checked;
    int bad_arr;
    int64_t bad_blk;
    int bad_code;
    int sigbus_tried, sigbus_seen, fault_error_ok, others_readable, fe_code;
    int64_t fe_blk;
    int target_block_bad; /* the block the damage was aimed at failed to load */
    int crash_sig;        /* a crash the child caught: SIGSEGV or SIGBUS */
    int crash_in_lmdb;    /* ... with the faulting instruction inside liblmdb */
    char crash_where[128];
    char silent_what[200];
};

static void problem_cb(const ba_problem *p, void *ctx)
{
    struct result *r = ctx;
    if (!r->problem[0])
        snprintf(r->problem, sizeof r->problem, "%s", p->what);
}

/* A crash in the child: note where (inside liblmdb or not) and exit. The pager chains
 * faults that are not its own to this handler, installed before the first open. */
static struct result *crash_result;

static void on_crash(int sig, siginfo_t *si, void *ucv)
{
    (void)si;
    ucontext_t *uc = ucv;
    void *pc = (void *)uc->uc_mcontext.gregs[REG_RIP];
    Dl_info info;
    struct result *r = crash_result;
    if (!r) { /* not in a trial's child: crash as usual */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    r->crash_sig = sig;
    if (dladdr(pc, &info) && info.dli_fname) {
        r->crash_in_lmdb = strstr(info.dli_fname, "liblmdb") != NULL;
        snprintf(r->crash_where, sizeof r->crash_where, "%s in %s",
                 sig == SIGBUS ? "SIGBUS" : "SIGSEGV",
                 info.dli_sname ? info.dli_sname : info.dli_fname);
    }
    _exit(3);
}

/* Installed before the first ba_db_open() of the process, so that the pager's SIGSEGV
 * handler chains to it for faults that are not the pager's; children point it at their
 * result. */
static void install_crash_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_crash;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
}

static int child_verify(const char *path, int backend, struct result *r)
{
    crash_result = r;
    ba_db_options o;
    ba_db_options_init(&o);
    o.pager = backend;
    o.ram_limit = 32u << 20;
    ba_db *db;
    r->open_rc = ba_db_open(path, &o, &db);
    if (r->open_rc) {
        snprintf(r->problem, sizeof r->problem, "%s", ba_errmsg());
        r->done = 1;
        return 0;
    }
    r->verify_rc = ba_db_verify(db, problem_cb, r, &r->nproblems);
    ba_db_close(db);
    r->done = 1;
    return 0;
}

static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_seen;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    (void)uc;
    bus_seen = 1;
    siglongjmp(bus_jmp, 1);
}

static int view_block(ba_array *a, const struct arr_def *d, int64_t blk, ba_view *v)
{
    int64_t per = d->block_size / d->itemsize;
    ba_slice sl = {BA_SLICE_RANGE, blk * per, (blk + 1) * per, 1};
    return ba_array_view(a, &sl, 1, BA_VIEW_READONLY, v);
}

/* A damaged byte that lies in a raw payload (whatever the trial aimed at): which block,
 * and where in it. */
struct raw_hit {
    int arr;
    int64_t blk, byte; /* arr -1: none */
};

static struct raw_hit raw_hit_of(const struct layout *L, uint64_t off)
{
    for (size_t i = 0; i < L->n[T_RAW_PAYLOAD]; i++) {
        const struct region *g = &L->r[T_RAW_PAYLOAD][i];
        if (off >= g->off && off - g->off < g->len)
            return (struct raw_hit){g->arr, g->blkno, (int64_t)(off - g->off)};
    }
    return (struct raw_hit){-1, -1, -1};
}

static int child_read(const char *path, int backend, int target_arr, int64_t target_blk,
                      struct raw_hit hit, struct result *r)
{
    crash_result = r;
    ba_db_options o;
    ba_db_options_init(&o);
    o.pager = backend;
    o.ram_limit = 32u << 20;
    ba_db *db;
    r->open_rc = ba_db_open(path, &o, &db);
    r->bad_arr = -1;
    if (r->open_rc) {
        r->done = 1;
        return 0;
    }
    ba_session *s;
    int rc = ba_session_begin(db, &s);
    if (rc) {
        r->open_rc = rc;
        ba_db_close(db);
        r->done = 1;
        return 0;
    }
    for (int k = 0; k < NARR; k++) {
        const struct arr_def *d = &defs[k];
        ba_array *a;
        if (ba_array_open(s, d->name, &a)) {
            r->arrays_unopenable++;
            continue;
        }
        for (int64_t b = 0; b < d->nblocks; b++) {
            ba_view v;
            rc = view_block(a, d, b, &v);
            if (!rc)
                rc = ba_view_preload(&v, 0);
            r->blocks_checked++;
            if (rc) {
                r->blocks_bad++;
                if (k == target_arr && b == target_blk)
                    r->target_block_bad = 1;
                if (r->bad_arr < 0) {
                    r->bad_arr = k;
                    r->bad_blk = b;
                    r->bad_code = rc;
                }
            } else if (memcmp(v.data, pristine[k] + (uint64_t)b * d->block_size, d->block_size)) {
                r->blocks_silent++;
                snprintf(r->silent_what, sizeof r->silent_what,
                         "array '%s' block %lld loads without error but holds other bytes", d->name,
                         (long long)b);
            }
            ba_view_release(&v);
        }
        ba_array_close(a);
    }
    /* Touch the first damaged block through a view: SIGBUS in this thread. At the
     * damaged byte when it is in a raw payload: a block with piece sums is checked piece
     * by piece on zero-copy reads, so its intact pieces read fine (and right). */
    if (r->bad_arr >= 0) {
        const struct arr_def *d = &defs[r->bad_arr];
        ba_array *a;
        REL_OK(ba_array_open(s, d->name, &a));
        int64_t blk = -2;
        (void)ba_array_fault_error(a, &blk); /* clear */
        ba_view v;
        REL_OK(view_block(a, d, r->bad_blk, &v));
        struct sigaction sa, old;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigbus;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGBUS, &sa, &old);
        bus_seen = 0;
        r->sigbus_tried = 1;
        volatile size_t at =
            r->bad_arr == hit.arr && r->bad_blk == hit.blk ? (size_t)hit.byte : d->block_size / 2;
        volatile unsigned char sink = 0;
        if (!sigsetjmp(bus_jmp, 1))
            sink = ((volatile unsigned char *)v.data)[at];
        (void)sink;
        sigaction(SIGBUS, &old, NULL);
        r->sigbus_seen = bus_seen;
        int code = ba_array_fault_error(a, &blk);
        r->fault_error_ok = code == r->bad_code && blk == r->bad_blk;
        r->fe_code = code;
        r->fe_blk = blk;
        ba_view_release(&v);
        /* The array's other blocks still read (the ones that loaded before). */
        r->others_readable = 1;
        for (int64_t b = 0; b < d->nblocks; b++) {
            if (b == r->bad_blk)
                continue;
            ba_view w;
            REL_OK(view_block(a, d, b, &w));
            if (!ba_view_preload(&w, 0) &&
                memcmp(w.data, pristine[r->bad_arr] + (uint64_t)b * d->block_size, d->block_size))
                r->others_readable = 0;
            ba_view_release(&w);
        }
        ba_array_close(a);
    }
    ba_session_end(s);
    ba_db_close(db);
    r->done = 1;
    return 0;
}

/* Run the CLI; returns its exit status (-1 if it did not exit) and whether it wrote
 * to stderr. */
static int run_cli(const char *cli, char *const argv[], int *wrote_stderr)
{
    char errpath[] = "/tmp/ba-rel-corrupt-err-XXXXXX";
    int efd = mkstemp(errpath);
    REL_CHECK(efd >= 0, "mkstemp: %s", strerror(errno));
    unlink(errpath);
    fflush(NULL);
    pid_t pid = fork();
    REL_CHECK(pid >= 0, "fork");
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        dup2(efd, 2);
        alarm(60);
        execv(cli, argv);
        _exit(127);
    }
    int status = rel_wait(pid);
    struct stat sb;
    fstat(efd, &sb);
    *wrote_stderr = sb.st_size > 0;
    close(efd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct figures {
    unsigned trials, by_target[T_N], detected[T_N], silent[T_N], open_refused[T_N];
    unsigned lmdb_crashes[T_N], snapshot_poisoned[T_N];
    unsigned sigbus_checks, cli_checks, failures;
};

/* Copy a file keeping its holes (data.mdb of the writable map is as long as the map). */
static void copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REL_CHECK(in >= 0 && out >= 0, "copying %s: %s", from, strerror(errno));
    struct stat sb;
    REL_CHECK(fstat(in, &sb) == 0, "fstat %s", from);
    char buf[1 << 16];
    off_t pos = 0;
    for (;;) {
        off_t data = lseek(in, pos, SEEK_DATA);
        if (data < 0)
            break; /* ENXIO: only a hole is left */
        off_t hole = lseek(in, data, SEEK_HOLE);
        REL_CHECK(hole > data, "seeking in %s: %s", from, strerror(errno));
        for (off_t at = data; at < hole;) {
            size_t len = hole - at < (off_t)sizeof buf ? (size_t)(hole - at) : sizeof buf;
            ssize_t n = pread(in, buf, len, at);
            REL_CHECK(n > 0 && pwrite(out, buf, (size_t)n, at) == n, "copying %s: %s", from,
                      strerror(errno));
            at += n;
        }
        pos = hole;
    }
    REL_CHECK(ftruncate(out, sb.st_size) == 0, "ftruncate %s", to);
    close(in);
    close(out);
}

static void copy_file(const char *from, const char *to);

static void save_failed(const char *data, unsigned i)
{
    char to[128];
    snprintf(to, sizeof to, "/tmp/ba-rel-corrupt-trial-%u", i);
    mkdir(to, 0755);
    strcat(to, "/data.mdb");
    copy_file(data, to);
    printf("(the damaged data.mdb is kept in %s)\n", to);
}

/* A failed expectation of a trial: fatal, or with BA_REL_KEEP_GOING=1 (for surveys in the
 * long mode) printed, counted, and the next trial runs. */
#define TCHECK(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (!getenv("BA_REL_KEEP_GOING"))                                                      \
                REL_FAIL(__VA_ARGS__);                                                             \
            if (getenv("BA_REL_SAVE_FAILED")) /* keep the damaged file for a look */               \
                save_failed(dst, i);                                                               \
            printf("FAIL: ");                                                                      \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            fg->failures++;                                                                        \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static void trial(const char *pristine_path, const char *dir, const struct layout *L, uint64_t *rs,
                  int backend, const char *cli, struct figures *fg, unsigned i)
{
    int t = (int)rel_below(rs, T_N);
    const struct region *rg = &L->r[t][rel_below(rs, L->n[t])];
    uint64_t off = rg->off + rel_below(rs, rg->len);
    unsigned char x = (unsigned char)(1 + rel_below(rs, 255));
    const char *only = getenv("BA_REL_ONLY"); /* BA_REL_ONLY=N: just trial N (debugging) */
    if (only && strtoul(only, NULL, 10) != i)
        return;
    char *path = rel_path(dir, "db");
    mkdir(path, 0755);
    char *src = rel_path(pristine_path, "data.mdb"), *dst = rel_path(path, "data.mdb");
    copy_file(src, dst);
    int fd = open(dst, O_RDWR);
    unsigned char c = (unsigned char)(L->file[off] ^ x);
    REL_CHECK(fd >= 0 && pwrite(fd, &c, 1, (off_t)off) == 1, "damaging %s", dst);
    close(fd);
    char what[160];
    snprintf(what, sizeof what, "trial %u: %s, byte %llu (page %llu) ^ 0x%02x, %s", i,
             target_names[t], (unsigned long long)off, (unsigned long long)(off / L->psize), x,
             rel_backend_name(backend));
    if (getenv("BA_REL_VERBOSE"))
        printf("%s\n", what);

    struct result *rv =
        mmap(NULL, 2 * sizeof *rv, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REL_CHECK(rv != MAP_FAILED, "mmap");
    memset(rv, 0, 2 * sizeof *rv);
    struct result *rr = rv + 1;
    char sbuf[64];
    fflush(NULL);
    pid_t pid = fork();
    REL_CHECK(pid >= 0, "fork");
    if (pid == 0) {
        alarm(60);
        _exit(child_verify(path, backend, rv));
    }
    int st = rel_wait(pid);
    pid_t pid2 = fork();
    TCHECK(pid2 >= 0, "fork");
    if (pid2 == 0) {
        alarm(60);
        _exit(child_read(path, backend, rg->arr, rg->blkno, raw_hit_of(L, off), rr));
    }
    int st2 = rel_wait(pid2);
    fg->trials++;
    fg->by_target[t]++;

    /* Crashes. LMDB trusts its own pages (no checksums), so damage to them may crash it:
     * counted for the LMDB-structure targets; anything else crashing is a failure. */
    int lmdb_target = t == T_LEAF_PAGE || t == T_LMDB_META || t == T_ANY;
    const struct result *crashed[2] = {rv, rr};
    const char *stage[2] = {"opening and verifying", "reading every block"};
    int sts[2] = {st, st2}, any_crash = 0, counted = 0;
    for (int ci = 0; ci < 2; ci++) {
        if (WIFEXITED(sts[ci]) && WEXITSTATUS(sts[ci]) == 0 && crashed[ci]->done)
            continue;
        any_crash = 1;
        if (lmdb_target && crashed[ci]->crash_sig && crashed[ci]->crash_in_lmdb) {
            if (!counted++) /* once per trial */
                fg->lmdb_crashes[t]++;
            printf("  LMDB crashed: %s: %s: %s\n", what, stage[ci], crashed[ci]->crash_where);
            continue;
        }
        TCHECK(0, "%s: %s ended with %s%s%s", what, stage[ci],
               rel_status_str(sts[ci], sbuf, sizeof sbuf), crashed[ci]->crash_sig ? ": " : "",
               crashed[ci]->crash_where);
    }
    if (any_crash)
        goto out;

    int verify_saw = rv->open_rc != 0 || rv->verify_rc != 0 || rv->nproblems > 0;
    if (getenv("BA_REL_VERBOSE"))
        printf("  -> open %d, verify %d, %llu problems (%s); %d blocks bad\n", rv->open_rc,
               rv->verify_rc, (unsigned long long)rv->nproblems, rv->problem, rr->blocks_bad);
    int reads_saw = rr->open_rc != 0 || rr->arrays_unopenable > 0 || rr->blocks_bad > 0;
    if (verify_saw)
        fg->detected[t]++;
    if (rv->open_rc)
        fg->open_refused[t]++;
    if (rr->blocks_silent) {
        fg->silent[t]++;
        printf("  silently wrong: %s: %s\n", what, rr->silent_what);
        TCHECK(lmdb_target, "%s: %s", what, rr->silent_what);
    }
    TCHECK(!reads_saw || verify_saw, "%s: reads fail (%s) but verify finds nothing", what,
           rr->open_rc ? ba_strerror(rr->open_rc) : "a block");
    if (target_must_detect[t])
        TCHECK(verify_saw, "%s: damage to a record that verify does not report", what);
    int block_target =
        (t == T_RAW_PAYLOAD || t == T_ZSTD_PAYLOAD || t == T_BLOCK_HEADER) && rg->arr >= 0;
    if (block_target) {
        /* Exactly the damaged block fails; every other block reads its own bytes. */
        TCHECK(!rr->open_rc && rr->target_block_bad,
               "%s: the damaged block %s[%lld] loads without error", what, defs[rg->arr].name,
               (long long)rg->blkno);
        TCHECK(rr->blocks_bad == 1, "%s: %d blocks fail to load, not just the damaged one", what,
               rr->blocks_bad);
    }
    if (rr->sigbus_tried) {
        fg->sigbus_checks++;
        TCHECK(rr->sigbus_seen, "%s: touching damaged block %s[%lld] raised no SIGBUS", what,
               defs[rr->bad_arr].name, (long long)rr->bad_blk);
        /* After a lookup through a damaged B-tree page LMDB fails the whole read
         * transaction (MDB_TXN_ERROR): the fault then reports that (-EIO), not the
         * preload's code. For damage to records the codes agree. */
        int same = lmdb_target ? rr->fe_code != 0 && rr->fe_blk == rr->bad_blk : rr->fault_error_ok;
        TCHECK(same,
               "%s: preload of block %lld failed with %d %s, ba_array_fault_error says block "
               "%lld, %d %s",
               what, (long long)rr->bad_blk, rr->bad_code, ba_strerror(rr->bad_code),
               (long long)rr->fe_blk, rr->fe_code, ba_strerror(rr->fe_code));
        TCHECK(rr->others_readable, "%s: after the SIGBUS, other blocks of %s read wrong", what,
               defs[rr->bad_arr].name);
    }
    if (rr->blocks_bad > 1 && lmdb_target)
        fg->snapshot_poisoned[t]++;

    /* The CLI agrees: verify fails with a message when the library found something and
     * succeeds when it did not; get of a damaged block fails with a message. */
    if (cli) {
        int wrote;
        char a0[] = "bigarray", a1[] = "verify", a1g[] = "get", aname[64];
        char *vargs[] = {a0, a1, path, NULL};
        int ex = run_cli(cli, vargs, &wrote);
        if (verify_saw)
            TCHECK(ex > 0 && wrote, "%s: `bigarray verify` exited %d%s", what, ex,
                   wrote ? "" : " without a message");
        else
            TCHECK(ex == 0, "%s: `bigarray verify` exited %d on an undamaged database", what, ex);
        if (block_target) {
            const struct arr_def *d = &defs[rg->arr];
            char sl[64];
            int64_t per = d->block_size / d->itemsize;
            snprintf(sl, sizeof sl, "%lld:%lld", (long long)(rg->blkno * per),
                     (long long)(rg->blkno * per + 4));
            snprintf(aname, sizeof aname, "%s", d->name);
            char *gargs[] = {a0, a1g, path, aname, sl, NULL};
            ex = run_cli(cli, gargs, &wrote);
            TCHECK(ex > 0 && wrote, "%s: `bigarray get %s %s` exited %d%s", what, d->name, sl, ex,
                   wrote ? "" : " without a message");
        }
        fg->cli_checks++;
    }
out:
    munmap(rv, 2 * sizeof *rv);
    unlink(dst);
    char *lock = rel_path(path, "lock.mdb");
    unlink(lock);
    free(lock);
    rmdir(path);
    free(src);
    free(dst);
    free(path);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *cli = NULL;
    /* --cli PATH is ours; the rest is the common parser's. */
    char **args = malloc((size_t)(argc + 1) * sizeof *args);
    int nargs = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--cli") && i + 1 < argc)
            cli = argv[++i];
        else
            args[nargs++] = argv[i];
    }
    args[nargs] = NULL;
    struct rel_opts ro = {.seed = 4242};
    rel_parse_args(nargs, args, &ro, "[--cli PATH] [TRIALS]");
    free(args);
    unsigned ntrials = ro.extra          ? (unsigned)strtoul(ro.extra, NULL, 10)
                       : ro.long_mode    ? 2000
                       : rel_sanitized() ? 40
                                         : 100;
    install_crash_handler();
    char *dir = rel_mkdtemp("corrupt");
    char *pristine_path = rel_path(dir, "pristine");
    build_pristine(pristine_path, dir);
    struct layout L;
    map_layout(pristine_path, &L);
    printf("corrupt bytes: %u trials, seed %llu, %s, CLI %s, data.mdb %llu KiB, in %s\n", ntrials,
           (unsigned long long)ro.seed, ro.backend ? rel_backend_name(ro.backend) : "both backends",
           cli ? cli : "not tested", (unsigned long long)(L.file_len >> 10), dir);
    struct figures fg;
    memset(&fg, 0, sizeof fg);
    uint64_t rs = ro.seed;
    double t0 = rel_now();
    for (unsigned i = 0; i < ntrials; i++) {
        int backend = ro.backend ? ro.backend : i % 2 ? BA_PAGER_SIGSEGV : BA_PAGER_UFFD;
        trial(pristine_path, dir, &L, &rs, backend, cli, &fg, i);
    }
    printf("%u trials in %.1f s (%u SIGBUS checks, %u CLI checks):\n", fg.trials, rel_now() - t0,
           fg.sigbus_checks, fg.cli_checks);
    unsigned silent = 0;
    for (int t = 0; t < T_N; t++) {
        printf("  %-16s %4u trials, %4u reported by verify (%u refused at open), %u silently "
               "wrong, %u LMDB crashes, %u snapshots failing every later read\n",
               target_names[t], fg.by_target[t], fg.detected[t], fg.open_refused[t], fg.silent[t],
               fg.lmdb_crashes[t], fg.snapshot_poisoned[t]);
        silent += fg.silent[t];
    }
    for (int t = 0; t < T_N; t++)
        free(L.r[t]);
    free(L.file);
    for (int k = 0; k < NARR; k++)
        free(pristine[k]);
    free(pristine_path);
    rel_rmtree(dir);
    if (fg.failures) {
        printf("%u trials failed (BA_REL_KEEP_GOING)\n", fg.failures);
        return 1;
    }
    printf("PASS%s\n", silent ? " (with silently wrong reads after damage to LMDB's structures: "
                                "see docs/reliability.md)"
                              : "");
    return 0;
}
