# SPDX-License-Identifier: MIT
"""Every error path raises the documented exception, with the library's code in
.code; nothing crashes the interpreter. Cases that could kill an interpreter (corrupt
blocks touched without preload, fork, injected I/O errors, exit with live views) run
in a child interpreter."""
import errno
import gc
import os
import signal

import numpy as np
import pytest

import bigarray
from conftest import UNDER_TSAN, run_python, skip_uffd_under_tsan


# ---- opening ----------------------------------------------------------------------------

def test_open_errors(tmp_path):
    missing = str(tmp_path / "missing.db")
    with pytest.raises(FileNotFoundError) as e:
        bigarray.open(missing, create=False)
    assert e.value.errno == errno.ENOENT and e.value.code == bigarray.ENOTFOUND
    assert not os.path.exists(missing)
    afile = tmp_path / "file"
    afile.write_bytes(b"not a database" * 100)
    notdb = tmp_path / "notdb"
    notdb.mkdir()
    (notdb / "data.mdb").write_bytes(b"\x00garbage" * 4096)
    for path in (afile, notdb):
        with pytest.raises(bigarray.Error) as e:
            bigarray.open(str(path))
        assert e.value.code == bigarray.ENOTDB
    with pytest.raises(FileNotFoundError) as e:
        bigarray.open(str(tmp_path / "no" / "such" / "parent"))
    assert e.value.code == -errno.ENOENT
    for bad in ["2X", "", "-1", "G", "1..5G"]:
        with pytest.raises(ValueError):
            bigarray.open(missing, ram_limit=bad)
    for bad in [1.5, [1], True]:
        with pytest.raises(TypeError):
            bigarray.open(missing, ram_limit=bad)
    with pytest.raises(ValueError):
        bigarray.open(missing, ram_limit=-5)
    with pytest.raises(ValueError):
        bigarray.open(missing, ram_limit=1 << 64)
    with pytest.raises(ValueError):
        bigarray.open(missing, pager="fast")
    with pytest.raises(TypeError):
        bigarray.open(None)
    assert not os.path.exists(missing)


# ---- creating and opening arrays ----------------------------------------------------------

def test_create_errors(db):
    db.create("x", shape=(3,))
    with pytest.raises(ValueError) as e:
        db.create("x", shape=(3,))
    assert e.value.code == bigarray.EEXIST
    cases = [
        (TypeError, dict(shape=(3,), dtype="O")),
        (TypeError, dict(shape=(3,), dtype="U5")),
        (TypeError, dict(shape=(3,), dtype="S5")),
        (TypeError, dict(shape=(3,), dtype="M8[s]")),
        (TypeError, dict(shape=(3,), dtype=[("a", "O")])),
        (TypeError, dict(shape=(3,), dtype="(2,)f8")),
        (TypeError, dict(shape="abc")),
        (TypeError, dict(shape=(3.5,))),
        (TypeError, dict()),
        (ValueError, dict(shape=(-1,))),
        (ValueError, dict(shape=())),
        (ValueError, dict(shape=(1,) * 33)),
        (ValueError, dict(shape=(3,), order="K")),
        (ValueError, dict(shape=(3,), block_size=1000)),
        (ValueError, dict(shape=(3,), block_size="3G")),
        (ValueError, dict(shape=(3,), block_size="lots")),
        (ValueError, dict(shape=(3,), codec="lz4")),
        (ValueError, dict(shape=(3,), codec="zstd:99")),
        (TypeError, dict(shape=(3,), codec=1)),
    ]
    for exc, kw in cases:
        with pytest.raises(exc):
            db.create("y", **kw)
        assert "y" not in db, kw
    for name in ["", "n" * 256, "a\0b"]:
        with pytest.raises(ValueError):
            db.create(name, shape=(3,))
    with pytest.raises(TypeError):
        db.create(5, shape=(3,))
    with pytest.raises(KeyError) as e:
        db["nope"]
    assert e.value.code == bigarray.ENOTFOUND
    with pytest.raises(KeyError):
        db.drop("nope")
    with pytest.raises(KeyError):
        db.copy("nope", "n2")
    with pytest.raises(ValueError):
        db.copy("x", "x")
    with pytest.raises(TypeError):
        db[3]


def test_a_terabyte_array_maps_at_once(db):
    if UNDER_TSAN:
        pytest.skip("TSan's shadow memory leaves no room for a 1 TiB mapping")
    T = db.create("tib", shape=(1 << 40,), dtype="u1")
    a = np.asarray(T)
    assert a.shape == (1 << 40,) and a[123456789] == 0
    a[(1 << 40) - 1] = 7
    assert T[-1] == 7
    db.abort()


def test_arrays_beyond_the_address_space(db):
    for nbytes_log2 in (48, 55, 62):
        H = db.create(f"h{nbytes_log2}", shape=(1 << (nbytes_log2 - 3),), dtype="f8")
        with pytest.raises(MemoryError):
            np.asarray(H)
        # slices still work, through mappings of the slice only
        v = H[-10:]
        v[:] = 3.0
        assert H[-1] == 3.0 and H[5] == 0.0
        with pytest.raises(IndexError):
            H[[1, 2]]
        H.preload(np.s_[:100])
    db.abort()


# ---- closed handles, wrong keys ------------------------------------------------------------

def test_closed_session_and_array(db):
    s = db.session()
    A = s.create("x", shape=(3,))
    v = A[:]
    s.close()
    for f in (lambda: A[0], lambda: A.shape, lambda: A.append([1.0]), lambda: A.resize(4),
              lambda: s.commit(), lambda: s.abort(), lambda: s["x"], lambda: s.list()):
        with pytest.raises(ValueError):
            f()
    v[0] = 1.0  # the view itself stays valid
    s.close()


def test_views_outlive_everything(dbpath):
    db = bigarray.open(dbpath)
    A = db.create("x", data=np.arange(100000.0), block_size="64K")
    db.commit()
    s = db.session()
    views = [A[::-1], s["x"][10:20], A.view(np.s_[5:]), np.from_dlpack(A)]
    del A, s
    db.close()
    del db
    gc.collect()
    assert views[0][0] == 99999.0 and views[1][0] == 10.0 and views[2][0] == 5.0
    assert views[3][7] == 7.0


def test_dropped_array_handles_are_stale_and_views_read_zeros(db):
    A = db.create("x", data=np.ones(1000))
    db.commit()
    v = A[:]
    db.drop("x")
    assert v.sum() == 1000.0  # until the transaction boundary
    db.commit()
    assert v.sum() == 0.0  # zeros after it; never a crash
    for f in (lambda: A.__setitem__(0, 1), lambda: A.shape, lambda: A.append([1.0]),
              lambda: A.resize(3), lambda: A.preload()):
        with pytest.raises(bigarray.Error) as e:
            f()
        assert e.value.code == bigarray.ESTALE
    assert repr(A) == "<bigarray x (stale)>"


# ---- corrupt blocks -------------------------------------------------------------------------

def corrupt_db(path, codec):
    """A database whose array 'x' (random bytes, 64 KiB blocks) has one damaged byte in
    block 5; returns the data."""
    # 16 blocks of 8192 random float64 bits (incompressible, so the bytes appear
    # verbatim in data.mdb with either codec)
    data = np.random.default_rng(7).integers(0, 1 << 63, size=(16 * 8192,)).view("f8")
    with bigarray.open(path) as db:
        db.create("x", data=data, block_size="64K", codec=codec)
        db.commit()
    with open(os.path.join(path, "data.mdb"), "rb") as f:
        # up to the first hole: the file is sparse, as long as LMDB's map
        end = os.lseek(f.fileno(), 0, os.SEEK_HOLE)
        f.seek(0)
        blob = f.read(end)
    probe = data[5 * 8192 + 1000:5 * 8192 + 1008].tobytes()  # inside block 5
    at = blob.find(probe)
    assert at > 0 and blob.find(probe, at + 1) < 0
    with open(os.path.join(path, "data.mdb"), "r+b") as f:
        f.seek(at + 3)
        f.write(bytes([blob[at + 3] ^ 0x5A]))
    return data


@pytest.mark.parametrize("codec", ["none", "zstd:1"])
def test_corrupt_block_preload_raises(dbpath, codec):
    data = corrupt_db(dbpath, codec)
    with bigarray.open(dbpath) as db:
        problems = db.verify()
        assert len(problems) == 1
        p = problems[0]
        assert p.array == "x" and p.blkno == 5 and p.code == bigarray.ECORRUPT
        A = db["x"]
        A.preload(np.s_[:5 * 8192])  # blocks before the damaged one load fine
        assert A[:5 * 8192].tobytes() == data[:5 * 8192].tobytes()
        with pytest.raises(bigarray.CorruptError) as e:
            A.preload()
        assert e.value.code == bigarray.ECORRUPT
        with pytest.raises(bigarray.CorruptError):
            bigarray.preload(A[5 * 8192 + 100:5 * 8192 + 200])
        with pytest.raises(bigarray.CorruptError):
            A.preload(np.s_[-1:5 * 8192:-1], write=True)
        with pytest.raises(TypeError):
            bigarray.preload(np.zeros(3))
        # still usable afterwards: the other blocks, and overwriting the damaged one
        assert A[6 * 8192:].tobytes() == data[6 * 8192:].tobytes()


@pytest.mark.parametrize("codec", ["none", "zstd:1"])
def test_corrupt_block_touched_without_preload_kills_with_sigbus(dbpath, codec):
    corrupt_db(dbpath, codec)
    r = run_python(f"import bigarray, numpy as np\n"
                   f"db = bigarray.open({dbpath!r})\n"
                   f"print('sum', np.sum(db['x'][:]), flush=True)\n")
    assert r.returncode == -signal.SIGBUS, (r.returncode, r.stdout, r.stderr)
    assert "sum" not in r.stdout


# ---- fork, injected errors, exit -----------------------------------------------------------

def test_handles_inherited_across_fork_raise(dbpath):
    r = run_python(f"""
import os, bigarray, numpy as np
db = bigarray.open({dbpath!r})
A = db.create("x", data=np.arange(10.0))
db.commit()
pid = os.fork()
if pid == 0:
    codes = []
    for f in (lambda: db["x"], lambda: A.shape, lambda: db.commit(), lambda: A[0]):
        try:
            f()
            codes.append("no error")
        except bigarray.Error as e:
            codes.append("Error")
    os._exit(0 if codes == ["Error"] * 4 else 1)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
assert A[3] == 3.0  # the parent is not affected
with bigarray.open({dbpath!r} + "2") as db2:  # and a child may open databases anew
    pass
print("ok")
""")
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr


def test_commit_enospc_keeps_changes_and_retry_succeeds(dbpath):
    r = run_python(f"""
import errno, bigarray, numpy as np
db = bigarray.open({dbpath!r})
A = db.create("x", data=np.arange(100000.0), block_size="64K")
try:
    db.commit()
    raise SystemExit("commit did not fail")
except OSError as e:
    assert e.errno == errno.ENOSPC and e.code == -errno.ENOSPC, e
assert db.dirty and A[99999] == 99999.0
db.commit()
print("ok")
""", env={"BIGARRAY_INJECT": "store_commit:ENOSPC:0:1"})
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr
    with bigarray.open(dbpath, create=False) as db:
        assert db["x"][99999] == 99999.0


def test_exit_with_live_views_is_clean(dbpath):
    r = run_python(f"""
import bigarray, numpy as np
db = bigarray.open({dbpath!r})
A = db.create("x", data=np.arange(1000.0))
db.commit()
v = A[::2]
s = db.session()
w = s["x"]
keep = [v, A, s, w, db, db["x"][3:]]
print("ok")
""")
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr


def test_read_into_views(db, tmp_path):
    """read(2) into a view: with userfaultfd the kernel waits for the pager; with the
    SIGSEGV pager the blocks must be preloaded writable first (else EFAULT)."""
    data = np.random.default_rng(3).integers(0, 256, size=1 << 20, dtype="u1")
    src = tmp_path / "src"
    src.write_bytes(data.tobytes())
    A = db.create("x", shape=(1 << 20,), dtype="u1", block_size="64K")
    db.commit()
    v = A[:]
    if db.pager == "sigsegv":
        A.preload(write=True)
    with open(src, "rb", buffering=0) as f:
        assert f.readinto(v) == 1 << 20
    assert v.tobytes() == data.tobytes()
    assert A.fault_error() is None


def test_read_into_a_corrupt_block_reports_the_fault(dbpath, tmp_path):
    skip_uffd_under_tsan("uffd")
    corrupt_db(dbpath, "none")
    src = tmp_path / "src"
    src.write_bytes(b"\1" * 65536)
    with bigarray.open(dbpath, pager="uffd") as db:
        if db.pager != "uffd":
            pytest.skip("userfaultfd is not permitted here")
        A = db["x"]
        block5 = A[5 * 8192:6 * 8192]
        with open(src, "rb", buffering=0) as f:
            with pytest.raises(OSError) as e:
                f.readinto(block5)
        assert e.value.errno == errno.EFAULT
        code, blkno, msg = A.fault_error()
        assert code == bigarray.ECORRUPT and blkno == 5 and msg
        assert A.fault_error() is None  # cleared


def test_faulthandler_enabled_before_open_keeps_views_working(dbpath):
    """python -X faulthandler installs its SIGSEGV handler before bigarray's, which
    chains to it: views work (enabling it after open is the documented mistake)."""
    with bigarray.open(dbpath) as db:
        db.create("x", data=np.arange(1e6), block_size="64K")
        db.commit()
    code = (f"import bigarray, numpy as np, faulthandler\n"
            f"assert faulthandler.is_enabled()\n"
            f"db = bigarray.open({dbpath!r}, pager='sigsegv')\n"
            f"print('sum', np.sum(db['x'][:]))\n")
    r = run_python(code, env={"PYTHONFAULTHANDLER": "1"})
    assert r.returncode == 0 and "sum 499999500000.0" in r.stdout, r.stdout + r.stderr
