# SPDX-License-Identifier: MIT
"""Helpers for the CLI tests: make .npy and raw files with numpy, and check what the
bigarray CLI produced against numpy computing the same thing independently.

Every command prints one short, stable line (or a few), so the scenario scripts can
compare their whole output exactly. Run with Debian's /usr/bin/python3 (numpy).

  make FILE DTYPE SHAPE ORDER SEED       random data of that dtype saved with np.save
  raw FILE DTYPE SHAPE ORDER SEED        the same values as raw bytes in ORDER
  arange FILE DTYPE SHAPE ORDER          0, 1, 2, ... saved with np.save
  values FILE DTYPE SHAPE EXPR           np.array(eval(EXPR)) of that dtype and shape
  same A B                               byte-identical files?
  equal A B                              same dtype, shape and values (NaN == NaN)?
  concat OUT AXIS A B...                 np.concatenate of .npy files along AXIS
  slice IN OUT SLICE                     np.save(OUT, np.load(IN)[SLICE])
  assign IN OUT SLICE VALUE              a = np.load(IN); a[SLICE] = VALUE; np.save(OUT, a)
  str IN [SLICE]                         print(np.load(IN)[SLICE]) the way numpy prints
  getjson IN JSONFILE [SLICE]            does bigarray's `get --json` match the values?
  stats IN JSONFILE [SLICE] [DDOF]       do bigarray's `stats --json` numbers match numpy?
  json FILE                              parse FILE as JSON and print its top-level keys
  bigfile FILE MB                        MB MiB of f8 counters 0, 1, 2... as raw bytes
  slowfeed FIFO MB MARK                  write MB MiB to FIFO, touch MARK, then wait
  gatedfeed FIFO FILE MARK GO            write half of FILE to FIFO, touch MARK, wait
                                         for the file GO, write the rest
  damage FILE PATTERNHEX                 flip a byte inside the first occurrence of PATTERN
"""
import json
import os
import sys
import time
import warnings

import numpy as np

warnings.simplefilter("ignore")


def parse_shape(text):
    text = text.strip().strip("()")
    return tuple(int(x) for x in text.split(",") if x.strip())


def index(text):
    """numpy index from slice text: '2:10, ::3' -> a[2:10, ::3]."""
    if text == "":
        return ()
    return eval("np.s_[" + text + "]", {"np": np})


def rand_array(dtype, shape, order, seed):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    if dt.kind == "b":
        flat = rng.integers(0, 2, n).astype(bool)
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        flat = rng.integers(info.min, info.max, n, dtype=dt.newbyteorder("="), endpoint=True)
    elif dt.kind == "f":
        flat = rng.standard_normal(n) * 1000
        if n > 8:
            flat[3] = np.nan
            flat[5] = -0.0
    elif dt.kind == "c":
        flat = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    elif dt.kind == "V":
        flat = np.frombuffer(rng.bytes(n * dt.itemsize), dtype=dt)
    else:
        raise SystemExit("unsupported dtype " + dtype)
    return np.asarray(flat.astype(dt).reshape(shape), order=order)


def cmd_make(f, dtype, shape, order, seed):
    np.save(f, rand_array(dtype, parse_shape(shape), order, int(seed)), allow_pickle=False)


def cmd_raw(f, dtype, shape, order, seed):
    a = rand_array(dtype, parse_shape(shape), order, int(seed))
    with open(f, "wb") as out:
        out.write(a.tobytes(order=order))


def cmd_arange(f, dtype, shape, order):
    shape = parse_shape(shape)
    a = np.arange(int(np.prod(shape))).astype(dtype).reshape(shape)
    np.save(f, np.asarray(a, order=order))


def cmd_values(f, dtype, shape, expr):
    a = np.array(eval(expr, {"np": np, "nan": np.nan, "inf": np.inf}), dtype=dtype)
    np.save(f, a.reshape(parse_shape(shape)))


def cmd_same(a, b):
    x = open(a, "rb").read()
    y = open(b, "rb").read()
    if x == y:
        print("same")
        return
    n = min(len(x), len(y))
    first = next((i for i in range(n) if x[i] != y[i]), n)
    print("DIFFERENT: %s has %d bytes, %s has %d, first difference at byte %d"
          % (a, len(x), b, len(y), first))


def equal_arrays(x, y):
    if x.dtype != y.dtype or x.shape != y.shape:
        return "dtype/shape %s%s vs %s%s" % (x.dtype.str, x.shape, y.dtype.str, y.shape)
    if x.dtype.kind in "fc":
        ok = np.array_equal(x, y, equal_nan=True)
        # -0.0 vs 0.0 must match too: compare bytes where values are equal.
        ok = ok and np.ascontiguousarray(x).tobytes() == np.ascontiguousarray(y).tobytes()
    else:
        ok = np.ascontiguousarray(x).tobytes() == np.ascontiguousarray(y).tobytes()
    return None if ok else "values differ"


def cmd_equal(a, b):
    why = equal_arrays(np.load(a), np.load(b))
    print("equal" if why is None else "NOT EQUAL: " + why)


def cmd_concat(out, axis, *files):
    arrs = [np.load(f) for f in files]
    r = np.concatenate(arrs, axis=int(axis))
    if arrs[0].flags.f_contiguous and not arrs[0].flags.c_contiguous:
        r = np.asfortranarray(r)
    np.save(out, r)


def cmd_slice(src, out, text):
    np.save(out, np.load(src)[index(text)])


def cmd_assign(src, out, text, value):
    a = np.load(src)
    a[index(text)] = np.array(value).astype(a.dtype) if a.dtype.kind != "b" else value in ("1", "true", "True")
    np.save(out, a)


def cmd_str(src, text=""):
    print(np.load(src)[index(text)])


def from_json(v, dt):
    if dt.kind == "c":
        return complex(from_json(v[0], np.dtype("f8")), from_json(v[1], np.dtype("f8")))
    if dt.kind == "V":
        return bytes.fromhex(v)
    if isinstance(v, str):
        return float(v)
    return v


def cmd_getjson(src, jfile, text=""):
    a = np.load(src)[index(text)]
    doc = json.load(open(jfile))
    if doc["dtype"] != a.dtype.str or tuple(doc["shape"]) != a.shape:
        print("MISMATCH dtype/shape", doc["dtype"], doc["shape"], a.dtype.str, a.shape)
        return
    flat = []

    def walk(v, depth):
        if depth == a.ndim:
            flat.append(from_json(v, a.dtype))
        else:
            for x in v:
                walk(x, depth + 1)
    walk(doc["data"], 0)
    if a.dtype.kind == "V":
        b = np.array(flat, dtype="V%d" % a.dtype.itemsize).reshape(a.shape)
    else:
        b = np.array(flat, dtype=a.dtype).reshape(a.shape)
    why = equal_arrays(np.ascontiguousarray(a), b)
    print("get --json matches" if why is None else "MISMATCH: " + why)


def cmd_stats(src, jfile, text="", ddof="0"):
    a = np.load(src)[index(text)]
    doc = json.load(open(jfile))
    v = a.astype(np.float64) if a.dtype.kind != "f" else a
    nan = int(np.isnan(v).sum()) if v.dtype.kind == "f" else 0
    good = v[~np.isnan(v)] if v.dtype.kind == "f" else v.ravel()
    want = {"count": a.size, "nan_count": nan}
    if good.size:
        if a.dtype.kind in "iub":
            want["min"], want["max"] = int(a.min()), int(a.max())
        else:
            want["min"], want["max"] = float(np.nanmin(a)), float(np.nanmax(a))
        want["mean"] = float(np.mean(good.astype(np.float64)))
        want["std"] = float(np.std(good.astype(np.float64), ddof=int(ddof))) \
            if good.size > int(ddof) else None
    else:
        want.update(min=None, max=None, mean=None, std=None)
    bad = []
    scale = max(abs(want.get("mean") or 0.0), want.get("std") or 0.0, 1e-300)
    for k, w in want.items():
        g = doc.get(k)
        if isinstance(g, str):
            g = float(g)
        if k in ("count", "nan_count"):
            ok = g == w
        elif k in ("min", "max"):
            # Floats print in their own precision: compare in the array's dtype.
            ok = (g is None and w is None) or (
                g is not None and w is not None and
                (a.dtype.type(g) == a.dtype.type(w) if a.dtype.kind == "f" else g == w))
        elif g is None or w is None:
            ok = g is None and w is None
        elif np.isnan(w) or np.isnan(g):
            ok = bool(np.isnan(w) and np.isnan(g))
        else:
            ok = g == w or abs(g - w) <= 1e-9 * (scale if k == "mean" else max(abs(w), 1e-300))
        if not ok:
            bad.append("%s: bigarray %r, numpy %r" % (k, g, w))
    print("stats match numpy" if not bad else "MISMATCH " + "; ".join(bad))


def cmd_json(f):
    doc = json.load(open(f))
    if isinstance(doc, dict):
        print("object:", " ".join(doc.keys()))
    elif isinstance(doc, list):
        print("list of %d" % len(doc), " ".join(sorted({k for d in doc for k in d})))
    else:
        print(type(doc).__name__)


def cmd_bigfile(f, mb):
    n = int(mb) * (1 << 20) // 8
    with open(f, "wb") as out:
        step = 1 << 20
        for i in range(0, n, step):
            out.write(np.arange(i, min(n, i + step), dtype="<f8").tobytes())


def cmd_slowfeed(fifo, mb, mark):
    """Write MB MiB of f8 counters into the FIFO, then mark, then hold it open."""
    n = int(mb) * (1 << 20) // 8
    with open(fifo, "wb") as out:
        out.write(np.arange(n, dtype="<f8").tobytes())
        out.flush()
        open(mark, "w").close()
        time.sleep(120)  # the test kills us long before; never outlive it by much


def cmd_gatedfeed(fifo, src, mark, go):
    data = open(src, "rb").read()
    with open(fifo, "wb") as out:
        out.write(data[:len(data) // 2])
        out.flush()
        open(mark, "w").close()
        for _ in range(6000):
            if os.path.exists(go):
                break
            time.sleep(0.1)
        out.write(data[len(data) // 2:])


def cmd_damage(f, pattern_hex):
    pat = bytes.fromhex(pattern_hex)
    with open(f, "rb") as fh:
        # up to the first hole: data.mdb is sparse, as long as LMDB's map
        end = os.lseek(fh.fileno(), 0, os.SEEK_HOLE)
        fh.seek(0)
        data = bytearray(fh.read(end))
    i = data.find(pat)
    if i < 0:
        print("pattern not found")
        return
    data[i + len(pat) // 2] ^= 0xFF
    with open(f, "r+b") as out:
        out.seek(i + len(pat) // 2)
        out.write(bytes([data[i + len(pat) // 2]]))
    print("damaged one byte")


def main():
    cmd = sys.argv[1].replace("-", "_")
    globals()["cmd_" + cmd](*sys.argv[2:])


if __name__ == "__main__":
    main()
