#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Write the benchmark's source data once (raw little-endian files, fixed seeds).

  src_sin.f64   float64 round(sin(i/1000)*1000)/1000, i = flat index (zstd-1 ~50x)
  src_rand.f64  float64 uniform [0, 1) from PCG64(seed 8) (incompressible)
  src_i32.i32   int32 counters 0, 1, 2, ... (for sizes: shuffle+zstd against Blosc)

Usage: bench_gen.py DIR F64_BYTES I32_BYTES. A file of the right size and parameters is
kept (a .done stamp records them), so reruns cost nothing.
"""
import os
import sys

import numpy as np

CHUNK = 1 << 24  # elements per generation step (128 MiB of float64)


def fill(path, nbytes, dtype, gen):
    stamp = path + ".done"
    tag = f"{nbytes} {np.dtype(dtype).str} v1\n"
    if os.path.exists(path) and os.path.exists(stamp) and open(stamp).read() == tag \
            and os.path.getsize(path) == nbytes:
        return
    n = nbytes // np.dtype(dtype).itemsize
    with open(path + ".tmp", "wb") as f:
        for lo in range(0, n, CHUNK):
            gen(lo, min(n, lo + CHUNK)).astype(dtype, copy=False).tofile(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)
    with open(stamp, "w") as f:
        f.write(tag)
    print(f"bench_gen: wrote {path} ({nbytes >> 20} MiB)", file=sys.stderr, flush=True)


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    d, f64, i32 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.makedirs(d, exist_ok=True)
    fill(os.path.join(d, "src_sin.f64"), f64, "<f8",
         lambda lo, hi: np.round(np.sin(np.arange(lo, hi, dtype=np.float64) / 1000) * 1000)
         / 1000)
    rng = np.random.Generator(np.random.PCG64(8))
    fill(os.path.join(d, "src_rand.f64"), f64, "<f8", lambda lo, hi: rng.random(hi - lo))
    fill(os.path.join(d, "src_i32.i32"), i32, "<i4",
         lambda lo, hi: np.arange(lo, hi, dtype=np.int64).astype(np.int32))


if __name__ == "__main__":
    main()
