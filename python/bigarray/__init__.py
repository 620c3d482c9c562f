# SPDX-License-Identifier: MIT
"""bigarray: transactional out-of-core N-dimensional arrays, as numpy views.

An array lives in a database (a directory holding an LMDB environment), cut into
blocks that a userspace pager maps into memory on first touch. ``A[...]`` returns a
real ``numpy.ndarray`` pointing into that mapping: no copy, and arrays far bigger
than RAM are processed by numpy as if they were in memory::

    import bigarray, numpy as np
    with bigarray.open("data.db", ram_limit="2G") as db:     # created if missing
        A = db.create("temps", shape=(0, 1024), dtype="f8", block_size="2M",
                      codec="zstd:1")
        A.append(np.random.rand(1000, 1024))
        a = A[10:100, ::2]          # numpy.ndarray over the mapping
        a[:] *= 2                   # writes go straight into the mapping
        db.commit()                 # or db.abort()
        print(np.mean(db["temps"][:]))

Views
    ``A[key]`` with basic indexing (integers, slices with any step, ``...``,
    ``None``/``np.newaxis``) returns a view. All views of one array handle share one
    mapping of the whole array, so they alias exactly as slices of one ndarray do:
    ``np.shares_memory`` is True for two views of the same elements, and a write
    through any view is seen by every other. The mapping lives as long as the handle
    or any view from it (the array's base chain ends at a ``_bigarray.View`` that owns
    the C view). ``A.resize`` and appends from other sessions start a new mapping for
    later views; earlier views keep their shape and stay valid. Views remain valid
    after commit, abort and close, showing the session's current data.

    Advanced indexing (integer arrays or lists, boolean masks) works exactly as in
    numpy, on the whole-array mapping: reading returns a copy, assigning writes the
    selected elements. An integer key on all axes returns a numpy scalar (a copy).

    ``A.view(key)`` makes a view with a mapping of its own, covering only the blocks
    under the slice (writes still alias: the session has one copy of each block).
    Arrays larger than the address space (about 128 TiB) cannot be mapped whole;
    ``A[key]`` then falls back to such per-slice views (basic indexing only; advanced
    indexing raises IndexError) and ``np.asarray(A)`` raises MemoryError.

Transactions
    A database has a default session (``db.commit()``, ``db.abort()``, ``db[name]``);
    ``db.session()`` starts another, isolated one (for a thread, or to compare
    snapshots). A session sees one snapshot until its next commit or abort. Commit
    raises ConflictError when another session committed a change to a block or
    shape this session also changed: nothing is written, the changes are kept; call
    abort() and redo the work. Leaving a ``with`` block closes the database, which
    discards uncommitted changes: commit explicitly.

Errors
    bigarray.Error (base), ConflictError, CorruptError for the library's own
    conditions; otherwise the builtin numpy or Python would use: KeyError (no such
    array), ValueError (bad argument, bad shape, array exists, closed handle),
    TypeError (unsupported dtype), IndexError (index out of range, advanced index
    where only basic ones work), MemoryError (no memory or address space),
    FileNotFoundError (no database and create=False), OSError with errno (-errno from
    the system), RuntimeError (a session used by two threads at once). Every one
    carries ``.code``, the library's error code (``bigarray.ECONFLICT``, ...,
    or -errno).

Corrupt blocks
    A block that fails its checksum cannot be loaded. When numpy code touches it
    through a view, the pager delivers SIGBUS to the touching thread; Python cannot
    turn that into an exception, so the interpreter dies (with a traceback if
    ``faulthandler`` is enabled). ``A.preload(key)`` (or ``bigarray.preload(view)``)
    loads the blocks under a slice first and raises CorruptError instead; a careful
    reader preloads before handing a view to numpy. ``db.verify()`` lists every
    damaged record. (Uncompressed blocks read zero-copy are checked by the 32 KiB
    pieces a read touches, so an intact piece of a damaged block still reads; a preload
    checks whole blocks.)

Threads
    The GIL is released around open, commit, abort, append, preload, verify and
    compact, and faults are resolved without Python. Several threads may read and
    write one session's views; commit, abort, append, resize, drop and create need
    the session to themselves: if another thread is inside such a call on the same
    session, the call raises RuntimeError. Use one session per thread.

fork()
    Handles and views are not inherited: in a child the views' memory is unmapped
    (touching it crashes as any unmapped memory does) and using a handle raises
    bigarray.Error. Open the database anew in the child; with multiprocessing, use
    the 'spawn' or 'forkserver' start method.

Signals
    With the SIGSEGV pager the library installs a SIGSEGV handler at the first open
    and chains to the previous one for other addresses. ``faulthandler.enable()``
    called *after* a database was opened replaces it and breaks views; enable it
    before (``python -X faulthandler``, or pytest's default) or use the
    userfaultfd pager.
"""

import numbers as _numbers
import operator as _operator
import os as _os
import re as _re
import weakref as _weakref
from collections import namedtuple as _namedtuple

import numpy as _np

from . import _bigarray as _c
from ._bigarray import ConflictError, CorruptError, Error

__all__ = [
    "open", "Database", "Session", "Array", "Problem", "Error", "ConflictError",
    "CorruptError", "parse_size", "preload",
]

__version__ = _c.version()

# Library error codes, as found in the .code attribute of raised exceptions.
ECONFLICT = _c.ECONFLICT
ECORRUPT = _c.ECORRUPT
ENOTFOUND = _c.ENOTFOUND
EEXIST = _c.EEXIST
EFULL = _c.EFULL
EINVAL = _c.EINVAL
ESHAPE = _c.ESHAPE
EREADONLY = _c.EREADONLY
EVERSION = _c.EVERSION
EDTYPE = _c.EDTYPE
ERANGE = _c.ERANGE
ENOTDB = _c.ENOTDB
ESTALE = _c.ESTALE
ETOOBIG = _c.ETOOBIG
EBUSY = _c.EBUSY
EFAILED = _c.EFAILED

strerror = _c.strerror

# Handles must not be used in a forked child (see fork() above).
_os.register_at_fork(after_in_child=_c._after_fork_child)

_PAGERS = {"auto": _c.PAGER_AUTO, "uffd": _c.PAGER_UFFD, "userfaultfd": _c.PAGER_UFFD,
           "sigsegv": _c.PAGER_SIGSEGV}
_PAGER_NAMES = {_c.PAGER_UFFD: "uffd", _c.PAGER_SIGSEGV: "sigsegv"}

_SIZE_RE = _re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgtpe]?)(?:i?b)?\s*$", _re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50,
          "e": 1 << 60}


def parse_size(value, what="size"):
    """Bytes from an int or a string such as "2G", "512M", "1.5GiB", "4096".

    Units are binary (K = 1024) and case-insensitive; a trailing "B" or "iB" is
    allowed. Raises TypeError for other types and ValueError for text that does not
    parse, negative sizes and sizes of 2**64 or more.
    """
    if isinstance(value, bool) or not isinstance(value, (_numbers.Integral, str)):
        raise TypeError(f"{what} must be an int or a string like '2G', not "
                        f"{type(value).__name__}")
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if not m:
            raise ValueError(f"{what}: cannot parse {value!r}; use an int or a string "
                             f"like '512M' or '2G'")
        num, unit = m.group(1), _UNITS[m.group(2).lower()]
        if "." in num:
            n = int(float(num) * unit)
        else:
            n = int(num) * unit
    else:
        n = int(value)
    if n < 0:
        raise ValueError(f"{what} must not be negative")
    if n >= 1 << 64:
        raise ValueError(f"{what} is too large")
    return n


def _shape_tuple(shape):
    if isinstance(shape, (_numbers.Integral, _np.integer)) and not isinstance(shape, bool):
        return (_operator.index(shape),)
    try:
        return tuple(_operator.index(d) for d in shape)
    except TypeError:
        raise TypeError("shape must be an int or a sequence of ints") from None


def _dtype_name(dt):
    s = dt.str
    if s[0] == "|" or (s[0] == "<" and _np.little_endian) or (s[0] == ">" and
                                                               not _np.little_endian):
        return s[1:]
    return s


def _is_basic_item(k):
    if k is None or k is Ellipsis or isinstance(k, slice):
        return True
    if isinstance(k, (bool, _np.bool_)):
        return False
    if isinstance(k, _np.ndarray):
        return k.ndim == 0 and k.dtype.kind in "iu"
    try:
        _operator.index(k)
    except TypeError:
        return False
    return True


def _basic_key(key):
    """The key as a tuple of basic items, or None when numpy would index advanced."""
    if not isinstance(key, tuple):
        key = (key,)
    for k in key:
        if not _is_basic_item(k):
            return None
    return key


def _view_owner(a):
    """The _bigarray.View at the end of a numpy array's base chain, or None."""
    b = a
    while isinstance(b, _np.ndarray):
        b = b.base
    return b if isinstance(b, _c.View) else None


def preload(view, write=False):
    """Load every block under ``view`` (a numpy array from ``A[...]``) now.

    Raises CorruptError (or OSError) for a block that cannot be loaded, where a
    plain access would take SIGBUS. With ``write=True`` the blocks are also made
    writable (and dirty), so the view can be passed to read(2) with any pager.
    Blocks may be evicted again if the view is larger than the RAM limit: preload in
    pieces smaller than it.
    """
    owner = _view_owner(view)
    if owner is None:
        raise TypeError("preload() needs a numpy array made by a bigarray Array")
    owner.preload(view, bool(write))


def open(path, ram_limit=None, *, create=True, readonly=False, sync=True, readahead=True,
         pager="auto", spill_dir=None, map_size=None, max_readers=None, zerocopy=True,
         writemap=True):
    """Open (by default creating) the database directory ``path``.

    ram_limit  bytes of RAM for cached and dirty blocks (an int or "2G"); None:
               $BIGARRAY_RAM_LIMIT, else half of the machine's (or cgroup's) RAM.
    create     create the directory when missing (else FileNotFoundError).
    readonly   open read-only: views are read-only, commits of changes fail.
    sync       False: commits are atomic but not durable (no fdatasync).
    readahead  False: never load blocks ahead of sequential access.
    pager      "auto", "uffd" or "sigsegv" (see the C header for the difference).
    spill_dir  where dirty blocks beyond ram_limit go (default $TMPDIR or /var/tmp).
    map_size   initial LMDB map size (grows on demand); max_readers reader slots.
    zerocopy   False: copy every block into RAM. By default (SIGSEGV pager) blocks stored
               uncompressed, of 64 KiB and more, are mapped read-only straight from
               the database file, outside ram_limit (pager_stat()["direct_bytes"], at
               most the memory limit, RAM or cgroup, less ram_limit).
    writemap   False: keep LMDB's map of the file read-only (a stray write into it
               faults), but a transaction's blocks must then fit in RAM at commit. By
               default commits go through a writable map and may be bigger than RAM.

    The result is a Database, usable as a context manager (closing on exit).
    """
    if pager not in _PAGERS:
        raise ValueError(f"pager must be one of {sorted(_PAGERS)}, not {pager!r}")
    flags = 0
    if readonly:
        flags |= _c.DB_RDONLY
    elif create:
        flags |= _c.DB_CREATE
    if not sync:
        flags |= _c.DB_NOSYNC
    if not readahead:
        flags |= _c.DB_NOREADAHEAD
    if not zerocopy:
        flags |= _c.DB_NOZEROCOPY
    if not writemap:
        flags |= _c.DB_NOWRITEMAP
    ram = 0 if ram_limit is None else parse_size(ram_limit, "ram_limit")
    msize = 0 if map_size is None else parse_size(map_size, "map_size")
    readers = 0 if max_readers is None else _operator.index(max_readers)
    if not 0 <= readers < 1 << 32:
        raise ValueError("max_readers out of range")
    spill = None if spill_dir is None else _os.fspath(spill_dir)
    cdb = _c.Db(_os.fspath(path), flags, _PAGERS[pager], ram, spill, msize, readers)
    return Database(path, cdb)


Problem = _namedtuple("Problem", "array array_id blkno code what")
Problem.__doc__ = """One problem found by Database.verify(): the array's name (or None),
its id, the block number (or -1), the error code (bigarray.ECORRUPT, ...) and a
sentence saying what is wrong."""


class Session:
    """A unit of isolation: one snapshot, private changes until commit().

    Arrays opened in a session (``s[name]``) see its snapshot and its own changes.
    ``commit()`` and ``abort()`` end the transaction and move to the newest snapshot.
    Usable as a context manager: ``close()`` on exit, discarding uncommitted changes.
    """

    def __init__(self, db, csession):
        self._db = db  # None for a Database's own session (no reference cycle)
        self._s = csession
        self._arrays = {}

    # ---- transactions ----------------------------------------------------------------

    def commit(self):
        """Commit every change of this session atomically (and durably unless the
        database was opened with sync=False), then move to the newest snapshot.
        Raises ConflictError when a newer commit changed what this one changes:
        nothing is written and the changes stay; call abort() and redo them."""
        self._s.commit()

    def abort(self):
        """Drop every uncommitted change and move to the newest snapshot."""
        self._s.abort()

    @property
    def snapshot(self):
        """The commit sequence number of the snapshot this session reads."""
        return self._s.snapshot()

    @property
    def dirty(self):
        """True when the session has uncommitted changes."""
        return self._s.dirty()

    @property
    def closed(self):
        return self._s.closed

    @property
    def db(self):
        """The Database this session belongs to."""
        return self if self._db is None else self._db

    def close(self):
        """Discard uncommitted changes and end the session. Views made in it stay
        valid (they keep what they need alive); its Array handles stop working."""
        for a in self._arrays.values():
            a._release()
        self._arrays.clear()
        self._s.end()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- arrays ----------------------------------------------------------------------

    def create(self, name, shape=None, dtype=None, order="C", block_size=None, codec=None,
               data=None):
        """Create an array (visible to other sessions after commit) and return it.

        shape       an int or a tuple of ints (any may be 0); defaults to data.shape.
        dtype       any numpy dtype of kind b, i, u, f, c or V, including records
                    (stored as V<itemsize>: reopen with ``s.open(name, dtype=...)`` to
                    get the fields back); defaults to data's dtype, else float64.
        order       "C" or "F": the array's byte order and the axis append() grows
                    (first for C, last for F).
        block_size  a power of two >= 4096, <= 1 GiB (an int or "2M"); default 2 MiB.
        codec       "none" (default), "zstd", "zstd:L" (level 1..19), with an optional
                    "+shuffle" ("zstd:3+shuffle").
        data        initial contents (array-like).
        """
        if data is not None:
            data = _np.asarray(data)
            if shape is None:
                shape = data.shape
            if dtype is None:
                dtype = data.dtype
        if shape is None:
            raise TypeError("create() needs a shape (or data)")
        dt = _np.dtype("f8" if dtype is None else dtype)
        if not isinstance(order, str) or order.upper() not in ("C", "F"):
            raise ValueError("order must be 'C' or 'F'")
        bs = 0 if block_size is None else parse_size(block_size, "block_size")
        if codec is not None and not isinstance(codec, str):
            raise TypeError("codec must be a string like 'zstd:1'")
        if not isinstance(name, str):
            raise TypeError("array names are strings")
        ca = self._s.create(name, dt, _shape_tuple(shape), order.upper(), bs, codec)
        a = Array(self, ca, name, dt)
        old = self._arrays.get(name)
        if old is not None:
            old._release()
        self._arrays[name] = a
        if data is not None:
            a[...] = data
        return a

    def open(self, name, dtype=None):
        """The array ``name`` (KeyError if there is none). ``dtype`` reinterprets a
        record array (stored as V<n>) with a numpy dtype of the same item size."""
        if not isinstance(name, str):
            raise TypeError("array names are strings")
        a = self._arrays.get(name)
        if a is None or a._is_stale():
            if a is not None:
                a._release()
                del self._arrays[name]
            a = Array(self, self._s.open(name), name)
            self._arrays[name] = a
        if dtype is not None:
            a._set_dtype(dtype)
        return a

    def __getitem__(self, name):
        return self.open(name)

    def get(self, name, default=None):
        """The array ``name``, or ``default`` when there is none."""
        try:
            return self.open(name)
        except KeyError:
            return default

    def __contains__(self, name):
        if not isinstance(name, str):
            return False
        return self.get(name) is not None

    def list(self):
        """Names of the arrays this session sees, in byte order."""
        return self._s.list()

    keys = list

    def __iter__(self):
        return iter(self._s.list())

    def __len__(self):
        return len(self._s.list())

    def drop(self, name):
        """Drop the array (all its blocks at commit). Open handles to it become stale
        and its views read zeros after the next transaction boundary."""
        self._s.drop(name)
        a = self._arrays.pop(name, None)
        if a is not None:
            a._release()

    def __delitem__(self, name):
        self.drop(name)

    def copy(self, src, dst):
        """Copy array ``src`` to a new array ``dst`` (without decompressing) and return
        the new array."""
        self._s.copy(src, dst)
        a = self.open(dst)
        if src in self._arrays:
            a._set_dtype(self._arrays[src].dtype)
        return a

    def __repr__(self):
        if self._s.closed:
            return "<bigarray.Session (closed)>"
        return f"<bigarray.Session snapshot={self.snapshot} dirty={self.dirty}>"


class Database(Session):
    """An open database; also its default session (see Session).

    Made by bigarray.open(). ``close()`` (or leaving a ``with`` block) ends the default
    session and every session made by ``session()``, discarding their uncommitted
    changes; views stay valid.
    """

    def __init__(self, path, cdb):
        self._cdb = cdb
        self._sessions = _weakref.WeakSet()
        self.path = _os.fspath(path)
        super().__init__(None, _c.Session(cdb))

    def session(self):
        """A new session on the newest snapshot, isolated from the others."""
        s = Session(self, _c.Session(self._cdb))
        self._sessions.add(s)
        return s

    @property
    def pager(self):
        """The pager backend in use: "uffd" or "sigsegv"."""
        return _PAGER_NAMES.get(self._cdb.pager(), "unknown")

    @property
    def readonly(self):
        return bool(self._cdb.flags & _c.DB_RDONLY)

    @property
    def closed(self):
        return self._cdb.closed

    def stat(self):
        """Database counters: last_commit, map_size, file_size, page_size, pages_used,
        pages_free, narrays, readers."""
        return self._cdb.stat()

    def pager_stat(self):
        """The pager's counters (all sessions of this process): faults, loads,
        evictions, spills, ram_used, ram_limit, dirty_bytes, ..."""
        return self._cdb.pager_stat()

    def verify(self):
        """Check every record of the newest snapshot (checksums, catalog, blocks
        inside their array's shape) and return the problems found as a list of
        Problem tuples (empty when the database is sound)."""
        problems, _count = self._cdb.verify()
        return [Problem(*p) for p in problems]

    def compact(self, path):
        """Write a compacted copy of the newest snapshot to the new directory path."""
        self._cdb.compact(_os.fspath(path))

    def close(self):
        """End every session (discarding uncommitted changes) and close the handle.
        Views made earlier stay valid. Closing twice is allowed."""
        if self._cdb.closed:
            return
        for s in list(self._sessions):
            if not s.closed:
                s.close()
        if not self._s.closed:
            Session.close(self)
        self._cdb.close()

    def __repr__(self):
        if self._cdb.closed:
            return f"<bigarray.Database {self.path!r} (closed)>"
        return f"<bigarray.Database {self.path!r} pager={self.pager} snapshot={self.snapshot}>"


class Array:
    """An array in a session. Indexing returns numpy views (see the module doc)."""

    def __init__(self, session, carray, name, dtype=None):
        # A weak reference: the session caches its arrays, and a cycle would leave
        # closing to the garbage collector. The C handle keeps the C session alive.
        self._session = _weakref.ref(session)
        self._c = carray
        self._name = name
        info = carray.info()
        self._stored_dtype = _np.dtype(info["dtype"])
        self._order = info["order"]
        self._codec = info["codec"]
        self._block_size = info["block_size"]
        self._readonly = bool(session.db._cdb.flags & _c.DB_RDONLY)
        self._whole_arr = None
        self._whole_shape = None
        self._dtype = self._stored_dtype
        if dtype is not None:
            self._set_dtype(dtype)

    # ---- internals ---------------------------------------------------------------------

    def _set_dtype(self, dtype):
        dt = _np.dtype(dtype)
        st = self._stored_dtype
        if dt.itemsize != st.itemsize or (st.kind != "V" and dt != st):
            raise TypeError(f"array {self._name!r} holds {st}; dtype {dt} does not match "
                            f"(only record arrays may be given another dtype of the same "
                            f"item size)")
        if dt.hasobject or dt.subdtype is not None:
            raise TypeError(f"dtype {dt} cannot be used for stored data")
        if dt != self._dtype:
            self._dtype = dt
            self._release()

    def _release(self):
        """Drop the handle's reference to its whole-array mapping."""
        self._whole_arr = None
        self._whole_shape = None

    def _is_stale(self):
        try:
            self._c.shape()
        except Error as e:
            if getattr(e, "code", None) == ESTALE:
                return True
            raise
        return False

    def _whole(self):
        """The numpy array over a mapping of the whole array (made once per shape and
        kept), or None when the array does not fit the address space."""
        shape = self._c.shape()
        w = self._whole_arr
        if w is not None and self._whole_shape == shape:
            return w
        try:
            v = self._c.view(None, self._readonly)
        except MemoryError as e:
            if getattr(e, "code", None) == ETOOBIG:
                return None
            raise
        w = v.to_numpy(self._dtype)
        self._whole_arr = w
        self._whole_shape = shape
        return w

    def _own_view(self, key, readonly):
        k = _basic_key(key)
        if k is None:
            raise IndexError("advanced (integer-array or boolean) indexing needs the whole "
                             "array mapped, and this array does not fit the address space; "
                             "select a slice first")
        return self._c.view(k, readonly or self._readonly).to_numpy(self._dtype), k

    # ---- numpy-like description ----------------------------------------------------------

    @property
    def name(self):
        return self._name

    @property
    def session(self):
        """The Session (or Database) the array was opened in; None once that object
        is gone (the array keeps working until its session is closed)."""
        return self._session()

    @property
    def shape(self):
        """The shape as this session sees it now."""
        return self._c.shape()

    @property
    def dtype(self):
        return self._dtype

    @property
    def ndim(self):
        return len(self._c.shape())

    @property
    def size(self):
        n = 1
        for d in self._c.shape():
            n *= d
        return n

    @property
    def itemsize(self):
        return self._dtype.itemsize

    @property
    def nbytes(self):
        return self.size * self._dtype.itemsize

    @property
    def strides(self):
        """Byte strides of a view of the whole array."""
        return self._c.info()["strides"]

    @property
    def order(self):
        """"C" or "F"."""
        return self._order

    @property
    def codec(self):
        """The codec as text: "none", "zstd:1", "zstd:3+shuffle", ..."""
        return self._codec

    @property
    def block_size(self):
        return self._block_size

    @property
    def dirty(self):
        """True when this session changed the array."""
        return self._c.info()["dirty"]

    def info(self):
        """Everything the library knows: name, id, dtype, shape, strides, order,
        block_size, codec, nbytes, stored_bytes, stored_blocks, created_seq,
        changed_seq, dirty."""
        d = self._c.info()
        d["dtype"] = self._dtype
        return d

    def stat(self):
        """Pager counters of this array in its session."""
        return self._c.pager_stat()

    def fault_error(self):
        """The last error a fault on this array's views could not resolve, and
        clear it: None, or (code, blkno, message). Useful after a system call that
        read into a view failed with EFAULT (the SIGSEGV pager cannot serve the
        kernel's own accesses to blocks not loaded: preload(write=True) first), or in
        a process that survived SIGBUS in a thread."""
        return self._c.fault_error()

    def __len__(self):
        return self._c.shape()[0]

    def __repr__(self):
        if self._c.closed or self._c.session.closed:
            return f"<bigarray {self._name} (closed)>"
        try:
            shape = self._c.shape()
        except Error:
            return f"<bigarray {self._name} (stale)>"
        return (f"<bigarray {self._name} {_dtype_name(self._dtype)} {shape} {self._order} "
                f"{self._codec}>")

    # ---- views ---------------------------------------------------------------------------

    def __getitem__(self, key):
        w = self._whole()
        if w is not None:
            return w[key]
        a, k = self._own_view(key, False)
        if (a.ndim == 0 and Ellipsis not in k and None not in k
                and not any(isinstance(i, slice) for i in k)):
            return a[()]
        return a

    def __setitem__(self, key, value):
        w = self._whole()
        if w is not None:
            w[key] = value
        else:
            self._own_view(key, False)[0][...] = value

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __array__(self, dtype=None, copy=None):
        w = self._whole()
        if w is None:
            raise MemoryError(f"{self!r}: {self.nbytes} bytes do not fit the address space; "
                              f"process the array in slices (A[i:j])")
        if copy:
            return _np.array(w, dtype=dtype, copy=True)
        if dtype is None:
            return w
        return w.astype(dtype, copy=False)

    def view(self, key=Ellipsis, readonly=False):
        """A numpy view of a basic slice with a mapping of its own, covering only the
        blocks under the slice. Writes alias every other view of the array in the
        session (one copy of each block), but np.shares_memory with views from
        ``A[...]`` is False: the addresses differ."""
        return self._own_view(key, readonly)[0]

    def preload(self, key=Ellipsis, write=False):
        """Load every block under ``A[key]`` now, raising CorruptError (or OSError)
        for a block that cannot be loaded, where touching it would take SIGBUS. With
        ``write=True`` the blocks are also made writable (dirty). Preload in pieces
        smaller than the RAM limit: blocks may be evicted again."""
        w = self._whole()
        if w is not None:
            if _basic_key(key) is None:
                raise IndexError("preload() takes basic indices (ints, slices, ...)")
            sub = w[key]
            if not isinstance(sub, _np.ndarray):  # all-integer key: a scalar copy
                sub = w[key + (Ellipsis,) if isinstance(key, tuple) else (key, Ellipsis)]
            _view_owner(w).preload(sub, bool(write))
        else:
            v, _ = self._own_view(key, self._readonly)
            _view_owner(v).preload(None, bool(write))

    # ---- changes -------------------------------------------------------------------------

    def append(self, values):
        """Append values along the major axis (axis 0 for C order, the last axis for
        F order), like numpy.append(A, values, axis=major) but in place and O(new
        data). Every other axis must match the array's (ValueError otherwise);
        ``values`` may also be one sub-array without the major axis. Values are cast
        to the array's dtype as numpy assignment casts them. On any error the array
        is unchanged."""
        v = _np.asarray(values, dtype=self._dtype, order=self._order)
        if _view_owner(v) is not None:
            # Values inside a bigarray mapping: copy them out first, so the library
            # never reads a mapping of the array it is changing.
            v = _np.array(v, order=self._order, copy=True)
        if v.ndim >= 2 and not (v.flags.f_contiguous if self._order == "F"
                                else v.flags.c_contiguous):
            v = _np.array(v, order=self._order, copy=True)
        self._c.append(v)

    def resize(self, *shape):
        """Change the shape (same number of dimensions) in O(1), as ndarray.resize
        does with refcheck=False: the bytes keep their order, growing reveals zeros,
        shrinking discards the bytes past the new end (regrowing shows zeros, never
        old data). Views made before keep their shape and stay valid."""
        if len(shape) == 1:
            shape = shape[0]
        self._c.resize(_shape_tuple(shape))

    # ---- DLPack --------------------------------------------------------------------------

    def to_dlpack(self, key=Ellipsis):
        """A DLPack capsule ("dltensor") for ``A[key]`` (basic indexing), holding its
        own reference to the mapping. Record dtypes have no DLPack type (TypeError)."""
        w = self._whole()
        if w is not None:
            if _basic_key(key) is None:
                raise IndexError("to_dlpack() takes basic indices (ints, slices, ...)")
            sub = w[key]
            if not isinstance(sub, _np.ndarray):
                sub = w[key + (Ellipsis,) if isinstance(key, tuple) else (key, Ellipsis)]
            return _view_owner(w).dlpack(sub)
        v, _ = self._own_view(key, self._readonly)
        return _view_owner(v).dlpack(None)

    def __dlpack__(self, stream=None):
        if stream is not None:
            raise BufferError("bigarray arrays live on the CPU: stream must be None")
        return self.to_dlpack()

    def __dlpack_device__(self):
        return (1, 0)  # (kDLCPU, 0)
