/* SPDX-License-Identifier: MIT */
/*
 * Contention (issue #7 item 6). P processes x T threads (4 x 4), each thread with its
 * own session, move amounts between the cells of an int64 array for a fixed time: read
 * two cells through a view, take an amount from one and add it to the other, commit,
 * and on BA_ECONFLICT abort and redo the transfer on the new snapshot. Every thread
 * keeps a ledger of the transfers it committed. Meanwhile reader threads (one per
 * process) move to the newest snapshot, map the whole array and sum it twice.
 *
 * Proved at the end: the total is conserved exactly; every cell equals its initial
 * value plus the sum of the committed transfers touching it (so no update was lost: a
 * commit that should have conflicted and did not would show here, as would a transfer
 * reported as failed that was written anyway); every reader snapshot summed to the
 * exact total, twice; verify is clean. Throughput and conflict rates are printed.
 *
 * Transfers touch cells in different blocks (4 KiB blocks of 512 cells), so two
 * transfers conflict when they write a common block: with 64 blocks and 16 writers,
 * often. Commits are not fdatasync'ed (BA_DB_NOSYNC; --sync makes them durable).
 *
 *   rel_contention [--long] [--seed N] [--seconds S] [--backend uffd|sigsegv] [--sync]
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rel_util.h"

#define NPROC   4
#define NTHREAD 4
#define NCELLS  (64 * 512)
#define INITIAL 1000

struct shared { /* one per process, in memory shared with the parent */
    int64_t delta[NCELLS];
    uint64_t commits, conflicts, aborts_other, reader_snapshots, reader_sums;
    uint64_t max_retries;
    int failed;
    char why[256];
};

struct params {
    char *path, *dir;
    uint64_t seed;
    int backend;
    unsigned flags;
    double seconds;
};

struct worker {
    const struct params *p;
    ba_db *db;
    int proc, thread;
    double deadline;
    int64_t delta[NCELLS];
    uint64_t commits, conflicts, max_retries;
    int failed;
    char why[256];
};

static void worker_fail(struct worker *w, const char *what, int rc)
{
    w->failed = 1;
    snprintf(w->why, sizeof w->why, "process %d thread %d: %s: %d %s (%s)", w->proc, w->thread,
             what, rc, ba_strerror(rc), ba_errmsg());
}

static void *writer_thread(void *arg)
{
    struct worker *w = arg;
    uint64_t rs = w->p->seed ^ ((uint64_t)w->proc << 40) ^ ((uint64_t)w->thread << 32);
    ba_session *s;
    int rc = ba_session_begin(w->db, &s);
    if (rc) {
        worker_fail(w, "session_begin", rc);
        return NULL;
    }
    ba_array *a;
    if ((rc = ba_array_open(s, "acct", &a))) {
        worker_fail(w, "array_open", rc);
        ba_session_end(s);
        return NULL;
    }
    ba_view v;
    if ((rc = ba_array_view(a, NULL, 0, 0, &v))) {
        worker_fail(w, "array_view", rc);
        goto out;
    }
    while (rel_now() < w->deadline && !w->failed) {
        uint64_t i = rel_below(&rs, NCELLS), j = rel_below(&rs, NCELLS - 1);
        j += j >= i;
        int64_t amount = 1 + (int64_t)rel_below(&rs, 50);
        for (uint64_t tries = 1;; tries++) {
            int64_t *x = v.data;
            int64_t moved = x[i] >= amount ? amount : x[i];
            x[i] -= moved;
            x[j] += moved;
            rc = ba_session_commit(s);
            if (rc == 0) {
                w->delta[i] -= moved;
                w->delta[j] += moved;
                w->commits++;
                if (tries > w->max_retries)
                    w->max_retries = tries;
                break;
            }
            if (rc != BA_ECONFLICT) {
                worker_fail(w, "commit", rc);
                break;
            }
            w->conflicts++;
            if ((rc = ba_session_abort(s))) {
                worker_fail(w, "abort after a conflict", rc);
                break;
            }
        }
    }
    ba_view_release(&v);
out:
    ba_array_close(a);
    ba_session_end(s);
    return NULL;
}

struct reader {
    ba_db *db;
    volatile int *stop;
    int64_t total;
    uint64_t snapshots, sums;
    int failed;
    char why[256];
};

/* Move to the newest snapshot, sum the whole array twice through one view. */
static void *reader_thread(void *arg)
{
    struct reader *r = arg;
    ba_session *s;
    ba_array *a;
    int rc = ba_session_begin(r->db, &s);
    if (!rc && (rc = ba_array_open(s, "acct", &a)))
        ba_session_end(s);
    if (rc) {
        r->failed = 1;
        snprintf(r->why, sizeof r->why, "reader: %s", ba_errmsg());
        return NULL;
    }
    while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE) && !r->failed) {
        if ((rc = ba_session_abort(s))) {
            r->failed = 1;
            snprintf(r->why, sizeof r->why, "reader: abort: %s", ba_errmsg());
            break;
        }
        ba_view v;
        if ((rc = ba_array_view(a, NULL, 0, BA_VIEW_READONLY, &v))) {
            r->failed = 1;
            snprintf(r->why, sizeof r->why, "reader: view: %s", ba_errmsg());
            break;
        }
        for (int pass = 0; pass < 2; pass++) {
            const int64_t *x = v.data;
            int64_t sum = 0;
            for (uint64_t c = 0; c < NCELLS; c++)
                sum += x[c];
            r->sums++;
            if (sum != r->total) {
                r->failed = 1;
                snprintf(r->why, sizeof r->why,
                         "reader: snapshot %llu sums to %lld, not %lld (pass %d)",
                         (unsigned long long)ba_session_snapshot(s), (long long)sum,
                         (long long)r->total, pass + 1);
                break;
            }
        }
        r->snapshots++;
        ba_view_release(&v);
    }
    ba_array_close(a);
    ba_session_end(s);
    return NULL;
}

static int process_main(const struct params *p, int proc, struct shared *sh)
{
    ba_db *db = rel_db_open(p->path, p->flags, p->backend, 64u << 20, p->dir);
    struct worker *w = calloc(NTHREAD, sizeof *w);
    REL_CHECK(w, "out of memory");
    pthread_t th[NTHREAD], rt;
    double deadline = rel_now() + p->seconds;
    for (int t = 0; t < NTHREAD; t++) {
        w[t] = (struct worker){.p = p, .db = db, .proc = proc, .thread = t, .deadline = deadline};
        REL_CHECK(!pthread_create(&th[t], NULL, writer_thread, &w[t]), "pthread_create");
    }
    volatile int stop = 0;
    struct reader r = {.db = db, .stop = &stop, .total = (int64_t)NCELLS * INITIAL};
    REL_CHECK(!pthread_create(&rt, NULL, reader_thread, &r), "pthread_create");
    for (int t = 0; t < NTHREAD; t++) {
        pthread_join(th[t], NULL);
        for (uint64_t c = 0; c < NCELLS; c++)
            sh->delta[c] += w[t].delta[c];
        sh->commits += w[t].commits;
        sh->conflicts += w[t].conflicts;
        if (w[t].max_retries > sh->max_retries)
            sh->max_retries = w[t].max_retries;
        if (w[t].failed && !sh->failed) {
            sh->failed = 1;
            snprintf(sh->why, sizeof sh->why, "%s", w[t].why);
        }
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    pthread_join(rt, NULL);
    sh->reader_snapshots = r.snapshots;
    sh->reader_sums = r.sums;
    if (r.failed && !sh->failed) {
        sh->failed = 1;
        snprintf(sh->why, sizeof sh->why, "%s", r.why);
    }
    free(w);
    ba_db_close(db);
    return sh->failed;
}

static int create_main(void *ctx)
{
    const struct params *p = ctx;
    ba_db *db = rel_db_open(p->path, BA_DB_CREATE | p->flags, p->backend, 0, p->dir);
    ba_session *s;
    REL_OK(ba_session_begin(db, &s));
    ba_array_spec sp;
    ba_array_spec_init(&sp);
    REL_OK(ba_dtype_parse("<i8", &sp.dtype));
    sp.ndim = 1;
    sp.shape[0] = NCELLS;
    sp.block_size = 4096;
    ba_array *a;
    REL_OK(ba_array_create(s, "acct", &sp, &a));
    ba_view v;
    REL_OK(ba_array_view(a, NULL, 0, 0, &v));
    int64_t *x = v.data;
    for (uint64_t c = 0; c < NCELLS; c++)
        x[c] = INITIAL;
    ba_view_release(&v);
    REL_OK(ba_session_commit(s));
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct rel_opts ro = {.seed = 777};
    int sync = 0;
    char **args = malloc((size_t)(argc + 1) * sizeof *args);
    int nargs = 0;
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--sync"))
            sync = 1;
        else
            args[nargs++] = argv[i];
    args[nargs] = NULL;
    rel_parse_args(nargs, args, &ro, "[--sync]");
    free(args);
    struct params p = {
        .seed = ro.seed,
        .backend = ro.backend ? ro.backend : BA_PAGER_UFFD,
        .flags = sync ? 0 : BA_DB_NOSYNC,
        .seconds = ro.seconds > 0 ? ro.seconds
                   : ro.long_mode ? 120
                                  : 10,
    };
    p.dir = rel_mkdtemp("contention");
    p.path = rel_path(p.dir, "db");
    printf("contention: %d processes x %d writer threads + 1 reader thread each, %d cells in %d "
           "blocks, %.0f s, seed %llu, backend %s, %s commits, in %s\n",
           NPROC, NTHREAD, NCELLS, NCELLS / 512, p.seconds, (unsigned long long)p.seed,
           rel_backend_name(p.backend), sync ? "durable" : "NOSYNC", p.dir);
    char sbuf[64];
    int st = rel_run_child(create_main, &p, 120);
    REL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "creating the array: %s",
              rel_status_str(st, sbuf, sizeof sbuf));
    struct shared *sh =
        mmap(NULL, NPROC * sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REL_CHECK(sh != MAP_FAILED, "mmap: %s", strerror(errno));
    memset(sh, 0, NPROC * sizeof *sh);
    pid_t pids[NPROC];
    double t0 = rel_now();
    fflush(NULL);
    for (int i = 0; i < NPROC; i++) {
        pids[i] = fork();
        REL_CHECK(pids[i] >= 0, "fork: %s", strerror(errno));
        if (pids[i] == 0) {
            alarm((unsigned)p.seconds + 300);
            _exit(process_main(&p, i, &sh[i]));
        }
    }
    int failed = 0;
    for (int i = 0; i < NPROC; i++) {
        st = rel_wait(pids[i]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "FAIL: process %d ended with %s%s%s\n", i,
                    rel_status_str(st, sbuf, sizeof sbuf), sh[i].failed ? ": " : "", sh[i].why);
            failed = 1;
        }
    }
    double elapsed = rel_now() - t0;
    REL_CHECK(!failed, "a process failed");

    /* The ledgers against the final state. */
    uint64_t commits = 0, conflicts = 0, snaps = 0, sums = 0, max_retries = 0;
    int64_t *want = calloc(NCELLS, sizeof *want);
    REL_CHECK(want, "out of memory");
    for (uint64_t c = 0; c < NCELLS; c++)
        want[c] = INITIAL;
    for (int i = 0; i < NPROC; i++) {
        for (uint64_t c = 0; c < NCELLS; c++)
            want[c] += sh[i].delta[c];
        commits += sh[i].commits;
        conflicts += sh[i].conflicts;
        snaps += sh[i].reader_snapshots;
        sums += sh[i].reader_sums;
        if (sh[i].max_retries > max_retries)
            max_retries = sh[i].max_retries;
    }
    ba_db *db = rel_db_open(p.path, 0, p.backend, 0, p.dir);
    uint64_t np = 1;
    REL_OK(ba_db_verify(db, NULL, NULL, &np));
    REL_CHECK(np == 0, "verify found %llu problems", (unsigned long long)np);
    ba_session *s;
    REL_OK(ba_session_begin(db, &s));
    ba_array *a;
    REL_OK(ba_array_open(s, "acct", &a));
    ba_view v;
    REL_OK(ba_array_view(a, NULL, 0, BA_VIEW_READONLY, &v));
    const int64_t *x = v.data;
    int64_t total = 0;
    uint64_t wrong = 0, first_wrong = 0;
    for (uint64_t c = 0; c < NCELLS; c++) {
        total += x[c];
        if (x[c] != want[c] && !wrong++)
            first_wrong = c;
    }
    REL_CHECK(total == (int64_t)NCELLS * INITIAL, "the total is %lld, not %lld", (long long)total,
              (long long)NCELLS * INITIAL);
    REL_CHECK(!wrong,
              "%llu cells differ from their ledgers (cell %llu holds %lld, the committed "
              "transfers say %lld): an update was lost or a failed one written",
              (unsigned long long)wrong, (unsigned long long)first_wrong, (long long)x[first_wrong],
              (long long)want[first_wrong]);
    uint64_t seq = ba_session_snapshot(s);
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    REL_CHECK(commits > 0 && snaps > 0, "nothing happened: %llu commits, %llu reader snapshots",
              (unsigned long long)commits, (unsigned long long)snaps);
    REL_CHECK(seq == commits + 1, "the database is at commit %llu; 1 + %llu committed transfers",
              (unsigned long long)seq, (unsigned long long)commits);
    printf("%llu transfers committed in %.1f s: %.0f commits/s; %llu conflicts reported (%.1f%% "
           "of attempts), at most %llu attempts for one transfer\n",
           (unsigned long long)commits, elapsed, (double)commits / elapsed,
           (unsigned long long)conflicts, 100.0 * (double)conflicts / (double)(commits + conflicts),
           (unsigned long long)max_retries);
    printf("readers: %llu snapshots, %llu sums, every one exactly %lld; every cell matches the "
           "ledgers; verify clean\n",
           (unsigned long long)snaps, (unsigned long long)sums, (long long)NCELLS * INITIAL);
    free(want);
    munmap(sh, NPROC * sizeof *sh);
    free(p.path);
    rel_rmtree(p.dir);
    printf("PASS\n");
    return 0;
}
