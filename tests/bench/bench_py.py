#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The Python systems of issue #8's benchmark, measured the same way (a program, not a test).

Systems: memmap (numpy.memmap over a raw file), h5py and h5py-gzip1 (chunked datasets),
zarr-lmdb, zarr-lmdb-zstd1, zarr-dir, zarr-dir-zstd1 (zarr 2, LMDBStore / DirectoryStore),
zarr-dir-blosc (Blosc zstd-1 + byte shuffle, for sizes), bigarray-py and bigarray-py-zstd1
(the bigarray Python module). All use 2 MiB chunks/blocks of whole rows.

Operations (the command line matches bench_ba / bench_lmdb, see bench_common.h):
  write    create the array from the source held in RAM, write it in 2 MiB slices and make
           it durable (each system's definition below)                  MB/s (W1), bytes (W7)
  scan     fresh handle; sum in 2 MiB slices a[i:i+rows].sum(); --threads T sums T
           contiguous parts in T threads                                MB/s (W2-fresh, W3, W9)
  scanhot  one handle, one untimed pass, then timed passes               MB/s (W2)
  rand     fresh handle; --count sums of a[r:r+8] (64 KiB), r uniform    reads/s (W4)
  rewrite  --count commits, each writing one row in --blocks random blocks (1%)
                                                                        ms/commit (W5)
  append   --count appends of 1 MiB, each made durable                   s (W6)
  mean     np.mean over the whole array as one call (issue #4)           MB/s

Durable, per system (as in the anchors' method): memmap flush() (msync); h5py flush() +
fsync; zarr-lmdb: LMDB env sync(force) (zarr puts every chunk in its own transaction with
sync off); zarr-dir: os.sync() (nothing fsyncs the chunk files otherwise); bigarray:
commit(). Page cache before each repetition: --cache warm (read every file), cold
(sync; drop_caches) or asis. One JSON line per figure on stdout.
"""
import argparse
import ctypes
import gc
import json
import os
import shutil
import sys
import threading
import time

import numpy as np

BLOCK = 2 << 20
SYSTEMS = ("memmap", "h5py", "h5py-gzip1", "zarr-lmdb", "zarr-lmdb-zstd1", "zarr-dir",
           "zarr-dir-zstd1", "zarr-dir-blosc", "bigarray-py", "bigarray-py-zstd1")


# ---- page cache, disk ------------------------------------------------------------------------

def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def warm(path):
    """Read every file under path (only the allocated extents of sparse files)."""
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            for n in files:
                warm(os.path.join(root, n))
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        off = 0
        while off < st.st_size:
            try:
                off = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            hole = os.lseek(fd, off, os.SEEK_HOLE)
            while off < hole:
                n = len(os.pread(fd, min(8 << 20, hole - off), off))
                if n <= 0:
                    break
                off += n
            off = hole
    finally:
        os.close(fd)


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long)
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
_libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)


def _resident_file(path):
    """Bytes of path in the page cache (mincore over the allocated extents)."""
    page = os.sysconf("SC_PAGE_SIZE")
    fd = os.open(path, os.O_RDONLY)
    total = 0
    try:
        size = os.fstat(fd).st_size
        off = 0
        while off < size:
            try:
                off = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            hole = os.lseek(fd, off, os.SEEK_HOLE)
            for lo in range(off - off % page, hole, 1 << 30):
                n = min(1 << 30, hole - lo)
                addr = _libc.mmap(None, n, 1, 1, fd, lo)  # PROT_READ, MAP_SHARED
                if addr in (None, ctypes.c_void_p(-1).value):
                    return -1
                vec = (ctypes.c_ubyte * ((n + page - 1) // page))()
                if _libc.mincore(addr, n, vec) == 0:
                    total += sum(1 for x in bytes(vec) if x & 1) * page
                _libc.munmap(addr, n)
            off = hole
    finally:
        os.close(fd)
    return total


def resident(path):
    if os.path.isdir(path):
        return sum(_resident_file(os.path.join(r, n)) for r, _, fs in os.walk(path)
                   for n in fs)
    return _resident_file(path) if os.path.exists(path) else 0


def set_cache(mode, path):
    """Put the store's pages in the page cache (warm) or out of it (cold); return the
    bytes resident afterwards (a cold repetition must start near 0: a live mapping of
    the store would keep its pages)."""
    gc.collect()
    if mode == "cold":
        drop_caches()
    elif mode == "warm":
        warm(path)
    return resident(path)


def disk_bytes(path):
    if os.path.isdir(path):
        return sum(os.lstat(os.path.join(r, n)).st_blocks * 512
                   for r, _, fs in os.walk(path) for n in fs)
    return os.lstat(path).st_blocks * 512 if os.path.exists(path) else 0


def rmtree(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.unlink(path)


# ---- systems ---------------------------------------------------------------------------------

class System:
    """One peer: how it creates, opens, writes, makes durable and appends."""

    def __init__(self, name, dtype, cols):
        self.name = name
        self.dtype = np.dtype(dtype)
        self.cols = cols
        self.chunk_rows = max(1, BLOCK // (cols * self.dtype.itemsize))

    def path(self, store):
        return store


class Memmap(System):
    def _file(self, store):
        return os.path.join(store, "data.raw")

    def create(self, store, rows):
        os.makedirs(store, exist_ok=True)
        self.m = np.memmap(self._file(store), dtype=self.dtype, mode="w+",
                           shape=(rows, self.cols))
        return self.m

    def durable(self):
        self.m.flush()

    def close(self):
        self.m = None

    def open(self, store, write=False):
        f = self._file(store)
        rows = os.path.getsize(f) // (self.cols * self.dtype.itemsize)
        self.m = np.memmap(f, dtype=self.dtype, mode="r+" if write else "r",
                           shape=(rows, self.cols))
        return self.m

    def append_begin(self, store, fresh):
        if fresh:
            os.makedirs(store, exist_ok=True)
            open(self._file(store), "wb").close()
        self.f = self._file(store)
        self.nbytes = os.path.getsize(self.f)
        return self.nbytes // (self.cols * self.dtype.itemsize)

    def append(self, values):
        # A numpy user appends to a raw file by mapping the new tail (r+ extends the file).
        m = np.memmap(self.f, dtype=self.dtype, mode="r+", offset=self.nbytes,
                      shape=values.shape)
        m[:] = values
        m.flush()
        del m
        self.nbytes += values.nbytes

    def append_end(self):
        pass


class H5(System):
    def __init__(self, name, dtype, cols, gzip):
        super().__init__(name, dtype, cols)
        self.gzip = gzip

    def _file(self, store):
        return os.path.join(store, "data.h5")

    def _create(self, store, rows):
        import h5py
        os.makedirs(store, exist_ok=True)
        self.f = h5py.File(self._file(store), "w")
        kw = dict(compression="gzip", compression_opts=1) if self.gzip else {}
        self.ds = self.f.create_dataset("a", shape=(rows, self.cols), dtype=self.dtype,
                                        chunks=(self.chunk_rows, self.cols),
                                        maxshape=(None, self.cols), **kw)
        return self.ds

    def create(self, store, rows):
        return self._create(store, rows)

    def durable(self):
        self.f.flush()
        os.fsync(self.f.id.get_vfd_handle())

    def close(self):
        self.f.close()
        self.f = self.ds = None

    def open(self, store, write=False):
        import h5py
        self.f = h5py.File(self._file(store), "r+" if write else "r")
        self.ds = self.f["a"]
        return self.ds

    def append_begin(self, store, fresh):
        if fresh:
            self._create(store, 0)
        else:
            self.open(store, True)
        return self.ds.shape[0]

    def append(self, values):
        n = self.ds.shape[0]
        self.ds.resize((n + values.shape[0], self.cols))
        self.ds[n:] = values
        self.durable()

    def append_end(self):
        self.f.close()


class Zarr(System):
    def __init__(self, name, dtype, cols, kind, codec):
        super().__init__(name, dtype, cols)
        self.kind, self.codec = kind, codec

    def _store(self, store):
        import zarr
        if self.kind == "lmdb":
            os.makedirs(store, exist_ok=True)
            return zarr.LMDBStore(os.path.join(store, "lmdb"))
        return zarr.DirectoryStore(os.path.join(store, "dir"))

    def _compressor(self):
        from numcodecs import Blosc, Zstd
        if self.codec == "zstd1":
            return Zstd(level=1)
        if self.codec == "blosc":
            return Blosc(cname="zstd", clevel=1, shuffle=Blosc.SHUFFLE)
        return None

    def create(self, store, rows):
        import zarr
        self.st = self._store(store)
        self.z = zarr.create(shape=(rows, self.cols), chunks=(self.chunk_rows, self.cols),
                             dtype=self.dtype, compressor=self._compressor(), store=self.st,
                             overwrite=True)
        return self.z

    def durable(self):
        if self.kind == "lmdb":
            self.st.db.sync(True)
        else:
            os.sync()

    def close(self):
        if self.kind == "lmdb":
            self.st.close()
        self.st = self.z = None

    def open(self, store, write=False):
        import zarr
        self.st = self._store(store)
        self.z = zarr.open_array(self.st, mode="r+" if write else "r")
        return self.z

    def append_begin(self, store, fresh):
        if fresh:
            self.create(store, 0)
        else:
            self.open(store, True)
        return self.z.shape[0]

    def append(self, values):
        self.z.append(values)
        self.durable()

    def append_end(self):
        self.close()


class Bigarray(System):
    def __init__(self, name, dtype, cols, codec):
        super().__init__(name, dtype, cols)
        self.codec = codec

    def create(self, store, rows):
        import bigarray
        self.db = bigarray.open(store)
        self.A = self.db.create("a", shape=(rows, self.cols), dtype=self.dtype,
                                codec=self.codec)
        return self.A

    def durable(self):
        self.db.commit()

    def close(self):
        self.db.close()
        self.db = self.A = None

    def open(self, store, write=False):
        import bigarray
        self.db = bigarray.open(store, create=False)
        self.A = self.db["a"]
        return self.A

    def append_begin(self, store, fresh):
        if fresh:
            self.create(store, 0)
            self.db.commit()
        else:
            self.open(store, True)
        return self.A.shape[0]

    def append(self, values):
        self.A.append(values)
        self.db.commit()

    def append_end(self):
        self.db.close()

    def stat(self):
        try:
            st = self.db.pager_stat()
            keys = ("loads", "readahead_loads", "evictions", "ram_limit", "direct_loads",
                    "direct_copies")
            return {k: st[k] if isinstance(st, dict) else getattr(st, k) for k in keys
                    if (k in st if isinstance(st, dict) else hasattr(st, k))}
        except Exception:  # noqa: BLE001 - a missing counter must not lose the figure
            return {}


def make_system(name, dtype, cols):
    if name == "memmap":
        return Memmap(name, dtype, cols)
    if name in ("h5py", "h5py-gzip1"):
        return H5(name, dtype, cols, name.endswith("gzip1"))
    if name.startswith("zarr-"):
        kind = "lmdb" if name.startswith("zarr-lmdb") else "dir"
        codec = "zstd1" if name.endswith("zstd1") else ("blosc" if "blosc" in name else None)
        return Zarr(name, dtype, cols, kind, codec)
    if name.startswith("bigarray-py"):
        return Bigarray(name, dtype, cols, "zstd:1" if name.endswith("zstd1") else None)
    raise SystemExit(f"bench_py: unknown system {name}")


# ---- result lines ----------------------------------------------------------------------------

def emit(args, workload, unit, samples, **extra):
    s = sorted(samples)
    n = len(s)
    med = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    def g(x):
        return float(f"{x:.6g}")
    print(json.dumps({"system": args.system, "workload": args.workload or workload,
                      "dataset": args.dataset, "value": g(med), "unit": unit, "n": n,
                      "min": g(s[0]), "max": g(s[-1]), "samples": [g(x) for x in samples][:64],
                      "extra": extra}), flush=True)


def load_src(path, dtype, cols):
    a = np.fromfile(path, dtype=dtype)
    return a.reshape(-1, cols)


def src_rows(src, row, n):
    """Rows [row, row + n) of an array built from a repeating source."""
    r = row % src.shape[0]
    if r + n <= src.shape[0]:
        return src[r:r + n]
    return np.concatenate([src[r:], src_rows(src, row + src.shape[0] - r, n - src.shape[0] + r)])


# ---- operations ------------------------------------------------------------------------------

def op_write(args, sysm):
    src = load_src(args.src, args.dtype, args.cols)
    rows = args.rows or src.shape[0]
    cr = sysm.chunk_rows
    out = []
    for rep in range(args.reps):
        rmtree(args.store)
        set_cache(args.cache, args.store)
        t0 = time.perf_counter()
        a = sysm.create(args.store, rows)
        for i in range(0, rows, cr):
            n = min(cr, rows - i)
            a[i:i + n] = src_rows(src, i, n)
            if args.commit_rows and (i + n) % args.commit_rows == 0 and i + n < rows:
                sysm.durable()
        t1 = time.perf_counter()
        sysm.durable()
        t2 = time.perf_counter()
        sysm.close()
        out.append(rows * args.cols * sysm.dtype.itemsize / 1e6 / (t2 - t0))
        print(f"bench_py {args.system} write rep {rep}: {out[-1]:.0f} MB/s "
              f"(durable {t2 - t1:.2f} s)", file=sys.stderr, flush=True)
    emit(args, "W1", "MB/s", out, seconds=round(t2 - t0, 3), last_durable_s=round(t2 - t1, 3))
    emit(args, "W7", "bytes", [disk_bytes(args.store)],
         logical_bytes=rows * args.cols * sysm.dtype.itemsize)


def sum_rows(a, lo, hi, cr):
    s = 0.0
    for i in range(lo, hi, cr):
        s += float(a[i:min(i + cr, hi)].sum())
    return s


def sum_threads(a, rows, cr, threads):
    if threads == 1:
        return sum_rows(a, 0, rows, cr)
    per = -(-rows // threads)
    per = -(-per // cr) * cr
    res = [0.0] * threads

    def part(t):
        res[t] = sum_rows(a, min(rows, t * per), min(rows, (t + 1) * per), cr)

    ts = [threading.Thread(target=part, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(res)


def timed_reads(args, sysm, body):
    """args.reps repetitions of: set the page cache, open a fresh handle, body(a) -> (bytes
    or reads, result), close. Returns the rates, the last result, the last repetition's
    resident bytes before the clock started, and the system's counters. The handle lives
    only inside one() so nothing maps the store while the cache is dropped."""
    def one():
        res = set_cache(args.cache, args.store)
        t0 = time.perf_counter()
        a = sysm.open(args.store)
        amount, result = body(a)
        dt = time.perf_counter() - t0
        extra = sysm.stat() if hasattr(sysm, "stat") else {}
        sysm.close()
        return amount / dt, result, res, extra
    rates, last = [], None
    for _ in range(args.reps):
        rate, result, res, extra = one()
        rates.append(rate)
        last = (result, res, extra)
    return rates, last[0], last[1], last[2]


def op_scan(args, sysm):
    def body(a):
        rows = a.shape[0]
        s = sum_threads(a, rows, sysm.chunk_rows, args.threads)
        return rows * args.cols * sysm.dtype.itemsize / 1e6, s
    out, s, res, extra = timed_reads(args, sysm, body)
    wl = "W9" if args.threads > 1 else ("W3-cold" if args.cache == "cold" else "W2-fresh")
    emit(args, wl, "MB/s", out, threads=args.threads, cache=args.cache, sum=s,
         resident_MiB_before=res >> 20, **extra)


def op_scanhot(args, sysm):
    set_cache(args.cache, args.store)
    a = sysm.open(args.store)
    rows = a.shape[0]
    nb = rows * args.cols * sysm.dtype.itemsize
    t0 = time.perf_counter()
    s = sum_threads(a, rows, sysm.chunk_rows, args.threads)
    first = nb / 1e6 / (time.perf_counter() - t0)
    out = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        s = sum_threads(a, rows, sysm.chunk_rows, args.threads)
        out.append(nb / 1e6 / (time.perf_counter() - t0))
    extra = sysm.stat() if hasattr(sysm, "stat") else {}
    sysm.close()
    emit(args, "W2", "MB/s", out, first_pass_MBps=round(first, 1), threads=args.threads, sum=s,
         **extra)


def rand_rows(seed, count, rows, nrow):
    """The same positions as bench_common.h's splitmix64-based bench_below()."""
    m = (1 << 64) - 1
    out = []
    s = seed
    for _ in range(count):
        s = (s + 0x9e3779b97f4a7c15) & m
        z = s
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & m
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & m
        z ^= z >> 31
        out.append(z % (rows - nrow + 1))
    return out


def op_rand(args, sysm):
    count = args.count or 2000
    nrow = max(1, 65536 // (args.cols * sysm.dtype.itemsize))

    def body(a):
        s = 0.0
        for r in rand_rows(args.seed, count, a.shape[0], nrow):
            s += float(a[r:r + nrow].sum())
        return count, s
    out, s, res, extra = timed_reads(args, sysm, body)
    emit(args, "W4-cold" if args.cache == "cold" else "W4-warm", "reads/s", out, reads=count,
         cache=args.cache, sum=s, resident_MiB_before=res >> 20, **extra)


def op_rewrite(args, sysm):
    count = args.count or 10
    set_cache(args.cache, args.store)
    a = sysm.open(args.store, write=True)
    rows = a.shape[0]
    cr = sysm.chunk_rows
    nblocks = -(-rows // cr)
    nchange = args.blocks or max(1, (nblocks + 50) // 100)
    rng = np.random.Generator(np.random.PCG64(args.seed))
    out = []
    for c in range(count):
        row = np.arange(args.cols, dtype=np.float64) * 0.5 + (c + 1)
        t0 = time.perf_counter()
        for _ in range(nchange):
            b = int(rng.integers(nblocks))
            r = min(rows - 1, b * cr + int(rng.integers(cr)))
            a[r] = row
        sysm.durable()
        out.append((time.perf_counter() - t0) * 1e3)
    sysm.close()
    emit(args, "W5-1block" if args.blocks == 1 else "W5", "ms/commit", out,
         blocks_per_commit=nchange)


def op_append(args, sysm):
    src = load_src(args.src, args.dtype, args.cols)
    count = args.count or 1000
    nrow = max(1, (1 << 20) // (args.cols * sysm.dtype.itemsize))
    fresh = not os.path.exists(args.store)
    tot, lat = [], []
    start = None
    for rep in range(args.reps):
        if fresh:
            rmtree(args.store)
        row = sysm.append_begin(args.store, fresh)
        if start is None:
            start = row
        tot.append(0.0)
        for _ in range(count):
            v = np.ascontiguousarray(src_rows(src, row, nrow))  # not timed
            t1 = time.perf_counter()
            sysm.append(v)
            dt = time.perf_counter() - t1
            lat.append(dt * 1e3)
            tot[-1] += dt
            row += nrow
        sysm.append_end()
        print(f"bench_py {args.system} append rep {rep}: {tot[-1]:.2f} s", file=sys.stderr,
              flush=True)
    lat.sort()
    emit(args, "W6", "s", tot, appends=count, append_bytes=nrow * args.cols * sysm.dtype.itemsize,
         start_bytes=start * args.cols * sysm.dtype.itemsize,
         ms_median=round(lat[len(lat) // 2], 3), ms_p90=round(lat[len(lat) * 9 // 10], 3),
         ms_p99=round(lat[len(lat) * 99 // 100], 3), ms_max=round(lat[-1], 3))


def op_mean(args, sysm):
    """np.mean over the whole array as a numpy user writes it (issue #4); h5py and zarr,
    which cannot hand out a view of the whole array, are read in 2 MiB slices."""
    def body(a):
        n = a.shape[0] * a.shape[1]
        if isinstance(sysm, (H5, Zarr)):
            m = sum_rows(a, 0, a.shape[0], sysm.chunk_rows) / n
        else:
            m = float(np.mean(a if isinstance(sysm, Memmap) else a[:]))
        return n * sysm.dtype.itemsize / 1e6, m
    out, m, res, extra = timed_reads(args, sysm, body)
    emit(args, "E2E-mean", "MB/s", out, cache=args.cache, mean=m, resident_MiB_before=res >> 20,
         **extra)


OPS = {"write": op_write, "scan": op_scan, "scanhot": op_scanhot, "rand": op_rand,
       "rewrite": op_rewrite, "append": op_append, "mean": op_mean}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("op", choices=sorted(OPS))
    p.add_argument("--system", required=True, choices=SYSTEMS)
    p.add_argument("--store", required=True)
    p.add_argument("--src")
    p.add_argument("--dataset", default="sin")
    p.add_argument("--workload")
    p.add_argument("--cache", default="asis", choices=("warm", "cold", "asis"))
    p.add_argument("--dtype", default="<f8")
    p.add_argument("--rows", type=int, default=0)
    p.add_argument("--cols", type=int, default=1024)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--blocks", type=int, default=0)
    p.add_argument("--commit-rows", type=int, default=0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--codec", help="ignored (the system name says it); accepted for symmetry")
    args = p.parse_args()
    OPS[args.op](args, make_system(args.system, args.dtype, args.cols))


if __name__ == "__main__":
    main()
