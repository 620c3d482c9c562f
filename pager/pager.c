/* SPDX-License-Identifier: MIT */
/*
 * The pager: a userspace virtual-memory manager that makes a linear byte space of
 * blocks (a "file") look like plain memory. This file holds the rules every other
 * pager file follows and the object lifecycles (pager, file, mapping); pager_fault.c
 * the fault resolution core shared by both backends and by prefault; pager_check.c
 * the invariant checker and the statistics.
 *
 * ==== Definitions ====================================================================
 *
 *   block     block_size bytes of a file (a power of two >= the page size, <= 1 GiB);
 *             block n holds bytes [n*bs, (n+1)*bs). The unit of loading, dirtiness,
 *             eviction and spilling.
 *   page      the kernel's 4 KiB page. The pager never tracks pages, only blocks.
 *   frame     bs bytes of RAM in a pool: a range of a memfd, populated once (written,
 *             so its page table entries are dirty) and reused forever.
 *   pool      the frames of one block size: one memfd mapped twice, a read-only "home"
 *             where frames rest and a read-write "load alias" where loads and spill
 *             I/O write. pager_frames.c.
 *   file      struct pager_file: blocks of one size, an ops table, a block index.
 *   mapping   struct pager_mapping: a reservation of address space showing blocks
 *             [first, first+n) of one file. A block is "mapped" in a mapping when its
 *             frame appears there; the first mapping gets the frame's own page table
 *             entries moved in (mremap: "primary"), any further one a shared mmap of the
 *             frame (an "alias", same RAM). Unmapped blocks of a mapping are holes.
 *   hole      SIGSEGV backend: PROT_NONE anonymous memory. userfaultfd backend:
 *             anonymous memory registered for missing faults.
 *   budget    ram_limit: bytes of populated frames. Clean blocks are evicted to stay
 *             under it; dirty blocks beyond it spill to a temporary file. Default: half
 *             of the memory the process may use (RAM, or its cgroup's limit if smaller).
 *   direct    zero-copy (pager_direct.c): a block whose bytes ops.locate finds verbatim
 *             in a file (an extent: descriptor, page-aligned offset, checksum tag) is
 *             mapped from the page cache, MAP_PRIVATE and PROT_READ, instead of copied
 *             into a frame: no frame, outside the budget, checked once with ops.verify;
 *             or, when the extent has pieces (ops.verify_piece), checked piece by piece
 *             as read faults touch them (pager_direct.c, "Pieces").
 *   slot      a staging slot: block-sized address space of a pool (pool->stage) where a
 *             located extent is mapped and verified before any mapping shows it, and
 *             where readahead leaves DIRECT blocks "staged" until a fault moves them in.
 *
 * ==== Block states ====================================================================
 *
 *                  fault, readahead        load ok             write fault
 *       ABSENT -------------------> LOADING -------> CLEAN ---------------> DIRTY
 *        ^  ^  ^                     |  ^ |            |  ^                  |  |  ^
 *        |  |  |    load error       |  | | stale:     |  |  writeout end    |  |  | spill
 *        |  |  +----(poisoned)-------+  | | load again |  +---(committed)---+  |  | write
 *        |  |                           +-+            |                        |  | failed
 *        |  +------- evict, invalidate, discard, close +                        |  |
 *        +---------- discard, close ---------------------------------------------+  |
 *        |                                        frame_get, nothing clean:         |
 *        |                                        DIRTY ---------------> SPILLING --+
 *        |                                                                   |
 *        |                                                           written |
 *        +--- discard, close, writeout end (committed) ------ SPILLED <------+
 *        |                                                     |  ^
 *        |                                     fault, writeout |  | read failed
 *        |                                                     v  |
 *        |                                                 UNSPILLING --read ok--> DIRTY
 *        |
 *        |  read fault, readahead      located, mapped     write fault (copy into a
 *        +-----------------------> LOCATING ------> DIRECT ----------------------> LOADING
 *        |   (zero-copy files)      |  ^  |  verified         |      frame; DIRECT
 *        |                          |  +--+ stale: again      |      mappings dropped)
 *        +-- not mappable, failed --+                         |
 *        |   (a fault then loads)                             |
 *        +---- direct CLOCK, invalidate, discard, close ------+
 *
 *   ABSENT -> LOADING       [block_load, ra_load]       frame taken with frame_get()
 *   LOADING -> LOADING      [block_fill]                BF_STALE: invalidated/discarded
 *                                                       while loading: load again
 *   LOADING -> CLEAN        [block_fill, ra_load]       joins the CLOCK ring, referenced
 *   LOADING -> ABSENT       [block_fill]                load error: error recorded on
 *                                                       the file, block poisoned (fault
 *                                                       contexts only)
 *   LOADING -> ABSENT       [ra_load]                   readahead failed or stale: drop
 *   CLEAN -> DIRTY          [block_fault_map]           write fault; wgen++
 *   CLEAN -> ABSENT         [block_evict <- clock_evict_one, pager_reclaim,
 *                            pager_file_invalidate, pager_file_discard,
 *                            pager_file_close]
 *   DIRTY -> DIRTY          [block_fault_map]           write fault: wgen++, WPROT off
 *   DIRTY -> CLEAN          [pager_writeout_end]        committed, wgen unchanged
 *   DIRTY -> ABSENT         [pager_file_discard, pager_file_close]
 *   DIRTY -> SPILLING       [spill_block <- frame_get]  unmapped everywhere first
 *   SPILLING -> SPILLED     [spill_block]               written; frame freed
 *   SPILLING -> DIRTY       [spill_block]               write failed: stays in RAM
 *   SPILLED -> UNSPILLING   [unspill_block <- block fault, pager_writeout_next]
 *   UNSPILLING -> DIRTY     [unspill_block]             slot freed
 *   UNSPILLING -> SPILLED   [unspill_block]             read failed (data still there)
 *   SPILLED -> ABSENT       [pager_file_discard, pager_file_close,
 *                            pager_writeout_end (committed: the store has the bytes)]
 *   ABSENT -> LOCATING      [direct_locate <- read fault, prefault, ra_load]  a staging
 *                                                       slot taken (a fault may take a
 *                                                       staged block's); none: a fault
 *                                                       loads instead, readahead gives up.
 *                                                       A read fault with ops.verify_piece
 *                                                       takes no slot: it only locates
 *   LOCATING -> LOCATING    [direct_locate]             BF_STALE (fault): locate again
 *   LOCATING -> DIRECT      [direct_locate]             located, mapped into the slot,
 *                                                       verified: staged, in the direct
 *                                                       ring, referenced (BF_READAHEAD
 *                                                       when readahead did it)
 *   LOCATING -> DIRECT      [direct_locate, pieces]     the extent has pieces: no piece
 *                                                       checked yet, nothing mapped, no
 *                                                       slot (pshift != 0)
 *   LOCATING -> ABSENT      [direct_locate, pieces]     the extent has none: the fault
 *                                                       locates again with a slot
 *   LOCATING -> ABSENT      [direct_locate]             locate refused, the extent is
 *                                                       outside the file, mmap or verify
 *                                                       failed (a fault then loads the
 *                                                       block, and load reports errors);
 *                                                       readahead: also when stale
 *   DIRECT -> DIRECT        [block_fault_map -> direct_map_into]  read fault: the staged
 *                                                       entries move in (slot freed), or
 *                                                       the extent is mapped afresh; with
 *                                                       pieces, the piece touched
 *   DIRECT -> DIRECT        [direct_check_pieces]       read fault or prefault on an
 *                                                       unchecked piece: it is checked
 *                                                       (every piece left when two are
 *                                                       checked, or for a prefault; then
 *                                                       pshift 0: checked whole)
 *   DIRECT -> ABSENT        [direct_check_pieces]       a piece does not match: the fault
 *                                                       loads the block (and reports)
 *   DIRECT -> LOADING       [direct_copy <- write fault, write prefault]  a frame taken,
 *                                                       the DIRECT mappings and slot
 *                                                       dropped, the extent pread into
 *                                                       the frame (ops.load if stale)
 *   DIRECT -> ABSENT        [direct_drop <- direct_reclaim, pager_file_invalidate,
 *                            pager_file_discard, pager_file_close]
 *
 *   What holds (pager_check_block() and pager_check_locked() assert it):
 *   - A frame belongs to a block exactly in LOADING, CLEAN, DIRTY, SPILLING, UNSPILLING.
 *   - The CLOCK ring holds exactly the CLEAN and DIRTY blocks; the direct ring exactly
 *     the DIRECT blocks (at most max_direct once a locate returns).
 *   - Only CLEAN, DIRTY and DIRECT blocks are mapped. A CLEAN block is mapped read-only
 *     (SIGSEGV: PROT_READ; uffd: write-protected) everywhere. A DIRTY block is mapped
 *     writable only where the mapping allows writes and no writeout protects it
 *     (BF_WPROT). A DIRECT block is mapped PROT_READ everywhere, never writable and
 *     never a primary (no frame, no home), so the kernel's copy-on-write never runs.
 *   - A staging slot belongs to at most one block, LOCATING (always, unless it locates
 *     for pieces) or DIRECT (staged); the other slots of the pool are free.
 *   - A DIRECT block with pieces unchecked (pshift != 0) holds no slot, has at most two
 *     pieces checked, and every mapping showing it shows only checked pieces (bmap
 *     partial); the rest of its range there is hole. DIRECT blocks carry no frame flags
 *     (BF_AWAY, BF_WPROT, BF_STALE, BF_POISON), no pin, and a page-aligned extent.
 *   - BF_AWAY (the frame's entries left home) iff exactly one mapping is its primary.
 *   - LOADING, SPILLING, UNSPILLING, LOCATING are "busy": one thread does I/O without
 *     the lock; everyone else waits on pg->cv and the struct is not freed.
 *   - ABSENT structs exist only while poisoned or listed by a writeout (else freed).
 *
 * ==== Locks ===========================================================================
 *
 *   registry rwlock   (pager_registry.c) the process-wide address -> mapping table.
 *                     Read-locked by fault contexts for one lookup (which raises the
 *                     mapping's `active` count), write-locked by pager_map/pager_unmap
 *                     to add/remove an entry. A leaf: nothing else is held with it.
 *   pg->lock          (mutex) everything else of one pager: pools and frames, the
 *                     CLOCK rings and budget, every file's index and block states and
 *                     bmaps, spill and staging slots, the readahead queue, counters.
 *                     Also held across the mapping system calls (mremap/mprotect/mmap)
 *                     of a state change, so that state and kernel mappings change
 *                     together; not across the staging mmap (MAP_POPULATE) and the
 *                     checksum pass of a locate, which touch only the locating thread's
 *                     slot, nor across the population of a fresh frame, which no block
 *                     owns yet (frames_fill).
 *   pg->cv            condition for pg->lock: a busy block finished, a frame was freed,
 *                     a mapping's faults drained, a file's readahead drained.
 *
 *   Order: the registry lock and pg->lock are never held together. No pager lock is
 *   held while calling ops.load, ops.locate or ops.verify, so they may take any lock of
 *   their own, as long as the holder of that lock never waits for a fault on a pager
 *   mapping.
 *
 *   Where pg->lock is dropped, and what is re-checked after:
 *   - block_fill() around ops.load or the pread of a DIRECT block's extent (state
 *     LOADING pins the struct and frame); after: BF_STALE (load again, with ops.load).
 *     The caller then looks the block up again.
 *   - direct_locate() around ops.locate, the staging mmap and ops.verify (LOCATING
 *     pins the struct and its slot); after: BF_STALE (a fault locates again: the
 *     extent may be gone; readahead drops the block).
 *   - direct_copy() in frame_get(); after: the block is looked up again and must still
 *     be DIRECT, else the frame is freed and the fault looks again.
 *   - direct_check_pieces() around the piece mmap and ops.verify_piece (nothing pins
 *     the block); after: the block is looked up again and must be DIRECT with the same
 *     dgen (the same DIRECT lifetime) and pieces left, else the check is thrown away
 *     and the fault looks again.
 *   - spill_block()/unspill_block() around pwrite/pread (SPILLING/UNSPILLING pin it).
 *   - frame_get() when populating a fresh frame (frames_fill: the frame is in nfilling,
 *     counted in the budget, in no list), spilling or waiting for a frame; callers look
 *     the block up again by (file, blkno) and re-check its state, never trusting a
 *     pointer across a drop.
 *   - waits on pg->cv (busy blocks, pager_unmap draining `active`, file close draining
 *     readahead); every wait is in a loop that re-evaluates from the index.
 *   - after every drop, pager_fault_resolve() re-checks m->dead (an unmap started).
 *
 * ==== Execution contexts ==============================================================
 *
 *   API threads       every public function. May allocate and format messages.
 *   fault handler     pager_sigsegv.c: SIGSEGV in the faulting thread (synchronous, so
 *                     it never interrupts pager code; the pager never touches a user
 *                     mapping while holding a lock). Saves/restores errno; a
 *                     thread-local guard makes a fault while resolving one fatal (the
 *                     default action, a core) instead of recursive; no malloc (blocks
 *                     and index come from mmap'ed slabs, pager_mem.c), no stdio, no
 *                     message formatting, no ba_error_set. It takes the registry read
 *                     lock, pg->lock, waits on pg->cv, calls ops.load, ops.locate and
 *                     ops.verify, makes system calls (mmap, mremap, fstat, pread).
 *   uffd service      pager_uffd.c: threads reading userfaultfd messages; the same
 *                     rules as the handler (they share pager_fault_resolve()); all
 *                     asynchronous signals blocked.
 *   readahead workers pager_readahead.c: load (or locate, stage and verify) blocks
 *                     ahead; the same rules. A fault that would wait for a block a
 *                     worker is loading or locating runs one queued readahead job itself
 *                     meanwhile (ra_help), under the same rules.
 *
 *   The SIGSEGV handler serves the mappings of both backends: a userfaultfd mapping
 *   passes through short PROT_NONE / read-only windows while the service thread
 *   changes it (pager_uffd.c), and an access in such a window is resolved in the
 *   faulting thread exactly as the SIGSEGV backend would.
 *
 * ==== Faults and errors ===============================================================
 *
 *   A failed load in fault context records the error on the file
 *   (pager_file_take_error), marks the block poisoned and signals the faulting thread:
 *   SIGSEGV backend: SIGBUS with si_code BUS_ADRERR and si_addr = the fault address,
 *   queued to the thread itself (rt_tgsigqueueinfo) and delivered when the handler
 *   returns; userfaultfd backend: UFFDIO_POISON on the block's range (the kernel then
 *   raises SIGBUS with si_addr = the address, si_code BUS_MCEERR_AR, or BUS_ADRERR on
 *   kernels without CONFIG_MEMORY_FAILURE; a system call gets EFAULT), or, without
 *   UFFD_FEATURE_POISON, the same queued SIGBUS to the faulting thread id. The process
 *   is never aborted. A poisoned block gives SIGBUS on every access without reloading
 *   until the error is taken (pager_file_take_error), the block is invalidated or
 *   discarded, or pager_prefault() retries it: a handler that returns from SIGBUS
 *   without fixing anything faults again, as with a hardware error, instead of
 *   hammering the store. pager_prefault() loads in the calling thread and returns the
 *   code instead, recording nothing. A failed readahead load is dropped silently (the
 *   fault that needs the block loads it again and reports). On the zero-copy path a
 *   failure of any step (ops.locate, the extent check, the staging mmap, ops.verify:
 *   a checksum mismatch) never reports by itself: the fault falls back to ops.load,
 *   which reads and checks the same bytes and reports through the path above; so a
 *   damaged block gives SIGBUS (or the prefault code) whichever path it takes.
 *
 * ==== Costs and the default backend ======================================================
 *
 *   Measured with tests/bench/bench_pager on the 2-vCPU KVM guest (medians): a fault
 *   with a no-op load, including its share of eviction (sequential touch of 10,000
 *   2 MiB blocks, 256 MiB budget), costs 7-8 us with the SIGSEGV backend on a quiet
 *   guest, 10-19 us while other jobs load it (goal: below 30; wendelin.core 170-270),
 *   and 75-170 us with userfaultfd, which needs two cross-CPU wake-ups per fault.
 *   Hence SIGSEGV is the default; userfaultfd is the choice when views go to system
 *   calls without prefaulting. Sequential reads through a copying load reach the
 *   machine's copy ceiling (a two-thread memcpy+sum pipeline, ~4 GB/s here) but only
 *   ~0.25x of an mmap loop over the page cache (~15 GB/s): see bench_pager.
 *   The frame moves are cheap because home, the alias and the mappings are 2 MiB
 *   aligned: mremap then hands over whole page tables (see pager_frames.c).
 *
 *   Zero-copy (DIRECT blocks, bench_pager seq and bench_zerocopy, 4 GiB, 512 MiB budget,
 *   page cache warm, medians of 5, two runs, load average ~3): a fault without
 *   readahead costs ~190 us per 2 MiB block (locate, MAP_POPULATE of the staging slot,
 *   XXH3 over the bytes, move in), a remap of a block checked before ~6 us; MAP_POPULATE
 *   beat letting the checksum pass fault the pages in (fault-around). A sequential read
 *   reaches 5.9-6.4 GB/s through the pager with blocks page-aligned as in data.mdb
 *   (6.7-7.6 with 2 MiB-aligned ones) and 6.2-6.3 GB/s end to end through LMDB: twice
 *   the copying path (3.2-4.9), but 0.37-0.47x an mmap loop over a raw file (16 GB/s),
 *   short of the 0.9x goal, for two reasons measured here: the checksum pass reads every
 *   byte once more (a second stream from memory: the worker's XXH3 and the reader's sum
 *   share the VM's bandwidth), and a block at a page-aligned, not 2 MiB-aligned, file
 *   offset can only be mapped with 4 KiB entries, while the raw file's mmap gets 2 MiB
 *   (PMD) entries for the page cache's large folios: even with every block mapped and
 *   no fault at all, a pass reads 7.8-8.1 GB/s against 12.6-17 GB/s (0.46-0.61x; the
 *   same gap as between two plain mmaps of one file at offsets 4096 and 0). With the
 *   page cache dropped (disk-bound) zero-copy matched the mmap loop (0.85-0.96x).
 *
 *   Pieces (pager_direct.c), measured with bench_ba rand (2,000 reads of 64 KiB at
 *   random rows of a 4 GiB array of 2 MiB blocks, a fresh handle per repetition,
 *   interleaved A/B runs, medians of 3): page cache warm, 7.6k reads/s checking whole
 *   blocks, 11.0k checking pieces but the rest of a block at its third piece (whole-
 *   block checks were then 85% of the hashing), 21-24k with pairs of pieces and up to
 *   half a block, 27-33k with the owner checking through its own mapping instead of a
 *   mapping per check (whose munmap cost a TLB shootdown each), 31-33k against 24-28k
 *   with 32 KiB pieces instead of 64 KiB (a 64 KiB read checks 64-96 KiB, not 128: XXH3
 *   was 42% of the read's profile; perf record). Cold: 0.7k reads/s with
 *   the 8 MiB read-around of a file fault, 3.8-4.2k reading exactly the pieces, 5.2-5.4k
 *   with the record's header asked for together with them (ops.locate's hint).
 *   numpy.memmap in the same runs: ~83k warm, ~0.8k cold.
 *
 *   Kernel VMAs: a mapped block costs one or two; unmapped ones merge back into the
 *   holes and home. The number of mapped blocks, frames' and DIRECT alike, is capped at
 *   max_map_count / 16 (the CLOCK hands unmap beyond it, the direct ring's first), so
 *   random access over any number of blocks stays far below vm.max_map_count (tested:
 *   200,000 blocks, peak < 8,000 VMAs; zero-copy: 40,000 DIRECT blocks, peak < 7,600).
 *   Staging slots add at most two VMAs each (nstage per block size, 8 to 128). DIRECT
 *   blocks, mapped or not, are at most max_direct (4x the mapped cap): the direct ring's
 *   second-chance hand drops the rest; an unmapped DIRECT block costs only its struct.
 *
 *   DIRECT bytes are also capped at max_direct_bytes: the memory the process may use
 *   less the budget (at least an eighth of that memory). Their pages are the kernel's
 *   page cache, which the memory limit bounds too: in a cgroup whose limit is far below
 *   the array, blocks mapped past it only make the kernel's reclaim unmap pages under
 *   our mappings, one TLB shootdown after another while the reader and the worker run
 *   on both CPUs. A cold scan of 4 GiB in a 512 MiB v1 memory group (budget 256 MiB,
 *   so 128 blocks of 2 MiB): 1,255 -> 1,315 MB/s (bench_ba scan --cache asis after
 *   drop_caches, medians of seven interleaved pairs; memmap 1,500-1,750). Outside a
 *   cgroup the cap is RAM less the budget (12 GiB by default on a 24 GiB machine): what
 *   the page cache could hold anyway. The limit is read once, at pager_create.
 *   Readahead's window stays within a quarter of the cap (pager_readahead.c), and the
 *   direct hand passes by blocks staged ahead and not yet touched in its first round.
 *
 * ==== Kernel accesses (read(2)/write(2) into a view) ====================================
 *
 *   userfaultfd: the kernel waits for the service thread, so system calls work on any
 *   part of a mapping. SIGSEGV: the kernel does not raise signals for its own accesses
 *   and returns EFAULT; call pager_prefault() on the range first (with
 *   PAGER_PREFAULT_WRITE when the kernel will write into it, e.g. read(2): a DIRECT
 *   block is read-only, the write prefault copies it into a frame), and keep the range
 *   within the budget. While a prefault runs its range is guarded (pg->guards: up to
 *   PAGER_GUARDS ranges whose frames fit in the budget together): the CLOCK hands, the
 *   VMA sweep and the DIRECT cap skip guarded blocks, so loading the range's last block
 *   never unmaps its first (with a full budget of referenced blocks it did, and the
 *   system call after the prefault got EFAULT). Nothing is guarded after the prefault
 *   returns: another thread's faults may evict the range before the call.
 *
 * ==== Zero-copy and the backends =========================================================
 *
 *   DIRECT blocks exist only with the SIGSEGV backend: pager_create() turns zero-copy
 *   off with userfaultfd. uffd-wp tracks writes to anonymous memory, shmem and hugetlbfs,
 *   not to a private file mapping, so a DIRECT block there would be read-only memory
 *   that the kernel cannot wait on: read(2) into it would fail with EFAULT where the
 *   userfaultfd backend promises that system calls work without prefaulting. (User-mode
 *   writes would work: the SIGSEGV handler serves userfaultfd mappings too.)
 *   Zero-copy is also off with pager_opts.zerocopy = 0 or BIGARRAY_ZEROCOPY=0, and for a
 *   file whose ops have no locate. The owner of ops.locate keeps located bytes in place
 *   until it invalidates the block (lib/: see "Snapshots and zero-copy mappings" in
 *   lib/ba_internal.h); the pager maps the descriptor, so a remap of the owner's own
 *   mapping of the file (LMDB's map growth) does not matter. A page the kernel drops
 *   from the page cache and reads back later is not checked again.
 *
 * ==== fork() ==========================================================================
 *
 *   Pools, mappings, DIRECT ranges and staging slots are MADV_DONTFORK (each DIRECT
 *   mmap is marked again: a new VMA does not inherit it): a child has none of them, and
 *   touching a former mapping address is an ordinary crash there (the handler sees no
 *   mapping of its own; a pthread_atfork child handler also empties the registry),
 *   DIRECT blocks included (tested; a new DIRECT mapping and its MADV_DONTFORK happen
 *   inside the fork guard of pager_registry.c, so no fork falls between them). Every
 *   pager marks itself forked in the child: its functions refuse (BA_EFAILED) or do
 *   nothing, and pager_destroy() frees nothing in the child.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pager_internal.h"

/* ---- options -------------------------------------------------------------------------- */

void pager_opts_init(struct pager_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->backend = PAGER_BACKEND_AUTO;
    o->readahead = 1;
    o->zerocopy = 1;
}

/* The default backend, from tests/bench/bench_pager.c on the target machine: the
 * SIGSEGV handler resolves a fault in the faulting thread, userfaultfd needs two
 * cross-CPU wake-ups per fault (see docs/architecture.md). */
#define PAGER_BACKEND_DEFAULT PAGER_BACKEND_SIGSEGV

static uint64_t read_u64_file(const char *path, uint64_t dflt)
{
    FILE *fp = fopen(path, "re");
    if (!fp)
        return dflt;
    char buf[64];
    uint64_t v = dflt;
    if (fgets(buf, sizeof buf, fp)) {
        char *end;
        unsigned long long x = strtoull(buf, &end, 10);
        if (end != buf)
            v = x;
    }
    fclose(fp);
    return v;
}

/* The smallest memory limit on the way from this process's cgroup up to the root
 * (v2: memory.max; v1: memory.limit_in_bytes of the memory controller). */
static uint64_t cgroup_limit(void)
{
    FILE *fp = fopen("/proc/self/cgroup", "re");
    if (!fp)
        return UINT64_MAX;
    char line[1024], path[1200];
    uint64_t lim = UINT64_MAX;
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        const char *base, *leaf;
        if (line[0] == '0' && c1 == line + 1 && c2 == c1 + 1) {
            base = "/sys/fs/cgroup";
            leaf = "memory.max";
        } else if (strstr(c1, "memory") && strstr(c1, "memory") < c2) {
            base = "/sys/fs/cgroup/memory";
            leaf = "memory.limit_in_bytes";
        } else {
            continue;
        }
        char cg[1024];
        snprintf(cg, sizeof cg, "%s", c2 + 1);
        for (;;) {
            snprintf(path, sizeof path, "%s%s/%s", base, strcmp(cg, "/") ? cg : "", leaf);
            uint64_t v = read_u64_file(path, UINT64_MAX);
            if (v < lim)
                lim = v;
            char *slash = strrchr(cg, '/');
            if (!slash || slash == cg)
                break;
            *slash = '\0';
        }
    }
    fclose(fp);
    return lim;
}

/* The memory this process may use: physical RAM, or its cgroup's limit if smaller. */
static uint64_t mem_limit(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    uint64_t mem = (pages > 0 && psz > 0) ? (uint64_t)pages * (uint64_t)psz : (1ull << 30);
    uint64_t cg = cgroup_limit();
    return cg < mem ? cg : mem;
}

static unsigned max_map_count(void)
{
    uint64_t v = read_u64_file("/proc/sys/vm/max_map_count", 65530);
    return v > UINT32_MAX ? UINT32_MAX : (unsigned)v;
}

/* ---- pager lifecycle --------------------------------------------------------------------- */

int pager_create(const struct pager_opts *o, struct pager **out)
{
    struct pager_opts def;
    if (!out)
        return ba_error_set(BA_EINVAL, "pager_create: NULL out");
    *out = NULL;
    if (!o) {
        pager_opts_init(&def);
        o = &def;
    }
    if (o->size < sizeof *o)
        return ba_error_set(BA_EINVAL, "pager_create: opts->size %zu is too small", o->size);
    if (sysconf(_SC_PAGESIZE) != (1l << PAGER_MIN_SHIFT))
        return ba_error_set(BA_EINVAL, "pager: page size %ld is not supported",
                            sysconf(_SC_PAGESIZE));

    uint64_t limit = o->ram_limit;
    const char *env = getenv("BIGARRAY_RAM_LIMIT");
    if (!limit && env && *env) {
        if (ba_parse_size(env, &limit) || !limit)
            return ba_error_set(BA_EINVAL, "BIGARRAY_RAM_LIMIT='%s' is not a size (512M, 2G...)",
                                env);
    }
    uint64_t mem = o->mem_limit ? o->mem_limit : mem_limit();
    if (!limit)
        limit = mem / 2;

    int backend = o->backend;
    if (backend == PAGER_BACKEND_AUTO) {
        env = getenv("BIGARRAY_PAGER");
        if (env && !strcmp(env, "uffd"))
            backend = PAGER_BACKEND_UFFD;
        else if (env && !strcmp(env, "sigsegv"))
            backend = PAGER_BACKEND_SIGSEGV;
        else if (env && *env)
            return ba_error_set(BA_EINVAL, "BIGARRAY_PAGER='%s': expected uffd or sigsegv", env);
        else
            backend = PAGER_BACKEND_DEFAULT;
    }
    if (backend != PAGER_BACKEND_UFFD && backend != PAGER_BACKEND_SIGSEGV)
        return ba_error_set(BA_EINVAL, "pager_create: unknown backend %d", o->backend);
    int zerocopy = o->zerocopy != 0;
    env = getenv("BIGARRAY_ZEROCOPY");
    if (env && *env) {
        if (strcmp(env, "0") && strcmp(env, "1"))
            return ba_error_set(BA_EINVAL, "BIGARRAY_ZEROCOPY='%s': expected 0 or 1", env);
        if (!strcmp(env, "0"))
            zerocopy = 0;
    }

    const char *dir = o->spill_dir;
    if (!dir || !*dir)
        dir = getenv("BIGARRAY_SPILL_DIR");
    if (!dir || !*dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/var/tmp";

    struct pager *pg = ba_calloc(1, sizeof *pg);
    if (!pg)
        return ba_error_set(-ENOMEM, "pager_create: out of memory");
    int rc = -ENOMEM;
    pg->spill_dir = ba_strdup(dir);
    if (!pg->spill_dir)
        goto err_free;
    pthread_mutex_init(&pg->lock, NULL);
    pthread_cond_init(&pg->cv, NULL);
    pg->ram_limit = limit;
    pg->pid = getpid();
    unsigned mmc = max_map_count();
    pg->max_bmaps = mmc / 16 > 64 ? mmc / 16 : 64;
    pg->max_direct = 4 * pg->max_bmaps;
    uint64_t beside = mem > limit ? mem - limit : 0; /* DIRECT bytes: this, >= mem / 8 */
    pg->max_direct_bytes = beside > mem / 8 ? beside : mem / 8;
    slab_init(&pg->blk_slab, sizeof(struct pager_block));
    slab_init(&pg->bmap_slab, sizeof(struct pager_bmap));
    pg->readahead = o->readahead != 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    pg->ra_workers = o->readahead_workers ? o->readahead_workers
                     : ncpu > 4           ? 3
                     : ncpu > 1           ? (unsigned)(ncpu - 1)
                                          : 1;

    if ((rc = sigsegv_install()))
        goto err_sync;
    if ((rc = registry_pager_add(pg)))
        goto err_sync;
    pg->backend = PAGER_BACKEND_SIGSEGV;
    pg->be = &pager_sigsegv_ops;
    if (backend == PAGER_BACKEND_UFFD && uffd_start(pg) == 0) {
        pg->backend = PAGER_BACKEND_UFFD;
        pg->be = &pager_uffd_ops;
    }
    /* userfaultfd cannot track writes to a private file mapping (uffd-wp covers
     * anonymous memory, shmem and hugetlbfs): a kernel write (read(2) into a view) would
     * fail with EFAULT instead of waiting. Zero-copy is for the SIGSEGV backend. */
    pg->zerocopy = zerocopy && pg->backend == PAGER_BACKEND_SIGSEGV;
    pg->direct_slots = o->direct_slots;
    if (pg->readahead && (rc = ra_start(pg)))
        goto err_uffd;
    *out = pg;
    return 0;

err_uffd:
    uffd_stop(pg);
    registry_pager_del(pg);
err_sync:
    pthread_cond_destroy(&pg->cv);
    pthread_mutex_destroy(&pg->lock);
err_free:
    free(pg->spill_dir);
    free(pg);
    return ba_error_set(rc, "pager_create: cannot start the pager: %s", ba_strerror(rc));
}

void pager_destroy(struct pager *pg)
{
    if (!pg)
        return;
    if (__atomic_load_n(&pg->forked, __ATOMIC_ACQUIRE))
        return; /* a fork child: the threads and locks belong to the parent */
    assert(!pg->files && "pager_destroy: a file is still open");
    ra_stop(pg);
    uffd_stop(pg);
    registry_pager_del(pg);
    for (int i = 0; i < PAGER_NPOOLS; i++)
        pool_destroy(pg->pools[i]);
    slab_destroy(&pg->blk_slab);
    slab_destroy(&pg->bmap_slab);
    pthread_cond_destroy(&pg->cv);
    pthread_mutex_destroy(&pg->lock);
    free(pg->spill_dir);
    free(pg);
}

int pager_backend(const struct pager *pg)
{
    return pg->backend;
}

uint64_t pager_ram_limit(const struct pager *pg)
{
    return pg->ram_limit;
}

int pager_zerocopy(const struct pager *pg)
{
    return pg->zerocopy;
}

/* ---- blocks -------------------------------------------------------------------------------- */

struct pager_block *pager_block_new(struct pager_file *f, uint64_t blkno)
{
    struct pager_block *b = slab_alloc(&f->pg->blk_slab);
    if (!b)
        return NULL;
    b->file = f;
    b->blkno = blkno;
    b->state = BS_ABSENT;
    if (index_add(f, b)) {
        slab_free(&f->pg->blk_slab, b);
        return NULL;
    }
    return b;
}

void pager_block_free_if_unused(struct pager_block *b)
{
    if (b->state != BS_ABSENT || b->maps || (b->flags & (BF_POISON | BF_WRITEOUT)))
        return;
    struct pager_file *f = b->file;
    index_del(f, b);
    slab_free(&f->pg->blk_slab, b);
}

char *pager_block_addr(const struct pager_mapping *m, uint64_t blkno)
{
    return m->addr + (size_t)(blkno - m->first) * m->file->bs;
}

/* Clear a block's poison, so that the next access loads it again. */
void pager_block_unpoison(struct pager_block *b)
{
    struct pager *pg = b->file->pg;
    b->flags &= (uint8_t)~BF_POISON;
    b->err = 0;
    if (!pg->be->unpoison)
        return;
    for (struct pager_mapping *m = b->file->maps; m; m = m->fnext)
        if (b->blkno >= m->first && b->blkno - m->first < m->n && !m->dead)
            pg->be->unpoison(pg, m, pager_block_addr(m, b->blkno), b->file->bs);
}

/* ---- files --------------------------------------------------------------------------------- */

int pager_file_open(struct pager *pg, uint32_t block_size, const struct pager_ops *ops, void *ctx,
                    struct pager_file **out)
{
    if (!pg || !ops || !ops->load || !out)
        return ba_error_set(BA_EINVAL, "pager_file_open: NULL argument");
    if (ops->locate && !ops->verify)
        return ba_error_set(BA_EINVAL, "pager_file_open: ops.locate without ops.verify");
    *out = NULL;
    if (!ba_is_pow2(block_size) || block_size < (1u << PAGER_MIN_SHIFT) ||
        block_size > (1u << PAGER_MAX_SHIFT))
        return ba_error_set(BA_EINVAL,
                            "pager_file_open: block size %u is not a power of two from 4 KiB "
                            "to 1 GiB",
                            block_size);
    struct pager_file *f = ba_calloc(1, sizeof *f);
    if (!f)
        return ba_error_set(-ENOMEM, "pager_file_open: out of memory");
    f->pg = pg;
    f->bs = block_size;
    f->ops = *ops;
    f->ctx = ctx;
    if (pager_lock(pg)) {
        free(f);
        return ba_error_set(BA_EFAILED, "pager_file_open: the pager belongs to the parent process");
    }
    int rc = pool_get(pg, block_size, &f->pool);
    if (rc) {
        pthread_mutex_unlock(&pg->lock);
        free(f);
        return ba_error_set(rc, "pager_file_open: cannot create a RAM pool for %u-byte blocks: %s",
                            block_size, ba_strerror(rc));
    }
    /* Without staging slots (no address space) the file simply copies, as without
     * zero-copy. */
    if (pg->zerocopy && ops->locate)
        direct_stage_init(pg, f->pool);
    f->next = pg->files;
    if (pg->files)
        pg->files->prev = f;
    pg->files = f;
    pthread_mutex_unlock(&pg->lock);
    *out = f;
    return 0;
}

struct idle_scan {
    int loads_too;
    int busy;
};

static void idle_scan_one(struct pager_block *b, void *arg)
{
    struct idle_scan *s = arg;
    if (block_busy(b) && (s->loads_too || !block_loading(b)))
        s->busy = 1;
}

/* Wait until no block of f in [first, first+n) is busy (lock held; drops it to wait). */
void pager_file_wait_idle(struct pager_file *f, uint64_t first, uint64_t n, int loads_too)
{
    struct pager *pg = f->pg;
    for (;;) {
        struct idle_scan s = {loads_too, 0};
        index_foreach(f, first, n, idle_scan_one, &s);
        if (!s.busy)
            return;
        pthread_cond_wait(&pg->cv, &pg->lock);
    }
}

/* Drop a block whatever its state (not busy): unmap, free frame and spill slot. */
void pager_block_drop(struct pager *pg, struct pager_block *b)
{
    struct pager_file *f = b->file;
    assert(!block_busy(b));
    if (b->state == BS_DIRECT) {
        direct_drop(pg, b);
        b->pin = 0;
        return;
    }
    if (b->maps)
        block_unmap_all(pg, b);
    if (b->state == BS_CLEAN || b->state == BS_DIRTY) {
        ring_remove(&pg->ring, b);
        frame_free(pg, f->pool, b->frame);
    }
    if (b->state == BS_SPILLED)
        spill_slot_free(pg, f->pool, b->spill_slot);
    if (b->state == BS_DIRTY || b->state == BS_SPILLED) {
        f->ndirty--;
        pg->dirty_bytes -= f->bs;
    }
    b->state = BS_ABSENT;
    b->pin = 0;
    b->flags &= (uint8_t)(BF_POISON | BF_WRITEOUT);
}

void pager_file_close(struct pager_file *f)
{
    if (!f)
        return;
    struct pager *pg = f->pg;
    if (__atomic_load_n(&pg->forked, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&pg->lock);
    assert(!f->maps && "pager_file_close: a mapping remains");
    assert(!f->wo && "pager_file_close: a writeout is open");
    f->closing = 1;
    ra_file_drain(f);
    pager_file_wait_idle(f, 0, UINT64_MAX, 1);
    /* Straight from the index, without collecting the blocks into an allocated array:
     * a destructor must work when memory is short (an allocation failure here used to
     * leave the blocks in the pool with their file freed). Dropped blocks are unmapped,
     * absent and flagless, so each is freed and unlinked from its bucket. */
    for (uint64_t i = 0; i < f->nbuckets; i++) {
        struct pager_block *b;
        while ((b = f->buckets[i])) {
            b->flags = 0;
            pager_block_drop(pg, b);
            pager_block_free_if_unused(b);
        }
    }
    assert(f->nblocks == 0 && f->ndirty == 0);
    index_destroy(f);
    if (f->prev)
        f->prev->next = f->next;
    else
        pg->files = f->next;
    if (f->next)
        f->next->prev = f->prev;
    pager_check_locked(pg);
    pthread_mutex_unlock(&pg->lock);
    free(f);
}

uint32_t pager_file_block_size(const struct pager_file *pf)
{
    return pf->bs;
}

/* ---- mappings ------------------------------------------------------------------------------ */

int pager_map(struct pager_file *pf, uint64_t first, uint64_t n, unsigned flags,
              struct pager_mapping **out)
{
    if (!pf || !out)
        return ba_error_set(BA_EINVAL, "pager_map: NULL argument");
    *out = NULL;
    if (!n || first > UINT64_MAX - n)
        return ba_error_set(BA_EINVAL, "pager_map: bad block range %llu+%llu",
                            (unsigned long long)first, (unsigned long long)n);
    if (flags & ~PAGER_MAP_READONLY)
        return ba_error_set(BA_EINVAL, "pager_map: unknown flags %#x", flags);
    if (n > (1ull << 47) / pf->bs)
        return ba_error_set(BA_ETOOBIG,
                            "pager_map: %llu blocks of %u bytes exceed the address space",
                            (unsigned long long)n, pf->bs);
    struct pager *pg = pf->pg;
    int rc = sigsegv_install();
    if (rc)
        return ba_error_set(rc, "pager_map: installing the SIGSEGV handler: %s", strerror(-rc));
    struct pager_mapping *m = ba_calloc(1, sizeof *m);
    if (!m)
        return ba_error_set(-ENOMEM, "pager_map: out of memory");
    m->file = pf;
    m->first = first;
    m->n = n;
    m->len = (size_t)n * pf->bs;
    m->flags = flags;
    rc = pager_lock(pg);
    if (rc) {
        free(m);
        return ba_error_set(rc, "pager_map: the pager belongs to the parent process");
    }
    rc = mapping_reserve(pg, m);
    if (!rc) {
        m->fnext = pf->maps;
        pf->maps = m;
    }
    pthread_mutex_unlock(&pg->lock);
    if (rc) {
        free(m);
        if (rc == -ENOMEM)
            rc = BA_ETOOBIG;
        return ba_error_set(rc, "pager_map: cannot reserve %zu bytes of address space: %s",
                            (size_t)n * pf->bs, ba_strerror(rc));
    }
    if ((rc = registry_add(m))) {
        pager_unmap(m);
        return ba_error_set(rc, "pager_map: out of memory");
    }
    *out = m;
    return 0;
}

void *pager_mapping_addr(const struct pager_mapping *m)
{
    return m->addr;
}

size_t pager_mapping_len(const struct pager_mapping *m)
{
    return m->len;
}

void pager_unmap(struct pager_mapping *m)
{
    if (!m)
        return;
    struct pager_file *f = m->file;
    struct pager *pg = f->pg;
    if (__atomic_load_n(&pg->forked, __ATOMIC_ACQUIRE))
        return;
    registry_del(m); /* no fault finds it any more */
    pthread_mutex_lock(&pg->lock);
    m->dead = 1;
    while (__atomic_load_n(&m->active, __ATOMIC_ACQUIRE))
        pthread_cond_wait(&pg->cv, &pg->lock);
    for (uint64_t i = 0; i < f->nbuckets; i++)
        for (struct pager_block *b = f->buckets[i]; b; b = b->hnext) {
            struct pager_bmap *bm = block_bmap(b, m);
            if (bm)
                block_unmap_one(pg, b, bm, 0);
        }
    struct pager_mapping **pp = &f->maps;
    while (*pp && *pp != m)
        pp = &(*pp)->fnext;
    if (*pp)
        *pp = m->fnext;
    if (m->addr) {
        munmap(m->addr, m->len);
        pg->be->wake(pg, m->addr, m->len); /* uffd waiters refault and crash */
    }
    pager_check_locked(pg);
    pthread_mutex_unlock(&pg->lock);
    free(m);
}
