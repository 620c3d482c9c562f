/* SPDX-License-Identifier: MIT */
/*
 * Long-lived readers (issue #7 item 7). LMDB cannot reuse a page freed after the oldest
 * live snapshot, so a reader that keeps an old snapshot makes the file grow while a
 * writer commits. This program measures and bounds that growth:
 *
 *   A. steady state: the writer commits N times (each rewrites 4 random 16 KiB blocks
 *      of an 8 MiB uncompressed array) with no old reader: the file settles;
 *   B. a reader in another process begins a session and holds its snapshot while the
 *      writer commits N more times: the writer keeps working (every commit succeeds;
 *      commit times are printed), the file grows by at most a bounded amount per
 *      commit, and the reader's snapshot still reads exactly its old data at the end;
 *   C. the reader moves to the newest snapshot (and sees the newest data); the writer
 *      commits N more times: the pages pinned during B are reused, the file stops
 *      growing.
 *
 * The writer checks at the end that the array holds exactly what its commits wrote,
 * and verify is clean. N = 2000 in the CI mode, 20000 with --long (phase B then grows
 * the file by about 1.4 GiB). Commits are not fdatasync'ed (BA_DB_NOSYNC): space, not
 * durability, is measured here.
 *
 *   rel_old_reader [--long] [--seed N] [--backend uffd|sigsegv] [COMMITS]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rel_util.h"

#define BS        (16u << 10)
#define NBLOCKS   512u
#define PER_TXN   4u
#define ELEMS_BLK (BS / 8)

struct ctx {
    char *dir, *path;
    uint64_t seed;
    int backend;
    unsigned commits;
    uint32_t gen[NBLOCKS]; /* the commit that last wrote each block (0 = the fill) */
    uint64_t rs;
    uint64_t ncommit; /* commits so far (the fill is 1) */
};

static inline uint64_t value(uint32_t gen, uint64_t blk, uint64_t i)
{
    return (uint64_t)gen << 40 ^ blk << 20 ^ i;
}

static uint64_t file_size(const struct ctx *c)
{
    char *p = rel_path(c->path, "data.mdb");
    struct stat sb;
    REL_CHECK(stat(p, &sb) == 0, "stat %s: %s", p, strerror(errno));
    free(p);
    return (uint64_t)sb.st_blocks * 512; /* allocated: the file is sparse (writable map) */
}

/* Check that the view holds the data of gens (NULL = every block at gen 0). */
static int view_matches(const ba_view *v, const uint32_t *gens, uint64_t *bad_blk)
{
    const uint64_t *x = v->data;
    for (uint64_t b = 0; b < NBLOCKS; b++)
        for (uint64_t i = 0; i < ELEMS_BLK; i++)
            if (x[b * ELEMS_BLK + i] != value(gens ? gens[b] : 0, b, i)) {
                *bad_blk = b;
                return 0;
            }
    return 1;
}

struct phase_stats {
    double first_ms, last_ms, max_ms; /* mean of the first and last 10%, and the maximum */
};

/* N commits, each rewriting PER_TXN random blocks. */
static struct phase_stats run_commits(struct ctx *c, ba_session *s, ba_array *a, unsigned n)
{
    struct phase_stats ps = {0, 0, 0};
    unsigned tenth = n / 10 ? n / 10 : 1;
    ba_view v;
    REL_OK(ba_array_view(a, NULL, 0, 0, &v));
    uint64_t *x = v.data;
    for (unsigned k = 0; k < n; k++) {
        uint32_t gen = (uint32_t)++c->ncommit;
        for (unsigned j = 0; j < PER_TXN; j++) {
            uint64_t b = rel_below(&c->rs, NBLOCKS);
            c->gen[b] = gen;
            for (uint64_t i = 0; i < ELEMS_BLK; i++)
                x[b * ELEMS_BLK + i] = value(gen, b, i);
        }
        double t0 = rel_now();
        REL_OK(ba_session_commit(s));
        double ms = (rel_now() - t0) * 1e3;
        if (k < tenth)
            ps.first_ms += ms / tenth;
        if (k >= n - tenth)
            ps.last_ms += ms / tenth;
        if (ms > ps.max_ms)
            ps.max_ms = ms;
    }
    ba_view_release(&v);
    return ps;
}

/* The reader process, forked before the writer opens anything (a process with threads
 * must not fork a child that starts threads: TSan refuses, and it is fragile anyway).
 * Talks over two pipes: waits for a byte (phase B starts), opens the database, takes
 * its snapshot and checks it, writes a byte, waits for a byte (phase B is over),
 * checks the old snapshot again, moves on, and writes a byte. */
static int reader_main(struct ctx *c, int to_parent, int from_parent)
{
    char b;
    if (read(from_parent, &b, 1) != 1) /* the parent failed before phase B */
        return 0;
    ba_db *db = rel_db_open(c->path, BA_DB_NOSYNC, c->backend, 16u << 20, c->dir);
    ba_session *s;
    REL_OK(ba_session_begin(db, &s));
    ba_array *a;
    REL_OK(ba_array_open(s, "data", &a));
    ba_view v;
    REL_OK(ba_array_view(a, NULL, 0, BA_VIEW_READONLY, &v));
    uint64_t bad;
    uint64_t seq = ba_session_snapshot(s);
    REL_CHECK(view_matches(&v, NULL, &bad), "reader: block %llu of snapshot %llu is not the fill",
              (unsigned long long)bad, (unsigned long long)seq);
    b = 'r';
    REL_CHECK(write(to_parent, &b, 1) == 1, "reader: pipe");
    REL_CHECK(read(from_parent, &b, 1) == 1, "reader: pipe");
    /* After N commits that rewrote most blocks, the snapshot is still the fill. */
    REL_CHECK(view_matches(&v, NULL, &bad),
              "reader: block %llu of the old snapshot %llu changed under it",
              (unsigned long long)bad, (unsigned long long)seq);
    REL_OK(ba_session_abort(s)); /* move on to the newest snapshot */
    REL_CHECK(ba_session_snapshot(s) > seq, "reader: did not move on");
    REL_CHECK(!view_matches(&v, NULL, &bad), "reader: the newest snapshot still shows the fill");
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    REL_CHECK(write(to_parent, &b, 1) == 1, "reader: pipe");
    return 0;
}

static void print_phase(const char *name, uint64_t before, uint64_t after, unsigned n,
                        const struct phase_stats *ps)
{
    double growth = (double)after - (double)before;
    printf("  %s: file %.1f -> %.1f MiB (%+.1f MiB, %.1f KiB per commit); commit %.2f ms (first "
           "10%%) -> %.2f ms (last 10%%), max %.1f ms\n",
           name, (double)before / 1048576, (double)after / 1048576, growth / 1048576,
           growth / 1024 / n, ps->first_ms, ps->last_ms, ps->max_ms);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct rel_opts ro = {.seed = 99};
    rel_parse_args(argc, argv, &ro, "[COMMITS]");
    struct ctx *c = calloc(1, sizeof *c);
    REL_CHECK(c, "out of memory");
    c->seed = c->rs = ro.seed;
    c->backend = ro.backend ? ro.backend : BA_PAGER_UFFD;
    c->commits = ro.extra ? (unsigned)strtoul(ro.extra, NULL, 10) : ro.long_mode ? 20000 : 2000;
    c->dir = rel_mkdtemp("oldreader");
    c->path = rel_path(c->dir, "db");
    printf("long-lived reader: %u commits per phase, each rewriting %u x %u KiB of an %u MiB "
           "array, seed %llu, backend %s, in %s\n",
           c->commits, PER_TXN, BS >> 10, NBLOCKS * BS >> 20, (unsigned long long)c->seed,
           rel_backend_name(c->backend), c->dir);

    int up[2], down[2];
    REL_CHECK(pipe(up) == 0 && pipe(down) == 0, "pipe");
    fflush(NULL);
    pid_t pid = fork();
    REL_CHECK(pid >= 0, "fork");
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        alarm(3600);
        _exit(reader_main(c, up[1], down[0]));
    }
    close(up[1]);
    close(down[0]);

    /* The fill (commit 1). */
    ba_db *db = rel_db_open(c->path, BA_DB_CREATE | BA_DB_NOSYNC, c->backend, 32u << 20, c->dir);
    ba_session *s;
    REL_OK(ba_session_begin(db, &s));
    ba_array_spec sp;
    ba_array_spec_init(&sp);
    REL_OK(ba_dtype_parse("<u8", &sp.dtype));
    sp.ndim = 1;
    sp.shape[0] = (int64_t)NBLOCKS * ELEMS_BLK;
    sp.block_size = BS;
    ba_array *a;
    REL_OK(ba_array_create(s, "data", &sp, &a));
    ba_view v;
    REL_OK(ba_array_view(a, NULL, 0, 0, &v));
    uint64_t *x = v.data;
    for (uint64_t b = 0; b < NBLOCKS; b++)
        for (uint64_t i = 0; i < ELEMS_BLK; i++)
            x[b * ELEMS_BLK + i] = value(0, b, i);
    ba_view_release(&v);
    REL_OK(ba_session_commit(s));
    c->ncommit = 1;

    /* A: steady state without an old reader. */
    uint64_t f0 = file_size(c);
    struct phase_stats pa = run_commits(c, s, a, c->commits);
    uint64_t fa = file_size(c);

    /* B: the array is filled again (one commit), and a reader in another process holds
     * that snapshot while the writer commits N more times. */
    REL_OK(ba_array_view(a, NULL, 0, 0, &v));
    x = v.data;
    for (uint64_t b = 0; b < NBLOCKS; b++) {
        c->gen[b] = 0;
        for (uint64_t i = 0; i < ELEMS_BLK; i++)
            x[b * ELEMS_BLK + i] = value(0, b, i);
    }
    ba_view_release(&v);
    REL_OK(ba_session_commit(s));
    c->ncommit++;
    char b = 'g';
    REL_CHECK(write(down[1], &b, 1) == 1, "pipe");
    REL_CHECK(read(up[0], &b, 1) == 1, "the reader did not start");
    uint64_t fb0 = file_size(c);
    struct phase_stats pb = run_commits(c, s, a, c->commits);
    uint64_t fb = file_size(c);
    ba_db_stat st;
    st.size = sizeof st;
    REL_OK(ba_db_stat_get(db, &st));
    uint64_t readers_b = st.readers;

    /* C: the reader checks its old snapshot and moves on; the writer goes on. */
    REL_CHECK(write(down[1], &b, 1) == 1, "pipe");
    REL_CHECK(read(up[0], &b, 1) == 1, "the reader failed (see its message)");
    char sbuf[64];
    int status = rel_wait(pid);
    REL_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the reader ended with %s",
              rel_status_str(status, sbuf, sizeof sbuf));
    uint64_t fc0 = file_size(c);
    struct phase_stats pc = run_commits(c, s, a, c->commits);
    uint64_t fc = file_size(c);
    REL_OK(ba_db_stat_get(db, &st));

    /* The array holds exactly what the commits wrote. */
    REL_OK(ba_array_view(a, NULL, 0, BA_VIEW_READONLY, &v));
    uint64_t bad;
    REL_CHECK(view_matches(&v, c->gen, &bad), "block %llu does not hold its last commit's data",
              (unsigned long long)bad);
    ba_view_release(&v);
    uint64_t np = 1;
    REL_OK(ba_db_verify(db, NULL, NULL, &np));
    REL_CHECK(np == 0, "verify found %llu problems", (unsigned long long)np);
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);

    print_phase("A, no old reader     ", f0, fa, c->commits, &pa);
    print_phase("B, old reader holding", fb0, fb, c->commits, &pb);
    print_phase("C, reader moved on   ", fc0, fc, c->commits, &pc);
    printf("  reader slots in use during B: %llu; at the end: pages used %llu, free %llu\n",
           (unsigned long long)readers_b, (unsigned long long)st.pages_used,
           (unsigned long long)st.pages_free);
    /* Bounds. B: every commit's records stay pinned (a 16 KiB block's record fills 5
     * pages of LMDB's overflow run: header, payload, run header), plus the B-tree pages
     * LMDB copies on write, at most 16 per commit (about 11 measured). C: the file stops
     * growing: at most 2% of B's growth. A: settles within the data size. */
    double per_commit_b = ((double)fb - (double)fb0) / c->commits;
    uint64_t psize = (uint64_t)sysconf(_SC_PAGESIZE);
    double record = (double)((BS + 48 + 16 + psize - 1) / psize * psize);
    double bound = PER_TXN * record + 16.0 * (double)psize;
    REL_CHECK(per_commit_b <= bound,
              "with an old reader the file grew %.1f KiB per commit; the bound is %.1f KiB",
              per_commit_b / 1024, bound / 1024);
    printf("  with an old reader: %.1f KiB per commit = %.0f KiB of records + %.1f pages of "
           "B-tree copies (the bound: %.0f KiB)\n",
           per_commit_b / 1024, PER_TXN * record / 1024,
           (per_commit_b - PER_TXN * record) / (double)psize, bound / 1024);
    REL_CHECK(fc <= fc0 + (fb - fb0) / 50 + (1u << 20),
              "after the reader moved on the file still grew %.1f MiB (B grew %.1f MiB)",
              ((double)fc - (double)fc0) / 1048576, ((double)fb - (double)fb0) / 1048576);
    REL_CHECK(fa <= f0 + (uint64_t)NBLOCKS * BS,
              "without an old reader the file grew from %.1f to %.1f MiB", (double)f0 / 1048576,
              (double)fa / 1048576);
    free(c->path);
    rel_rmtree(c->dir);
    free(c);
    printf("PASS\n");
    return 0;
}
