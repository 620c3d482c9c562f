/* SPDX-License-Identifier: MIT */
/* Helpers shared by the reliability programs (see rel_util.h). */
#include "rel_util.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif
#ifndef RAMFS_MAGIC
#define RAMFS_MAGIC 0x858458f6
#endif

void rel_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void rel_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("SKIP: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
    exit(77);
}

const char *rel_backend_name(int backend)
{
    return backend == BA_PAGER_UFFD ? "uffd" : backend == BA_PAGER_SIGSEGV ? "sigsegv" : "auto";
}

void rel_parse_args(int argc, char **argv, struct rel_opts *o, const char *usage)
{
    const char *env = getenv("BA_REL_LONG");
    o->long_mode = env && *env && strcmp(env, "0") != 0;
    o->backend = 0;
    o->seconds = 0;
    o->extra = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--long")) {
            o->long_mode = 1;
        } else if (!strcmp(a, "--seed") && i + 1 < argc) {
            o->seed = strtoull(argv[++i], NULL, 0);
        } else if (!strcmp(a, "--seconds") && i + 1 < argc) {
            o->seconds = strtod(argv[++i], NULL);
        } else if (!strcmp(a, "--backend") && i + 1 < argc) {
            const char *b = argv[++i];
            if (!strcmp(b, "uffd"))
                o->backend = BA_PAGER_UFFD;
            else if (!strcmp(b, "sigsegv"))
                o->backend = BA_PAGER_SIGSEGV;
            else if (strcmp(b, "both") != 0)
                goto usage;
        } else if (!o->extra && a[0] != '-') {
            o->extra = a;
        } else {
            goto usage;
        }
    }
    return;
usage:
    fprintf(stderr,
            "usage: %s [--long] [--seed N] [--seconds S] [--backend uffd|sigsegv|both]%s%s\n"
            "  BA_REL_LONG=1 selects the long mode too; BA_REL_TMPDIR says where the\n"
            "  databases go (default /var/tmp).\n",
            argv[0], usage ? " " : "", usage ? usage : "");
    exit(2);
}

char *rel_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    REL_CHECK(p, "out of memory");
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

char *rel_mkdtemp(const char *tag)
{
    const char *tmp = getenv("BA_REL_TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/var/tmp";
    size_t n = strlen(tmp) + strlen(tag) + 32;
    char *p = malloc(n);
    REL_CHECK(p, "out of memory");
    snprintf(p, n, "%s/ba-rel-%s-XXXXXX", tmp, tag);
    REL_CHECK(mkdtemp(p) != NULL, "mkdtemp %s: %s", p, strerror(errno));
    return p;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void rel_rmtree(char *path)
{
    if (!path)
        return;
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
}

uint64_t rel_free_bytes(const char *path)
{
    struct statfs sf;
    if (statfs(path, &sf))
        return 0;
    return (uint64_t)sf.f_bavail * (uint64_t)sf.f_bsize;
}

int rel_on_tmpfs(const char *path)
{
    struct statfs sf;
    if (statfs(path, &sf))
        return 0;
    return sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC;
}

double rel_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

ba_db *rel_db_open(const char *path, unsigned flags, int backend, uint64_t ram_limit,
                   const char *spill_dir)
{
    ba_db_options o;
    ba_db_options_init(&o);
    o.flags = flags;
    o.pager = backend;
    o.ram_limit = ram_limit ? ram_limit : 64ull << 20;
    o.spill_dir = spill_dir;
    ba_db *db = NULL;
    REL_OK(ba_db_open(path, &o, &db));
    return db;
}

int rel_wait(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        REL_CHECK(errno == EINTR, "waitpid %d: %s", (int)pid, strerror(errno));
    return status;
}

const char *rel_status_str(int status, char *buf, size_t n)
{
    if (WIFEXITED(status))
        snprintf(buf, n, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, n, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, n, "status 0x%x", (unsigned)status);
    return buf;
}

int rel_run_child(int (*fn)(void *ctx), void *ctx, unsigned timeout_s)
{
    fflush(NULL);
    pid_t pid = fork();
    REL_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* The child's death by SIGALRM says "hung"; its default action is to terminate. */
        signal(SIGALRM, SIG_DFL);
        alarm(timeout_s);
        int rc = fn(ctx);
        fflush(NULL);
        _exit(rc);
    }
    return rel_wait(pid);
}

int rel_sanitized(void)
{
#ifdef BA_REL_SANITIZED
    return 1;
#else
    return 0;
#endif
}
