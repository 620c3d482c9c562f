/* SPDX-License-Identifier: MIT */
/*
 * Crash consistency (issue #7 item 2). A writer process commits a deterministic
 * sequence of versions; a driver SIGKILLs it at seeded random moments (50 times in the
 * CI mode, 500 with --long), and after each kill checks that the database holds
 * exactly one committed version, never older than the last one the writer
 * acknowledged, that ba_db_verify finds nothing, and that a compacted copy the writer
 * may have been making is either not a database at all (ignored) or a complete, valid
 * copy of the version it was made from. Then a new writer continues from there.
 *
 * Versions. Version v is one transaction. It always writes v into the array "meta",
 * and does one of (chosen from the seed and v alone): a rewrite of a range spanning up
 * to 8 blocks of one array; an append; a resize (shrinks, growths, a shrink and a
 * regrow in one transaction); several of those in all arrays at once; a big rewrite
 * of 4-12 MiB (a 2 MiB pager budget makes it spill); or a small rewrite followed, after
 * the commit, by ba_db_compact() to the side directory "compact". Element p of an
 * array, when version w wrote it, holds val(array, w, p); everything else is zero. The
 * arrays: "rawC" u4 (rows, 1024) C order uncompressed, "zstdC" f8 1-D zstd, "zstdF" i2
 * (64, cols) F order zstd+shuffle. The driver replays the same plans on an in-memory
 * model, so a check compares every byte of every array.
 *
 * Protocol. The writer (this program with --writer, exec'd) reports over a pipe:
 * BEGIN v (starts writing), FILLED v (data written, commit starts), ACK v (commit
 * returned 0), COMPACT_START v, COMPACT_DONE v. The driver picks, per kill, a moment:
 * after a random delay, during a big (spilling) version, during a commit, during a
 * compact, or just after a version begins; and records the phase the writer was in.
 * The kill moment relative to the writer's progress depends on timing; the plans, the
 * strategies and the delays depend only on the seed (printed).
 *
 * Writers alternate between the two pager backends unless --backend names one.
 *
 *   rel_crash [--long] [--seed N] [--backend uffd|sigsegv] [KILLS]
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rel_util.h"

/* ---- the arrays -------------------------------------------------------------------------------- */

enum { NARR = 3 };

struct arr_def {
    const char *name, *dtype;
    char order;
    uint32_t itemsize;
    int codec;
    unsigned filters;
    uint32_t block_size;
    int ndim;
    uint64_t minor;      /* elements per index of the major axis */
    uint64_t max_rows;   /* major-axis length never exceeds this */
    uint64_t init_rows;  /* at creation */
    uint64_t max_append; /* rows per append */
};

static const struct arr_def defs[NARR] = {
    {"rawC", "<u4", 'C', 4, BA_CODEC_NONE, 0, 64u << 10, 2, 1024, 2048, 256, 64},
    {"zstdC", "<f8", 'C', 8, BA_CODEC_ZSTD, 0, 64u << 10, 1, 1, 1u << 20, 65536, 100000},
    {"zstdF", "<i2", 'F', 2, BA_CODEC_ZSTD, BA_FILTER_SHUFFLE, 16u << 10, 2, 64, 32768, 4096, 3000},
};

#define RAW_BIG_ROWS 1024u /* a big version grows rawC to at least this (4 MiB) */
#define WRITER_RAM   (2ull << 20)

/* The value of element p (memory order) of array k as version w writes it. */
static void val_store(int k, uint64_t w, uint64_t p, void *dst)
{
    switch (k) {
    case 0: {
        uint64_t z = (w << 32 ^ p) * 0x9e3779b97f4a7c15ull;
        uint32_t x = (uint32_t)(z >> 32);
        memcpy(dst, &x, 4);
        break;
    }
    case 1: {
        double d = (double)(w * 1000 + p % 1000);
        memcpy(dst, &d, 8);
        break;
    }
    default: {
        int16_t s = (int16_t)(w * 31 + p % 97);
        memcpy(dst, &s, 2);
        break;
    }
    }
}

/* The shape of array k with `rows` along the major axis. */
static void shape_of(int k, uint64_t rows, int64_t *shape)
{
    const struct arr_def *d = &defs[k];
    if (d->ndim == 1)
        shape[0] = (int64_t)rows;
    else if (d->order == 'C') {
        shape[0] = (int64_t)rows;
        shape[1] = (int64_t)d->minor;
    } else {
        shape[0] = (int64_t)d->minor;
        shape[1] = (int64_t)rows;
    }
}

/* ---- plans ---------------------------------------------------------------------------------------- */

enum step_kind { ST_CREATE, ST_REWRITE, ST_APPEND, ST_RESIZE };
enum plan_kind { PK_CREATE, PK_REWRITE, PK_APPEND, PK_RESIZE, PK_MULTI, PK_BIG, PK_COMPACT, PK_N };
static const char *const plan_names[PK_N] = {"create", "rewrite", "append", "resize",
                                             "multi",  "big",     "compact"};

struct step {
    int kind, arr;
    uint64_t a, b; /* CREATE/APPEND/RESIZE: rows in a; REWRITE: elements [a, b) */
};

struct plan {
    uint64_t v;
    int kind;
    int nsteps;
    struct step steps[16];
};

static int plan_kind(uint64_t seed, uint64_t v)
{
    if (v == 1)
        return PK_CREATE;
    uint64_t r = seed ^ (v * 0xd1b54a32d192ed03ull);
    uint64_t x = rel_rand(&r) % 100;
    return x < 30   ? PK_REWRITE
           : x < 48 ? PK_APPEND
           : x < 60 ? PK_RESIZE
           : x < 72 ? PK_MULTI
           : x < 90 ? PK_BIG
                    : PK_COMPACT;
}

static void add_step(struct plan *pl, int kind, int arr, uint64_t a, uint64_t b)
{
    REL_CHECK(pl->nsteps < 16, "plan too long");
    pl->steps[pl->nsteps++] = (struct step){kind, arr, a, b};
}

static void plan_rewrite(struct plan *pl, uint64_t *r, int k, const uint64_t *rows)
{
    uint64_t n = rows[k] * defs[k].minor;
    if (!n) {
        add_step(pl, ST_RESIZE, k, 1 + rel_below(r, defs[k].max_rows / 8), 0);
        return;
    }
    uint64_t per_block = defs[k].block_size / defs[k].itemsize;
    uint64_t maxlen = 8 * per_block < n ? 8 * per_block : n;
    uint64_t len = 1 + rel_below(r, maxlen);
    uint64_t a = rel_below(r, n - len + 1);
    add_step(pl, ST_REWRITE, k, a, a + len);
}

static void plan_append(struct plan *pl, uint64_t *r, int k, uint64_t *rows)
{
    uint64_t cnt = 1 + rel_below(r, defs[k].max_append);
    if (rows[k] + cnt > defs[k].max_rows) {
        rows[k] /= 2; /* full: shrink instead */
        add_step(pl, ST_RESIZE, k, rows[k], 0);
        return;
    }
    add_step(pl, ST_APPEND, k, cnt, 0);
    rows[k] += cnt;
}

static void plan_resize(struct plan *pl, uint64_t *r, int k, uint64_t *rows)
{
    uint64_t how = rel_below(r, 4);
    if (how == 0 && rows[k] > 0) { /* shrink and regrow: the regrown part reads zero */
        uint64_t small = rel_below(r, rows[k]);
        add_step(pl, ST_RESIZE, k, small, 0);
        add_step(pl, ST_RESIZE, k, rows[k], 0);
    } else if (how == 1 && rows[k] > 0) { /* shrink */
        rows[k] = rel_below(r, rows[k]);
        add_step(pl, ST_RESIZE, k, rows[k], 0);
    } else { /* grow (zeros appear) */
        uint64_t to = rows[k] + 1 + rel_below(r, defs[k].max_rows / 8);
        rows[k] = to < defs[k].max_rows ? to : defs[k].max_rows;
        add_step(pl, ST_RESIZE, k, rows[k], 0);
    }
}

/* The plan of version v, given the arrays' rows after version v-1. */
static void plan_make(uint64_t seed, uint64_t v, const uint64_t *rows_in, struct plan *pl)
{
    uint64_t rows[NARR];
    memcpy(rows, rows_in, sizeof rows);
    pl->v = v;
    pl->kind = plan_kind(seed, v);
    pl->nsteps = 0;
    uint64_t r = seed * 0x9e3779b97f4a7c15ull ^ v;
    rel_rand(&r);
    int k = (int)rel_below(&r, NARR);
    switch (pl->kind) {
    case PK_CREATE:
        for (int i = 0; i < NARR; i++) {
            add_step(pl, ST_CREATE, i, defs[i].init_rows, 0);
            add_step(pl, ST_REWRITE, i, 0, defs[i].init_rows * defs[i].minor);
        }
        break;
    case PK_REWRITE:
    case PK_COMPACT:
        plan_rewrite(pl, &r, k, rows);
        break;
    case PK_APPEND:
        plan_append(pl, &r, k, rows);
        break;
    case PK_RESIZE:
        plan_resize(pl, &r, k, rows);
        break;
    case PK_MULTI:
        for (int i = 0; i < NARR; i++)
            plan_rewrite(pl, &r, i, rows);
        plan_append(pl, &r, k, rows);
        plan_rewrite(pl, &r, k, rows);
        break;
    case PK_BIG:
        /* 4-8 MiB of rawC and all of zstdC rewritten: spills with a 2 MiB budget. */
        if (rows[0] < RAW_BIG_ROWS) {
            add_step(pl, ST_RESIZE, 0, RAW_BIG_ROWS, 0);
            rows[0] = RAW_BIG_ROWS;
        }
        add_step(pl, ST_REWRITE, 0, 0, rows[0] * defs[0].minor);
        if (rows[1])
            add_step(pl, ST_REWRITE, 1, 0, rows[1] * defs[1].minor);
        break;
    default:
        REL_FAIL("bad plan kind");
    }
}

/* ---- the model ------------------------------------------------------------------------------------ */

struct model {
    uint64_t v;
    int exists; /* the arrays exist (v >= 1) */
    uint64_t rows[NARR];
    unsigned char *bytes[NARR]; /* max_rows * minor * itemsize each */
};

static void model_init(struct model *m)
{
    memset(m, 0, sizeof *m);
    for (int k = 0; k < NARR; k++) {
        m->bytes[k] = calloc(defs[k].max_rows * defs[k].minor, defs[k].itemsize);
        REL_CHECK(m->bytes[k], "out of memory");
    }
}

static void model_copy(struct model *dst, const struct model *src)
{
    dst->v = src->v;
    dst->exists = src->exists;
    memcpy(dst->rows, src->rows, sizeof dst->rows);
    for (int k = 0; k < NARR; k++)
        memcpy(dst->bytes[k], src->bytes[k], defs[k].max_rows * defs[k].minor * defs[k].itemsize);
}

static void model_free(struct model *m)
{
    for (int k = 0; k < NARR; k++)
        free(m->bytes[k]);
}

static void model_set_rows(struct model *m, int k, uint64_t rows)
{
    size_t es = defs[k].itemsize, per_row = defs[k].minor * es;
    if (rows < m->rows[k]) /* bytes past the end read as zero after a regrow */
        memset(m->bytes[k] + rows * per_row, 0, (m->rows[k] - rows) * per_row);
    m->rows[k] = rows;
}

static void model_apply(struct model *m, const struct plan *pl)
{
    for (int i = 0; i < pl->nsteps; i++) {
        const struct step *st = &pl->steps[i];
        int k = st->arr;
        size_t es = defs[k].itemsize;
        switch (st->kind) {
        case ST_CREATE:
            m->exists = 1;
            m->rows[k] = st->a;
            break;
        case ST_REWRITE:
            for (uint64_t p = st->a; p < st->b; p++)
                val_store(k, pl->v, p, m->bytes[k] + p * es);
            break;
        case ST_APPEND: {
            uint64_t first = m->rows[k] * defs[k].minor;
            m->rows[k] += st->a;
            for (uint64_t p = first; p < m->rows[k] * defs[k].minor; p++)
                val_store(k, pl->v, p, m->bytes[k] + p * es);
            break;
        }
        case ST_RESIZE:
            model_set_rows(m, k, st->a);
            break;
        default:
            REL_FAIL("bad step");
        }
    }
    m->v = pl->v;
}

/* ---- the writer ----------------------------------------------------------------------------------- */

enum msg_kind { MSG_BEGIN = 1, MSG_FILLED, MSG_ACK, MSG_COMPACT_START, MSG_COMPACT_DONE };
static const char *const msg_names[] = {"start",     "writing",    "committing",
                                        "committed", "compacting", "compacted"};

struct msg {
    uint32_t kind, pad;
    uint64_t v;
};

#define MSG_FD 3

static void send_msg(uint32_t kind, uint64_t v)
{
    struct msg m = {kind, 0, v};
    REL_CHECK(write(MSG_FD, &m, sizeof m) == (ssize_t)sizeof m, "writer: pipe: %s",
              strerror(errno));
}

/* The version in "meta" of the session's snapshot and the arrays' rows (0, zeros when
 * the arrays do not exist yet). */
static uint64_t db_state(ba_session *s, uint64_t *rows)
{
    ba_array *meta;
    int rc = ba_array_open(s, "meta", &meta);
    memset(rows, 0, NARR * sizeof *rows);
    if (rc == BA_ENOTFOUND)
        return 0;
    REL_OK(rc);
    ba_view v;
    REL_OK(ba_array_view(meta, NULL, 0, BA_VIEW_READONLY, &v));
    REL_OK(ba_view_preload(&v, 0));
    const uint64_t *x = v.data;
    uint64_t ver = x[0];
    REL_CHECK(x[1] == ~ver, "meta holds %llu and %llx, not a version and its complement",
              (unsigned long long)x[0], (unsigned long long)x[1]);
    ba_view_release(&v);
    ba_array_close(meta);
    for (int k = 0; k < NARR; k++) {
        ba_array *a;
        REL_OK(ba_array_open(s, defs[k].name, &a));
        ba_array_info info;
        info.size = sizeof info;
        REL_OK(ba_array_info_get(a, &info));
        rows[k] = (uint64_t)(defs[k].order == 'F' ? info.shape[1] : info.shape[0]);
        ba_array_close(a);
    }
    return ver;
}

static ba_array *create_array(ba_session *s, int k, uint64_t rows)
{
    const struct arr_def *d = &defs[k];
    ba_array_spec sp;
    ba_array_spec_init(&sp);
    REL_OK(ba_dtype_parse(d->dtype, &sp.dtype));
    sp.ndim = d->ndim;
    shape_of(k, rows, sp.shape);
    sp.order = d->order;
    sp.block_size = d->block_size;
    sp.codec = d->codec;
    sp.level = d->codec ? 1 : 0;
    sp.filters = d->filters;
    ba_array *a;
    REL_OK(ba_array_create(s, d->name, &sp, &a));
    return a;
}

static void write_meta(ba_session *s, uint64_t v, int create)
{
    ba_array *meta;
    if (create) {
        ba_array_spec sp;
        ba_array_spec_init(&sp);
        REL_OK(ba_dtype_parse("<u8", &sp.dtype));
        sp.ndim = 1;
        sp.shape[0] = 2;
        sp.block_size = 4096;
        REL_OK(ba_array_create(s, "meta", &sp, &meta));
    } else {
        REL_OK(ba_array_open(s, "meta", &meta));
    }
    ba_view w;
    REL_OK(ba_array_view(meta, NULL, 0, 0, &w));
    uint64_t *x = w.data;
    x[0] = v;
    x[1] = ~v;
    ba_view_release(&w);
    ba_array_close(meta);
}

static void db_apply(ba_session *s, const struct plan *pl, uint64_t *rows)
{
    for (int i = 0; i < pl->nsteps; i++) {
        const struct step *st = &pl->steps[i];
        int k = st->arr;
        const struct arr_def *d = &defs[k];
        ba_array *a;
        if (st->kind == ST_CREATE) {
            a = create_array(s, k, st->a);
            rows[k] = st->a;
            ba_array_close(a);
            continue;
        }
        REL_OK(ba_array_open(s, d->name, &a));
        int64_t shape[2];
        switch (st->kind) {
        case ST_REWRITE: {
            ba_view w;
            REL_OK(ba_array_view(a, NULL, 0, 0, &w));
            char *base = w.data;
            for (uint64_t p = st->a; p < st->b; p++)
                val_store(k, pl->v, p, base + p * d->itemsize);
            ba_view_release(&w);
            break;
        }
        case ST_APPEND: {
            uint64_t first = rows[k] * d->minor, n = st->a * d->minor;
            unsigned char *buf = malloc(n * d->itemsize);
            REL_CHECK(buf, "out of memory");
            for (uint64_t j = 0; j < n; j++)
                val_store(k, pl->v, first + j, buf + j * d->itemsize);
            shape_of(k, st->a, shape);
            REL_OK(ba_array_append(a, buf, d->ndim, shape, NULL));
            free(buf);
            rows[k] += st->a;
            break;
        }
        case ST_RESIZE:
            shape_of(k, st->a, shape);
            REL_OK(ba_array_resize(a, d->ndim, shape));
            rows[k] = st->a;
            break;
        default:
            REL_FAIL("bad step");
        }
        ba_array_close(a);
    }
    write_meta(s, pl->v, pl->kind == PK_CREATE);
}

static void rm_side(const char *side)
{
    char *p1 = rel_path(side, "data.mdb"), *p2 = rel_path(side, "lock.mdb");
    unlink(p1);
    unlink(p2);
    rmdir(side);
    free(p1);
    free(p2);
}

static int writer_main(const char *dir, uint64_t seed, int backend)
{
    char *path = rel_path(dir, "db"), *side = rel_path(dir, "compact");
    ba_db *db = rel_db_open(path, BA_DB_CREATE, backend, WRITER_RAM, dir);
    ba_session *s;
    REL_OK(ba_session_begin(db, &s));
    uint64_t rows[NARR];
    uint64_t v = db_state(s, rows);
    for (;;) {
        struct plan pl;
        plan_make(seed, ++v, rows, &pl);
        send_msg(MSG_BEGIN, v);
        db_apply(s, &pl, rows);
        send_msg(MSG_FILLED, v);
        REL_OK(ba_session_commit(s));
        send_msg(MSG_ACK, v);
        if (pl.kind == PK_COMPACT) {
            rm_side(side);
            send_msg(MSG_COMPACT_START, v);
            REL_OK(ba_db_compact(db, side));
            send_msg(MSG_COMPACT_DONE, v);
        }
    }
}

/* ---- the driver ------------------------------------------------------------------------------------ */

enum strategy { KS_DELAY, KS_SPILL, KS_COMMIT, KS_COMPACT, KS_BEGIN, KS_N };
static const char *const strategy_names[KS_N] = {"random delay", "in a big (spilling) version",
                                                 "in a commit", "in a compact",
                                                 "as a version begins"};

struct driver {
    uint64_t seed;
    int backend;
    char *dir, *path, *side;
    struct model m;     /* the state of version m.v */
    struct model mc;    /* the state of the newest compact version <= m.v */
    uint64_t compact_v; /* its version (0: none yet) */
    /* what the current writer said */
    uint64_t acked, last_v;
    uint32_t last_kind;
    /* figures */
    unsigned kills, exits_by_strategy[KS_N], phase_counts[6];
    unsigned unacked_durable, compact_ignored, compact_valid, big_kills_after_spill;
    uint64_t versions_checked;
    double run_s, check_s;
};

static void on_msg(struct driver *d, const struct msg *m)
{
    d->last_kind = m->kind;
    d->last_v = m->v;
    if (m->kind == MSG_ACK)
        d->acked = m->v;
}

/* Read messages until one satisfies want (or the deadline passes); returns 1 if one did. */
static int wait_msg(struct driver *d, int fd, double deadline,
                    int (*want)(struct driver *d, const struct msg *m))
{
    for (;;) {
        double left = deadline - rel_now();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {fd, POLLIN, 0};
        int n = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (n < 0 && errno == EINTR)
            continue;
        REL_CHECK(n >= 0, "poll: %s", strerror(errno));
        if (!n)
            continue;
        struct msg m;
        ssize_t got = read(fd, &m, sizeof m);
        if (got == 0)
            return 0; /* the writer died by itself: the caller finds out */
        REL_CHECK(got == (ssize_t)sizeof m, "pipe read %zd: %s", got, strerror(errno));
        on_msg(d, &m);
        if (want && want(d, &m))
            return 1;
    }
}

static int want_big_begin(struct driver *d, const struct msg *m)
{
    return m->kind == MSG_BEGIN && plan_kind(d->seed, m->v) == PK_BIG;
}
static int want_filled(struct driver *d, const struct msg *m)
{
    (void)d;
    return m->kind == MSG_FILLED;
}
static int want_compact(struct driver *d, const struct msg *m)
{
    (void)d;
    return m->kind == MSG_COMPACT_START;
}
static int want_begin(struct driver *d, const struct msg *m)
{
    (void)d;
    return m->kind == MSG_BEGIN && m->v > 1;
}

static pid_t spawn_writer(struct driver *d, int *rfd)
{
    int pfd[2];
    REL_CHECK(pipe(pfd) == 0, "pipe: %s", strerror(errno));
    char seed[32], backend[16];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)d->seed);
    snprintf(backend, sizeof backend, "%d", d->backend);
    fflush(NULL);
    pid_t pid = fork();
    REL_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(pfd[0]);
        if (pfd[1] != MSG_FD) {
            dup2(pfd[1], MSG_FD);
            close(pfd[1]);
        }
        execl("/proc/self/exe", "rel_crash", "--writer", d->dir, seed, backend, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    *rfd = pfd[0];
    return pid;
}

static int count_array(const char *name, void *ctx)
{
    (void)name;
    ++*(int *)ctx;
    return 0;
}

/* Compare every array of the database's newest snapshot with model m. */
static void check_against(ba_db *db, const struct model *m, const char *what)
{
    ba_session *s;
    REL_OK(ba_session_begin(db, &s));
    uint64_t rows[NARR];
    uint64_t v = db_state(s, rows);
    REL_CHECK(v == m->v, "%s: holds version %llu, expected %llu", what, (unsigned long long)v,
              (unsigned long long)m->v);
    for (int k = 0; k < NARR && m->exists; k++) {
        const struct arr_def *def = &defs[k];
        REL_CHECK(rows[k] == m->rows[k], "%s: version %llu: %s has %llu rows, expected %llu", what,
                  (unsigned long long)v, def->name, (unsigned long long)rows[k],
                  (unsigned long long)m->rows[k]);
        if (!rows[k])
            continue;
        ba_array *a;
        REL_OK(ba_array_open(s, def->name, &a));
        ba_view w;
        REL_OK(ba_array_view(a, NULL, 0, BA_VIEW_READONLY, &w));
        REL_OK(ba_view_preload(&w, 0));
        size_t nbytes = rows[k] * def->minor * def->itemsize;
        if (memcmp(w.data, m->bytes[k], nbytes)) {
            size_t off = 0;
            while (((const unsigned char *)w.data)[off] == m->bytes[k][off])
                off++;
            REL_FAIL("%s: version %llu: %s differs from the model at byte %zu (block %zu): a "
                     "mix of versions or lost data",
                     what, (unsigned long long)v, def->name, off, off / def->block_size);
        }
        ba_view_release(&w);
        ba_array_close(a);
    }
    int narrays = 0;
    REL_OK(ba_array_list(s, count_array, &narrays));
    REL_CHECK(narrays == (m->exists ? NARR + 1 : 0), "%s: %d arrays, expected %d", what, narrays,
              m->exists ? NARR + 1 : 0);
    ba_session_end(s);
}

static void verify_clean(ba_db *db, const char *what)
{
    uint64_t np = 1;
    REL_OK(ba_db_verify(db, NULL, NULL, &np));
    REL_CHECK(np == 0, "%s: verify found %llu problems", what, (unsigned long long)np);
}

/* The side directory of a killed compact: absent, not a database (ignored), or a
 * complete valid copy of the compact version. */
static void check_side(struct driver *d)
{
    struct stat sb;
    if (stat(d->side, &sb))
        return;
    ba_db_options o;
    ba_db_options_init(&o);
    o.flags = BA_DB_RDONLY;
    o.pager = d->backend;
    o.ram_limit = 64ull << 20;
    o.spill_dir = d->dir;
    ba_db *cdb;
    int rc = ba_db_open(d->side, &o, &cdb);
    if (rc == BA_ENOTDB || rc == BA_ENOTFOUND) {
        d->compact_ignored++;
    } else {
        REL_CHECK(rc == 0,
                  "the compacted copy neither opens nor is refused as not a database: %d %s (%s)",
                  rc, ba_strerror(rc), ba_errmsg());
        REL_CHECK(d->compact_v, "a compacted copy exists but no compact version was committed");
        verify_clean(cdb, "a compacted copy left by a killed writer");
        check_against(cdb, &d->mc, "a compacted copy left by a killed writer");
        ba_db_close(cdb);
        d->compact_valid++;
    }
    rm_side(d->side);
}

/* Advance the model to version v (never backwards). */
static void model_advance(struct driver *d, uint64_t v)
{
    while (d->m.v < v) {
        struct plan pl;
        plan_make(d->seed, d->m.v + 1, d->m.rows, &pl);
        model_apply(&d->m, &pl);
        if (pl.kind == PK_COMPACT) {
            model_copy(&d->mc, &d->m);
            d->compact_v = pl.v;
        }
    }
}

static void check_after_kill(struct driver *d)
{
    ba_db_options o;
    ba_db_options_init(&o);
    o.pager = d->backend;
    o.ram_limit = 64ull << 20;
    o.spill_dir = d->dir;
    ba_db *db;
    int rc = ba_db_open(d->path, &o, &db);
    if (rc == BA_ENOTFOUND || rc == BA_ENOTDB) {
        /* killed before the database was created (or its first commit) */
        REL_CHECK(d->acked == 0 && d->m.v == 0, "the database is gone after version %llu: %s",
                  (unsigned long long)d->acked, ba_errmsg());
        return;
    }
    REL_OK(rc);
    verify_clean(db, "the database after a kill");
    ba_session *s;
    REL_OK(ba_session_begin(db, &s));
    uint64_t rows[NARR];
    uint64_t v = db_state(s, rows);
    ba_session_end(s);
    REL_CHECK(v >= d->acked, "the database holds version %llu, older than the acknowledged %llu",
              (unsigned long long)v, (unsigned long long)d->acked);
    REL_CHECK(v <= d->acked + 1 && v >= d->m.v,
              "the database holds version %llu; acknowledged %llu, checked before %llu",
              (unsigned long long)v, (unsigned long long)d->acked, (unsigned long long)d->m.v);
    if (v == d->acked + 1)
        d->unacked_durable++;
    model_advance(d, v);
    check_against(db, &d->m, "the database after a kill");
    ba_db_close(db);
    d->versions_checked++;
    check_side(d);
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "--writer"))
        return writer_main(argv[2], strtoull(argv[3], NULL, 10), atoi(argv[4]));
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct rel_opts ro = {.seed = 20240607};
    rel_parse_args(argc, argv, &ro, "[KILLS]");
    unsigned kills = ro.extra          ? (unsigned)strtoul(ro.extra, NULL, 10)
                     : ro.long_mode    ? 500
                     : rel_sanitized() ? 20 /* each kill costs several times more */
                                       : 50;
    struct driver d;
    memset(&d, 0, sizeof d);
    d.seed = ro.seed;
    d.backend = ro.backend ? ro.backend : BA_PAGER_UFFD;
    d.dir = rel_mkdtemp("crash");
    d.path = rel_path(d.dir, "db");
    d.side = rel_path(d.dir, "compact");
    model_init(&d.m);
    model_init(&d.mc);
    printf("crash consistency: %u kills, seed %llu, backend %s, writer budget %llu MiB, in %s\n",
           kills, (unsigned long long)d.seed, ro.backend ? rel_backend_name(d.backend) : "both",
           (unsigned long long)(WRITER_RAM >> 20), d.dir);
    uint64_t ks = d.seed ^ 0x6b696c6cull;
    double t0 = rel_now();
    for (unsigned i = 0; i < kills; i++) {
        int strat = (int)rel_below(&ks, KS_N);
        uint64_t delay_us;
        switch (strat) {
        case KS_DELAY:
            delay_us = rel_below(&ks, 400000);
            break;
        case KS_SPILL:
            delay_us = rel_below(&ks, 60000);
            break;
        case KS_COMPACT:
            delay_us = rel_below(&ks, 4000);
            break;
        default:
            delay_us = rel_below(&ks, 3000);
            break;
        }
        double tr = rel_now();
        d.acked = d.m.v; /* the new writer starts from the checked version */
        d.last_kind = 0;
        d.last_v = 0;
        if (!ro.backend) /* both backends, alternately */
            d.backend = i % 2 ? BA_PAGER_SIGSEGV : BA_PAGER_UFFD;
        int fd;
        pid_t pid = spawn_writer(&d, &fd);
        static int (*const wants[KS_N])(struct driver *, const struct msg *) = {
            NULL, want_big_begin, want_filled, want_compact, want_begin};
        if (wants[strat])
            wait_msg(&d, fd, rel_now() + 20, wants[strat]);
        wait_msg(&d, fd, rel_now() + (double)delay_us * 1e-6, NULL);
        kill(pid, SIGKILL);
        int status = rel_wait(pid);
        wait_msg(&d, fd, rel_now() + 0.001, NULL); /* drain what it said before dying */
        while (wait_msg(&d, fd, rel_now() + 0.05, NULL))
            ;
        close(fd);
        char sbuf[64];
        REL_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "kill %u: the writer ended by itself with %s (see its message above)", i + 1,
                  rel_status_str(status, sbuf, sizeof sbuf));
        d.kills++;
        d.exits_by_strategy[strat]++;
        d.phase_counts[d.last_kind < 6 ? d.last_kind : 0]++;
        if (d.last_kind == MSG_FILLED && plan_kind(d.seed, d.last_v) == PK_BIG)
            d.big_kills_after_spill++;
        double tc = rel_now();
        check_after_kill(&d);
        d.run_s += tc - tr;
        d.check_s += rel_now() - tc;
    }
    printf("%u kills in %.1f s; the database went through %llu versions; %llu versions checked "
           "byte for byte (%u durable but unacknowledged)\n",
           d.kills, rel_now() - t0, (unsigned long long)d.m.v,
           (unsigned long long)d.versions_checked, d.unacked_durable);
    printf("time: %.1f s running writers, %.1f s checking\n", d.run_s, d.check_s);
    printf("kill moments:");
    for (int s = 0; s < KS_N; s++)
        printf(" %s %u%s", strategy_names[s], d.exits_by_strategy[s], s + 1 < KS_N ? "," : "\n");
    printf("writer phase at the kill:");
    for (int p = 0; p < 6; p++)
        printf(" %s %u%s", msg_names[p], d.phase_counts[p], p + 1 < 6 ? "," : "\n");
    printf("kills while committing a big (spilled) version: %u; compacted copies left behind: "
           "%u valid, %u not a database (ignored)\n",
           d.big_kills_after_spill, d.compact_valid, d.compact_ignored);
    unsigned counts[PK_N] = {0};
    for (uint64_t v = 1; v <= d.m.v; v++)
        counts[plan_kind(d.seed, v)]++;
    printf("versions by kind:");
    for (int k = 0; k < PK_N; k++)
        printf(" %s %u%s", plan_names[k], counts[k], k + 1 < PK_N ? "," : "\n");
    REL_CHECK(d.m.v > 1, "the writer never got past its first version");
    model_free(&d.m);
    model_free(&d.mc);
    free(d.path);
    free(d.side);
    rel_rmtree(d.dir);
    printf("PASS\n");
    return 0;
}
