/* SPDX-License-Identifier: MIT */
/*
 * Streaming file I/O for import and export through io_uring: several reads (or
 * writes) of large aligned buffers in flight while the caller copies the previous
 * one into (or out of) a view. Regular files use O_DIRECT when the filesystem
 * accepts it (aligned buffers, offsets and lengths; the unaligned tail is handled)
 * and fall back to buffered I/O when it does not. Pipes, FIFOs, terminals and
 * devices are read and written in order with one request in flight. When io_uring
 * itself is unavailable (disabled by sysctl or a seccomp filter) the same API does
 * plain synchronous reads and writes.
 *
 * Errors are returned as -errno with a message in the object's err field that names
 * the file and the byte offset. A signal delivered while waiting returns -EINTR and
 * the caller may call again.
 */
#ifndef BA_URING_IO_H
#define BA_URING_IO_H

#include <liburing.h>
#include <stddef.h>
#include <stdint.h>

#define UIO_ALIGN    4096u /* O_DIRECT alignment of memory, offsets and lengths */
#define UIO_MAXSLOTS 8u    /* buffers (requests in flight, plus the one being copied) */

struct uio_slot {
    unsigned char *buf;
    uint64_t off; /* file offset of buf[0] */
    size_t want;  /* bytes this request moves (reads: may be past EOF) */
    size_t done;  /* bytes moved so far */
    int state;    /* UIO_FREE, UIO_BUSY, UIO_DONE */
};

struct uio {
    struct io_uring ring;
    int ring_ok; /* 0: synchronous fallback */
    int fd;
    int own_fd;    /* close fd at the end */
    int direct;    /* O_DIRECT is on */
    int seekable;  /* a regular file: explicit offsets, many requests in flight */
    int regular;   /* a regular file: O_DIRECT tried, its length fixed at the end */
    uint64_t size; /* reader: file size of a regular file */
    size_t bufsize;
    unsigned nslots;
    struct uio_slot *slots;
    unsigned head; /* reader: next slot to deliver; writer: slot being filled */
    unsigned inflight;
    uint64_t next_off;              /* next offset to request (reader) or to fill (writer) */
    int eof;                        /* reader: nothing more will be submitted */
    int held;                       /* reader: the head slot is lent to the caller */
    int failed;                     /* sticky -errno */
    unsigned pending[UIO_MAXSLOTS]; /* synchronous fallback: queued slots, in order */
    unsigned pending_head, npending;
    const char *name; /* for messages */
    char err[512];
};

/* Open path ("-" = stdin) for reading. Returns 0 or -errno (message in u->err). */
int uio_reader_open(struct uio *u, const char *path);
/* The next piece of the file, in order: *data and *n (n = 0 at the end of the file).
 * The piece stays valid until the next call. Returns 0 or -errno; -EINTR when a
 * signal arrived while waiting (call again to continue). */
int uio_reader_next(struct uio *u, const void **data, size_t *n);

/* Create or truncate path ("-" = stdout) for writing (mode 0666 & ~umask). Returns 0
 * or -errno. */
int uio_writer_open(struct uio *u, const char *path);
/* Space in the current buffer to fill: at least 1 byte; waits for a buffer to come
 * back from the kernel if all are in flight. NULL on error (see u->failed). */
void *uio_writer_space(struct uio *u, size_t *avail);
/* n bytes of that space were filled; full buffers are submitted. Returns 0 or -errno. */
int uio_writer_commit(struct uio *u, size_t n);
/* Copy n bytes into the stream. Returns 0 or -errno. */
int uio_writer_write(struct uio *u, const void *p, size_t n);
/* Submit what is left, wait for every write, and fix the length of an O_DIRECT file.
 * Returns 0 or -errno. */
int uio_writer_finish(struct uio *u);
/* Bytes committed to the stream so far. */
uint64_t uio_writer_offset(const struct uio *u);

/* Cancel or wait for what is in flight, free the buffers, close the file. */
void uio_close(struct uio *u);

#endif /* BA_URING_IO_H */
