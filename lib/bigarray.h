/* SPDX-License-Identifier: MIT */
/**
 * @file bigarray.h
 * @brief bigarray: transactional out-of-core N-dimensional arrays.
 *
 * bigarray stores N-dimensional arrays (numpy dtypes, C or Fortran order) in an
 * LMDB database, cut into fixed-size blocks that are optionally zstd-compressed
 * and always checksummed. A userspace pager maps an array's blocks into memory on
 * demand, so an array far bigger than RAM is processed through plain pointers.
 *
 * @section model The model
 *
 * - A database (#ba_db) is a directory on a local filesystem holding one LMDB
 *   environment (data.mdb, lock.mdb). Many processes and threads may open it.
 * - A session (#ba_session) is a unit of isolation. It reads one snapshot: the
 *   state after some commit, numbered by a commit sequence number. Its writes stay
 *   private until ba_session_commit(); ba_session_abort() drops them. Both end the
 *   transaction and start the next one on the newest snapshot.
 * - An array (#ba_array) is opened within a session, by name. Its bytes form one
 *   linear byte space (C or F order) cut into blocks of block_size bytes; block n
 *   holds bytes [n*block_size, (n+1)*block_size). Blocks that are all zero are not
 *   stored and read as zeros.
 * - A view (#ba_view) is a plain strided ndarray: data pointer, shape, strides in
 *   bytes, dtype. It maps only the blocks that cover the slice it was made from.
 *   Loads and stores through it are ordinary memory accesses; the pager loads a
 *   block on first touch and records the first write to it. Views of one array in
 *   one session alias each other.
 *
 * @section txn Transactions, isolation and conflicts
 *
 * Commit writes every dirty block and metadata change of the session in one LMDB
 * write transaction: atomic, and durable unless #BA_DB_NOSYNC was given. A commit
 * fails with #BA_ECONFLICT when another session committed, after this session's
 * snapshot, a change to a block or to array metadata that this session also
 * changed (first committer wins); nothing is written and the session keeps its
 * changes, so the caller aborts and redoes its work on the new snapshot. After
 * commit or abort the session sees the newest snapshot; cached blocks that other
 * commits changed are invalidated (exactly those), so nothing stale is read.
 *
 * @section threads Threads
 *
 * A #ba_db may be shared by any number of threads. A session may be used by
 * several threads for reading and writing through views, and for opening arrays
 * and making views; ba_session_commit(), ba_session_abort(), ba_array_resize(),
 * ba_array_append() and ba_array_drop() must be called by one thread while no
 * other thread writes to the session's views or calls into the session. Readers
 * may keep reading through views during a commit or an abort; until the call
 * returns they may see, block by block, the old or the new snapshot's data.
 * Views and DLPack tensors may be released from any thread.
 *
 * @section fork fork()
 *
 * Views and the pager's memory are not inherited by a child process: in the child
 * the address ranges of all views are unmapped, and touching them crashes as an
 * access to unmapped memory would. The child must not use any handle inherited from
 * the parent (LMDB forbids it); it may open the database anew. The parent is not
 * affected.
 *
 * @section faults Signals, userfaultfd and errors in faults
 *
 * Two pager backends have the same behaviour: userfaultfd (a service thread
 * resolves faults; the kernel waits for it, so a view passed to read(2) or write(2)
 * works) and SIGSEGV (the faulting thread resolves the fault in a SIGSEGV handler;
 * call ba_view_preload() before passing a view to a system call). The default
 * comes from measurements on the target machine (see docs/architecture.md); the
 * environment variable BIGARRAY_PAGER=uffd|sigsegv or #ba_db_options.pager forces
 * one. userfaultfd needs CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1; when it
 * is not permitted bigarray falls back to SIGSEGV silently. The SIGSEGV handler is
 * installed at the first ba_db_open() and chains to the previous handler for
 * addresses that are not bigarray's, so a real segfault still crashes with a core.
 *
 * Zero-copy reads. With the SIGSEGV backend, a block stored uncompressed (arrays
 * of codec none, or blocks compression did not shrink) in a block of at least 64 KiB
 * is not copied into RAM on a read: the view maps its bytes straight from the
 * database file (data.mdb), read-only, out of the kernel's page cache, after checking
 * its checksum once. Such blocks do not count against ram_limit (the kernel reclaims
 * page cache as it needs; a page it drops and reads back from disk later is not
 * checksummed again), the session's snapshot keeps their bytes in place, and the
 * first write to one copies it into RAM first. Turn it off with #BA_DB_NOZEROCOPY or
 * BIGARRAY_ZEROCOPY=0 in the environment. It is off with userfaultfd, which cannot
 * track writes to such mappings. ba_pager_stat.direct_loads and direct_bytes count it.
 *
 * When a block cannot be loaded inside a fault (corrupt bytes on disk, I/O error),
 * the faulting thread receives SIGBUS (si_addr = the faulting address) and the
 * error is recorded; the process is never aborted by bigarray. ba_view_preload()
 * loads a range and returns the error code instead, so careful callers never take
 * the signal.
 *
 * @section limits Limits
 *
 * Up to #BA_MAX_DIMS dimensions; arrays of up to 2^63 bytes; a view needs address
 * space for the blocks it covers (about 128 TiB on x86-64), or ba_array_view()
 * fails with #BA_ETOOBIG. Array names are 1 to #BA_NAME_MAX bytes without NUL.
 *
 * @section conv Conventions
 *
 * Fallible functions return 0 or a negative error code: -errno for OS failures,
 * or a BA_E* code. ba_strerror() names any code, and ba_errmsg() returns a
 * thread-local message describing the last failure on the calling thread. Options
 * structs start with a size field: initialise them with their _init function.
 * Destructors (close, end, release) accept NULL and never fail. Objects hold
 * references to their parents: a view keeps its array, session and database alive
 * until it is released, even after they were closed or ended.
 *
 * Sticky failure: when a failure leaves a session's state uncertain (rare: the
 * snapshot cannot be moved after a durable commit, or a failed append cannot be
 * undone), the session refuses further work with #BA_EFAILED, its message saying
 * why, until ba_session_abort() succeeds. Every other failure leaves the session
 * and its uncommitted changes as they were.
 */
#ifndef BIGARRAY_H
#define BIGARRAY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(BA_BUILDING_LIBRARY)
#define BA_API __attribute__((visibility("default")))
#else
#define BA_API
#endif

/** @defgroup version Version
 * @{ */
#define BA_VERSION_MAJOR  0
#define BA_VERSION_MINOR  1
#define BA_VERSION_PATCH  0
#define BA_VERSION_STRING "0.1.0"

/** Return the library version string; store the numbers where the pointers are not NULL. */
BA_API const char *ba_version(int *major, int *minor, int *patch);
/** @} */

/** @defgroup errors Error codes
 * BA_E* codes live in their own range below -40000; -1..-4095 are -errno values.
 * @{ */
#define BA_ERRBASE   (-40000)
#define BA_ECONFLICT (BA_ERRBASE - 1)  /**< a newer commit changed what this one changes */
#define BA_ECORRUPT  (BA_ERRBASE - 2)  /**< stored bytes fail their checksum or format check */
#define BA_ENOTFOUND (BA_ERRBASE - 3)  /**< no such array (or database without BA_DB_CREATE) */
#define BA_EEXIST    (BA_ERRBASE - 4)  /**< an array of that name exists */
#define BA_EFULL     (BA_ERRBASE - 5)  /**< the database map cannot grow, or a table is full */
#define BA_EINVAL    (BA_ERRBASE - 6)  /**< bad argument (text that does not parse, bad option) */
#define BA_ESHAPE    (BA_ERRBASE - 7)  /**< bad shape, or data whose shape does not fit */
#define BA_EREADONLY (BA_ERRBASE - 8)  /**< write to a read-only database */
#define BA_EVERSION  (BA_ERRBASE - 9)  /**< database format version this library cannot read */
#define BA_EDTYPE    (BA_ERRBASE - 10) /**< unknown dtype, or data of another dtype */
#define BA_ERANGE    (BA_ERRBASE - 11) /**< index out of range */
#define BA_ENOTDB    (BA_ERRBASE - 12) /**< the path is not a bigarray database */
#define BA_ESTALE    (BA_ERRBASE - 13) /**< the array was dropped (or replaced) under a handle */
#define BA_ETOOBIG   (BA_ERRBASE - 14) /**< too large for the address space or a size limit */
#define BA_EBUSY     (BA_ERRBASE - 15) /**< the database is locked or in use */
#define BA_EFAILED   (BA_ERRBASE - 16) /**< an earlier failure left the session unusable: abort it */
#define BA_ELAST     BA_EFAILED

/** Name an error code (a BA_E* code, or -errno). Never NULL; the string is static. */
BA_API const char *ba_strerror(int err);
/** The message describing the last failure on this thread ("" if none). Valid until
 * the next bigarray call on this thread. */
BA_API const char *ba_errmsg(void);
/** @} */

/** @defgroup dtypes Data types
 * numpy type strings: b1 (bool), i1 i2 i4 i8, u1 u2 u4 u8, f2 f4 f8, c8 c16 and
 * V<n> (fixed-size records of n bytes), with an optional byte order '<', '>', '='
 * or '|'. numpy's names (bool, int8..int64, uint8..uint64, float16..float64,
 * complex64, complex128) are accepted too.
 * @{ */
#define BA_MAX_DIMS     32
#define BA_NAME_MAX     255
#define BA_DTYPE_STRLEN 16

typedef struct ba_dtype {
    char kind;      /**< 'b' bool, 'i' signed, 'u' unsigned, 'f' float, 'c' complex, 'V' record */
    char byteorder; /**< '<' little, '>' big, '|' not applicable (1-byte types and records) */
    uint16_t reserved; /**< zero */
    uint32_t itemsize; /**< bytes per element, >= 1 */
} ba_dtype;

/** Parse a dtype string. Returns 0, or #BA_EDTYPE (message says why). '=' becomes
 * the native order; 1-byte types and records get '|'. */
BA_API int ba_dtype_parse(const char *text, ba_dtype *out);
/** Format a dtype in numpy's canonical form ("<f8", "|u1", "|V24") into buf
 * (at least #BA_DTYPE_STRLEN bytes); returns buf. */
BA_API char *ba_dtype_format(const ba_dtype *dt, char *buf);
/** Nonzero when the two dtypes are the same. */
BA_API int ba_dtype_equal(const ba_dtype *a, const ba_dtype *b);
/** @} */

/** @defgroup slices Slices
 * numpy basic slicing, one item per axis: start:stop:step (negative indices count
 * from the end, any step but 0, omitted parts take numpy's defaults), an integer
 * index (drops the axis; out of range is an error), an ellipsis (stands for the
 * omitted axes) and newaxis (inserts an axis of length 1). Axes not named are
 * taken whole.
 * @{ */
#define BA_SLICE_NONE INT64_MIN /**< omitted start, stop or step (Python's None) */

typedef enum ba_slice_kind {
    BA_SLICE_RANGE = 0, /**< start:stop:step */
    BA_SLICE_INDEX,     /**< an integer index in start */
    BA_SLICE_ELLIPSIS,  /**< ... */
    BA_SLICE_NEWAXIS    /**< newaxis / None */
} ba_slice_kind;

typedef struct ba_slice {
    int kind; /**< a #ba_slice_kind */
    int64_t start, stop, step;
} ba_slice;

/** Parse slice text such as "10:100, ::-3, 5", "..., 0" or "" (everything) into at
 * most max items; store the count in *n. Returns 0, #BA_EINVAL (message names the
 * offending column), or #BA_ETOOBIG when there are more than max items. */
BA_API int ba_slice_parse(const char *text, ba_slice *out, int max, int *n);

/** Apply slices to a strided layout as numpy does. In: ndim, shape, strides (bytes)
 * of the source; nsl slices. Out: the byte offset of the result's first element
 * relative to the source's, its ndim, shape and strides. Returns 0, #BA_ERANGE (an
 * integer index out of range), or #BA_EINVAL (step 0, two ellipses, too many
 * indices, more than #BA_MAX_DIMS dimensions, byte offsets that overflow 64 bits).
 * Empty results have a zero-length axis, whose stride is the source axis's (numpy
 * gives an empty range step 1), and offset 0. */
BA_API int ba_slice_apply(int ndim, const int64_t *shape, const int64_t *strides,
                          const ba_slice *sl, int nsl, int64_t *offset, int *ndim_out,
                          int64_t *shape_out, int64_t *strides_out);
/** @} */

/** @defgroup db Databases
 * @{ */
typedef struct ba_db ba_db;
typedef struct ba_session ba_session;
typedef struct ba_array ba_array;

/** Pager backends. */
#define BA_PAGER_AUTO    0 /**< BIGARRAY_PAGER if set, else the measured default */
#define BA_PAGER_UFFD    1 /**< userfaultfd (falls back to SIGSEGV when not permitted) */
#define BA_PAGER_SIGSEGV 2 /**< SIGSEGV handler and mprotect */

/** ba_db_options.flags */
#define BA_DB_CREATE 0x1u /**< create the database directory if missing */
/** read-only: creating, resizing, appending, dropping and copying fail with
 * #BA_EREADONLY; views are writable scratch memory whose changes a commit refuses
 * (#BA_EREADONLY) and an abort drops. The database's lock.mdb must still be writable
 * (LMDB keeps its reader table there): copy a database on read-only media first. */
#define BA_DB_RDONLY 0x2u
/** commits are atomic but not durable (no fdatasync, LMDB's MDB_NOSYNC): a crash of
 * the process loses nothing committed, but a crash of the machine may lose the last
 * commits, or damage the database on a file system that reorders writes */
#define BA_DB_NOSYNC      0x4u
#define BA_DB_NOREADAHEAD 0x8u /**< do not load blocks ahead of sequential access */
/** copy every block into RAM, never map raw blocks from the database file (see
 * @ref faults, "Zero-copy reads"; BIGARRAY_ZEROCOPY=0 does the same) */
#define BA_DB_NOZEROCOPY 0x10u
/** keep LMDB's map of the database file read-only (LMDB without MDB_WRITEMAP; the
 * environment variable BIGARRAY_WRITEMAP=0 does the same). By default LMDB writes the
 * pages of a commit in place through a writable shared map: the kernel writes them
 * back and may evict them at any time, so a transaction may be far bigger than RAM,
 * and uncompressed writes skip a copy. Before a write transaction touches a page the
 * store allocates the file's blocks for it (fallocate), so a full disk fails the
 * commit with -ENOSPC rather than a SIGBUS. With this flag a stray write through a
 * wild pointer into the map faults instead of changing committed data, but LMDB keeps
 * every page a commit writes in malloc'd memory until it ends: a transaction's blocks
 * (after compression) must then fit in RAM. See docs/format.md, "The writable map". */
#define BA_DB_NOWRITEMAP 0x20u

typedef struct ba_db_options {
    size_t size;             /**< sizeof(ba_db_options) */
    unsigned flags;          /**< BA_DB_* */
    int pager;               /**< BA_PAGER_* */
    uint64_t ram_limit;      /**< bytes of RAM for cached and dirty blocks; 0 = BIGARRAY_RAM_LIMIT
                                if set, else half of min(physical RAM, cgroup limit) */
    const char *spill_dir;   /**< where dirty blocks beyond ram_limit go; NULL = BIGARRAY_SPILL_DIR,
                                else $TMPDIR, else /var/tmp */
    uint64_t map_size;       /**< initial LMDB map size in bytes; 0 = 1 TiB. Grows on demand. */
    unsigned max_readers;    /**< LMDB reader slots (sessions, all processes); 0 = 1024 */
    int64_t lock_timeout_ms; /**< how long a commit waits while another process commits:
                                  < 0 = as long as it takes (the default), 0 = not at all;
                                  then the commit fails with #BA_EBUSY, changes kept */
} ba_db_options;

/** Fill o with defaults (and o->size). */
BA_API void ba_db_options_init(ba_db_options *o);

/** Open (or, with #BA_DB_CREATE, create) the database directory at path. opts may be
 * NULL for defaults. Stale reader slots of dead processes are cleared.
 * A database is open at most once per process (LMDB requires it): opening a path that
 * this process has open already returns the same handle with one more reference (the
 * first open's options stay in force; each ba_db_open() needs its ba_db_close()), or
 * #BA_EBUSY when one open is read-only and the other is not. A forked child never
 * gets its parent's handle; it opens the database anew.
 * Returns 0, #BA_ENOTFOUND (missing, no BA_DB_CREATE), #BA_ENOTDB, #BA_EVERSION,
 * #BA_EINVAL (bad options, or a malformed BIGARRAY_INJECT), #BA_EBUSY, -EACCES,
 * -ENOSPC, -ENOMEM, ... The handle is thread-safe. */
BA_API int ba_db_open(const char *path, const ba_db_options *opts, ba_db **out);

/** Drop the caller's reference. Sessions, arrays and views still alive keep the
 * database open until they are ended, closed and released. Accepts NULL. */
BA_API void ba_db_close(ba_db *db);

/** The pager backend in use: #BA_PAGER_UFFD or #BA_PAGER_SIGSEGV. */
BA_API int ba_db_pager(const ba_db *db);

typedef struct ba_db_stat {
    size_t size;          /**< sizeof(ba_db_stat) */
    uint64_t last_commit; /**< newest commit sequence number (0 = none yet) */
    uint64_t map_size;    /**< LMDB map size, bytes */
    uint64_t file_size;   /**< bytes the data file occupies on disk (its allocated blocks:
                               with the writable map the file is sparse, and its apparent
                               size is the map size) */
    uint64_t page_size;   /**< LMDB page size */
    uint64_t pages_used;  /**< pages in use (last page number + 1) */
    uint64_t pages_free;  /**< pages on the free list */
    uint64_t narrays;     /**< arrays in the newest snapshot */
    uint64_t readers;     /**< reader slots in use (all processes) */
} ba_db_stat;

/** Fill *st (st->size must be set). Returns 0 or a negative code. */
BA_API int ba_db_stat_get(ba_db *db, ba_db_stat *st);

/** One problem found by ba_db_verify(). */
typedef struct ba_problem {
    const char *array; /**< array name, or NULL if not tied to one */
    uint64_t array_id; /**< array id (0 if none) */
    int64_t blkno;     /**< block number, or -1 */
    int code;          /**< BA_ECORRUPT, ... */
    const char *what;  /**< a sentence saying what is wrong */
} ba_problem;

/** Walk every record of the newest snapshot: headers, checksums, catalog records,
 * blocks belonging to existing arrays and lying inside their shape. Calls cb for
 * each problem (cb may be NULL); stores the count in *nproblems. Returns 0 when
 * the walk completed (whatever it found), or a negative code if it could not run. */
BA_API int ba_db_verify(ba_db *db, void (*cb)(const ba_problem *p, void *ctx), void *ctx,
                        uint64_t *nproblems);

/** Write a compacted copy of the newest snapshot to the new directory out_path
 * (which must not exist or be empty). Returns 0 or a negative code; on failure
 * out_path holds no valid database. */
BA_API int ba_db_compact(ba_db *db, const char *out_path);

/** Pager counters, per process (ba_db_pager_stat) or per array in a session. */
typedef struct ba_pager_stat {
    size_t size;              /**< sizeof(ba_pager_stat) */
    uint64_t faults_read;     /**< faults that loaded or mapped a block for reading */
    uint64_t faults_write;    /**< faults that made a block writable (and dirty) */
    uint64_t faults_remap;    /**< faults on blocks already in RAM (mapping only) */
    uint64_t loads;           /**< blocks loaded from the store */
    uint64_t load_bytes;      /**< bytes loaded */
    uint64_t load_errors;     /**< loads that failed */
    uint64_t readahead_loads; /**< blocks loaded ahead of access */
    uint64_t readahead_hits;  /**< of those, blocks later accessed */
    uint64_t evictions;       /**< clean blocks dropped to stay in the budget */
    uint64_t spills;          /**< dirty blocks written to the spill file */
    uint64_t unspills;        /**< dirty blocks read back from the spill file */
    uint64_t invalidations;   /**< cached blocks dropped because other commits changed them */
    uint64_t ram_used;        /**< bytes of RAM in frames now: blocks' frames and free ones
                                   (the pager keeps up to 4 per block size populated ahead,
                                   within the budget) */
    uint64_t ram_limit;       /**< the budget */
    uint64_t dirty_bytes;     /**< dirty bytes now (RAM and spill file) */
    uint64_t fault_ns_total;  /**< time spent resolving faults */
    uint64_t fault_hist[16];  /**< faults by duration: bucket i counts [2^i, 2^(i+1)) us, the
                                     last bucket everything longer */
    uint64_t direct_loads;    /**< blocks mapped straight from the database file (zero-copy),
                                   each checksummed once; not in loads */
    uint64_t direct_copies;   /**< of those, blocks copied into RAM at a write */
    uint64_t direct_bytes;    /**< bytes of blocks mapped zero-copy now: the kernel's page
                                   cache, not counted in ram_used; at most the process's
                                   memory limit (RAM or cgroup) less ram_limit, and at
                                   least an eighth of that limit */
    uint64_t direct_pieces;   /**< pieces (32 KiB of a 2 MiB block) checksummed alone: a
                                   read fault on a zero-copy block checks only the pieces
                                   under the 64 KiB from the byte it touches, until more
                                   than half would be checked, when it checks the rest */
} ba_pager_stat;

/** Counters of the database's pager (all sessions). st->size must be set. */
BA_API int ba_db_pager_stat(ba_db *db, ba_pager_stat *st);
/** @} */

/** @defgroup sessions Sessions and transactions
 * @{ */

/** Start a session on the newest snapshot. Returns 0, #BA_EFULL (no reader slot),
 * -ENOMEM, ... */
BA_API int ba_session_begin(ba_db *db, ba_session **out);

/** Abort uncommitted changes and drop the caller's reference. Views still alive keep
 * the session's snapshot and cache until released; handles still open may make views
 * and read info, while calls that change anything return #BA_EINVAL. Accepts NULL. */
BA_API void ba_session_end(ba_session *s);

/** Commit the session's changes atomically and durably, then move to the newest
 * snapshot. Returns 0; #BA_ECONFLICT (nothing written, changes kept: abort and
 * redo); #BA_EREADONLY; #BA_EBUSY (another process commits: see lock_timeout_ms), -ENOSPC,
 * -EIO, -ENOMEM, #BA_EFULL (nothing written, changes
 * kept: retry or abort); #BA_EFAILED (an earlier failure; abort). In one rare case
 * the changes were committed durably but the session could not move to the new
 * snapshot: the session then fails with #BA_EFAILED and a message saying so, and an
 * abort moves it there. A commit with no changes only moves the snapshot. Thread
 * rules: see @ref threads. */
BA_API int ba_session_commit(ba_session *s);

/** Drop the session's changes and move to the newest snapshot. Returns 0, or a
 * negative code when the new snapshot cannot be taken (the session then keeps its
 * old snapshot; retry). */
BA_API int ba_session_abort(ba_session *s);

/** The commit sequence number of the snapshot the session reads. */
BA_API uint64_t ba_session_snapshot(const ba_session *s);

/** Nonzero when the session has uncommitted changes. */
BA_API int ba_session_dirty(const ba_session *s);
/** @} */

/** @defgroup arrays Arrays
 * @{ */
#define BA_CODEC_NONE 0 /**< blocks stored raw */
#define BA_CODEC_ZSTD 1 /**< blocks compressed with zstd */

#define BA_FILTER_SHUFFLE 0x1u /**< group each element's bytes by significance before zstd */

#define BA_BLOCK_SIZE_DEFAULT (2u << 20)

typedef struct ba_array_spec {
    size_t size;                /**< sizeof(ba_array_spec) */
    ba_dtype dtype;             /**< element type */
    int ndim;                   /**< 1 .. BA_MAX_DIMS */
    int64_t shape[BA_MAX_DIMS]; /**< any dim may be 0 */
    char order;                 /**< 'C' (default) or 'F' */
    uint32_t block_size;        /**< power of two, >= page size, <= 1 GiB; 0 = 2 MiB */
    int codec;                  /**< BA_CODEC_* */
    int level;                  /**< zstd level 1..19 (0 = 1) */
    unsigned filters;           /**< BA_FILTER_* */
} ba_array_spec;

/** Fill s with defaults: no dims, "<f8", C order, 2 MiB blocks, no codec. */
BA_API void ba_array_spec_init(ba_array_spec *s);

/** Parse codec text: "none", "zstd", "zstd:L", optionally followed by "+shuffle"
 * ("zstd:3+shuffle"). Sets codec, level and filters of spec. Returns 0 or #BA_EINVAL. */
BA_API int ba_codec_parse(const char *text, ba_array_spec *spec);
/** Format codec, level and filters as ba_codec_parse() reads them, into buf (>= 32 bytes). */
BA_API char *ba_codec_format(int codec, int level, unsigned filters, char *buf);

/** Create an array in the session (visible to others after commit). Returns 0,
 * #BA_EEXIST, #BA_EINVAL (bad name or spec), #BA_EDTYPE (spec->dtype not in the
 * canonical form ba_dtype_parse() gives), #BA_ESHAPE, #BA_ETOOBIG (more than 2^63
 * bytes), #BA_EREADONLY. *out is an open handle to the new array. */
BA_API int ba_array_create(ba_session *s, const char *name, const ba_array_spec *spec,
                           ba_array **out);

/** Open an array by name as of the session's snapshot (and its own changes).
 * Opening the same name twice in a session returns handles to one array (same
 * cache, same views). Returns 0, #BA_ENOTFOUND, #BA_ECORRUPT. */
BA_API int ba_array_open(ba_session *s, const char *name, ba_array **out);

/** Drop the caller's reference to the handle. Uncommitted changes stay in the session;
 * views stay valid. Accepts NULL. */
BA_API void ba_array_close(ba_array *a);

/** Drop an array in the session (all its blocks at commit). Open handles become
 * stale (#BA_ESTALE) and their views read zeros after the next transaction boundary.
 * An abort revives the array and its handles. Returns 0, #BA_ENOTFOUND,
 * #BA_EREADONLY. */
BA_API int ba_array_drop(ba_session *s, const char *name);

/** Copy array src to a new array dst in the session, without decompressing. dst
 * shows src's data at once; the block records are copied at commit. src must have no
 * uncommitted changes in the session (commit them first). Returns 0, #BA_ENOTFOUND,
 * #BA_EEXIST, #BA_EINVAL (bad name, or src has uncommitted changes), #BA_EREADONLY. */
BA_API int ba_array_copy(ba_session *s, const char *src, const char *dst);

/** Call cb for each array name in the session's view of the catalog, in byte order
 * of the names; stop early when cb returns nonzero (and return that value). Returns
 * 0, that value, or a negative code (-ENOMEM, #BA_ECORRUPT) before any call. */
BA_API int ba_array_list(ba_session *s, int (*cb)(const char *name, void *ctx), void *ctx);

typedef struct ba_array_info {
    size_t size;      /**< sizeof(ba_array_info) */
    const char *name; /**< borrowed; valid until the handle is closed */
    uint64_t id;      /**< unique id, never reused */
    ba_dtype dtype;
    int ndim;
    int64_t shape[BA_MAX_DIMS];
    int64_t strides[BA_MAX_DIMS]; /**< bytes, of a view of the whole array */
    char order;                   /**< 'C' or 'F' */
    uint32_t block_size;
    int codec, level;
    unsigned filters;
    uint64_t nbytes;        /**< itemsize * product of shape */
    uint64_t stored_bytes;  /**< bytes of block records on disk, as of the snapshot */
    uint64_t stored_blocks; /**< blocks stored (not all-zero), as of the snapshot */
    uint64_t created_seq;   /**< commit that created it (0 = not yet committed) */
    uint64_t changed_seq;   /**< last commit that changed its data or metadata */
    int dirty;              /**< nonzero when the session changed it */
} ba_array_info;

/** Describe the array as this session sees it. info->size must be set. */
BA_API int ba_array_info_get(ba_array *a, ba_array_info *info);

/** Change the shape (same ndim). O(1): growing reveals zeros; shrinking discards the
 * bytes past the new end (regrowing shows zeros, never old data). Views made before
 * keep their shape and stay valid; what they show past the new end reads zero, and
 * bytes they write there are dropped at commit. Returns 0, #BA_ESHAPE (other ndim,
 * negative dim), #BA_ETOOBIG (more than 2^63 bytes), #BA_EREADONLY, #BA_ESTALE, or a
 * load error of the block holding the new end (a shrink zeroes its tail). */
BA_API int ba_array_resize(ba_array *a, int ndim, const int64_t *shape);

/** Append values along the major axis (axis 0 in C order, the last axis in F order).
 * data holds ndim/shape/dtype elements contiguous in the array's order; every axis
 * but the major one must match the array, and ndim must equal the array's (or be one
 * less, to append a single sub-array). dtype NULL means the array's dtype. Costs
 * O(new data). On any error the array is unchanged. Returns 0, #BA_ESHAPE,
 * #BA_EDTYPE, #BA_ETOOBIG, #BA_EREADONLY, #BA_ESTALE, -ENOMEM, a load error of the
 * tail block, ... */
BA_API int ba_array_append(ba_array *a, const void *data, int ndim, const int64_t *shape,
                           const ba_dtype *dtype);

/** Pager counters of this array in its session. st->size must be set. */
BA_API int ba_array_pager_stat(ba_array *a, ba_pager_stat *st);

/** The last error a fault on this array's views could not resolve (corrupt block,
 * I/O error: the faulting thread received SIGBUS, or a system call reading into the
 * view failed with EFAULT), and the block it happened in; clears it. Returns 0 when
 * there was none (and stores -1 in *blkno), else that code, with ba_errmsg() naming
 * the array, the block and the cause (fault context records only the code; the
 * message is made here). blkno may be NULL. Any thread. */
BA_API int ba_array_fault_error(ba_array *a, int64_t *blkno);
/** @} */

/** @defgroup views Views
 * @{ */
struct ba_mapping;

/** A strided view: element (i0, i1, ...) is at data + sum(ik * strides[k]).
 * The struct may be copied, but a copy is not a new reference: release exactly one
 * of the copies. */
typedef struct ba_view {
    void *data; /**< address of the first element (never NULL, even if empty) */
    int ndim;
    int64_t shape[BA_MAX_DIMS];
    int64_t strides[BA_MAX_DIMS]; /**< bytes; may be negative or 0 */
    ba_dtype dtype;
    struct ba_mapping *mapping; /**< owned by the view; release with ba_view_release() */
} ba_view;

/** ba_array_view() flags */
#define BA_VIEW_READONLY 0x1u /**< map read-only: a write through the view crashes */

/** Make a view of a slice of the array (nsl items, see @ref slices; nsl 0 = all).
 * The view maps only the blocks its elements lie in; it stays valid after resize,
 * commit, abort and close, showing the session's current data. Returns 0,
 * #BA_ERANGE, #BA_EINVAL, #BA_ETOOBIG (address space), #BA_ESTALE, #BA_EFAILED,
 * -ENOMEM. On failure *out is zeroed (its mapping NULL). */
BA_API int ba_array_view(ba_array *a, const ba_slice *sl, int nsl, unsigned flags, ba_view *out);

/** Like ba_array_view() with slice text ("10:20, ::2"). */
BA_API int ba_array_view_text(ba_array *a, const char *slices, unsigned flags, ba_view *out);

/** ba_view_preload() flags */
#define BA_PRELOAD_WRITE 0x1u /**< also make the blocks writable (and dirty) */

/** Load every block under the view into RAM and map it, returning the first load
 * error (#BA_ECORRUPT, -EIO, ...) instead of raising SIGBUS later. With
 * #BA_PRELOAD_WRITE the blocks are also made writable, so the view may be passed to
 * read(2) with either pager. While it runs, the blocks it has loaded stay mapped (the
 * reclaimer skips them) when the view fits in the RAM budget, so a system call right
 * after it covers the whole view; later faults of other threads may evict them again.
 * A view larger than the budget is loaded block by block and cannot stay mapped whole:
 * preload and pass it to the system call in pieces smaller than the budget. */
BA_API int ba_view_preload(const ba_view *v, unsigned flags);

/** Release the view's mapping (dirty data stays in the session). Accepts a view
 * whose mapping is NULL; sets it to NULL. */
BA_API void ba_view_release(ba_view *v);

/** Number of elements in the view. */
BA_API uint64_t ba_view_size(const ba_view *v);

struct DLManagedTensor;
/** Export the view as a DLPack tensor (CPU device, DLPack 0.6). The tensor holds its
 * own reference to the mapping; call its deleter when done (from any thread). The
 * caller's view stays theirs. Strides are in elements, byte_offset is 0. bool is
 * exported as 8-bit kDLUInt (DLPack 0.6 has no boolean type). Returns 0,
 * #BA_EDTYPE (records, or a non-native byte order), #BA_EINVAL (a released view, or
 * strides that are not multiples of the item size), -ENOMEM. */
BA_API int ba_view_to_dlpack(const ba_view *v, struct DLManagedTensor **out);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* BIGARRAY_H */
