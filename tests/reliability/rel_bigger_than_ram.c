/* SPDX-License-Identifier: MIT */
/*
 * Bigger than RAM, for real (issue #7 item 1). A forked child moves itself into a
 * fresh memory cgroup (v1 controller) limited to 256 MiB (memory and memory+swap), and
 * with a pager budget of 128 MiB: creates a 2 GiB u8 array and fills it through one
 * writable view in ONE transaction (dirty blocks spill to disk), commits, reopens the
 * database, sums the array through a view and compares with the exact expected sums,
 * then rewrites 10% of its blocks in place (spilling again), commits, reopens, sums
 * again and verifies the database. The parent checks that the child exited 0, that
 * the cgroup saw no OOM kill, prints the cgroup's peak usage and failcnt, and removes
 * the cgroup and the files whatever happened.
 *
 * The database and spill file live on disk (BA_REL_TMPDIR, default /var/tmp): pages of
 * a tmpfs would be charged to the cgroup as memory. Skips (exit 77) when not root,
 * without the memory controller, on a tmpfs, or without 5 GiB of free disk.
 *
 *   rel_bigger_than_ram [--long] [--backend uffd|sigsegv] [--size 2G] [--limit 256M]
 *                       [--ram 128M] [--txn-size S]
 *
 * --long makes the array 8 GiB (32 times the group's limit; needs 20 GiB of disk).
 *
 * --txn-size S commits every S bytes of the fill and of the update (default: the fill
 * in one transaction, the update in one).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rel_util.h"

#define CG_ROOT "/sys/fs/cgroup/memory"

struct params {
    int backend;
    uint64_t size;      /* array bytes */
    uint64_t cg_limit;  /* cgroup memory limit */
    uint64_t ram_limit; /* pager budget */
    uint64_t txn_size;  /* bytes written per transaction (0 = everything in one) */
    uint64_t seed;
    char *dir; /* temporary directory: db/ and the spill file */
    char *cg;  /* the cgroup directory */
};

/* ---- expected values ------------------------------------------------------------------------ */

/* The value written at element i by the fill: 24 bits of a multiplicative hash, so
 * the sums fit in 64 bits and every element's place matters to the weighted sum. */
static inline uint64_t fill_value(uint64_t i, uint64_t seed)
{
    return ((i + seed) * 0x9e3779b97f4a7c15ull) >> 40;
}

struct sums {
    uint64_t plain;    /* sum of the elements */
    uint64_t weighted; /* sum of element * (index + 1), modulo 2^64 */
};

/* The update rewrites the blocks whose number is 3 modulo 10 (10% of them), adding
 * one to every element. */
static inline int updated_block(uint64_t blkno)
{
    return blkno % 10 == 3;
}

static struct sums expected_sums(const struct params *p, uint32_t bs, int updated)
{
    struct sums s = {0, 0};
    uint64_t n = p->size / 8, per_block = bs / 8;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = fill_value(i, p->seed);
        if (updated && updated_block(i / per_block))
            v++;
        s.plain += v;
        s.weighted += v * (i + 1);
    }
    return s;
}

/* ---- the child: runs inside the cgroup ------------------------------------------------------ */

static void move_self_into(const char *cg)
{
    char *procs = rel_path(cg, "cgroup.procs");
    FILE *f = fopen(procs, "w");
    REL_CHECK(f, "open %s: %s", procs, strerror(errno));
    fprintf(f, "%d\n", (int)getpid());
    REL_CHECK(fclose(f) == 0, "moving into %s: %s", cg, strerror(errno));
    free(procs);
}

static struct sums sum_array(ba_db *db, const char *name)
{
    ba_session *s;
    REL_OK(ba_session_begin(db, &s));
    ba_array *a;
    REL_OK(ba_array_open(s, name, &a));
    ba_view v;
    REL_OK(ba_array_view_text(a, "", BA_VIEW_READONLY, &v));
    REL_CHECK(v.ndim == 1 && v.strides[0] == 8, "unexpected view layout");
    const uint64_t *x = v.data;
    uint64_t n = (uint64_t)v.shape[0];
    struct sums s_out = {0, 0};
    for (uint64_t i = 0; i < n; i++) {
        s_out.plain += x[i];
        s_out.weighted += x[i] * (i + 1);
    }
    int64_t blk;
    REL_OK(ba_array_fault_error(a, &blk));
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    return s_out;
}

static void print_pager(ba_db *db, const char *when)
{
    ba_pager_stat st;
    st.size = sizeof st;
    REL_OK(ba_db_pager_stat(db, &st));
    printf("  pager after %s: ram_used %llu MiB of %llu, loads %llu, evictions %llu, spills %llu, "
           "unspills %llu\n",
           when, (unsigned long long)(st.ram_used >> 20), (unsigned long long)(st.ram_limit >> 20),
           (unsigned long long)st.loads, (unsigned long long)st.evictions,
           (unsigned long long)st.spills, (unsigned long long)st.unspills);
    REL_CHECK(st.ram_used <= st.ram_limit, "RAM budget exceeded: %llu > %llu",
              (unsigned long long)st.ram_used, (unsigned long long)st.ram_limit);
}

static uint64_t spills_now(ba_db *db)
{
    ba_pager_stat st;
    st.size = sizeof st;
    REL_OK(ba_db_pager_stat(db, &st));
    return st.spills;
}

static void check_sums(const char *what, struct sums got, struct sums want)
{
    REL_CHECK(got.plain == want.plain && got.weighted == want.weighted,
              "%s: sums %llu/%llu, expected %llu/%llu", what, (unsigned long long)got.plain,
              (unsigned long long)got.weighted, (unsigned long long)want.plain,
              (unsigned long long)want.weighted);
    printf("  %s: sum %llu, weighted sum %llu: exact\n", what, (unsigned long long)got.plain,
           (unsigned long long)got.weighted);
}

static int child_main(void *ctx)
{
    const struct params *p = ctx;
    move_self_into(p->cg);
    char *path = rel_path(p->dir, "db");
    const uint32_t bs = BA_BLOCK_SIZE_DEFAULT;
    double t0 = rel_now();

    /* 1. Create and fill the whole array in one transaction, through one view. */
    ba_db *db = rel_db_open(path, BA_DB_CREATE, p->backend, p->ram_limit, p->dir);
    ba_session *s;
    REL_OK(ba_session_begin(db, &s));
    ba_array_spec sp;
    ba_array_spec_init(&sp);
    REL_OK(ba_dtype_parse("<u8", &sp.dtype));
    sp.ndim = 1;
    sp.shape[0] = (int64_t)(p->size / 8);
    sp.block_size = bs;
    ba_array *a;
    REL_OK(ba_array_create(s, "big", &sp, &a));
    ba_view v;
    REL_OK(ba_array_view_text(a, "", 0, &v));
    uint64_t *x = v.data, n = p->size / 8;
    uint64_t txn = p->txn_size ? p->txn_size : p->size, ncommits = 0;
    double commit_s = 0;
    for (uint64_t first = 0; first < n; first += txn / 8) {
        uint64_t end = first + txn / 8 < n ? first + txn / 8 : n;
        for (uint64_t i = first; i < end; i++)
            x[i] = fill_value(i, p->seed);
        if (!ncommits && txn > p->ram_limit)
            REL_CHECK(spills_now(db) > 0,
                      "a transaction of %llu MiB with a %llu MiB budget did not spill",
                      (unsigned long long)(txn >> 20), (unsigned long long)(p->ram_limit >> 20));
        double t1 = rel_now();
        REL_OK(ba_session_commit(s));
        commit_s += rel_now() - t1;
        ncommits++;
    }
    ba_view_release(&v);
    printf("  filled %llu MiB in %llu transaction(s) of up to %llu MiB in %.1f s, of which %.1f s "
           "committing\n",
           (unsigned long long)(p->size >> 20), (unsigned long long)ncommits,
           (unsigned long long)(txn >> 20), rel_now() - t0, commit_s);
    print_pager(db, "the fill");
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);

    /* 2. Reopen and sum. */
    struct sums want = expected_sums(p, bs, 0);
    db = rel_db_open(path, 0, p->backend, p->ram_limit, p->dir);
    double t1 = rel_now();
    check_sums("sum after reopen", sum_array(db, "big"), want);
    printf("  summed in %.1f s\n", rel_now() - t1);
    print_pager(db, "the sum");

    /* 3. Rewrite 10% of the blocks in place (in a seeded shuffled order), commit. */
    REL_OK(ba_session_begin(db, &s));
    REL_OK(ba_array_open(s, "big", &a));
    REL_OK(ba_array_view_text(a, "", 0, &v));
    x = v.data;
    uint64_t nblocks = p->size / bs, per_block = bs / 8, nupd = 0;
    uint64_t *order = malloc(nblocks * sizeof *order);
    REL_CHECK(order, "out of memory");
    for (uint64_t b = 0; b < nblocks; b++)
        if (updated_block(b))
            order[nupd++] = b;
    uint64_t rs = p->seed;
    for (uint64_t i = nupd; i > 1; i--) {
        uint64_t j = rel_below(&rs, i), t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    uint64_t spills0 = spills_now(db);
    t1 = rel_now();
    uint64_t per_txn = txn / bs ? txn / bs : 1;
    ncommits = 0;
    for (uint64_t k = 0; k < nupd; k++) {
        for (uint64_t i = order[k] * per_block; i < (order[k] + 1) * per_block; i++)
            x[i]++;
        if ((k + 1) % per_txn == 0 || k + 1 == nupd) {
            REL_OK(ba_session_commit(s));
            ncommits++;
        }
    }
    free(order);
    ba_view_release(&v);
    uint64_t spilled = spills_now(db) - spills0;
    REL_CHECK(per_txn * bs <= p->ram_limit || nupd * bs <= p->ram_limit || spilled > 0,
              "an update of %llu MiB with a %llu MiB budget did not spill",
              (unsigned long long)(nupd * bs >> 20), (unsigned long long)(p->ram_limit >> 20));
    printf("  updated %llu blocks in place (%llu MiB, %llu spills) in %llu transaction(s), "
           "%.1f s\n",
           (unsigned long long)nupd, (unsigned long long)(nupd * bs >> 20),
           (unsigned long long)spilled, (unsigned long long)ncommits, rel_now() - t1);
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);

    /* 4. Reopen, sum, verify. */
    want = expected_sums(p, bs, 1);
    db = rel_db_open(path, 0, p->backend, p->ram_limit, p->dir);
    check_sums("sum after the update", sum_array(db, "big"), want);
    uint64_t np = 1;
    REL_OK(ba_db_verify(db, NULL, NULL, &np));
    REL_CHECK(np == 0, "verify found %llu problems", (unsigned long long)np);
    print_pager(db, "the second sum and verify");
    ba_db_close(db);
    free(path);
    printf("  child done in %.1f s\n", rel_now() - t0);
    return 0;
}

/* ---- the parent: cgroup setup and teardown ---------------------------------------------------- */

static int write_file(const char *dir, const char *name, uint64_t value)
{
    char *path = rel_path(dir, name);
    int fd = open(path, O_WRONLY);
    free(path);
    if (fd < 0)
        return -errno;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%llu\n", (unsigned long long)value);
    int rc = write(fd, buf, (size_t)n) == n ? 0 : -errno;
    close(fd);
    return rc;
}

/* The first line of dir/name starting with `key` (or the whole first line if key is
 * NULL), as a number; UINT64_MAX if missing. */
static uint64_t read_value(const char *dir, const char *name, const char *key)
{
    char *path = rel_path(dir, name);
    FILE *f = fopen(path, "r");
    free(path);
    if (!f)
        return UINT64_MAX;
    char line[256];
    uint64_t v = UINT64_MAX;
    while (fgets(line, sizeof line, f)) {
        if (!key) {
            v = strtoull(line, NULL, 10);
            break;
        }
        size_t kl = strlen(key);
        if (!strncmp(line, key, kl) && line[kl] == ' ') {
            v = strtoull(line + kl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* The memory cgroup this process is in (so the test's group nests under it and cannot
 * escape a limit set above), or the controller's root. */
static char *parent_cgroup(void)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[4096], *base = NULL;
    while (f && fgets(line, sizeof line, f)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        int is_mem = 0;
        for (char *tok = strtok(c1 + 1, ","); tok; tok = strtok(NULL, ","))
            is_mem |= !strcmp(tok, "memory");
        if (!is_mem)
            continue;
        char *rel = c2 + 1;
        rel[strcspn(rel, "\n")] = '\0';
        size_t n = strlen(CG_ROOT) + strlen(rel) + 1;
        base = malloc(n);
        REL_CHECK(base, "out of memory");
        snprintf(base, n, "%s%s", CG_ROOT, rel);
        struct stat sb;
        if (stat(base, &sb) || !S_ISDIR(sb.st_mode)) {
            free(base);
            base = NULL;
        }
        break;
    }
    if (f)
        fclose(f);
    if (!base) {
        base = strdup(CG_ROOT);
        REL_CHECK(base, "out of memory");
    }
    return base;
}

static int remove_cgroup(const char *cg)
{
    /* The child has been reaped; rmdir can still see it for a moment. */
    for (int i = 0; i < 100; i++) {
        if (!rmdir(cg) || errno == ENOENT)
            return 0;
        usleep(50000);
    }
    return -errno;
}

static int parse_size_arg(const char *text, uint64_t *out)
{
    char *e;
    unsigned long long v = strtoull(text, &e, 10);
    unsigned shift = *e == 'G' ? 30 : *e == 'M' ? 20 : *e == 'K' ? 10 : 0;
    if (e == text || (shift && e[1]) || (!shift && *e))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int main(int argc, char **argv)
{
    struct params p = {
        .backend = BA_PAGER_UFFD,
        .size = 2ull << 30,
        .cg_limit = 256ull << 20,
        .ram_limit = 128ull << 20,
        .seed = 7,
    };
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        uint64_t *dst = NULL;
        if (!strcmp(argv[i], "--long")) { /* 8 GiB: 32 times the group's limit */
            p.size = 8ull << 30;
            continue;
        }
        if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
            i++;
            p.backend = !strcmp(argv[i], "sigsegv") ? BA_PAGER_SIGSEGV : BA_PAGER_UFFD;
            continue;
        }
        if (!strcmp(argv[i], "--size"))
            dst = &p.size;
        else if (!strcmp(argv[i], "--limit"))
            dst = &p.cg_limit;
        else if (!strcmp(argv[i], "--ram"))
            dst = &p.ram_limit;
        else if (!strcmp(argv[i], "--txn-size"))
            dst = &p.txn_size;
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            p.seed = strtoull(argv[++i], NULL, 0);
            continue;
        }
        if (!dst || i + 1 >= argc || parse_size_arg(argv[++i], dst)) {
            fprintf(stderr,
                    "usage: %s [--long] [--backend uffd|sigsegv] [--size 2G] [--limit 256M] [--ram "
                    "128M] "
                    "[--txn-size 0] [--seed N]\n",
                    argv[0]);
            return 2;
        }
    }
    if (rel_sanitized() && getenv("BA_REL_FULL_SIZE") == NULL) {
        /* Sanitizer shadow memory of every address a view touched stays resident, and
         * ASan keeps freed memory in quarantine: the same code paths on a quarter of the
         * array, in a group with room for the sanitizer's own memory (TSan's shadow of
         * a 512 MiB single-transaction run passed 3 GiB). */
        p.size /= 4;
        p.cg_limit = 4ull << 30;
        printf("sanitizer build: a quarter of the array in a 4 GiB group (BA_REL_FULL_SIZE=1 "
               "keeps the sizes)\n");
    }
    REL_CHECK(p.size % BA_BLOCK_SIZE_DEFAULT == 0 && p.txn_size % BA_BLOCK_SIZE_DEFAULT == 0,
              "--size and --txn-size must be multiples of 2 MiB");
    if (geteuid() != 0)
        rel_skip("needs root to create a memory cgroup");
    if (access(CG_ROOT "/cgroup.procs", W_OK) || access(CG_ROOT "/memory.limit_in_bytes", F_OK))
        rel_skip("no writable cgroup v1 memory controller at " CG_ROOT);
    p.dir = rel_mkdtemp("bigram");
    if (rel_on_tmpfs(p.dir)) {
        rel_rmtree(p.dir);
        rel_skip("the temporary directory is on a tmpfs (its pages would count as memory); "
                 "set BA_REL_TMPDIR to a disk filesystem");
    }
    uint64_t need = 2 * p.size + (p.size >> 1);
    if (rel_free_bytes(p.dir) < need) {
        rel_rmtree(p.dir);
        rel_skip("needs %llu MiB of free disk for the database and the spill file",
                 (unsigned long long)(need >> 20));
    }
    char *base = parent_cgroup();
    char name[64];
    snprintf(name, sizeof name, "bigarray-rel-%d-%llx", (int)getpid(),
             (unsigned long long)(rel_now() * 1e6));
    p.cg = rel_path(base, name);
    free(base);
    if (mkdir(p.cg, 0755)) {
        int e = errno;
        rel_rmtree(p.dir);
        if (e == EACCES || e == EPERM || e == EROFS)
            rel_skip("cannot create a memory cgroup at %s: %s", p.cg, strerror(e));
        REL_FAIL("mkdir %s: %s", p.cg, strerror(e));
    }
    printf("bigger than RAM: %llu MiB array, cgroup %s limited to %llu MiB, pager budget %llu "
           "MiB, %llu MiB per transaction, backend %s, seed %llu, data in %s\n",
           (unsigned long long)(p.size >> 20), p.cg, (unsigned long long)(p.cg_limit >> 20),
           (unsigned long long)(p.ram_limit >> 20),
           (unsigned long long)((p.txn_size ? p.txn_size : p.size) >> 20),
           rel_backend_name(p.backend), (unsigned long long)p.seed, p.dir);
    int failed = 0;
    int rc = write_file(p.cg, "memory.limit_in_bytes", p.cg_limit);
    if (rc) {
        fprintf(stderr, "FAIL: cannot set memory.limit_in_bytes: %s\n", strerror(-rc));
        failed = 1;
    }
    char *memsw = rel_path(p.cg, "memory.memsw.limit_in_bytes");
    if (!failed && !access(memsw, F_OK) &&
        (rc = write_file(p.cg, "memory.memsw.limit_in_bytes", p.cg_limit))) {
        fprintf(stderr, "FAIL: cannot set memory.memsw.limit_in_bytes: %s\n", strerror(-rc));
        failed = 1;
    }
    free(memsw);
    if (!failed) {
        /* The child moves itself in before it opens anything; its own timeout is well
         * below ctest's, so this process always gets to clean up. */
        int status = rel_run_child(child_main, &p, 800);
        char sbuf[64];
        uint64_t oom_kills = read_value(p.cg, "memory.oom_control", "oom_kill");
        uint64_t failcnt = read_value(p.cg, "memory.failcnt", NULL);
        uint64_t peak = read_value(p.cg, "memory.max_usage_in_bytes", NULL);
        printf("cgroup: peak usage %llu MiB of %llu, failcnt %llu (page-cache reclaim at the "
               "limit counts too), OOM kills %llu; child %s\n",
               (unsigned long long)(peak >> 20), (unsigned long long)(p.cg_limit >> 20),
               (unsigned long long)failcnt, (unsigned long long)oom_kills,
               rel_status_str(status, sbuf, sizeof sbuf));
        if (oom_kills != 0 && oom_kills != UINT64_MAX) {
            fprintf(stderr, "FAIL: the OOM killer ran %llu times in the cgroup\n",
                    (unsigned long long)oom_kills);
            failed = 1;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "FAIL: the child ended with %s\n", sbuf);
            failed = 1;
        }
    }
    if ((rc = remove_cgroup(p.cg))) {
        fprintf(stderr, "FAIL: cannot remove the cgroup %s: %s\n", p.cg, strerror(-rc));
        failed = 1;
    }
    free(p.cg);
    rel_rmtree(p.dir);
    if (!failed)
        printf("PASS\n");
    return failed;
}
