/* SPDX-License-Identifier: MIT */
/*
 * The spill file: where dirty blocks go when the RAM budget is full of them, so that
 * one transaction may write more than RAM. One unlinked temporary file per pool
 * (O_TMPFILE in the spill directory, opened at the first spill), cut into slots of the
 * pool's block size; freed slots are reused and their disk space punched out.
 *
 * A spilled block comes back into a frame on its next fault and when a writeout hands
 * it out. I/O runs without the pager lock, the block marked busy (SPILLING or
 * UNSPILLING) so that faults on it wait. The injection seams BA_INJ_SPILL_WRITE and
 * BA_INJ_SPILL_READ make the I/O fail in tests. A failed write leaves the block dirty
 * in RAM (the budget is then exceeded rather than data lost); a failed read leaves it
 * spilled (the fault gets SIGBUS, a writeout_next() the code; a retry may succeed).
 *
 * The file is opened with O_DIRECT where the filesystem allows it: buffered writes
 * would leave every spilled block in the page cache as dirty pages, doubling the memory
 * the spill was meant to free, and in a memory cgroup (v1 has no per-group dirty
 * throttling) a transaction of a few times the budget is OOM-killed before writeback
 * catches up (tests/reliability/rel_bigger_than_ram.c). Frames are page-aligned and
 * block sizes are multiples of the page size, as O_DIRECT requires.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "pager_internal.h"

#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif

static int spill_open(struct pager *pg, struct pager_pool *p)
{
    if (p->spill_fd >= 0)
        return 0;
    int fd = open(pg->spill_dir, O_TMPFILE | O_RDWR | O_CLOEXEC | O_DIRECT, 0600);
    if (fd < 0 && errno == EINVAL) /* no O_DIRECT here: buffered I/O */
        fd = open(pg->spill_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    p->spill_fd = fd;
    return 0;
}

void spill_close(struct pager_pool *p)
{
    if (p->spill_fd >= 0)
        close(p->spill_fd);
    p->spill_fd = -1;
}

static int slot_alloc(struct pager_pool *p, uint64_t *slot)
{
    if (vec_pop(&p->spill_free, slot)) {
        if (p->spill_hw >= (uint64_t)INT64_MAX / p->bs)
            return -EFBIG;
        *slot = p->spill_hw++;
    }
    p->nspilled++;
    return 0;
}

void spill_slot_free(struct pager *pg, struct pager_pool *p, uint64_t slot)
{
    (void)pg;
    p->nspilled--;
    fallocate(p->spill_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(slot * p->bs),
              (off_t)p->bs);
    /* Without memory to list it, the slot is never reused; its disk space is punched. */
    (void)vec_push(&p->spill_free, slot);
}

static int io_full(int write, int fd, char *buf, size_t len, off_t off)
{
    while (len) {
        ssize_t n = write ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EINVAL && (fcntl(fd, F_GETFL) & O_DIRECT)) {
            /* A filesystem that takes O_DIRECT at open but not for this I/O. */
            if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_DIRECT))
                return -errno;
            continue;
        }
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        buf += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

int spill_block(struct pager *pg, struct pager_block *b)
{
    struct pager_file *f = b->file;
    struct pager_pool *p = f->pool;
    uint64_t slot;
    int r = spill_open(pg, p);
    if (r || (r = slot_alloc(p, &slot)))
        return r;
    if (b->maps)
        block_unmap_all(pg, b); /* writes now fault and wait for the spill */
    ring_remove(&pg->ring, b);
    b->state = BS_SPILLING;
    b->spill_slot = slot;
    pthread_mutex_unlock(&pg->lock);
    r = ba_inject(BA_INJ_SPILL_WRITE);
    if (!r)
        r = io_full(1, p->spill_fd, frame_alias(p, b->frame), p->bs, (off_t)(slot * p->bs));
    pthread_mutex_lock(&pg->lock);
    if (r) {
        spill_slot_free(pg, p, slot);
        b->state = BS_DIRTY;
        ring_insert(&pg->ring, b);
    } else {
        frame_free(pg, p, b->frame);
        b->state = BS_SPILLED;
        b->flags &= (uint8_t) ~(BF_REFERENCED | BF_READAHEAD);
        PAGER_COUNT(f, spills, 1);
    }
    pthread_cond_broadcast(&pg->cv);
    pager_check_block(b);
    return r;
}

int unspill_block(struct pager *pg, struct pager_block *b, unsigned how)
{
    struct pager_file *f = b->file;
    struct pager_pool *p = f->pool;
    uint64_t blkno = b->blkno;
    uint32_t frame;
    int r = frame_get(pg, p, how, &frame);
    if (r)
        return r;
    /* frame_get() may have dropped the lock: look again. */
    b = index_get(f, blkno);
    if (!b || b->state != BS_SPILLED) {
        frame_free(pg, p, frame);
        return 0;
    }
    b->state = BS_UNSPILLING;
    b->frame = frame;
    pthread_mutex_unlock(&pg->lock);
    r = ba_inject(BA_INJ_SPILL_READ);
    if (!r)
        r = io_full(0, p->spill_fd, frame_alias(p, frame), p->bs, (off_t)(b->spill_slot * p->bs));
    pthread_mutex_lock(&pg->lock);
    if (r) {
        frame_free(pg, p, frame);
        b->state = BS_SPILLED;
    } else {
        spill_slot_free(pg, p, b->spill_slot);
        b->state = BS_DIRTY;
        b->flags |= BF_REFERENCED;
        ring_insert(&pg->ring, b);
        PAGER_COUNT(f, unspills, 1);
    }
    pthread_cond_broadcast(&pg->cv);
    pager_check_block(b);
    return r;
}
