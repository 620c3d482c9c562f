/* SPDX-License-Identifier: MIT */
/*
 * pager/: the userspace virtual-memory manager. It makes a linear byte space cut
 * into blocks (a "file") look like plain memory: touching a mapped byte loads its
 * block into a RAM frame, the first write marks the block dirty, clean blocks are
 * evicted under a RAM budget, dirty blocks beyond the budget spill to a temporary
 * file. It knows blocks, never LMDB: data arrives only through the file's ops table
 * (lib/ wires store/ into it). No <lmdb.h>, no <zstd.h> here.
 *
 * Objects
 *   struct pager          one RAM pool with a budget, one fault backend, readahead
 *                         workers and a spill file. lib/ makes one per database.
 *   struct pager_file     a linear byte space of blocks of one block size, with its
 *                         ops; lib/ makes one per (session, array).
 *   struct pager_mapping  a reservation of address space showing blocks
 *                         [first, first+n) of one file. A file may be mapped any
 *                         number of times; all mappings of a file share its blocks.
 *
 * Zero-copy: where a file's ops can say where a block's bytes lie verbatim in a file
 * (ops.locate, checked by ops.verify), a read maps those bytes from the page cache
 * instead of copying them into a frame (SIGSEGV backend; see pager_direct.c).
 *
 * The rules (states, locks, contexts) are written at the top of pager/pager.c.
 * Error codes are the public BA_* ones and -errno.
 */
#ifndef BA_PAGER_H
#define BA_PAGER_H

#include <stddef.h>
#include <stdint.h>

#include "bigarray.h"

struct pager;
struct pager_file;
struct pager_mapping;

#define PAGER_BACKEND_AUTO    0 /* BIGARRAY_PAGER=uffd|sigsegv if set, else the default */
#define PAGER_BACKEND_UFFD    1
#define PAGER_BACKEND_SIGSEGV 2

struct pager_opts {
    size_t size;                /* sizeof(struct pager_opts) */
    uint64_t ram_limit;         /* bytes; 0 = BIGARRAY_RAM_LIMIT, else half of min(RAM, cgroup) */
    int backend;                /* PAGER_BACKEND_* */
    const char *spill_dir;      /* NULL = BIGARRAY_SPILL_DIR, $TMPDIR, /var/tmp */
    unsigned readahead_workers; /* 0 = default; threads that load ahead */
    int readahead;              /* nonzero = detect sequential access and load ahead */
    /* nonzero (the default) = map the blocks ops.locate finds instead of copying them;
     * BIGARRAY_ZEROCOPY=0 in the environment turns it off. SIGSEGV backend only: with
     * userfaultfd it is off (see pager.c) */
    int zerocopy;
    unsigned direct_slots; /* 0 = default; zero-copy staging slots per block size */
    /* bytes of memory this process may use; 0 = min(RAM, cgroup limit). Sets the default
     * budget (half) and the zero-copy blocks kept beside it (see pager.c, "RAM") */
    uint64_t mem_limit;
};

void pager_opts_init(struct pager_opts *o);

int pager_create(const struct pager_opts *o, struct pager **out);
/* Every file must have been closed. NULL ok. */
void pager_destroy(struct pager *pg);
int pager_backend(const struct pager *pg);
uint64_t pager_ram_limit(const struct pager *pg);
/* Nonzero when zero-copy mapping is in effect (asked for, not turned off by the
 * environment, and the backend supports it). */
int pager_zerocopy(const struct pager *pg);

/* ---- files -------------------------------------------------------------------------- */

/* Where a block's bytes lie verbatim in a file (ops.locate). */
struct pager_extent {
    int fd;       /* a readable descriptor, borrowed: valid while the block is known */
    uint64_t off; /* file offset of the block's first byte: a multiple of the page size */
    uint64_t tag; /* handed back to ops.verify (a checksum, say) */
    /* Optional (0 = none): log2 of a piece size, when each piece of the block can be
     * checked alone with ops.verify_piece (a power of two, >= the page size, at most
     * 64 pieces per block). A read fault then maps and checks only the piece it
     * touches: a random read of a few KiB costs a piece, not a block. */
    unsigned piece_shift;
    uint64_t piece_tag; /* handed back to ops.verify_piece */
    /* Input to ops.locate: the byte of the block a read fault touched, or UINT64_MAX
     * (readahead, prefault: the whole block). The owner may start reading what the
     * access needs (the pieces around it) while it finds the block. */
    uint64_t hint;
};

struct pager_ops {
    /* Fill buf (the file's block_size bytes) with block blkno. Called with no pager lock
     * held, from any thread: inside the faulting thread's SIGSEGV handler, in the
     * userfaultfd service thread or a worker, or in an API thread (prefault). It must not
     * allocate memory, format messages, take a lock that code touching pager mappings
     * can hold, or touch any pager mapping. Returns 0 or a negative code; the code is
     * recorded on the file and the faulting thread receives SIGBUS. */
    int (*load)(void *ctx, uint64_t blkno, void *buf);
    /* Optional, zero-copy: say where block blkno's block_size bytes lie verbatim in a
     * file, so that the pager maps them (MAP_PRIVATE, PROT_READ) instead of copying them
     * into a frame. Returns 0 with *out filled, or nonzero when the block cannot be
     * mapped (a hole, compressed, unaligned, or an error): the pager then calls load,
     * which fills the block or reports the error. The owner guarantees that the bytes
     * stay in place, unchanged, until the pager has forgotten the block: it must call
     * pager_file_invalidate() (or discard, or close) for the block before they may
     * change. The file must not shrink below a mapped range. Same context rules as
     * load. NULL = not supported. */
    int (*locate)(void *ctx, uint64_t blkno, struct pager_extent *out);
    /* Required with locate: check the block_size bytes at p (the located bytes, as the
     * pager mapped them) against tag. Returns 0, or nonzero to refuse the mapping (the
     * pager then calls load, which reports the error). Same context rules as load. */
    int (*verify)(void *ctx, uint64_t blkno, const void *p, uint64_t tag);
    /* Optional, with locate: check piece i (the 2^e->piece_shift bytes at e->off + (i <<
     * piece_shift) of e->fd) of the block located at *e (fd, off, piece_shift and
     * piece_tag as ops.locate gave them), reading them as they lie in the file (through
     * the owner's own mapping of it, say: the same page-cache pages the pager maps;
     * the pager has asked the kernel to read them already). Returns 0, or nonzero to
     * refuse the block (the pager then calls load). Same context rules as load. */
    int (*verify_piece)(void *ctx, uint64_t blkno, const struct pager_extent *e, unsigned i);
    /* Members may be appended later; a NULL member means "not supported", so tables
     * made with designated initializers keep working. */
};

int pager_file_open(struct pager *pg, uint32_t block_size, const struct pager_ops *ops, void *ctx,
                    struct pager_file **out);
/* No mapping of the file may remain. Drops every block, dirty ones too. NULL ok. */
void pager_file_close(struct pager_file *pf);
uint32_t pager_file_block_size(const struct pager_file *pf);

/* ---- mappings ------------------------------------------------------------------------ */

#define PAGER_MAP_READONLY 0x1u /* a write through this mapping is a real segfault */

/* Register the pager's fork handlers now (else the first pager_create() does). Fork
 * prepare handlers run in the reverse order of registration, and the pager's waits for
 * faults inside its fork guard, which hold a pager lock: a caller that holds a lock of
 * its own around pager calls registers its handlers after calling this, so that its
 * prepare handler takes its lock before the pager's waits. Idempotent. */
void pager_process_init(void);

/* Reserve address space for blocks [first, first+n) of pf (nothing is loaded).
 * Returns 0, BA_ETOOBIG (no address space), -ENOMEM. */
int pager_map(struct pager_file *pf, uint64_t first, uint64_t n, unsigned flags,
              struct pager_mapping **out);
void *pager_mapping_addr(const struct pager_mapping *m);
size_t pager_mapping_len(const struct pager_mapping *m);
/* Release the address space. Blocks stay cached (dirty ones until commit or abort). */
void pager_unmap(struct pager_mapping *m);

#define PAGER_PREFAULT_WRITE 0x1u

/* Load and map every block overlapping bytes [off, off+len) of the mapping, so that
 * accesses there do not fault (until eviction); with PAGER_PREFAULT_WRITE also make
 * them writable (dirty). Returns 0 or the first load error (the message names the
 * block), in normal context: no signal is raised, nothing is recorded on the file, and
 * a poisoned block is loaded again. With the SIGSEGV backend this is what makes a
 * system call on a view work (the kernel returns EFAULT instead of faulting): prefault
 * the range, with PAGER_PREFAULT_WRITE for read(2) into it, and keep it within the RAM
 * budget: while a prefault runs, the blocks of a range that fits in the budget (with the
 * other prefaults in progress) are skipped by the reclaim hands, so none of them is
 * unmapped to load the next; a larger range is loaded unguarded. */
int pager_prefault(struct pager_mapping *m, size_t off, size_t len, unsigned flags);

/* ---- transactions -------------------------------------------------------------------- */

/* Number of dirty blocks (in RAM or spilled). */
uint64_t pager_file_dirty_count(struct pager_file *pf);

struct pager_writeout;

/* Pointers from pager_writeout_next() stay valid for this many further calls. */
#define PAGER_WRITEOUT_WINDOW 16

/* Start handing out the dirty blocks in ascending order. The blocks are
 * write-protected first, so a write during the writeout (which the thread rules
 * forbid) faults and re-dirties the block instead of being lost. */
int pager_writeout_begin(struct pager_file *pf, struct pager_writeout **out);
/* Next dirty block: returns 1 and sets *blkno, *data (block_size bytes, read-only);
 * 0 when done; <0 on error (reading a spilled block back). */
int pager_writeout_next(struct pager_writeout *wo, uint64_t *blkno, const void **data);
/* End the writeout. committed != 0: every block handed out becomes clean unless it
 * was written again after being handed out; committed == 0: they stay dirty. */
void pager_writeout_end(struct pager_writeout *wo, int committed);

/* Drop blocks in [first, first+n) (n = UINT64_MAX: to the end), dirty or clean; the
 * next access loads them again through ops.load. Loads in flight are redone. */
void pager_file_discard(struct pager_file *pf, uint64_t first, uint64_t n);
/* Drop clean cached copies in [first, first+n); dirty blocks are kept. Loads in
 * flight are redone, so the next access sees what ops.load returns now. */
void pager_file_invalidate(struct pager_file *pf, uint64_t first, uint64_t n);

/* The last load error recorded on the file (0 if none) and its block; clears it. A
 * block whose load failed in a fault stays poisoned (every access gets SIGBUS again,
 * without a reload) until this call, pager_file_invalidate(), pager_file_discard() or a
 * pager_prefault() over it; so this also clears the poison of every block of the
 * file. blkno may be NULL. */
int pager_file_take_error(struct pager_file *pf, uint64_t *blkno);

/* ---- statistics ------------------------------------------------------------------------ */

void pager_stat_get(struct pager *pg, ba_pager_stat *st);
void pager_file_stat_get(struct pager_file *pf, ba_pager_stat *st);

/* ---- testing hooks (used by tests/check_pager.c) ------------------------------------- */

enum pager_block_state {
    PAGER_BLK_ABSENT = 0, /* not in RAM, not dirty */
    PAGER_BLK_LOADING,    /* ops.load in flight */
    PAGER_BLK_CLEAN,      /* in a frame, same as ops.load would give */
    PAGER_BLK_DIRTY,      /* in a frame, written */
    PAGER_BLK_SPILLED,    /* dirty, in the spill file */
    PAGER_BLK_DIRECT      /* clean, mapped straight from the file ops.locate named */
};

struct pager_block_info {
    int state;         /* enum pager_block_state */
    unsigned nmapped;  /* mappings where it is mapped now */
    int writable;      /* mapped writable in at least one mapping */
    int referenced;    /* accessed since the reclaim hand last passed */
    uint64_t lru_rank; /* 0 = next eviction candidate among resident blocks (in the
                          order the CLOCK hand takes them if all were clean);
                          UINT64_MAX when not resident. DIRECT blocks: the same
                          among DIRECT blocks (their own ring) */
    int staged;        /* DIRECT: its page table entries wait in a staging slot */
    uint64_t pieces;   /* DIRECT, checked piece by piece: bit i = piece i checked;
                          0 when checked whole (or not DIRECT) */
};

void pager_block_info_get(struct pager_file *pf, uint64_t blkno, struct pager_block_info *out);

/* Resolve a fault at byte off of mapping m as the fault handler would (write != 0 for a
 * write), without a real memory access. Returns 0 or the load error. */
int pager_fault_direct(struct pager_mapping *m, size_t off, int write);

/* Evict clean blocks until at most `keep` bytes of frames are in use (or nothing clean
 * is left); returns the number evicted. */
uint64_t pager_reclaim(struct pager *pg, uint64_t keep);

/* Assert the invariants (debug builds; no-op with NDEBUG). */
void pager_check(struct pager *pg);

#endif /* BA_PAGER_H */
