# SPDX-License-Identifier: MIT
"""The database, session and array objects: creation, attributes, reprs, the
catalog (list, iteration, in, drop, copy), transactions within one process,
threads, closing, and the helpers (info, stat, verify, DLPack)."""
import os
import threading

import numpy as np
import pytest

import bigarray

RECORD = np.dtype([("a", "<i4"), ("b", "<f8"), ("c", "u1")])


def test_issue_example(dbpath):
    with bigarray.open(dbpath, ram_limit="2G") as db:
        A = db.create("temps", shape=(0, 1024), dtype="f8", order="C", block_size="2M",
                      codec="zstd:1")
        data = np.random.default_rng(0).random((1000, 1024))
        A.append(data)
        a = A[10:100, ::2]
        assert isinstance(a, np.ndarray) and type(a) is np.ndarray
        a[:] *= 2
        db.commit()
        assert repr(A) == "<bigarray temps f8 (1000, 1024) C zstd:1>"
    with bigarray.open(dbpath, ram_limit=2 << 30) as db:
        B = db["temps"]
        assert B.shape == (1000, 1024) and B.dtype == np.float64 and len(B) == 1000
        data[10:100, ::2] *= 2
        assert np.mean(B[:]) == np.mean(data)
        B.resize((5000, 1024))
        assert B.shape == (5000, 1024) and not B[1000:].any()
        db.abort()
        assert B.shape == (1000, 1024)


def test_attributes(db):
    A = db.create("a", shape=(10, 3), dtype="i4")
    assert (A.shape, A.ndim, A.size, A.itemsize, A.nbytes, len(A)) == ((10, 3), 2, 30, 4,
                                                                        120, 10)
    assert A.strides == (12, 4) and A.order == "C" and A.dtype == np.int32
    assert A.codec == "none" and A.block_size == 2 << 20 and A.name == "a"
    F = db.create("f", shape=(10, 3), dtype="i4", order="f", block_size=8192)
    assert F.strides == (4, 40) and F.order == "F" and len(F) == 10 and F.block_size == 8192
    assert repr(F) == "<bigarray f i4 (10, 3) F none>"
    B = db.create("b", shape=7, dtype=">f8", codec="zstd:3+shuffle")
    assert B.shape == (7,) and B.dtype == np.dtype(">f8") and B[:].dtype == np.dtype(">f8")
    assert repr(B) == "<bigarray b >f8 (7,) C zstd:3+shuffle>"
    assert db.create("z", shape=[0, 0, 5]).shape == (0, 0, 5)
    info = A.info()
    assert info["name"] == "a" and info["shape"] == (10, 3) and info["dirty"]
    assert info["nbytes"] == 120 and info["dtype"] == np.int32
    assert isinstance(A.stat(), dict)


def test_dtypes_round_trip(dbpath):
    names = ["b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8",
             "c16", ">i4", "V7"]
    with bigarray.open(dbpath) as db:
        for i, dt in enumerate(names):
            A = db.create(f"d{i}", shape=(5,), dtype=dt)
            assert A[:].dtype == np.dtype(dt)
        R = db.create("rec", shape=(4,), dtype=RECORD)
        R[1] = (1, 2.5, 3)
        db.commit()
    with bigarray.open(dbpath) as db:
        for i, dt in enumerate(names):
            assert db[f"d{i}"].dtype == np.dtype(dt)
        assert db["rec"].dtype == np.dtype("V13")  # records are stored as V<n>
        R = db.open("rec", dtype=RECORD)
        assert R.dtype == RECORD and R[1]["b"] == 2.5 and R[1]["c"] == 3
        with pytest.raises(TypeError):
            db.open("d3", dtype="f4")


def test_catalog(db):
    assert db.list() == [] and len(db) == 0 and "x" not in db
    for n in ["b", "a", "c"]:
        db.create(n, shape=(3,))
    assert db.list() == ["a", "b", "c"] and list(db) == ["a", "b", "c"] and len(db) == 3
    assert "a" in db and "q" not in db and 3 not in db
    assert db.get("q") is None and db.get("a") is db["a"]
    db["a"][:] = [1, 2, 3]
    with pytest.raises(ValueError):  # the library copies committed data only
        db.copy("a", "a2")
    db.commit()
    C = db.copy("a", "a2")
    assert C[:].tolist() == [1, 2, 3]
    db.drop("b")
    del db["c"]
    assert db.list() == ["a", "a2"]
    with pytest.raises(KeyError):
        db["b"]
    with pytest.raises(KeyError):
        db.drop("b")
    db.commit()
    assert db.list() == ["a", "a2"]


def test_commit_abort_and_reopen(dbpath):
    db = bigarray.open(dbpath)
    A = db.create("x", data=np.arange(10.0))
    v = A[:]
    db.commit()
    s0 = db.snapshot
    v[:] = -1
    assert db.dirty
    db.abort()
    assert not db.dirty and db.snapshot == s0
    assert v.tolist() == list(np.arange(10.0))  # the view shows the committed data
    db.create("gone", shape=(3,))
    db.abort()
    assert "gone" not in db
    v[3] = 33
    db.commit()
    assert db.snapshot > s0
    db.close()
    with bigarray.open(dbpath, create=False) as db2:
        assert db2["x"][3] == 33
    assert v[3] == 33  # views outlive the database handle


def test_sessions_are_isolated(db):
    A = db.create("x", shape=(1000,), dtype="i8")
    db.commit()
    s = db.session()
    B = s["x"]
    b = B[:]
    A[:] = 1
    db.commit()
    assert not b.any() and not B[5]  # s still reads its snapshot
    s.abort()
    assert b.all() and B[5] == 1  # after its boundary it sees the commit
    A.resize((2000,))
    db.commit()
    assert B.shape == (1000,)
    s.commit()  # nothing to commit: only moves the snapshot
    assert B.shape == (2000,) and len(B[:]) == 2000


def test_conflict_abort_retry_in_one_process(db):
    A = db.create("x", shape=(100,), dtype="i8")
    db.commit()
    s = db.session()
    B = s["x"]
    A[0] = 11
    B[1] = 12  # the same block
    db.commit()
    with pytest.raises(bigarray.ConflictError) as e:
        s.commit()
    assert isinstance(e.value, bigarray.Error) and e.value.code == bigarray.ECONFLICT
    assert s.dirty and B[1] == 12  # nothing lost: the changes stay until abort
    s.abort()
    assert B[0] == 11 and B[1] == 0
    B[1] = 13
    s.commit()
    assert A[1] == 0
    db.abort()
    assert A[:2].tolist() == [11, 13]
    # metadata conflict: both resize
    A.resize((11,))
    B.resize((12,))
    db.commit()
    with pytest.raises(bigarray.ConflictError):
        s.commit()
    s.abort()
    assert B.shape == (11,)
    s.close()


def test_threads_with_a_session_each(db):
    for i in range(4):
        db.create(f"t{i}", shape=(200000,), dtype="f8", block_size="64K")
    db.commit()
    errors = []

    def work(i):
        try:
            with db.session() as s:
                A = s[f"t{i}"]
                for r in range(3):
                    A[:] = i * 10 + r
                    s.commit()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    db.abort()
    for i in range(4):
        assert np.all(db[f"t{i}"][:] == i * 10 + 2)


def test_close_semantics(dbpath):
    db = bigarray.open(dbpath)
    A = db.create("x", data=np.arange(5.0))
    db.commit()
    s = db.session()
    B = s["x"]
    v, w = A[:], B[:]
    db.close()
    db.close()  # twice is fine
    assert db.closed and s.closed
    for f in (lambda: A.shape, lambda: A[0], lambda: db.commit(), lambda: s.commit(),
              lambda: db["x"], lambda: db.session(), lambda: B.append([1.0])):
        with pytest.raises(ValueError):
            f()
    assert v.tolist() == w.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert "closed" in repr(db) and "closed" in repr(A)


def test_readonly_database(dbpath):
    with bigarray.open(dbpath) as db:
        db.create("x", data=np.arange(5.0))
        db.commit()
    with bigarray.open(dbpath, readonly=True) as db:
        assert db.readonly
        A = db["x"]
        a = A[:]
        assert not a.flags.writeable and a.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
        with pytest.raises(ValueError):
            a[0] = 1
        with pytest.raises(ValueError):
            A[0] = 1
        with pytest.raises(bigarray.Error) as e:
            db.create("y", shape=(1,))
        assert e.value.code == bigarray.EREADONLY
        with pytest.raises(bigarray.Error):
            A.resize((6,))
    with pytest.raises(FileNotFoundError):
        bigarray.open(dbpath + "-missing", readonly=True)


def test_helpers(db):
    A = db.create("x", data=np.arange(100000.0), codec="zstd:1", block_size="64K")
    db.commit()
    st = db.stat()
    assert st["narrays"] == 1 and st["last_commit"] >= 1
    ps = db.pager_stat()
    assert ps["ram_limit"] == 64 << 20
    assert db.verify() == []
    assert db.pager in ("uffd", "sigsegv")
    info = A.info()
    assert info["stored_blocks"] >= 1 and info["created_seq"] >= 1
    assert repr(db).startswith("<bigarray.Database")
    assert bigarray.parse_size("2G") == 2 << 30 and bigarray.parse_size("1.5k") == 1536
    assert bigarray.parse_size("64MiB") == 64 << 20 and bigarray.parse_size(5) == 5


@pytest.mark.parametrize("zerocopy", [True, False])
def test_zerocopy_option(tmp_path, zerocopy):
    ref = np.arange(4 * 8192, dtype="u8")
    with bigarray.open(str(tmp_path / "z.db"), ram_limit="64M", zerocopy=zerocopy) as d:
        d.create("x", data=ref, block_size="64K")
        d.commit()
    with bigarray.open(str(tmp_path / "z.db"), ram_limit="64M", zerocopy=zerocopy) as d:
        A = d["x"]
        assert int(A[:].sum()) == int(ref.sum())
        ps = d.pager_stat()
        mapped = zerocopy and d.pager == "sigsegv"
        assert (ps["direct_loads"] == 4) == mapped and (ps["loads"] == 0) == mapped
        assert ps["direct_bytes"] == (4 * 65536 if mapped else 0)
        a = A[:]
        a[5] = 7  # a write copies the block into RAM first
        assert a[5] == 7 and a[6] == 6
        assert d.pager_stat()["direct_copies"] == (1 if mapped else 0)


@pytest.mark.parametrize("writemap", [True, False])
def test_writemap_option(tmp_path, writemap):
    ref = np.arange(4 * 8192, dtype="u8")
    path = str(tmp_path / "w.db")
    with bigarray.open(path, ram_limit="64M", map_size="1G", writemap=writemap) as d:
        d.create("x", data=ref, block_size="64K")
        d.commit()
    # LMDB sizes the file as its map with the writable map (a sparse file), else as
    # the pages it holds
    size = os.stat(os.path.join(path, "data.mdb")).st_size
    assert (size == 1 << 30) == writemap and size >= 4 * 65536
    with bigarray.open(path, ram_limit="64M", writemap=not writemap) as d:
        assert int(d["x"][:].sum()) == int(ref.sum())


def test_compact(db, tmp_path):
    if os.environ.get("BA_SANITIZE") == "thread":
        pytest.skip("under TSan the compacted copy's map does not fit the address space")
    db.create("x", data=np.arange(1000.0))
    db.commit()
    out = str(tmp_path / "copy.db")
    db.compact(out)
    with bigarray.open(out, create=False) as c:
        assert c["x"][999] == 999.0


def test_dlpack(db):
    ref = np.arange(60, dtype="f4").reshape(3, 4, 5)
    A = db.create("x", data=ref, order="C")
    whole = np.from_dlpack(A)
    assert np.array_equal(whole, ref)
    assert np.shares_memory(whole, A[:])  # the tensor points into the array's mapping
    sl = np.from_dlpack(A[1:, ::-2, 3])
    assert np.array_equal(sl, ref[1:, ::-2, 3])
    cap = A.to_dlpack(np.s_[2, 1:3])
    assert type(cap).__name__ == "PyCapsule"
    del cap  # an unconsumed capsule frees its tensor
    A[2, 1, 1] = 99  # the tensor's memory is the mapping
    assert whole[2, 1, 1] == 99
    assert A.__dlpack_device__() == (1, 0)
    R = db.create("r", shape=(3,), dtype=RECORD)
    with pytest.raises(TypeError):
        R.to_dlpack()


def test_no_reference_cycles(dbpath):
    """Dropping the last reference to a database frees it at once (no cycle waits
    for the garbage collector); arrays and views taken from it keep working."""
    import gc
    import weakref
    gc.disable()
    try:
        db = bigarray.open(dbpath)
        db.create("x", data=np.arange(10.0))
        db.commit()
        A = db["x"]
        s = db.session()
        B = s["x"]
        ref_db, ref_s = weakref.ref(db), weakref.ref(s)
        del db, s
        assert ref_db() is None and ref_s() is None
        assert A.session is None and A[3] == 3.0 and B[4] == 4.0
        A[5] = 50.0
        assert A.dirty
    finally:
        gc.enable()


def test_zbigarray_persistence_scenario(dbpath):
    """wendelin.core's test_zbigarray: a 16 Mi uint8 array through abort, commit,
    reopen, resize and append."""
    n = 16 << 20
    with bigarray.open(dbpath, ram_limit="64M") as db:
        A = db.create("z", shape=(n,), dtype="u1")
        db.commit()
    with bigarray.open(dbpath, ram_limit="64M") as db:
        A = db["z"]
        assert A.shape == (n,) and A.dtype == np.uint8
        a, b = A[:], A[:]
        assert not a[::4096].any()
        a[33] = 33
        assert b[33] == 33  # two full views alias
        a[:] = 0xFF
        db.abort()  # abort clears both views and the array
        assert not a[::4096].any() and not b[-1] and not A[5]
        a[33] = 33
        a[-2] = 98
        db.commit()
    with bigarray.open(dbpath, ram_limit="64M") as db:
        A = db["z"]
        a = A[:]
        assert a[33] == 33 and a[-2] == 98 and a[:33].sum() == 0
        A.resize((24 << 20,))
        b = A[:]
        assert np.array_equal(b[:n][::1021], a[::1021]) and b[33] == 33
        b[n] = 100
        b[-1] = 101
        A.append([1, 2, 3, 4])
        db.commit()
    with bigarray.open(dbpath, ram_limit="64M") as db:
        A = db["z"]
        assert A.shape == ((24 << 20) + 4,)
        assert (A[33], A[n - 2], A[n], A[(24 << 20) - 1]) == (33, 98, 100, 101)
        assert A[-4:].tolist() == [1, 2, 3, 4]
        assert int(np.sum(A[:], dtype=np.int64)) == 33 + 98 + 100 + 101 + 10
