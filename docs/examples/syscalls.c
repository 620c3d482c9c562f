/* SPDX-License-Identifier: MIT */
/* Views in system calls. With the userfaultfd pager the kernel waits while a block is
 * loaded, so read(2) into a view and write(2) from one just work. With the SIGSEGV
 * pager the kernel's own access to a block that is not mapped fails with EFAULT: preload
 * first (BA_PRELOAD_WRITE when the kernel writes into the view), one block per call,
 * and preload again and retry if the pager unmapped the block before the call (it
 * reclaims memory for other loads, by other threads too). The code below is right for
 * both pagers; it runs with whichever BIGARRAY_PAGER selects. */
#include <bigarray.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SIZE  (16 << 20) /* bytes of the u1 array and of the files: 4x the RAM budget */
#define BLOCK (64 << 10) /* the array's block size: one system call per block */
#define TRIES 5

static int retries;

static void check(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", what, ba_strerror(rc), ba_errmsg());
        exit(1);
    }
}

/* pread(2) or pwrite(2) of one block between the file and the block-aligned view v. */
static ssize_t view_io(int fd, const ba_view *v, off_t off, int into_view)
{
    for (int attempt = 1;; attempt++) {
        check(ba_view_preload(v, into_view ? BA_PRELOAD_WRITE : 0), "preload");
        ssize_t n = into_view ? pread(fd, v->data, BLOCK, off) : pwrite(fd, v->data, BLOCK, off);
        if (n >= 0 || errno != EFAULT || attempt == TRIES)
            return n;
        retries++; /* SIGSEGV pager: the block was unmapped again before the call */
    }
}

/* Copy between the file and the array, block by block. */
static void copy(int fd, ba_array *a, int into_array)
{
    for (int64_t off = 0; off < SIZE; off += BLOCK) {
        ba_slice sl = {BA_SLICE_RANGE, off, off + BLOCK, 1};
        ba_view v;
        check(ba_array_view(a, &sl, 1, 0, &v), "view");
        if (view_io(fd, &v, off, into_array) != BLOCK) {
            fprintf(stderr, "%s at %lld: %s\n", into_array ? "pread" : "pwrite", (long long)off,
                    strerror(errno));
            exit(1);
        }
        ba_view_release(&v);
    }
}

int main(void)
{
    unsigned char *bytes = malloc(SIZE);
    for (int i = 0; i < SIZE; i++)
        bytes[i] = (unsigned char)(i * 7 + i / 4096);
    int in = open("in.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
    int out = open("out.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || write(in, bytes, SIZE) != SIZE) {
        perror("in.bin");
        return 1;
    }

    ba_db_options opts;
    ba_db_options_init(&opts); /* pager: BA_PAGER_AUTO, i.e. BIGARRAY_PAGER or the default */
    opts.flags = BA_DB_CREATE;
    opts.ram_limit = 4 << 20;
    ba_db *db;
    check(ba_db_open("data.db", &opts, &db), "open");
    int uffd = ba_db_pager(db) == BA_PAGER_UFFD;
    printf("pager: %s\n", uffd ? "userfaultfd" : "SIGSEGV");
    ba_session *s;
    check(ba_session_begin(db, &s), "begin");
    ba_array_spec spec;
    ba_array_spec_init(&spec);
    check(ba_dtype_parse("u1", &spec.dtype), "dtype");
    spec.ndim = 1;
    spec.shape[0] = SIZE;
    spec.block_size = BLOCK;
    ba_array *a;
    check(ba_array_create(s, "bytes", &spec, &a), "create");

    /* Without a preload, the outcome depends on the pager. */
    ba_view v;
    check(ba_array_view_text(a, ":65536", 0, &v), "view");
    ssize_t n = pread(in, v.data, BLOCK, 0);
    printf("pread into a fresh view without preload: %s\n", n == BLOCK ? "ok" : strerror(errno));
    int as_expected = uffd ? n == BLOCK : n < 0 && errno == EFAULT;
    ba_view_release(&v);

    copy(in, a, 1); /* file -> array: more than the budget, dirty blocks spill */
    check(ba_session_commit(s), "commit");
    copy(out, a, 0); /* array -> file */
    int same = pread(out, bytes, SIZE, 0) == SIZE;
    for (int i = 0; same && i < SIZE; i++)
        same = bytes[i] == (unsigned char)(i * 7 + i / 4096);
    printf("file -> array -> file: %s (%d retries after EFAULT)\n",
           same ? "same bytes" : "DIFFERENT", retries);

    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    close(in);
    close(out);
    free(bytes);
    return same && as_expected ? 0 : 1;
}
