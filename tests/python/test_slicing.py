# SPDX-License-Identifier: MIT
"""Slicing against numpy: for shapes up to 4-D, C and F order, dtypes u1, i4, f8, c16
and a record dtype, with 4 KiB blocks so that rows straddle block boundaries, every
combination of per-axis keys from {":", 0, -1, n//2, 1:-1, a:b:2, b:a:-3} gives the
same shape, strides and values as the same expression on a numpy array holding the
same data, both through A[key] (views of the whole-array mapping) and A.view(key)
(a mapping of the slice only). Writes through any view are seen by all others."""
import itertools
import random

import numpy as np
import pytest

import bigarray
from conftest import fill_unique

RECORD = np.dtype([("a", "<i4"), ("b", "<f8"), ("c", "u1")])  # 13 bytes, packed
DTYPES = ["u1", "i4", "f8", "c16", RECORD]
SHAPES = [(5003,), (67, 83), (13, 11, 29), (11, 7, 13, 9)]
BLOCK = 4096


def axis_keys(n):
    a, b = n // 4 + 1, 3 * n // 4 - 1
    return [slice(None), 0, -1, n // 2, slice(1, -1), slice(a, b, 2), slice(b, a, -3)]


def same(got, want):
    """got (from bigarray) is want (from numpy): shape, strides, dtype and bytes."""
    if not isinstance(want, np.ndarray):  # an integer on every axis: a scalar
        assert not isinstance(got, np.ndarray)
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes()
        return
    assert isinstance(got, np.ndarray)
    assert got.shape == want.shape
    assert got.strides == want.strides
    assert got.dtype == want.dtype
    assert got.tobytes() == want.tobytes()


@pytest.fixture(scope="module")
def sdb(tmp_path_factory):
    d = bigarray.open(str(tmp_path_factory.mktemp("slicing") / "s.db"), ram_limit="64M")
    yield d
    d.close()


def make(sdb, shape, dtype, order):
    name = f"a{len(sdb.list())}"
    ref = np.asarray(fill_unique(shape, dtype), order=order)
    ref = np.array(ref, order=order)
    A = sdb.create(name, shape=shape, dtype=dtype, order=order, block_size=BLOCK)
    A[...] = ref
    return A, ref


def dtype_id(dt):
    return "rec" if isinstance(dt, np.dtype) else dt


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
def test_every_key_combination_matches_numpy(sdb, shape, dtype, order):
    A, ref = make(sdb, shape, dtype, order)
    assert A.strides == ref.strides
    same(A[...], ref)
    same(A.view(), ref)
    for key in itertools.product(*[axis_keys(n) for n in shape]):
        want = ref[key]
        same(A[key], want)
        same(A.view(key) if isinstance(want, np.ndarray) else A.view(key)[()], want)
    sdb.commit()


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("shape", SHAPES[1:], ids=lambda s: f"{len(s)}d")
def test_writes_through_any_view_are_seen_by_all(sdb, shape, order):
    A, ref = make(sdb, shape, "i4", order)
    keys = list(itertools.product(*[axis_keys(n) for n in shape]))
    rng = random.Random(1234)
    views = []
    for key in rng.sample(keys, min(40, len(keys))):
        if isinstance(ref[key], np.ndarray):
            views.append((key, A[key]))
            views.append((key, A.view(key)))
    for step, (key, v) in enumerate(views):
        v[...] = -step
        ref[key] = -step
        # every view, old and new, whole-mapping and own-mapping, sees every write
        for k2, v2 in views:
            assert v2.tobytes() == ref[k2].tobytes()
        same(A.view(), ref)
    sdb.abort()


def test_views_of_one_block_share_memory(db):
    A = db.create("x", shape=(100, 100), dtype="f8", block_size=BLOCK)
    a = A[10:20]
    b = A[15:30, ::3]
    c = A[50:60]
    assert np.shares_memory(a, b)
    assert not np.shares_memory(a, c)
    assert np.shares_memory(A[:], c)
    assert np.may_share_memory(A[...], A[::-1])
    # the base chain ends at the owner of the C view
    base = a
    while isinstance(base, np.ndarray):
        base = base.base
    assert type(base).__name__ == "View"
    # an own-mapping view aliases the same data at another address
    v = A.view(np.s_[10:20])
    assert not np.shares_memory(v, a)
    v[0, 0] = 42
    assert a[0, 0] == 42


def test_1d_edges_like_numpy(db):
    """ZBigArray's 1-D indexing cases on a 10-block uint8 array."""
    n = 10 * BLOCK
    A = db.create("u", shape=(n,), dtype="u1", block_size=BLOCK)
    ref = np.zeros(n, dtype="u1")
    with pytest.raises(IndexError):
        A[n]
    with pytest.raises(IndexError):
        A[-n - 1]
    wrong = []
    for key in [np.s_[n:n + 1], np.s_[10:5:1], np.s_[5:10:-1], np.s_[5:5], np.s_[n * 3:n * 4],
                np.s_[:], np.s_[4 * BLOCK:], np.s_[4 * BLOCK + 3:9 * BLOCK - 3], np.s_[::-1],
                np.s_[::7], np.s_[::-11], np.s_[-1:0:-1], np.s_[5:5:-3], np.s_[n:0:2]]:
        same(A[key], ref[key])
        try:
            same(A.view(key), ref[key])
        except AssertionError:
            v = A.view(key)
            wrong.append((key, v.shape, v.strides, ref[key].shape, ref[key].strides))
    # numpy keeps the axis' stride for a range that selects nothing (ba_slice_apply
    # must too: empty results are views like any other)
    assert not wrong, wrong
    assert A[n - 1] == 0 and A[-n] == 0
    # overlapping views alias
    whole, tail, odd = A[:], A[4 * BLOCK:], A[4 * BLOCK + 3:9 * BLOCK - 3]
    odd[:] = np.arange(odd.size) % 251
    ref[4 * BLOCK + 3:9 * BLOCK - 3] = np.arange(odd.size) % 251
    assert whole.tobytes() == ref.tobytes()
    assert tail.tobytes() == ref[4 * BLOCK:].tobytes()
    # assignment with broadcasting, with a sequence, and a length mismatch
    A[2:5] = 7
    ref[2:5] = 7
    A[5:8] = [1, 2, 3]
    ref[5:8] = [1, 2, 3]
    A[-1] = 9
    ref[-1] = 9
    same(A[:], ref)
    with pytest.raises(ValueError):
        A[5:8] = [1, 2]
    assert list(A[5:8]) == [1, 2, 3]
    # iteration terminates (ZBigArray's list(A) case)
    B = db.create("ten", shape=(10,), dtype="f8")
    assert list(B) == [0.0] * 10


def test_elements_straddling_blocks(db):
    """Rows of BLOCK-1 and BLOCK+1 bytes straddle block edges."""
    for cols in (BLOCK - 1, BLOCK + 1):
        ref = (np.arange(10 * cols) % 253).astype("u1").reshape(10, cols)
        A = db.create(f"s{cols}", data=ref, block_size=BLOCK)
        for key in [np.s_[:], np.s_[1:0:-1], np.s_[3], np.s_[:, -1], np.s_[2:9, BLOCK - 5:],
                    np.s_[::-1, ::-1]]:
            same(A[key], ref[key])
            same(A.view(key), ref[key])
    # records of 13 bytes straddle 4096-byte blocks too
    rec = fill_unique((1000,), RECORD)
    R = db.create("rec", data=rec, block_size=BLOCK)
    same(R[:], rec)
    assert R[315]["b"] == rec[315]["b"]


def test_ellipsis_newaxis_and_numpy_integers(db):
    ref = fill_unique((6, 7, 8), "f8")
    A = db.create("e", data=ref, block_size=BLOCK)
    for key in [np.s_[..., 0], np.s_[1, ...], np.s_[None, 2, None, ..., None],
                np.s_[np.int64(3), np.newaxis, ::-2], np.s_[..., np.uint8(1), :],
                np.s_[np.array(2)], np.s_[()], np.s_[1, 2, 3], np.s_[1, 2, 3, ...]]:
        same(A[key], ref[key])
        got = A.view(key)
        want = ref[key]
        same(got if isinstance(want, np.ndarray) else got[()], want)


def test_index_errors_like_numpy(db):
    A = db.create("ie", shape=(4, 5), dtype="i4")
    for key in [np.s_[4], np.s_[-5], np.s_[0, 5], np.s_[0, 0, 0], np.s_[..., ...]]:
        with pytest.raises(IndexError):
            A[key]
        with pytest.raises(IndexError):
            A.view(key)
    with pytest.raises(ValueError):
        A[::0]
    with pytest.raises(ValueError):
        A.view(np.s_[::0])
    with pytest.raises(IndexError):
        A["x"]
    with pytest.raises(IndexError):
        A.view(np.s_[[0, 1]])


def test_advanced_indexing_works_as_numpy_with_a_copy(db):
    ref = fill_unique((20, 30), "f8")
    A = db.create("adv", data=ref)
    for key in [np.s_[[1, 5, 7]], np.s_[[1, 5], [2, 3]], np.s_[ref > 300], np.s_[:, [0, -1]],
                np.s_[np.array([True] * 10 + [False] * 10)], np.s_[True]]:
        got = A[key]
        assert np.array_equal(got, ref[key])
        assert not np.shares_memory(got, A[:])
    A[[0, 2], 1:3] = -1.0
    ref[[0, 2], 1:3] = -1.0
    A[A[:] > 500] = 0.5
    ref[ref > 500] = 0.5
    assert A[:].tobytes() == ref.tobytes()


def test_asarray_and_numpy_functions(db):
    ref = fill_unique((50, 40), "f8")
    A = db.create("np", data=ref, order="F")
    a = np.asarray(A)
    assert a.flags.f_contiguous and np.shares_memory(a, A[:])
    assert np.array_equal(a, ref)
    assert np.mean(A) == np.mean(ref)
    assert np.asarray(A, dtype="f4").dtype == np.float32
    assert np.array_equal(np.asarray(A, dtype="f4"), ref.astype("f4"))
