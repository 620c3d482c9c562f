/* SPDX-License-Identifier: MIT */
/*
 * pager/ internals shared by its files: the objects (pager, pool, file, block,
 * mapping), the two fault backends' operation table, and the helpers each file
 * exports to the others. The rules (states, locks, contexts) are at the top of
 * pager.c; this header only names things. Not included outside pager/ (the tests use
 * pager.h only).
 */
#ifndef BA_PAGER_INTERNAL_H
#define BA_PAGER_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ba_common.h"
#include "pager.h"

#if defined(__SANITIZE_THREAD__)
#define PAGER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PAGER_TSAN 1
#endif
#endif

/* mmap(MAP_FIXED) over a range that a view shows (a block appearing or becoming a
 * hole). In ThreadSanitizer builds the mapping thread ignores memory accesses around
 * the call: TSan's mmap interceptor would otherwise record the mapping as a write of
 * the whole range by that thread, and an application thread touching the range after
 * its fault was resolved would be reported as racing with it; the kernel orders the two
 * (the fault is resolved before the access resumes, and a remap waits for the TLB
 * shootdown), which TSan cannot see. Ignoring, the interceptor resets the range's
 * shadow instead (a raw system call would keep it: the shadow of every view byte ever
 * touched stayed allocated, and a bigger-than-RAM test ran out of its cgroup). Same
 * call otherwise. */
void *pager_mmap_view(void *addr, size_t len, int prot, int flags, int fd, off_t off);

/* ---- constants ------------------------------------------------------------------------ */

#define PAGER_MIN_SHIFT    12 /* smallest block: 4 KiB (the page size, checked at create) */
#define PAGER_MAX_SHIFT    30 /* largest block: 1 GiB */
#define PAGER_NPOOLS       (PAGER_MAX_SHIFT - PAGER_MIN_SHIFT + 1)
#define PAGER_RA_STREAMS   4          /* sequential streams tracked per file */
#define PAGER_RA_QUEUE     256        /* readahead jobs queued per pager (ring; overflow drops) */
#define PAGER_PREFILL      4u         /* populated free frames a worker keeps ready per pool */
#define PAGER_STOCK_MAX    64u        /* ... grown up to this by faults that found none */
#define PAGER_UFFD_THREADS 2          /* userfaultfd service threads */
#define PAGER_NO_SLOT      UINT32_MAX /* a DIRECT block without a staging slot */
/* direct_locate(): the block cannot be mapped; load it into a frame. */
#define PAGER_DIRECT_NO 1
/* direct_locate() with pieces: the extent has no usable pieces; locate it whole. */
#define PAGER_DIRECT_WHOLE 2
/* A fault's offset in its block when the whole block is wanted (prefault). */
#define PAGER_BOFF_WHOLE SIZE_MAX

/* Execution contexts of pager_fault_resolve() (see "Contexts" in pager.c). */
enum pager_ctx {
    PAGER_CTX_API = 0, /* pager_prefault(): errors are returned, nothing is poisoned */
    PAGER_CTX_DIRECT,  /* pager_fault_direct(): like a fault, without a signal */
    PAGER_CTX_SIGNAL,  /* the SIGSEGV handler, in the faulting thread */
    PAGER_CTX_UFFD     /* a userfaultfd service thread */
};

/* Internal block states. The public enum pager_block_state shows SPILLING as DIRTY,
 * UNSPILLING as SPILLED and LOCATING as LOADING. */

enum blk_state {
    BS_ABSENT = 0, /* no frame, not dirty (kept as a struct only while poisoned) */
    BS_LOADING,    /* frame held, ops.load in flight without the lock */
    BS_CLEAN,      /* frame holds what ops.load gave */
    BS_DIRTY,      /* frame holds written data */
    BS_SPILLING,   /* dirty, frame being written to the spill file without the lock */
    BS_SPILLED,    /* dirty, only in the spill file */
    BS_UNSPILLING, /* dirty, being read back from the spill file without the lock */
    BS_LOCATING,   /* no frame; ops.locate, the staging map and ops.verify in flight */
    BS_DIRECT      /* no frame; clean bytes mapped straight from a file (zero-copy) */
};

/* Block flags. */
#define BF_REFERENCED 0x01u /* touched since the CLOCK hand last passed */
#define BF_STALE      0x02u /* the I/O in flight is obsolete: redo (load) or drop */
#define BF_READAHEAD  0x04u /* loaded ahead and not touched yet (counts a hit on touch) */
#define BF_WPROT      0x08u /* dirty but write-protected by a writeout: map read-only */
#define BF_POISON     0x10u /* the last load failed: accesses get SIGBUS, no reload */
#define BF_AWAY       0x20u /* the frame's page table entries are in a mapping, not home */
#define BF_RA_LOAD    0x40u /* LOADING on behalf of readahead (drop, do not redo, if stale) */
#define BF_WRITEOUT   0x80u /* listed by an open writeout: the struct must not be freed */

struct pager;
struct pager_file;
struct pager_mapping;

/* Where one block is mapped: one per (block, mapping) pair. */
struct pager_bmap {
    struct pager_bmap *next;
    struct pager_mapping *m;
    uint8_t writable; /* writes do not fault here */
    uint8_t primary;  /* this mapping holds the frame's own page table entries */
    uint8_t partial;  /* DIRECT: only checked pieces are mapped here (the rest is hole) */
    uint8_t runs;     /* partial: piece mappings made here (pager.npiece_maps) */
};

struct pager_block {
    struct pager_file *file;
    uint64_t blkno;
    struct pager_block *hnext;         /* file index chain */
    struct pager_block *cprev, *cnext; /* CLOCK ring (frames or direct); NULL when in none */
    struct pager_bmap *maps;           /* mappings showing it now */
    union {
        uint64_t spill_slot; /* SPILLED / UNSPILLING (and SPILLING once written) */
        uint64_t doff;       /* LOCATING (once located), DIRECT: file offset of the bytes */
    };
    union {
        uint32_t frame; /* LOADING, CLEAN, DIRTY, SPILLING, UNSPILLING */
        uint32_t dslot; /* LOCATING, DIRECT: staging slot holding its entries, or NO_SLOT */
    };
    uint32_t wgen; /* write faults seen (writeout's re-dirty test) */
    union {
        int32_t err; /* the load error while BF_POISON (ABSENT) */
        int32_t dfd; /* LOCATING (once located), DIRECT: descriptor of the file */
    };
    uint16_t pin;  /* writeout window pins: no spill while > 0 */
    uint8_t state; /* enum blk_state */
    uint8_t flags; /* BF_* */
    /* DIRECT checked piece by piece (pager_direct.c, "Pieces"): pshift != 0 while some
     * piece is unchecked, pmask the checked ones, ptag for ops.verify_piece; pshift 0
     * once the whole block is checked. dgen tells a DIRECT lifetime from the next. */
    uint8_t pshift;
    uint32_t dgen;
    uint64_t pmask;
    uint64_t ptag;
};

/* A growable array of u64 that fault context may grow (mmap/mremap, no malloc). */
struct pager_vec {
    uint64_t *v;
    size_t n, cap;
};

/* Fixed-size objects for fault context (mmap'ed chunks, free list; no malloc). */
struct pager_slab {
    size_t objsize;
    void *free;
    void *chunks; /* list through each chunk's first word */
    uint64_t nused;
};

/* One RAM pool per block size: a memfd of frames mapped twice. */
struct pager_pool {
    uint32_t bs;
    int memfd;
    char *home;                  /* read-only mapping of all frames: where frames rest */
    char *alias;                 /* read-write mapping: where loads and spill I/O write/read */
    uint32_t cap;                /* frames of address space reserved in home and alias */
    uint32_t hw;                 /* frames [0, hw) were populated at least once */
    uint32_t npop;               /* frames populated now (free or in use) */
    struct pager_vec free_pop;   /* populated free frames */
    struct pager_vec free_unpop; /* released frames below hw */
    uint32_t nfilling;           /* frames populated now, lock dropped (in npop, no list) */
    uint32_t nstocking;          /* of which for the stock of free frames (prefill) */
    uint32_t stock_want;         /* the stock's size: PAGER_PREFILL, more if faults drain it */
    int stock_full;              /* the stock reached stock_want since the pool grew it */
    int want_fill;               /* a fault populated a frame: workers may prefill */
    int spill_fd;                /* -1 until the first spill */
    uint64_t spill_hw;           /* slots [0, spill_hw) used at least once */
    struct pager_vec spill_free; /* freed slots */
    uint64_t nspilled;           /* slots in use */
    /* Zero-copy staging (pager_direct.c): nstage block-sized slots where a block's file
     * range is mapped and checked before it moves into a mapping; NULL without. */
    char *stage;
    uint32_t nstage;
    struct pager_vec stage_free; /* free slots */
};

/* A CLOCK ring: the hand and the number of blocks in it. */
struct pager_ring {
    struct pager_block *hand;
    uint64_t n;
};

/* Counters, per file and per pager (fields as in ba_pager_stat). */
struct pager_counters {
    uint64_t faults_read, faults_write, faults_remap;
    uint64_t loads, load_bytes, load_errors;
    uint64_t readahead_loads, readahead_hits;
    uint64_t evictions, spills, unspills, invalidations;
    uint64_t fault_ns_total;
    uint64_t fault_hist[16];
    uint64_t direct_loads, direct_copies, direct_pieces;
};

struct ra_stream {
    uint64_t last;    /* last block faulted in this stream */
    int64_t stride;   /* blocks between faults (0: not yet known) */
    uint32_t matches; /* consecutive faults at the stride */
    uint32_t window;  /* blocks to keep loaded ahead */
    uint64_t issued;  /* blocks issued ahead along the stride, past `last` */
    uint64_t used;    /* LRU stamp */
};

struct pager_file {
    struct pager *pg;
    struct pager_file *next, *prev; /* pager's list */
    struct pager_pool *pool;
    uint32_t bs;
    struct pager_ops ops;
    void *ctx;
    struct pager_block **buckets; /* index: blkno -> block (mmap'ed, power of two) */
    uint64_t nbuckets, nblocks;
    struct pager_mapping *maps; /* list through pager_mapping.fnext */
    uint64_t ndirty;            /* DIRTY, SPILLING, SPILLED, UNSPILLING */
    uint64_t ndirect;           /* DIRECT */
    int err;                    /* last fault error (0 none) */
    uint64_t err_blkno;
    struct pager_writeout *wo; /* open writeout, if any */
    struct pager_counters cnt;
    struct ra_stream ra[PAGER_RA_STREAMS];
    uint64_t ra_clock;
    uint32_t ra_inflight; /* readahead jobs of this file queued or running */
    int closing;
};

struct pager_mapping {
    struct pager_file *file;
    struct pager_mapping *fnext;
    char *addr;
    size_t len;
    uint64_t first, n;
    unsigned flags;  /* PAGER_MAP_* */
    uint32_t active; /* faults using it now (atomic; see registry) */
    int dead;        /* unmapping: faults must not map into it */
};

struct pager_backend_ops {
    const char *name;
    /* Make [addr, addr+len) of m a hole (MAP_FIXED over whatever is there). */
    int (*hole_reserve)(struct pager *pg, struct pager_mapping *m, char *addr, size_t len);
    /* A frame just arrived read-only at addr (moved from home or aliased): give it the
     * protection of a block mapped writable (dirty) or not (clean). */
    int (*map_done)(struct pager *pg, struct pager_mapping *m, char *addr, size_t len,
                    int writable);
    /* A block mapped not-writable at addr becomes writable. */
    int (*make_writable)(struct pager *pg, struct pager_mapping *m, char *addr, size_t len);
    /* A block mapped writable at addr becomes not-writable (writeout). */
    int (*make_readonly)(struct pager *pg, struct pager_mapping *m, char *addr, size_t len);
    /* Before moving the frame at addr home (home is read-only): drop write access. */
    int (*before_home)(struct pager *pg, struct pager_mapping *m, char *addr, size_t len,
                       int writable);
    /* After a frame was mapped into a hole: wake threads waiting on it (uffd). */
    void (*wake)(struct pager *pg, char *addr, size_t len);
    /* Clear poison left in the hole [addr, addr+len) (uffd; NULL: nothing to do). */
    int (*unpoison)(struct pager *pg, struct pager_mapping *m, char *addr, size_t len);
};

struct pager_uffd; /* pager_uffd.c */
struct pager_ra;   /* pager_readahead.c */

/* A block range of one file that a pager_prefault() in progress keeps mapped. */
#define PAGER_GUARDS 8
struct pager_guard {
    const struct pager_file *f; /* NULL: slot free */
    uint64_t lo, hi;
};

struct pager {
    pthread_mutex_t lock;
    pthread_cond_t cv; /* a busy block changed state, a frame was freed, a mapping drained */
    int backend;       /* PAGER_BACKEND_UFFD or _SIGSEGV */
    const struct pager_backend_ops *be;
    uint64_t ram_limit;
    uint64_t ram_used;     /* bytes of populated frames (free or in use) */
    uint64_t dirty_bytes;  /* dirty blocks, in RAM or spilled */
    uint64_t direct_bytes; /* DIRECT blocks (page cache, outside the budget) */
    uint64_t overcommits;  /* frames taken past the budget (nothing evictable) */
    unsigned nwait_frame;  /* threads waiting in frame_get() for a frame */
    struct pager_pool *pools[PAGER_NPOOLS];
    struct pager_ring ring;                  /* CLEAN and DIRTY blocks: the frames' CLOCK */
    struct pager_guard guards[PAGER_GUARDS]; /* ranges prefaults in progress keep mapped */
    unsigned nguards;                        /* slots in use (the hands' fast path) */
    struct pager_ring dring; /* DIRECT blocks: their own CLOCK, capped at max_direct */
    uint64_t max_direct;
    uint64_t max_direct_bytes;  /* and at this many bytes: the memory beside the budget */
    uint64_t nbmaps, max_bmaps; /* blocks mapped (any kind), and the cap */
    uint64_t npiece_maps;       /* piece mappings of partial bmaps: count with nbmaps */
    uint32_t dgen;              /* DIRECT lifetimes begun (pager_block.dgen) */
    int zerocopy;               /* map what ops.locate finds (SIGSEGV backend only) */
    unsigned direct_slots;      /* staging slots per pool (0: by block size) */
    struct pager_slab blk_slab, bmap_slab;
    struct pager_file *files;
    struct pager_counters cnt;
    struct pager_uffd *uffd;
    struct pager_ra *ra;
    int readahead;
    unsigned ra_workers;
    char *spill_dir;
    pid_t own_tids[PAGER_UFFD_THREADS + 16]; /* the pager's own threads (uffd, readahead) */
    unsigned nown;
    int forked; /* set in a fork child: every call refuses */
    pid_t pid;
    struct pager *gnext; /* registry's list of pagers (atfork) */
};

/* Nonzero when b lies in a range a pager_prefault() in progress keeps mapped: the
 * hands neither unmap nor evict nor spill it (lock held). */
static inline int block_guarded(const struct pager *pg, const struct pager_block *b)
{
    if (!pg->nguards)
        return 0;
    for (unsigned i = 0; i < PAGER_GUARDS; i++)
        if (pg->guards[i].f == b->file && b->blkno >= pg->guards[i].lo &&
            b->blkno < pg->guards[i].hi)
            return 1;
    return 0;
}

/* Lock pg for an API call. In a fork child returns BA_EFAILED without locking: a thread
 * of the parent may have held the lock at the fork, and the child must not use the
 * pager anyway. */
static inline int pager_lock(struct pager *pg)
{
    if (__atomic_load_n(&pg->forked, __ATOMIC_ACQUIRE))
        return BA_EFAILED;
    pthread_mutex_lock(&pg->lock);
    return 0;
}

#define PAGER_COUNT(f, field, v)                                                                   \
    do {                                                                                           \
        (f)->cnt.field += (v);                                                                     \
        (f)->pg->cnt.field += (v);                                                                 \
    } while (0)

/* A block some thread is loading, locating, spilling or unspilling (the struct is pinned). */
static inline int block_busy(const struct pager_block *b)
{
    return b->state == BS_LOADING || b->state == BS_SPILLING || b->state == BS_UNSPILLING ||
           b->state == BS_LOCATING;
}

/* A block some thread is loading or locating. */
static inline int block_loading(const struct pager_block *b)
{
    return b->state == BS_LOADING || b->state == BS_LOCATING;
}

/* ---- pager.c, pager_fault.c ------------------------------------------------------------ */

/* Resolve a fault at block idx of m, byte boff of the block (PAGER_BOFF_WHOLE: all of
 * it, for prefault) (the core of both backends and of prefault).
 * write: 1 write, 0 read, -1 unknown (inferred: a fault on a block already mapped
 * read-only here is a write). t0: when the fault started (ns). Returns 0, a negative
 * error (the block could not be loaded), or PAGER_FAULT_CHAIN (not a fault the pager
 * may resolve: a write through a read-only mapping). */
#define PAGER_FAULT_CHAIN 1
int pager_fault_resolve(struct pager_mapping *m, uint64_t idx, size_t boff, int write,
                        enum pager_ctx ctx, uint64_t t0);
void pager_block_free_if_unused(struct pager_block *b);
/* A new ABSENT block struct in f's index, or NULL (no memory). */
struct pager_block *pager_block_new(struct pager_file *f, uint64_t blkno);
/* Drop a block that is not busy, whatever its state: unmap, free frame and spill slot,
 * fix the dirty counts. It becomes ABSENT (the caller frees the struct if unused). */
void pager_block_drop(struct pager *pg, struct pager_block *b);
/* Clear a block's poison (and the holes the uffd backend poisoned). */
void pager_block_unpoison(struct pager_block *b);
/* Wait until no block of f in [first, first+n) is SPILLING or UNSPILLING (or LOADING
 * when loads_too); lock held, dropped while waiting. */
void pager_file_wait_idle(struct pager_file *f, uint64_t first, uint64_t n, int loads_too);
void pager_record_fault_time(struct pager_file *f, uint64_t t0);
/* A pager thread (uffd service, readahead worker) records its thread id at start; a
 * userfaultfd fault raised by one of them is a load touching a pager mapping: fatal. */
void pager_thread_register(struct pager *pg);
int pager_thread_is_own(struct pager *pg, pid_t tid);
char *pager_block_addr(const struct pager_mapping *m, uint64_t blkno);

/* ---- pager_check.c: the invariants ------------------------------------------------------ */

/* The invariants (debug builds), lock held; pager_check() takes the lock. */
void pager_check_locked(struct pager *pg);
void pager_check_block(const struct pager_block *b);

/* ---- pager_mem.c: fault-context allocation and the per-file index ---------------------- */

void slab_init(struct pager_slab *s, size_t objsize);
void *slab_alloc(struct pager_slab *s);
void slab_free(struct pager_slab *s, void *p);
void slab_destroy(struct pager_slab *s);
int vec_reserve(struct pager_vec *v, size_t total);
int vec_push(struct pager_vec *v, uint64_t x);
int vec_pop(struct pager_vec *v, uint64_t *x);
void vec_destroy(struct pager_vec *v);
struct pager_block *index_get(const struct pager_file *f, uint64_t blkno);
int index_add(struct pager_file *f, struct pager_block *b);
void index_del(struct pager_file *f, struct pager_block *b);
/* The blocks of f for which keep() holds, ascending by blkno, in an array the caller
 * frees (API context; for calls that may fail). It walks the index twice (counting,
 * then collecting: no counter is trusted to size the array) and sorts only what it
 * keeps, so a writeout of a few dirty blocks among many cached ones costs
 * O(cached + dirty log dirty). Returns the count or a negative code. */
long index_collect(const struct pager_file *f, int (*keep)(const struct pager_block *b),
                   struct pager_block ***out);
/* Call fn for each block of f with blkno in [first, first+n), in no particular order,
 * without allocating (destructors and abort paths must work when memory is short). fn
 * may free the block it is given and must not add blocks or drop the lock. */
void index_foreach(struct pager_file *f, uint64_t first, uint64_t n,
                   void (*fn)(struct pager_block *b, void *arg), void *arg);
void index_destroy(struct pager_file *f);

/* ---- pager_frames.c: pools, frames and their moves --------------------------------------- */

int pool_get(struct pager *pg, uint32_t bs, struct pager_pool **out);
void pool_destroy(struct pager_pool *pool);
char *frame_alias(const struct pager_pool *p, uint32_t frame);
/* Take a populated free frame (0) or -ENOSPC when the pool has none. */
int frame_pop_free(struct pager_pool *p, uint32_t *frame);
/* Populate a new frame (ram_used grows; lock held, dropped for the system calls, so the
 * caller looks again). -ENOSPC when the pool's address space is full, -ENOMEM when the
 * kernel refuses memory. */
int frame_populate(struct pager *pg, struct pager_pool *p, uint32_t *frame);
/* Populate one free frame of some pool that asked for it (want_fill), on a readahead
 * worker, while its stock of populated free frames is below its target and the
 * budget has room (lock held, dropped for the system calls). Returns 1 if it did. */
int frames_prefill_one(struct pager *pg);
/* A fault had to populate a frame of p itself: if the stock had been full, it grows by
 * one (a burst of faults on new blocks, such as a commit's worth of writes to blocks
 * read zero-copy, drains it; the workers refill it in the pause that follows). */
void frame_stock_drained(struct pager_pool *p);
/* Memory is short: the stock goes back to PAGER_PREFILL. */
void frame_stock_reset(struct pager_pool *p);
/* A frame no block uses any more: kept populated for reuse, or released when RAM is over
 * the budget. */
void frame_free(struct pager *pg, struct pager_pool *p, uint32_t frame);
/* Release populated free frames of pools other than `keep` until `bytes` are released;
 * returns the bytes released. */
uint64_t frames_release_free(struct pager *pg, const struct pager_pool *keep, uint64_t bytes);
/* Move the page table entries of [from, from+len) to `to` (mremap, MREMAP_DONTUNMAP where
 * the kernel has it, so `from` stays mapped, without entries). Returns 0, 1 (moved, but
 * `from` is now a gap the caller fills at once), or -errno. */
int range_move(char *from, char *to, size_t len);
/* Map a block's frame into m (move it from home, or alias it when it is away). */
int block_map_into(struct pager *pg, struct pager_block *b, struct pager_mapping *m, int writable);
/* Unmap a block from one mapping (its bmap); the frame goes home if it was there; the
 * range becomes a hole unless hole == 0 (the mapping is about to be unmapped). */
int block_unmap_one(struct pager *pg, struct pager_block *b, struct pager_bmap *bm, int hole);
/* Unmap a block from every mapping. */
int block_unmap_all(struct pager *pg, struct pager_block *b);
struct pager_bmap *block_bmap(const struct pager_block *b, const struct pager_mapping *m);
unsigned block_nmapped(const struct pager_block *b);
/* Reserve fresh address space for a mapping (aligned), as a hole. */
int mapping_reserve(struct pager *pg, struct pager_mapping *m);

/* ---- pager_reclaim.c: the CLOCK ring and the frame policy -------------------------------- */

#define FG_SPILL      0x1u /* may spill a dirty block (drops the lock for the write) */
#define FG_OVERCOMMIT 0x2u /* may exceed the budget when nothing can be evicted */
#define FG_WAIT       0x4u /* may wait for a frame (drops the lock) */
int frame_get(struct pager *pg, struct pager_pool *pool, unsigned how, uint32_t *frame);
void ring_insert(struct pager_ring *r, struct pager_block *b);
void ring_remove(struct pager_ring *r, struct pager_block *b);
/* Drop a clean block's frame (unmapping it first); the block becomes ABSENT. */
void block_evict(struct pager *pg, struct pager_block *b);
/* Unmap blocks with the hands (direct ring first) until the kernel mapping count is
 * back under the cap (never `keep`, the block a fault just mapped). */
void reclaim_vma_pressure(struct pager *pg, const struct pager_block *keep);
/* Release free frames, then evict clean blocks, until ram_used <= keep or nothing more
 * can go (lock held). Returns the number of blocks evicted. */
uint64_t reclaim_to(struct pager *pg, uint64_t keep);
/* Guard blocks [lo, hi) of f while a pager_prefault() runs (see block_guarded()), if
 * they fit in the budget with the other guarded ranges. Returns the slot, or -1 (not
 * guarded). Takes the lock. */
int reclaim_guard_take(struct pager *pg, const struct pager_file *f, uint64_t lo, uint64_t hi);
/* Release a slot from reclaim_guard_take() (-1: nothing). Takes the lock. */
void reclaim_guard_drop(struct pager *pg, int slot);
/* Rank of b in its ring (see pager_block_info.lru_rank). */
uint64_t block_lru_rank(const struct pager *pg, const struct pager_block *b);

/* ---- pager_direct.c: zero-copy mapping of located blocks ---------------------------------- */

/* Reserve the staging slots of a pool (API context, lock held). 0 or -errno. */
int direct_stage_init(struct pager *pg, struct pager_pool *p);
void direct_stage_destroy(struct pager_pool *p);
/* Nonzero when faults and readahead of f try ops.locate first. */
int direct_enabled(const struct pager_file *f);
/* ABSENT block blkno of f (or none yet): locate it, map its range into a staging slot,
 * verify it there; it becomes DIRECT and staged (lock held; dropped meanwhile). ra: on
 * behalf of readahead (no slot is taken from another block; BF_READAHEAD on success).
 * boff (a fault's offset in the block; PAGER_BOFF_WHOLE for the whole block): with
 * ops.verify_piece, when the extent has pieces, only locate: the block becomes DIRECT
 * with no piece checked, unstaged, and each piece is checked when first touched
 * (direct_check_pieces). Returns 0 (look at the block again), PAGER_DIRECT_NO (load
 * it into a frame instead), PAGER_DIRECT_WHOLE (pieces asked for, the extent has none:
 * call again with PAGER_BOFF_WHOLE), or -ENOMEM. */
int direct_locate(struct pager *pg, struct pager_file *f, uint64_t blkno, int ra, size_t boff);
/* DIRECT block b checked piece by piece, and the piece holding byte boff of it is not
 * checked yet (PAGER_BOFF_WHOLE: some piece): map and check the pieces under the
 * PAGER_PIECE_SPAN bytes from boff, or, when that would make more than half the block's
 * pieces checked or boff is PAGER_BOFF_WHOLE, every piece left (lock held; dropped
 * around the check). Returns 0 (look at the block again) or PAGER_DIRECT_NO (a piece
 * did not match: the block is ABSENT now; load it, which reports the error). */
int direct_check_pieces(struct pager *pg, struct pager_block *b, size_t boff);
/* How far past the byte a fault touched direct_check_pieces checks: the size of a small
 * read (a 64 KiB read was measured, bench_ba rand). */
#define PAGER_PIECE_SPAN ((size_t)64 << 10)
/* Whether byte boff of DIRECT block b may be shown (its piece is checked). */
int direct_piece_checked(const struct pager_block *b, size_t boff);
/* Map a DIRECT block into m, read-only, for an access at byte boff of it: its staged
 * entries move in, or the file range is mapped afresh; of a block checked by pieces,
 * the piece holding boff (checked) (lock held, no drop). */
int direct_map_into(struct pager *pg, struct pager_block *b, struct pager_mapping *m, size_t boff);
/* Unmap a DIRECT block from one mapping (hole != 0: leave a hole there). */
int direct_unmap_one(struct pager *pg, struct pager_block *b, struct pager_bmap *bm, int hole);
/* Forget a DIRECT block: unmap it everywhere, release its slot, leave the ring. It
 * becomes ABSENT (the caller frees the struct if unused). */
void direct_drop(struct pager *pg, struct pager_block *b);
/* Keep the DIRECT blocks at most max_direct and max_direct_bytes with the direct hand
 * (never `keep`). */
void direct_reclaim(struct pager *pg, const struct pager_block *keep);

/* ---- pager_spill.c ---------------------------------------------------------------------- */

/* Write a DIRTY block to the spill file and free its frame (drops the lock for the I/O).
 * Returns 0 (SPILLED, or dropped if discarded meanwhile) or a negative code (still DIRTY). */
int spill_block(struct pager *pg, struct pager_block *b);
/* Read a SPILLED block back into a frame (drops the lock). 0: DIRTY in RAM. */
int unspill_block(struct pager *pg, struct pager_block *b, unsigned how);
void spill_slot_free(struct pager *pg, struct pager_pool *p, uint64_t slot);
void spill_close(struct pager_pool *p);

/* ---- pager_registry.c: address -> mapping, handler installation, fork ---------------- */

int registry_add(struct pager_mapping *m);
void registry_del(struct pager_mapping *m);
/* Fault context: the mapping containing addr with its active count raised, or NULL. */
struct pager_mapping *registry_get(const void *addr);
/* Drop the active count taken by registry_get (takes the pager lock). */
void registry_put(struct pager_mapping *m);
int registry_pager_add(struct pager *pg);
void registry_pager_del(struct pager *pg);
/* Around a new mapping and its madvise(MADV_DONTFORK): fork() waits meanwhile. */
void pager_fork_guard_enter(void);
void pager_fork_guard_exit(void);

/* ---- pager_sigsegv.c ----------------------------------------------------------------------- */

extern const struct pager_backend_ops pager_sigsegv_ops;
/* Install the process's SIGSEGV handler (chaining to the previous one), or reinstall
 * it if another handler replaced it; called at pager_create() and pager_map(). */
int sigsegv_install(void);
/* Queue SIGBUS (BUS_ADRERR, si_addr = addr) to thread tid of this process. */
void sigsegv_send_sigbus(pid_t tid, void *addr);
/* Nonzero while the calling thread resolves a fault (the recursion guard). */
int sigsegv_in_fault(void);

/* ---- pager_uffd.c -------------------------------------------------------------------------- */

extern const struct pager_backend_ops pager_uffd_ops;
/* Open userfaultfd with the needed features and start the service threads. Returns 0,
 * or a negative code when userfaultfd cannot be used (the caller falls back). */
int uffd_start(struct pager *pg);
void uffd_stop(struct pager *pg);

/* ---- pager_readahead.c --------------------------------------------------------------------- */

int ra_start(struct pager *pg);
void ra_stop(struct pager *pg);
/* A fault through m touched blkno of f (lock held): detect streams, queue loads ahead.
 * hit: the block had been loaded ahead. */
void ra_on_fault(struct pager_file *f, uint64_t blkno, const struct pager_mapping *m, int hit);
/* A fault about to wait for a block loaded ahead: run a queued readahead job in the
 * meantime (lock held, dropped for the load). Returns 1 if it ran one. */
int ra_help(struct pager *pg);
/* Wake a worker for frames_prefill_one() (lock held; nothing without workers). */
void ra_kick(struct pager *pg);
/* Forget f's queued jobs and wait for its running ones (lock held; may wait). */
void ra_file_drain(struct pager_file *f);

#endif /* BA_PAGER_INTERNAL_H */
