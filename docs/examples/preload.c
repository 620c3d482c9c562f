/* SPDX-License-Identifier: MIT */
/* A corrupt block, three ways. The program damages one byte of a stored block on
 * purpose, then: ba_db_verify() lists it; a careful reader preloads block-sized pieces
 * and gets BA_ECORRUPT back for the bad one; a careless reader touches it and receives
 * SIGBUS, after which ba_array_fault_error() names the block. */
#include <bigarray.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK 65536              /* bytes per block */
#define PER   (BLOCK / 8)        /* float64 elements per block */
#define N     ((int64_t)4 * PER) /* four blocks */

static void check(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", what, ba_strerror(rc), ba_errmsg());
        exit(1);
    }
}

/* Flip one byte inside block 2's stored bytes: find them by their values. data.mdb is
 * a sparse file as long as LMDB's map; its pages come before the first hole. */
static void damage_block_2(const char *file)
{
    int fd = open(file, O_RDWR);
    off_t size = fd < 0 ? -1 : lseek(fd, 0, SEEK_HOLE);
    char *buf = size > 0 ? malloc((size_t)size) : NULL;
    if (!buf || pread(fd, buf, (size_t)size, 0) != size) {
        perror(file);
        exit(1);
    }
    double key[2] = {2 * PER, 2 * PER + 1}; /* the first two elements of block 2 */
    char *hit = memmem(buf, (size_t)size, key, sizeof key);
    char byte = 0x55;
    if (!hit || pwrite(fd, &byte, 1, hit - buf + 1000) != 1) {
        fprintf(stderr, "block 2 not found in %s\n", file);
        exit(1);
    }
    free(buf);
    close(fd);
}

static void print_problem(const ba_problem *p, void *ctx)
{
    (void)ctx;
    printf("verify: %s\n", p->what); /* p->array, p->blkno, p->code say the same */
}

static sigjmp_buf bus_jmp;
static void *volatile bus_addr;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    bus_addr = si->si_addr;
    siglongjmp(bus_jmp, 1);
}

int main(void)
{
    /* A committed array whose element i holds i, then the damage. */
    ba_db_options opts;
    ba_db_options_init(&opts);
    opts.flags = BA_DB_CREATE;
    ba_db *db;
    check(ba_db_open("data.db", &opts, &db), "open");
    ba_session *s;
    check(ba_session_begin(db, &s), "begin");
    ba_array_spec spec;
    ba_array_spec_init(&spec);
    spec.ndim = 1;
    spec.shape[0] = N;
    spec.block_size = BLOCK;
    ba_array *a;
    check(ba_array_create(s, "x", &spec, &a), "create");
    ba_view v;
    check(ba_array_view(a, NULL, 0, 0, &v), "view");
    for (int64_t i = 0; i < N; i++)
        ((double *)v.data)[i] = (double)i;
    check(ba_session_commit(s), "commit");
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db); /* the last handle: the database is closed */
    damage_block_2("data.db/data.mdb");

    check(ba_db_open("data.db", &opts, &db), "reopen");
    uint64_t nproblems;
    check(ba_db_verify(db, print_problem, NULL, &nproblems), "verify");

    /* The careful reader: preload each piece, then read it; skip what fails. */
    check(ba_session_begin(db, &s), "begin");
    check(ba_array_open(s, "x", &a), "open x");
    double sum = 0;
    int bad = 0;
    for (int64_t b = 0; b < 4; b++) {
        ba_slice piece = {BA_SLICE_RANGE, b * PER, (b + 1) * PER, 1};
        check(ba_array_view(a, &piece, 1, BA_VIEW_READONLY, &v), "view");
        int rc = ba_view_preload(&v, 0);
        if (rc) {
            printf("preload: %s: %s\n", ba_strerror(rc), ba_errmsg());
            bad += rc == BA_ECORRUPT;
        } else {
            for (int64_t i = 0; i < v.shape[0]; i++)
                sum += ((const double *)v.data)[i];
        }
        ba_view_release(&v);
    }
    printf("sum of the readable blocks: %.0f\n", sum);

    /* The careless reader: touch block 2 and take SIGBUS. */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, &old);
    check(ba_array_view(a, NULL, 0, BA_VIEW_READONLY, &v), "view");
    volatile double x = 0;
    if (sigsetjmp(bus_jmp, 1) == 0)
        x = ((const double *)v.data)[2 * PER + 7];
    sigaction(SIGBUS, &old, NULL);
    (void)x;
    int64_t blkno;
    int fault = ba_array_fault_error(a, &blkno); /* takes (clears) the recorded error */
    printf("SIGBUS at byte %lld of the view; fault error: %s in block %lld (%s)\n",
           bus_addr ? (long long)((char *)bus_addr - (char *)v.data) : -1LL, ba_strerror(fault),
           (long long)blkno, ba_errmsg());

    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    double good = (double)(N - 1) * (double)N / 2 - (2.0 * PER + 3.0 * PER - 1) * PER / 2;
    return nproblems == 1 && bad == 1 && sum == good && bus_addr && fault == BA_ECORRUPT &&
                   blkno == 2
               ? 0
               : 1;
}
