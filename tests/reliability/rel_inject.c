/* SPDX-License-Identifier: MIT */
/*
 * Fault injection at every hit of every injection point (issue #7 item 3), through the
 * public API: for each operation (commit, open, preload, compact) and each point of
 * common/ba_common.h with the codes it can really see (ENOSPC, EIO, ENOMEM, a full
 * LMDB map), fail the k-th hit for k = 0, 1, ... until the operation no longer reaches
 * hit k. Every failed call returns the injected code (BA_EFULL for a map that cannot
 * grow) with a message; the database stays valid (verify); the session's uncommitted
 * data reads back intact; nothing of it is visible to another session; and the next
 * attempt, with the fault cleared, succeeds. A call that succeeds although its fault
 * fired (a full map grows, a failed spill write keeps the block in RAM) must have done
 * everything right. The session's changes are big enough to spill (a 256 KiB budget), so
 * the spill file's points are hit too.
 *
 * Plus a real full disk: the database on a 32 MiB tmpfs, filled until a commit fails:
 * the commit fails cleanly, nothing committed is lost, the session keeps its data, and
 * after space is freed the retry succeeds. Skips (77) where mount is not permitted.
 *
 * Both pager backends. Figures (hits per operation and point) go to stdout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ba_common.h"
#include "check_lib.h"

#define BS         (64u << 10)
#define RAW_BLOCKS 12
#define Z_ELEMS    (4 * BS / 8) /* 4 blocks of <u8 */
#define Z_APPEND   20000
#define NEW_ELEMS  (2 * BS / 2) /* 2 blocks of <u2 */
#define RAM        (256u << 10) /* 4 blocks */

/* ---- data ------------------------------------------------------------------------------ */

/* A contiguous view of `slice` of a, every byte checked against (or set to) the pattern
 * of `seed` at linear byte positions starting at first_pos. */
static void fill(ba_array *a, const char *slice, uint64_t first_pos, uint64_t seed)
{
    ba_view v = tl_view(a, slice);
    tl_fill_bytes(v.data, ba_view_size(&v) * v.dtype.itemsize, first_pos, seed);
    ba_view_release(&v);
}

static void expect_fill(ba_array *a, const char *slice, uint64_t first_pos, uint64_t seed)
{
    ba_view v = tl_view(a, slice);
    const uint8_t *b = v.data;
    uint64_t n = ba_view_size(&v) * v.dtype.itemsize;
    for (uint64_t i = 0; i < n; i++)
        if (b[i] != tl_pattern(first_pos + i, seed))
            ck_abort_msg("slice '%s' byte %llu: %u, expected %u (seed %llu)", slice,
                         (unsigned long long)i, b[i], tl_pattern(first_pos + i, seed),
                         (unsigned long long)seed);
    ba_view_release(&v);
}

static ba_array *open_array(ba_session *s, const char *name)
{
    ba_array *a;
    TL_OK(ba_array_open(s, name, &a));
    return a;
}

static void expect_verify_clean(ba_db *db)
{
    uint64_t np = 1;
    TL_OK(ba_db_verify(db, NULL, NULL, &np));
    ck_assert_msg(np == 0, "verify found %llu problems", (unsigned long long)np);
}

/* The committed state after setup: raw (u1, 12 blocks) of seed 1, z (<u8 zstd, 4 blocks)
 * of seed 1, gone (u1, 2 blocks) of seed 1. */
static void setup(struct tl_db *t, const char *tag, int backend)
{
    tl_db_open(t, tag, backend, RAM);
    ba_session *s;
    TL_OK(ba_session_begin(t->db, &s));
    int64_t n = RAW_BLOCKS * BS;
    ba_array *a = tl_create(s, "raw", "u1", 'C', BS, 1, &n);
    fill(a, "", 0, 1);
    ba_array_close(a);
    ba_array_spec sp;
    ba_array_spec_init(&sp);
    TL_OK(ba_dtype_parse("<u8", &sp.dtype));
    sp.ndim = 1;
    sp.shape[0] = Z_ELEMS;
    sp.block_size = BS;
    sp.codec = BA_CODEC_ZSTD;
    TL_OK(ba_array_create(s, "z", &sp, &a));
    fill(a, "", 0, 1);
    ba_array_close(a);
    n = 2 * BS;
    a = tl_create(s, "gone", "u1", 'C', BS, 1, &n);
    fill(a, "", 0, 1);
    ba_array_close(a);
    TL_OK(ba_session_commit(s));
    ba_session_end(s);
}

static const char *raw_mid(void)
{
    static char sl[64];
    snprintf(sl, sizeof sl, "%u:%u", 2 * BS, 10 * BS);
    return sl;
}

/* Changes of every kind, 512 KiB of them in "raw" alone (twice the budget: spills). */
static void make_changes(ba_session *s)
{
    ba_array *a = open_array(s, "raw");
    fill(a, raw_mid(), 2 * BS, 2);
    ba_array_close(a);
    a = open_array(s, "z");
    unsigned char *buf = malloc((size_t)Z_APPEND * 8);
    ck_assert_ptr_nonnull(buf);
    tl_fill_bytes(buf, (uint64_t)Z_APPEND * 8, (uint64_t)Z_ELEMS * 8, 2);
    int64_t n = Z_APPEND;
    TL_OK(ba_array_append(a, buf, 1, &n, NULL));
    free(buf);
    ba_array_close(a);
    n = NEW_ELEMS;
    a = tl_create(s, "new", "<u2", 'C', BS, 1, &n);
    fill(a, "", 0, 3);
    ba_array_close(a);
    TL_OK(ba_array_drop(s, "gone"));
}

/* The session (or a fresh one after the commit) sees every change. */
static void expect_changes(ba_session *s)
{
    ba_array *a = open_array(s, "raw");
    char sl[64];
    snprintf(sl, sizeof sl, ":%u", 2 * BS);
    expect_fill(a, sl, 0, 1);
    expect_fill(a, raw_mid(), 2 * BS, 2);
    snprintf(sl, sizeof sl, "%u:", 10 * BS);
    expect_fill(a, sl, 10 * BS, 1);
    ba_array_close(a);
    a = open_array(s, "z");
    ck_assert_int_eq(tl_info(a).shape[0], Z_ELEMS + Z_APPEND);
    snprintf(sl, sizeof sl, ":%u", Z_ELEMS);
    expect_fill(a, sl, 0, 1);
    snprintf(sl, sizeof sl, "%u:", Z_ELEMS);
    expect_fill(a, sl, (uint64_t)Z_ELEMS * 8, 2);
    ba_array_close(a);
    a = open_array(s, "new");
    expect_fill(a, "", 0, 3);
    ba_array_close(a);
    TL_FAILS(ba_array_open(s, "gone", &a), BA_ENOTFOUND);
}

/* A fresh session sees the state of setup(): none of the changes. */
static void expect_unchanged(ba_db *db)
{
    ba_session *o;
    TL_OK(ba_session_begin(db, &o));
    ba_array *a = open_array(o, "raw");
    expect_fill(a, "", 0, 1);
    ba_array_close(a);
    a = open_array(o, "z");
    ck_assert_int_eq(tl_info(a).shape[0], Z_ELEMS);
    expect_fill(a, "", 0, 1);
    ba_array_close(a);
    a = open_array(o, "gone");
    expect_fill(a, "", 0, 1);
    ba_array_close(a);
    TL_FAILS(ba_array_open(o, "new", &a), BA_ENOTFOUND);
    ba_session_end(o);
}

static void expect_committed(ba_db *db)
{
    ba_session *o;
    TL_OK(ba_session_begin(db, &o));
    expect_changes(o);
    ba_session_end(o);
}

/* ---- the loop over points and hits ----------------------------------------------------------- */

struct inj_case {
    enum ba_inject_point point;
    int code;
    const char *code_name;
};

static const struct inj_case cases[] = {
    {BA_INJ_ALLOC, -ENOMEM, "ENOMEM"},
    {BA_INJ_STORE_OPEN, -EIO, "EIO"},
    {BA_INJ_STORE_OPEN, -ENOSPC, "ENOSPC"},
    {BA_INJ_STORE_READ, -EIO, "EIO"},
    {BA_INJ_STORE_PUT, -ENOSPC, "ENOSPC"},
    {BA_INJ_STORE_PUT, -EIO, "EIO"},
    {BA_INJ_STORE_PUT, BA_INJ_MAP_FULL, "MAP_FULL"},
    {BA_INJ_STORE_COMMIT, -ENOSPC, "ENOSPC"},
    {BA_INJ_STORE_COMMIT, -EIO, "EIO"},
    {BA_INJ_STORE_COMPACT, -ENOSPC, "ENOSPC"},
    {BA_INJ_STORE_COMPACT, -EIO, "EIO"},
    {BA_INJ_SPILL_WRITE, -ENOSPC, "ENOSPC"},
    {BA_INJ_SPILL_WRITE, -EIO, "EIO"},
    {BA_INJ_SPILL_READ, -EIO, "EIO"},
    {BA_INJ_STORE_RESERVE, -ENOSPC, "ENOSPC"},
    {BA_INJ_STORE_RESERVE, -EIO, "EIO"},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* One operation under test. prepare() puts the fixture in the state the operation starts
 * from (called once, and again after every success); run() is the call; failed() checks
 * the state after a clean failure; succeeded() after a success; done() tears down. */
struct op {
    const char *name;
    void (*prepare)(struct op *op);
    int (*run)(struct op *op);
    void (*failed)(struct op *op);
    void (*succeeded)(struct op *op);
    void (*done)(struct op *op);
    int backend;
    struct tl_db t;
    ba_session *s;
    char *out; /* compact's output path */
    int prepared;
};

struct tally {
    unsigned hits, failed, recovered;
};

static int code_ok(const struct inj_case *c, int rc)
{
    if (c->code == BA_INJ_MAP_FULL)
        return rc == BA_EFULL;
    return rc == c->code;
}

/* Fail hit k of the case's point for k = 0, 1, ... until the operation no longer reaches
 * hit k; that last, undisturbed run is the retry that must succeed. */
static struct tally run_case(struct op *op, const struct inj_case *c)
{
    struct tally ty = {0, 0, 0};
    for (unsigned k = 0;; k++) {
        ck_assert_msg(k < 20000, "%s: %s keeps being hit", op->name,
                      ba_inject_point_name(c->point));
        if (!op->prepared) {
            op->prepare(op);
            op->prepared = 1;
        }
        if (getenv("BA_REL_VERBOSE"))
            fprintf(stderr, "%s: %s %s at hit %u\n", op->name, ba_inject_point_name(c->point),
                    c->code_name, k);
        ba_inject_arm(c->point, c->code, k, 1);
        int rc = op->run(op);
        unsigned hits = ba_inject_hits(c->point);
        ba_inject_clear();
        int fired = hits > k;
        if (!fired) {
            ck_assert_msg(rc == 0, "%s with no fault: %d %s (%s)", op->name, rc, ba_strerror(rc),
                          ba_errmsg());
            op->succeeded(op);
            op->prepared = 0;
            ty.hits = k;
            return ty;
        }
        if (rc == 0) {
            /* It recovered by itself: then it must have done everything. */
            op->succeeded(op);
            op->prepared = 0;
            ty.recovered++;
            continue;
        }
        ck_assert_msg(code_ok(c, rc), "%s, %s %s at hit %u: got %d %s (%s)", op->name,
                      ba_inject_point_name(c->point), c->code_name, k, rc, ba_strerror(rc),
                      ba_errmsg());
        ck_assert_msg(strlen(ba_errmsg()) > 0, "%s, %s at hit %u: no message", op->name,
                      ba_inject_point_name(c->point), k);
        op->failed(op);
        ty.failed++;
    }
}

static void run_all_cases(struct op *op)
{
    char line[4096];
    size_t len = 0;
    unsigned total = 0;
    len += (size_t)snprintf(line + len, sizeof line - len, "inject: %s [%s]:", op->name,
                            op->backend == BA_PAGER_UFFD ? "uffd" : "sigsegv");
    /* BA_REL_INJECT_ONLY=point[,point...] narrows the run to some points (debugging). */
    const char *only = getenv("BA_REL_INJECT_ONLY");
    for (size_t i = 0; i < NCASES; i++) {
        if (only && !strstr(only, ba_inject_point_name(cases[i].point)))
            continue;
        struct tally ty = run_case(op, &cases[i]);
        total += ty.hits;
        if (ty.hits && ty.recovered)
            len += (size_t)snprintf(line + len, sizeof line - len,
                                    " %s/%s %u (%u failed, %u recovered)",
                                    ba_inject_point_name(cases[i].point), cases[i].code_name,
                                    ty.hits, ty.failed, ty.recovered);
        else if (ty.hits)
            len +=
                (size_t)snprintf(line + len, sizeof line - len, " %s/%s %u",
                                 ba_inject_point_name(cases[i].point), cases[i].code_name, ty.hits);
        if (len > sizeof line - 128)
            len = sizeof line - 128;
    }
    printf("%s; %u injected failures in all\n", line, total);
    fflush(stdout);
    ck_assert_msg(total > 0, "%s: no point was ever hit", op->name);
    if (op->prepared) {
        op->prepared = 0;
    }
    op->done(op);
}

/* ---- commit ------------------------------------------------------------------------------- */

static void commit_prepare(struct op *op)
{
    if (op->t.db) { /* after a success: start over */
        ba_session_end(op->s);
        tl_db_close(&op->t);
    }
    setup(&op->t, "inj-commit", op->backend == BA_PAGER_UFFD ? 0 : 1);
    TL_OK(ba_session_begin(op->t.db, &op->s));
    make_changes(op->s);
}

static int commit_run(struct op *op)
{
    return ba_session_commit(op->s);
}

static void commit_failed(struct op *op)
{
    ck_assert(ba_session_dirty(op->s));
    expect_changes(op->s);
    expect_unchanged(op->t.db);
    expect_verify_clean(op->t.db);
}

static void commit_succeeded(struct op *op)
{
    ck_assert(!ba_session_dirty(op->s));
    expect_committed(op->t.db);
    expect_verify_clean(op->t.db);
}

static void commit_done(struct op *op)
{
    ba_session_end(op->s);
    tl_db_close(&op->t);
}

START_TEST(test_commit_fails_cleanly_at_every_hit_of_every_point)
{
    struct op op = {.name = "commit",
                    .prepare = commit_prepare,
                    .run = commit_run,
                    .failed = commit_failed,
                    .succeeded = commit_succeeded,
                    .done = commit_done,
                    .backend = tl_backend(_i)};
    run_all_cases(&op);
}
END_TEST

/* ---- open ----------------------------------------------------------------------------------- */

static void open_prepare(struct op *op)
{
    if (!op->t.db && !op->t.dir) {
        setup(&op->t, "inj-open", op->backend == BA_PAGER_UFFD ? 0 : 1);
        ba_session *s;
        TL_OK(ba_session_begin(op->t.db, &s));
        make_changes(s);
        TL_OK(ba_session_commit(s));
        ba_session_end(s);
    }
    ba_db_close(op->t.db);
    op->t.db = NULL;
}

static int open_run(struct op *op)
{
    ba_db_options o;
    ba_db_options_init(&o);
    o.pager = op->t.backend;
    o.ram_limit = RAM;
    o.spill_dir = op->t.dir;
    op->t.db = NULL;
    int rc = ba_db_open(op->t.path, &o, &op->t.db);
    if (rc)
        ck_assert_ptr_null(op->t.db);
    return rc;
}

static void open_failed(struct op *op)
{
    (void)op;
}

static void open_succeeded(struct op *op)
{
    expect_verify_clean(op->t.db);
    expect_committed(op->t.db);
}

static void open_done(struct op *op)
{
    tl_db_close(&op->t);
}

START_TEST(test_open_fails_cleanly_at_every_hit_of_every_point)
{
    struct op op = {.name = "open",
                    .prepare = open_prepare,
                    .run = open_run,
                    .failed = open_failed,
                    .succeeded = open_succeeded,
                    .done = open_done,
                    .backend = tl_backend(_i)};
    run_all_cases(&op);
}
END_TEST

/* ---- preload (loads from the store and from the spill file) ----------------------------------- */

static void preload_prepare(struct op *op)
{
    if (!op->t.db) {
        setup(&op->t, "inj-load", op->backend == BA_PAGER_UFFD ? 0 : 1);
        TL_OK(ba_session_begin(op->t.db, &op->s));
        make_changes(op->s);
    }
}

/* Preload every array in pieces smaller than the budget, as the header advises. */
static int preload_run(struct op *op)
{
    static const char *const names[] = {"raw", "z", "new"};
    for (int i = 0; i < 3; i++) {
        ba_array *a;
        int rc = ba_array_open(op->s, names[i], &a);
        if (rc)
            return rc;
        ba_array_info info;
        info.size = sizeof info;
        rc = ba_array_info_get(a, &info);
        int64_t per = (int64_t)(RAM / 4 / info.dtype.itemsize);
        for (int64_t first = 0; !rc && first < info.shape[0]; first += per) {
            ba_slice sl = {BA_SLICE_RANGE, first, first + per, 1};
            ba_view v;
            rc = ba_array_view(a, &sl, 1, 0, &v);
            if (!rc) {
                rc = ba_view_preload(&v, 0);
                ba_view_release(&v);
            }
        }
        ba_array_close(a);
        if (rc)
            return rc;
    }
    return 0;
}

static void preload_failed(struct op *op)
{
    ck_assert(ba_session_dirty(op->s));
    expect_changes(op->s);
    expect_unchanged(op->t.db);
    expect_verify_clean(op->t.db);
}

static void preload_succeeded(struct op *op)
{
    preload_failed(op); /* the same: nothing changes */
}

START_TEST(test_preload_fails_cleanly_at_every_hit_of_every_point)
{
    struct op op = {.name = "preload",
                    .prepare = preload_prepare,
                    .run = preload_run,
                    .failed = preload_failed,
                    .succeeded = preload_succeeded,
                    .done = commit_done,
                    .backend = tl_backend(_i)};
    run_all_cases(&op);
}
END_TEST

/* ---- compact ----------------------------------------------------------------------------------- */

static void compact_prepare(struct op *op)
{
    if (!op->t.db) {
        setup(&op->t, "inj-compact", op->backend == BA_PAGER_UFFD ? 0 : 1);
        ba_session *s;
        TL_OK(ba_session_begin(op->t.db, &s));
        make_changes(s);
        TL_OK(ba_session_commit(s));
        ba_session_end(s);
        op->out = tu_path(op->t.dir, "copy");
    }
}

static int compact_run(struct op *op)
{
    return ba_db_compact(op->t.db, op->out);
}

static void compact_failed(struct op *op)
{
    /* No database at the output: absent, or the empty directory it was. */
    char *data = tu_path(op->out, "data.mdb");
    ck_assert_msg(access(data, F_OK) != 0, "a failed compact left %s", data);
    free(data);
    rmdir(op->out);
    expect_verify_clean(op->t.db);
}

static void compact_succeeded(struct op *op)
{
    ba_db_options o;
    ba_db_options_init(&o);
    o.flags = BA_DB_RDONLY;
    o.pager = op->t.backend;
    o.ram_limit = RAM;
    o.spill_dir = op->t.dir;
    ba_db *c;
    TL_OK(ba_db_open(op->out, &o, &c));
    expect_verify_clean(c);
    expect_committed(c);
    ba_db_close(c);
    char *p = tu_path(op->out, "data.mdb");
    unlink(p);
    free(p);
    p = tu_path(op->out, "lock.mdb");
    unlink(p);
    free(p);
    ck_assert_int_eq(rmdir(op->out), 0);
}

static void compact_done(struct op *op)
{
    free(op->out);
    tl_db_close(&op->t);
}

START_TEST(test_compact_fails_cleanly_at_every_hit_of_every_point)
{
    struct op op = {.name = "compact",
                    .prepare = compact_prepare,
                    .run = compact_run,
                    .failed = compact_failed,
                    .succeeded = compact_succeeded,
                    .done = compact_done,
                    .backend = tl_backend(_i)};
    run_all_cases(&op);
}
END_TEST

/* ---- a real full disk ------------------------------------------------------------------------- */

/* Give this process a mount namespace of its own whose mounts do not propagate. */
static int private_mounts(void)
{
    if (unshare(CLONE_NEWNS))
        return -1;
    return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
}

START_TEST(test_full_tmpfs_commit_fails_cleanly_and_retry_after_freeing_succeeds)
{
    char *mnt = tu_mkdtemp("inj-tmpfs");
    /* In a mount namespace of this test process's own, so the tmpfs goes away with the
     * process even when an assertion ends it early. */
    ck_assert_msg(private_mounts() == 0, "unshare(CLONE_NEWNS): %s", strerror(errno));
    ck_assert_msg(mount("bigarray-test", mnt, "tmpfs", 0, "size=32m") == 0, "mount: %s",
                  strerror(errno));
    /* 8 MiB of ballast to free later, so the retry has room. */
    char *ballast = tu_path(mnt, "ballast");
    FILE *f = fopen(ballast, "w");
    ck_assert_ptr_nonnull(f);
    static unsigned char chunk[1 << 20];
    memset(chunk, 0xab, sizeof chunk);
    for (int i = 0; i < 8; i++)
        ck_assert_uint_eq(fwrite(chunk, 1, sizeof chunk, f), sizeof chunk);
    ck_assert_int_eq(fclose(f), 0);
    struct tl_db t;
    t.dir = tu_mkdtemp("inj-tmpfs-spill"); /* spill on disk */
    t.path = tu_path(mnt, "db");
    t.backend = tl_backend(_i);
    ba_db_options o;
    ba_db_options_init(&o);
    o.flags = BA_DB_CREATE;
    o.pager = t.backend;
    o.ram_limit = 16u << 20;
    o.spill_dir = t.dir;
    o.map_size = 64u << 20;
    TL_OK(ba_db_open(t.path, &o, &t.db));
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    /* Commit 2 MiB arrays of incompressible bytes until a commit fails. */
    int ncommitted = 0, rc = 0;
    char name[32];
    for (; ncommitted < 64; ncommitted++) {
        snprintf(name, sizeof name, "a%02d", ncommitted);
        int64_t n = 2 << 20;
        ba_array *a = tl_create(s, name, "u1", 'C', BS, 1, &n);
        fill(a, "", 0, 100 + (uint64_t)ncommitted);
        ba_array_close(a);
        rc = ba_session_commit(s);
        if (rc)
            break;
    }
    ck_assert_msg(rc != 0, "a 32 MiB filesystem took 128 MiB");
    ck_assert_msg(rc == -ENOSPC || rc == BA_EFULL, "a commit on a full disk failed with %d %s (%s)",
                  rc, ba_strerror(rc), ba_errmsg());
    printf("full disk [%s]: commit %d failed with %s (%s)\n",
           t.backend == BA_PAGER_UFFD ? "uffd" : "sigsegv", ncommitted + 1, ba_strerror(rc),
           ba_errmsg());
    /* The session keeps its data; everything committed before is there. */
    ck_assert(ba_session_dirty(s));
    ba_array *a = open_array(s, name);
    expect_fill(a, "", 0, 100 + (uint64_t)ncommitted);
    ba_array_close(a);
    ba_session *o2;
    TL_OK(ba_session_begin(t.db, &o2));
    for (int i = 0; i < ncommitted; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "a%02d", i);
        a = open_array(o2, nm);
        expect_fill(a, "", 0, 100 + (uint64_t)i);
        ba_array_close(a);
    }
    TL_FAILS(ba_array_open(o2, name, &a), BA_ENOTFOUND);
    ba_session_end(o2);
    expect_verify_clean(t.db);
    /* Free space; the same session's retry succeeds. */
    ck_assert_int_eq(unlink(ballast), 0);
    TL_OK(ba_session_commit(s));
    ba_session_end(s);
    ba_db_close(t.db);
    TL_OK(ba_db_open(t.path, &o, &t.db));
    expect_verify_clean(t.db);
    TL_OK(ba_session_begin(t.db, &o2));
    for (int i = 0; i <= ncommitted; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "a%02d", i);
        a = open_array(o2, nm);
        expect_fill(a, "", 0, 100 + (uint64_t)i);
        ba_array_close(a);
    }
    ba_session_end(o2);
    ba_db_close(t.db);
    free(t.path);
    tu_rmtree(t.dir);
    free(ballast);
    ck_assert_int_eq(umount2(mnt, MNT_DETACH), 0);
    tu_rmtree(mnt);
}
END_TEST

static Suite *inject_suite(int full_disk)
{
    Suite *s = suite_create("reliability_inject");
    TCase *tc;
    if (full_disk) {
        tc = tcase_create("disk");
        tcase_set_timeout(tc, 300);
        tcase_add_loop_test(tc,
                            test_full_tmpfs_commit_fails_cleanly_and_retry_after_freeing_succeeds,
                            0, TL_NBACKENDS);
        suite_add_tcase(s, tc);
        return s;
    }
    tc = tcase_create("points");
    tcase_set_timeout(tc, 900);
    tcase_add_loop_test(tc, test_commit_fails_cleanly_at_every_hit_of_every_point, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_open_fails_cleanly_at_every_hit_of_every_point, 0, TL_NBACKENDS);
    tcase_add_loop_test(tc, test_preload_fails_cleanly_at_every_hit_of_every_point, 0,
                        TL_NBACKENDS);
    tcase_add_loop_test(tc, test_compact_fails_cleanly_at_every_hit_of_every_point, 0,
                        TL_NBACKENDS);
    suite_add_tcase(s, tc);
    return s;
}

/* Whether this process may mount a tmpfs (tried once, undone at once). */
static int can_mount_tmpfs(char *why, size_t n)
{
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/ba-inj-probe-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        snprintf(why, n, "mkdtemp: %s", strerror(errno));
        return 0;
    }
    /* Probe in a child, in a mount namespace of its own (as the test will mount). */
    int pfd[2];
    if (pipe(pfd)) {
        snprintf(why, n, "pipe: %s", strerror(errno));
        return 0;
    }
    pid_t pid = fork();
    if (pid == 0) {
        int e = 0;
        if (private_mounts() || mount("bigarray-probe", dir, "tmpfs", 0, "size=1m"))
            e = errno;
        if (write(pfd[1], &e, sizeof e) != (ssize_t)sizeof e)
            _exit(1);
        _exit(0);
    }
    int e = EPERM, status;
    if (pid < 0 || read(pfd[0], &e, sizeof e) != (ssize_t)sizeof e)
        e = pid < 0 ? errno : EPERM;
    if (pid > 0)
        waitpid(pid, &status, 0);
    close(pfd[0]);
    close(pfd[1]);
    rmdir(dir);
    if (e)
        snprintf(why, n, "%s", strerror(e));
    return e == 0;
}

/* rel_inject: every point at every hit; rel_inject full-disk: the real full disk (a
 * separate ctest test, so that it can be skipped on its own). */
int main(int argc, char **argv)
{
    int full_disk = argc > 1 && !strcmp(argv[1], "full-disk");
    char why[256];
    if (full_disk && !can_mount_tmpfs(why, sizeof why))
        tu_skip("cannot mount a tmpfs (%s): the real full-disk case needs mount rights", why);
    return tu_run(inject_suite(full_disk));
}
