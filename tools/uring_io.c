/* SPDX-License-Identifier: MIT */
/*
 * io_uring streaming reader and writer (see uring_io.h).
 *
 * Slots form a ring. Reader: slots are filled in file order; slot i is submitted
 * when it is free, delivered when it and every slot before it are done, and freed
 * when the caller asks for the next piece. Writer: the caller fills the head slot;
 * a full slot is submitted at its file offset and the head moves on; the head slot
 * is reused once its write completed. A request that moved fewer bytes than asked
 * is resubmitted for the rest (pipes, signals); EINVAL from an O_DIRECT request
 * turns O_DIRECT off for the file and resubmits, since the only way to learn that
 * a filesystem refuses direct I/O for this request is to try.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "uring_io.h"

#define UIO_FREE 0
#define UIO_BUSY 1
#define UIO_DONE 2

#define UIO_BUFSIZE (2u << 20)

static int seterr(struct uio *u, int err, uint64_t off, const char *what)
{
    snprintf(u->err, sizeof u->err, "%s: %s at byte %" PRIu64 ": %s", u->name, what, off,
             strerror(-err));
    if (!u->failed)
        u->failed = err;
    return err;
}

static int setup(struct uio *u, const char *path, int fd, int own)
{
    struct stat st;
    u->name = strcmp(path, "-") == 0 ? (fd == 0 ? "standard input" : "standard output") : path;
    u->fd = fd;
    u->own_fd = own;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        snprintf(u->err, sizeof u->err, "%s: %s", u->name, strerror(errno));
        return e;
    }
    /* Devices and pipes are streams: one request at a time, at the file position. */
    u->seekable = S_ISREG(st.st_mode);
    u->regular = S_ISREG(st.st_mode);
    u->size = (uint64_t)st.st_size;
    if (S_ISREG(st.st_mode)) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0 && fcntl(fd, F_SETFL, fl | O_DIRECT) == 0)
            u->direct = 1;
    }
    u->bufsize = UIO_BUFSIZE;
    u->nslots = UIO_MAXSLOTS;
    u->slots = calloc(u->nslots, sizeof *u->slots);
    if (!u->slots)
        goto nomem;
    for (unsigned i = 0; i < u->nslots; i++) {
        void *p;
        if (posix_memalign(&p, UIO_ALIGN, u->bufsize) != 0)
            goto nomem;
        u->slots[i].buf = p;
    }
    /* The synchronous fallback keeps the tool usable where io_uring is disabled. */
    u->ring_ok = io_uring_queue_init(2 * u->nslots, &u->ring, 0) == 0;
    return 0;
nomem:
    snprintf(u->err, sizeof u->err, "%s: out of memory for I/O buffers", u->name);
    return -ENOMEM;
}

static void direct_off(struct uio *u)
{
    if (!u->direct)
        return;
    int fl = fcntl(u->fd, F_GETFL);
    if (fl >= 0)
        fcntl(u->fd, F_SETFL, fl & ~O_DIRECT);
    u->direct = 0;
}

/* ---- requests ------------------------------------------------------------------ */

static void on_complete(struct uio *u, unsigned idx, int res, int writing);

/* Submit the rest of slot idx (bytes done..want). Without a ring the request is
 * queued and reap() performs it, so a signal interrupts it the same way. */
static void submit(struct uio *u, unsigned idx, int writing)
{
    struct uio_slot *s = &u->slots[idx];
    uint64_t off = u->seekable ? s->off + s->done : (uint64_t)-1;
    size_t len = s->want - s->done;
    s->state = UIO_BUSY;
    u->inflight++;
    if (u->ring_ok) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
        if (!sqe) {
            io_uring_submit(&u->ring);
            sqe = io_uring_get_sqe(&u->ring);
        }
        /* The ring has twice as many entries as there are slots. */
        if (writing)
            io_uring_prep_write(sqe, u->fd, s->buf + s->done, (unsigned)len, off);
        else
            io_uring_prep_read(sqe, u->fd, s->buf + s->done, (unsigned)len, off);
        io_uring_sqe_set_data64(sqe, idx);
        io_uring_submit(&u->ring);
        return;
    }
    u->pending[(u->pending_head + u->npending) % UIO_MAXSLOTS] = idx;
    u->npending++;
}

/* Synchronous fallback: perform the oldest queued request. */
static int sync_one(struct uio *u, int writing)
{
    unsigned idx = u->pending[u->pending_head];
    struct uio_slot *s = &u->slots[idx];
    uint64_t off = s->off + s->done;
    size_t len = s->want - s->done;
    ssize_t r;
    if (u->seekable)
        r = writing ? pwrite(u->fd, s->buf + s->done, len, (off_t)off)
                    : pread(u->fd, s->buf + s->done, len, (off_t)off);
    else
        r = writing ? write(u->fd, s->buf + s->done, len) : read(u->fd, s->buf + s->done, len);
    if (r < 0 && errno == EINTR)
        return -EINTR; /* still queued */
    u->pending_head = (u->pending_head + 1) % UIO_MAXSLOTS;
    u->npending--;
    on_complete(u, idx, r < 0 ? -errno : (int)r, writing);
    return 0;
}

static void on_complete(struct uio *u, unsigned idx, int res, int writing)
{
    struct uio_slot *s = &u->slots[idx];
    u->inflight--;
    if (res == -EINTR || res == -EAGAIN) {
        submit(u, idx, writing);
        return;
    }
    if (res == -EINVAL && u->direct) {
        direct_off(u);
        submit(u, idx, writing);
        return;
    }
    if (res < 0) {
        seterr(u, res, s->off + s->done, writing ? "write" : "read");
        s->state = UIO_DONE;
        return;
    }
    s->done += (size_t)res;
    if (writing) {
        if (res == 0) {
            seterr(u, -EIO, s->off + s->done, "write made no progress");
            s->state = UIO_DONE;
        } else if (s->done < s->want) {
            if (u->direct && (s->done % UIO_ALIGN) != 0)
                direct_off(u);
            submit(u, idx, writing);
        } else {
            s->state = UIO_FREE;
            s->done = 0; /* the slot is empty again for the caller to fill */
        }
        return;
    }
    /* Reading. A regular file ends at u->size; a read that returns 0 before it means
     * the file shrank under us. */
    if (u->seekable) {
        uint64_t end = s->off + s->done;
        if (res == 0 && end < u->size) {
            seterr(u, -EIO, end, "file shrank while reading");
        } else if (res > 0 && s->done < s->want && end < u->size) {
            if (u->direct && (s->done % UIO_ALIGN) != 0)
                direct_off(u);
            submit(u, idx, writing);
            return;
        }
        if (s->off + s->done > u->size)
            s->done = (size_t)(u->size - s->off);
    } else if (res == 0) {
        u->eof = 1;
    }
    s->state = UIO_DONE;
}

/* Wait for at least one completion. Returns 0, -EINTR, or -errno. */
static int reap(struct uio *u, int writing)
{
    if (u->inflight == 0)
        return 0;
    if (!u->ring_ok)
        return sync_one(u, writing);
    struct io_uring_cqe *cqe;
    int rc = io_uring_wait_cqe(&u->ring, &cqe);
    if (rc == -EINTR)
        return rc;
    if (rc < 0)
        return seterr(u, rc, u->next_off, "io_uring wait");
    do {
        unsigned idx = (unsigned)io_uring_cqe_get_data64(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&u->ring, cqe);
        on_complete(u, idx, res, writing);
    } while (io_uring_peek_cqe(&u->ring, &cqe) == 0);
    return 0;
}

/* ---- reader ---------------------------------------------------------------------- */

int uio_reader_open(struct uio *u, const char *path)
{
    memset(u, 0, sizeof *u);
    u->fd = -1;
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = -errno;
        snprintf(u->err, sizeof u->err, "%s: %s", path, strerror(errno));
        return e;
    }
    int rc = setup(u, path, fd, fd != 0);
    if (rc == 0 && !u->seekable)
        u->size = UINT64_MAX;
    return rc;
}

/* Fill free slots with reads, in file order. */
static void reader_fill(struct uio *u)
{
    for (unsigned k = 0; k < u->nslots && !u->eof && !u->failed; k++) {
        unsigned idx = (u->head + k) % u->nslots;
        struct uio_slot *s = &u->slots[idx];
        if (s->state != UIO_FREE)
            continue;
        if (!u->seekable && u->inflight > 0)
            break; /* pipes: one request at a time keeps the bytes in order */
        if (u->seekable && u->next_off >= u->size) {
            u->eof = 1;
            break;
        }
        s->off = u->next_off;
        s->done = 0;
        s->want = u->bufsize;
        if (u->seekable) {
            uint64_t left = u->size - u->next_off;
            if (left < s->want) {
                /* O_DIRECT wants an aligned length; the read stops at EOF anyway. */
                s->want = (size_t)left;
                if (u->direct)
                    s->want = (s->want + UIO_ALIGN - 1) & ~(size_t)(UIO_ALIGN - 1);
            }
        }
        u->next_off += s->want;
        submit(u, idx, 0);
        if (!u->seekable)
            break;
    }
}

int uio_reader_next(struct uio *u, const void **data, size_t *n)
{
    *data = NULL;
    *n = 0;
    if (u->held) {
        u->slots[u->head].state = UIO_FREE;
        u->head = (u->head + 1) % u->nslots;
        u->held = 0;
    }
    for (;;) {
        if (u->failed)
            return u->failed;
        reader_fill(u);
        struct uio_slot *s = &u->slots[u->head];
        if (s->state == UIO_DONE) {
            if (u->failed)
                return u->failed;
            if (s->done == 0) {
                /* End of a pipe, or an empty tail read. */
                s->state = UIO_FREE;
                if (!u->seekable || u->eof)
                    return 0;
                u->head = (u->head + 1) % u->nslots;
                continue;
            }
            *data = s->buf;
            *n = s->done;
            u->held = 1;
            reader_fill(u); /* keep reading while the caller copies this piece */
            return 0;
        }
        if (s->state == UIO_FREE && u->inflight == 0)
            return 0; /* nothing more to read */
        int rc = reap(u, 0);
        if (rc)
            return rc;
    }
}

/* ---- writer ---------------------------------------------------------------------- */

int uio_writer_open(struct uio *u, const char *path)
{
    memset(u, 0, sizeof *u);
    u->fd = -1;
    int fd =
        strcmp(path, "-") == 0 ? 1 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        int e = -errno;
        snprintf(u->err, sizeof u->err, "%s: %s", path, strerror(errno));
        return e;
    }
    return setup(u, path, fd, fd != 1);
}

void *uio_writer_space(struct uio *u, size_t *avail)
{
    *avail = 0;
    struct uio_slot *s = &u->slots[u->head];
    while (s->state == UIO_BUSY && !u->failed) {
        int rc = reap(u, 1);
        if (rc)
            return NULL; /* -EINTR: the caller checks its stop flag and may retry */
    }
    if (u->failed)
        return NULL;
    *avail = u->bufsize - s->done;
    return s->buf + s->done;
}

static int writer_submit_head(struct uio *u)
{
    struct uio_slot *s = &u->slots[u->head];
    size_t len = s->done;
    /* Pipes: wait until the previous write finished, so the bytes stay in order. */
    while (!u->seekable && u->inflight > 0 && !u->failed) {
        int rc = reap(u, 1);
        if (rc)
            return rc;
    }
    if (u->failed)
        return u->failed;
    s->off = u->next_off;
    s->want = len;
    if (u->direct && (len % UIO_ALIGN) != 0) {
        /* The unaligned tail: pad with zeros; uio_writer_finish() truncates. */
        size_t padded = (len + UIO_ALIGN - 1) & ~(size_t)(UIO_ALIGN - 1);
        memset(s->buf + len, 0, padded - len);
        s->want = padded;
    }
    s->done = 0;
    u->next_off += len;
    submit(u, u->head, 1);
    u->head = (u->head + 1) % u->nslots;
    return u->failed;
}

int uio_writer_commit(struct uio *u, size_t n)
{
    struct uio_slot *s = &u->slots[u->head];
    s->done += n;
    if (s->done == u->bufsize)
        return writer_submit_head(u);
    return 0;
}

int uio_writer_write(struct uio *u, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n > 0) {
        size_t avail;
        unsigned char *dst = uio_writer_space(u, &avail);
        if (!dst)
            return u->failed ? u->failed : -EINTR;
        size_t k = n < avail ? n : avail;
        memcpy(dst, b, k);
        b += k;
        n -= k;
        int rc = uio_writer_commit(u, k);
        if (rc)
            return rc;
    }
    return 0;
}

uint64_t uio_writer_offset(const struct uio *u)
{
    return u->next_off + u->slots[u->head].done;
}

int uio_writer_finish(struct uio *u)
{
    uint64_t total = uio_writer_offset(u);
    struct uio_slot *s = &u->slots[u->head];
    if (!u->failed && s->done > 0 && s->state == UIO_FREE) {
        int rc = writer_submit_head(u);
        if (rc)
            return rc;
    }
    while (u->inflight > 0) {
        int rc = reap(u, 1);
        if (rc == -EINTR)
            continue; /* finish what is in flight; the caller checks its stop flag */
        if (rc)
            return rc;
    }
    if (u->failed)
        return u->failed;
    if (u->regular && ftruncate(u->fd, (off_t)total) != 0)
        return seterr(u, -errno, total, "truncate");
    return 0;
}

void uio_close(struct uio *u)
{
    if (u->ring_ok) {
        /* Exiting the ring cancels what is still in flight (a pipe read that waits
         * for a writer) and waits for it, so no request outlives the buffers. */
        io_uring_queue_exit(&u->ring);
        u->ring_ok = 0;
    }
    if (u->slots) {
        for (unsigned i = 0; i < u->nslots; i++)
            free(u->slots[i].buf);
        free(u->slots);
        u->slots = NULL;
    }
    if (u->own_fd && u->fd >= 0)
        close(u->fd);
    u->fd = -1;
}
