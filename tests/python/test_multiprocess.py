# SPDX-License-Identifier: MIT
"""Two processes on one database (wendelin.core's two-connection cases): isolation,
even after the reader's cache was reclaimed; data and metadata conflicts (first
committer wins, ConflictError, abort, retry); invalidation of cached blocks and of
the shape after a transaction boundary. Each process is a worker interpreter."""
import numpy as np
import pytest

import bigarray
from conftest import RemoteError

OPEN = "db = bigarray.open({path!r}, ram_limit='{ram}')\n"


@pytest.fixture
def two(worker, dbpath):
    with bigarray.open(dbpath) as db:
        db.create("x", shape=(64, 1024), dtype="i8", block_size="64K")  # 8 rows per block
        db.create("big", shape=(64 << 20) // 8, dtype="f8", block_size="64K")
        db.commit()
    p1, p2 = worker(), worker()
    p1(OPEN.format(path=dbpath, ram="16M") + "A = db['x']")
    p2(OPEN.format(path=dbpath, ram="16M") + "A = db['x']")
    return p1, p2


def test_isolation_survives_reclaim(two):
    p1, p2 = two
    p1("A[:] = 1; db.commit()")
    assert p2("result = int(A[:].sum())") == 0  # p2's snapshot predates the commit
    p2("db.abort()")
    assert p2("result = int(A[:].sum())") == 64 * 1024
    p1("A[:] = 2; db.commit()")
    # Push x's blocks out of p2's 16 MiB of RAM by reading 64 MiB of another array:
    # reloading them must still read p2's snapshot.
    p2("B = db['big']; s = float(np.sum(B[:]))")
    assert p2("result = db.pager_stat()['evictions'] > 0")
    assert p2("result = int(A[:].sum())") == 64 * 1024
    p2("db.commit()")
    assert p2("result = int(A[:].sum())") == 2 * 64 * 1024


def test_conflict_abort_retry(two):
    p1, p2 = two
    p1("A[0, 0] = 11")
    p2("A[1, 5] = 12")  # the same block as [0, 0]
    p1("db.commit()")
    with pytest.raises(RemoteError) as e:
        p2("db.commit()")
    assert e.value.type == "ConflictError"
    assert p2("result = (db.dirty, int(A[1, 5]))") == (True, 12)
    p2("db.abort()")
    assert p2("result = (int(A[0, 0]), int(A[1, 5]))") == (11, 0)
    p2("A[1, 5] = 13; db.commit()")
    assert p1("result = int(A[1, 5])") == 0
    p1("db.abort()")
    assert p1("result = (int(A[0, 0]), int(A[1, 5]))") == (11, 13)
    # different blocks do not conflict
    p1("A[0, 0] = 21")
    p2("A[63, 0] = 22")
    p1("db.commit()")
    p2("db.commit()")
    p1("db.abort()")
    assert p1("result = (int(A[0, 0]), int(A[63, 0]))") == (21, 22)


def test_metadata_conflict(two):
    p1, p2 = two
    p1("A.resize((11, 1024))")
    p2("A.resize((12, 1024))")
    p1("db.commit()")
    with pytest.raises(RemoteError) as e:
        p2("db.commit()")
    assert e.value.type == "ConflictError"
    p2("db.abort()")
    assert p2("result = A.shape") == (11, 1024)
    p2("A.resize((13, 1024)); db.commit()")
    assert p1("result = A.shape") == (11, 1024)
    p1("db.commit()")
    assert p1("result = A.shape") == (13, 1024)


def test_invalidation_of_blocks_and_shape(two):
    p1, p2 = two
    p2("v = A[:]; before = int(v.sum())")  # p2 caches every block of x
    p1("A[::7, ::3] = 5; A.append(np.full((1, 1024), 9)); db.commit()")
    assert p2("result = (A.shape, int(v.sum()))") == ((64, 1024), 0)
    p2("db.abort()")
    # exactly the changed blocks were reloaded: the old view shows the new data, the
    # shape grew, the appended row is there
    expected = int((np.arange(64)[:, None] % 7 == 0).sum() * len(range(0, 1024, 3)) * 5)
    assert p2("result = (A.shape, int(v.sum()), int(A[64].sum()))") == \
        ((65, 1024), expected, 9 * 1024)
    p2("A[64, 0] = 1; db.commit()")
    p1("db.abort()")
    assert p1("result = int(A[64, 0])") == 1


def test_drop_seen_by_the_other_process(two):
    p1, p2 = two
    p2("v = A[:]")
    p1("db.drop('x'); db.commit()")
    assert p2("result = 'x' in db") is True
    p2("db.abort()")
    assert p2("result = 'x' in db") is False
    with pytest.raises(RemoteError) as e:
        p2("db['x']")
    assert e.value.type == "KeyError"


def spawn_sum(path, start, stop):
    """Run in a child started by multiprocessing's 'spawn': open the database anew."""
    with bigarray.open(path, readonly=True) as db:
        return float(np.sum(db["big"][start:stop]))


def test_multiprocessing_spawn_workers(dbpath):
    import concurrent.futures
    import multiprocessing
    n = 1 << 20
    with bigarray.open(dbpath) as db:
        db.create("big", data=np.arange(n, dtype="f8"), block_size="64K")
        db.commit()
    # (a ProcessPoolExecutor fails with BrokenProcessPool if a worker dies, where a
    # multiprocessing.Pool would wait forever)
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        futs = [ex.submit(spawn_sum, dbpath, i, i + n // 4) for i in range(0, n, n // 4)]
        sums = [f.result(timeout=120) for f in futs]
    assert sum(sums) == n * (n - 1) / 2
