# SPDX-License-Identifier: MIT
"""bigarray from Python: an array larger than its RAM limit, processed with numpy.

In the spirit of wendelin.core's demo_zbigarray: create an array four times larger
than the pager's RAM limit, fill it, commit, reduce it with plain numpy calls over a
view of the whole array, append, resize, abort, and check every step. Prints
progress; exits with status 1 if a check fails.

From a build tree (no install needed):

    cmake -S . -B build && cmake --build build
    PYTHONPATH=build/python /usr/bin/python3 demo/demo.py [DB] [--ram-limit 64M]

DB defaults to a temporary directory that is removed at the end (--keep keeps it).
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

import bigarray

COLS = 1024  # float64 columns: one row is 8 KiB


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", flush=True)
        sys.exit(1)
    print(f"   ok: {what}", flush=True)


def expected_rows(first, n):
    """Rows first..first+n-1 of the demo data: element (i, j) = i * COLS + j."""
    return (np.arange(first, first + n, dtype="f8")[:, None] * COLS
            + np.arange(COLS, dtype="f8")[None, :])


def mib(n):
    return f"{n / (1 << 20):.0f} MiB"


def run(path, ram_limit, factor):
    t0 = time.monotonic()

    def say(msg):
        print(f"[{time.monotonic() - t0:6.2f}s] {msg}", flush=True)

    rows = factor * ram_limit // (COLS * 8)
    with bigarray.open(path, ram_limit=ram_limit) as db:
        say(f"opened {path} (pager {db.pager}, RAM limit {mib(ram_limit)})")
        if "demo" in db:  # a database kept from an earlier run
            db.drop("demo")
            db.commit()
        A = db.create("demo", shape=(0, COLS), dtype="f8", block_size="1M", codec="zstd:1")
        say(f"created {A!r}")

        # 1. fill by appending chunks; dirty data beyond the RAM limit spills to disk
        chunk = max(1, rows // 16)
        for first in range(0, rows, chunk):
            n = min(chunk, rows - first)
            A.append(expected_rows(first, n))
            say(f"appended rows {first}..{first + n - 1}: {A!r}")
        check(A.shape == (rows, COLS), f"shape is {A.shape}")
        check(A.nbytes >= factor * ram_limit,
              f"{mib(A.nbytes)} array, {A.nbytes / ram_limit:.1f}x the RAM limit")

        # 2. commit
        db.commit()
        info = A.info()
        say(f"committed: {info['stored_blocks']} blocks, {mib(info['stored_bytes'])} on disk "
            f"for {mib(info['nbytes'])}")

        # 3. reduce with numpy, straight over the mapping of the whole array
        n = rows * COLS
        mean = np.mean(A[:])
        say(f"np.mean(A[:]) = {mean}")
        check(abs(mean - (n - 1) / 2) <= 1e-9 * n, "mean equals (n - 1) / 2")
        colsum = A[:].sum(axis=0)
        check(np.allclose(colsum, rows * (rows - 1) / 2 * COLS + rows * np.arange(COLS),
                          rtol=1e-12), "column sums")
        st = db.pager_stat()
        say(f"pager: {st['loads']} loads, {st['evictions']} evictions, "
            f"{mib(st['ram_used'])} of {mib(st['ram_limit'])} RAM in use")
        check(st["ram_used"] <= ram_limit, "RAM use stays within the limit")
        check(np.array_equal(A[rows // 2, ::100], expected_rows(rows // 2, 1)[0, ::100]),
              "a strided row reads back")

        # 4. append, commit
        A.append(expected_rows(rows, 10))
        db.commit()
        check(A.shape == (rows + 10, COLS) and A[-1, -1] == (rows + 10) * COLS - 1,
              f"appended 10 rows and committed: {A!r}")

        # 5. resize (O(1)), then abort: the shape and data come back
        tail = A[-10:]
        A.resize((2 * rows, COLS))
        check(not A[rows + 10:].any(), f"resized to {A.shape}: the new rows read zeros")
        A[-1] = 1.0
        A.resize((rows // 2, COLS))
        check(A.shape == (rows // 2, COLS), f"resized to {A.shape}")
        db.abort()
        check(A.shape == (rows + 10, COLS), f"aborted: back to {A.shape}")
        check(np.array_equal(tail, expected_rows(rows, 10)), "a view made before still "
              "shows the committed rows")
        check(np.array_equal(A[rows // 3], expected_rows(rows // 3, 1)[0])
              and np.mean(A[:rows]) == mean, "data unchanged after abort")

        # 6. another session reads its own snapshot while this one changes
        other = db.session()
        A[0, 0] = -1.0
        db.commit()
        check(other["demo"][0, 0] == 0.0, "another session still reads its snapshot")
        other.abort()
        check(other["demo"][0, 0] == -1.0, "and sees the commit after its abort")
        other.close()

        problems = db.verify()
        check(not problems, f"verify: {len(problems)} problems")
    say("done")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("db", nargs="?", help="database directory (default: a temporary one)")
    ap.add_argument("--ram-limit", default="64M", help="pager RAM limit (default 64M)")
    ap.add_argument("--factor", type=int, default=4,
                    help="array size as a multiple of the RAM limit (default 4)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary database")
    args = ap.parse_args()
    ram_limit = bigarray.parse_size(args.ram_limit, "--ram-limit")
    tmp = None
    path = args.db
    if path is None:
        tmp = tempfile.mkdtemp(prefix="bigarray-demo-")
        path = os.path.join(tmp, "demo.db")
    try:
        run(path, ram_limit, args.factor)
    finally:
        if tmp and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
