/* SPDX-License-Identifier: MIT */
/* Helpers shared by the Check suites (see testutil.h). */
#include "testutil.h"

#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Every directory tu_mkdtemp() makes lies in one made for the test program when it
 * starts, which its exit removes with whatever is left inside: a failed check ends the
 * test's (forked) process with _exit(), before the test's own cleanup. Processes forked
 * from the program (Check's test processes, the tests' own children) leave it alone. */
static char *tu_run_dir;
static pid_t tu_run_pid;

static void tu_run_dir_remove(void)
{
    if (tu_run_dir && getpid() == tu_run_pid) {
        nftw(tu_run_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(tu_run_dir);
        tu_run_dir = NULL;
    }
}

static const char *tmp_base(void)
{
    const char *tmp = getenv("TMPDIR");
    return tmp && *tmp ? tmp : "/tmp";
}

__attribute__((constructor)) static void tu_run_dir_make(void)
{
    const char *tmp = tmp_base();
    size_t n = strlen(tmp) + 32;
    char *p = malloc(n);
    if (!p)
        return;
    snprintf(p, n, "%s/ba-run-XXXXXX", tmp);
    if (!mkdtemp(p) || atexit(tu_run_dir_remove)) {
        free(p);
        return; /* tu_mkdtemp() then uses TMPDIR itself */
    }
    tu_run_dir = p;
    tu_run_pid = getpid();
}

char *tu_mkdtemp(const char *tag)
{
    const char *tmp = tu_run_dir ? tu_run_dir : tmp_base();
    size_t n = strlen(tmp) + strlen(tag) + 32;
    char *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    snprintf(p, n, "%s/ba-%s-XXXXXX", tmp, tag);
    ck_assert_msg(mkdtemp(p) != NULL, "mkdtemp %s: %s", p, strerror(errno));
    return p;
}

void tu_rmtree(char *path)
{
    if (!path)
        return;
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
}

char *tu_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

void tu_skip(const char *fmt, ...)
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

int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

void tu_fill_random(void *buf, size_t n, uint64_t seed)
{
    unsigned char *p = buf;
    uint64_t st = seed;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = tu_rand(&st);
        memcpy(p + i, &v, 8);
    }
    if (i < n) {
        uint64_t v = tu_rand(&st);
        memcpy(p + i, &v, n - i);
    }
}

uint64_t tu_data_len(int fd)
{
    struct stat sb;
    ck_assert_int_eq(fstat(fd, &sb), 0);
    off_t hole = lseek(fd, 0, SEEK_HOLE);
    if (hole < 0 || hole > sb.st_size)
        hole = sb.st_size;
    return (uint64_t)hole;
}

/* ---- signals and mappings ------------------------------------------------------------- */

static _Thread_local sigjmp_buf bus_jmp;
static _Thread_local void *volatile bus_addr;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    bus_addr = si->si_addr;
    siglongjmp(bus_jmp, 1);
}

int tu_sigbus_reading(const volatile void *p, void **fault_addr)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &old);
    volatile int got = 0;
    if (!sigsetjmp(bus_jmp, 1))
        (void)*(const volatile unsigned char *)p;
    else
        got = 1;
    sigaction(SIGBUS, &old, NULL);
    if (got && fault_addr)
        *fault_addr = bus_addr;
    return got;
}

void tu_maps_vma(const void *addr, const char *path, char perms[5], int *is_file)
{
    FILE *fp = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(fp);
    char *line = NULL;
    size_t cap = 0;
    strcpy(perms, "none");
    if (is_file)
        *is_file = 0;
    while (getline(&line, &cap, fp) > 0) {
        unsigned long lo, hi;
        char p[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) == 3 && (uintptr_t)addr >= lo &&
            (uintptr_t)addr < hi) {
            memcpy(perms, p, 5);
            if (is_file)
                *is_file = path && strstr(line, path) != NULL;
            break;
        }
    }
    free(line);
    fclose(fp);
}

long tu_maps_count(const char *needle)
{
    FILE *fp = fopen("/proc/self/maps", "r");
    if (!fp)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    long n = 0;
    while (getline(&line, &cap, fp) > 0)
        n += !needle || strstr(line, needle) != NULL;
    free(line);
    fclose(fp);
    return n;
}
