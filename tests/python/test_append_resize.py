# SPDX-License-Identifier: MIT
"""Append against numpy.append, resize against ndarray.resize's zero-padded
semantics (the bytes keep their order in the array's layout), in C and F order; a
failed append leaves the array unchanged; views made before keep their shape."""
import numpy as np
import pytest

import bigarray
from conftest import fill_unique

BLOCK = 4096


def resized(ref, shape, order):
    """ndarray.resize(shape, refcheck=False) for an array of the given order: the
    array's bytes, in its own order, cut or padded with zeros."""
    flat = ref.ravel(order=order)
    n = int(np.prod(shape))
    out = np.zeros(n, dtype=ref.dtype)
    m = min(n, flat.size)
    out[:m] = flat[:m]
    return out.reshape(shape, order=order)


def check(A, ref):
    assert A.shape == ref.shape
    got = A[...]
    assert got.shape == ref.shape
    assert got.tobytes(order="A") == np.asarray(ref, order=A.order).tobytes(order="A")


@pytest.mark.parametrize("dtype", ["u1", "i4", "f8", "c16"])
def test_append_c_order_like_numpy_append(db, dtype):
    A = db.create("c", shape=(0, 3, 2), dtype=dtype, block_size=BLOCK)
    ref = np.zeros((0, 3, 2), dtype=dtype)
    rng = np.random.default_rng(1)
    for i in range(40):
        k = int(rng.integers(0, 50))
        v = fill_unique((k, 3, 2), dtype) + i
        A.append(v)
        ref = np.append(ref, v, axis=0)
        check(A, ref)
    A.append(np.ones((3, 2), dtype=dtype))  # one sub-array
    ref = np.append(ref, np.ones((1, 3, 2), dtype=dtype), axis=0)
    A.append([[[1, 2], [3, 4], [5, 6]]])  # nested lists
    ref = np.append(ref, np.array([[[1, 2], [3, 4], [5, 6]]], dtype=dtype), axis=0)
    check(A, ref)
    db.commit()
    check(db["c"], ref)
    assert len(A) == ref.shape[0]


@pytest.mark.parametrize("dtype", ["i4", "f8"])
def test_append_f_order_grows_the_last_axis(db, dtype):
    A = db.create("f", shape=(2, 3, 0), dtype=dtype, order="F", block_size=BLOCK)
    ref = np.zeros((2, 3, 0), dtype=dtype, order="F")
    for i in range(30):
        v = np.asfortranarray(fill_unique((2, 3, i * 7 % 23), dtype) + i)
        A.append(v)
        ref = np.append(ref, v, axis=2)
        check(A, ref)
    A.append(np.full((2, 3), 5, dtype=dtype))
    ref = np.append(ref, np.full((2, 3, 1), 5, dtype=dtype), axis=2)
    # C-ordered input is made F-contiguous on the way
    v = np.ascontiguousarray(fill_unique((2, 3, 5), dtype))
    A.append(v)
    ref = np.append(ref, v, axis=2)
    check(A, ref)
    db.commit()
    check(db["f"], ref)


def test_append_1d_scalars_lists_and_casts(db):
    A = db.create("v", shape=(0,), dtype="i4")
    A.append(5)
    A.append([6, 7])
    A.append(np.array([8.9, -1.2]))  # cast as numpy assignment casts
    assert A[:].tolist() == [5, 6, 7, 8, -1]


def test_failed_append_leaves_the_array_unchanged(db):
    A = db.create("ua", shape=(0, 3, 2), dtype="f8", block_size=BLOCK)
    A.append(fill_unique((7, 3, 2), "f8"))
    before = A[:].copy()
    view = A[:]
    bad = [np.zeros((2, 2, 2)), np.zeros((2, 3)), np.zeros((2, 3, 2, 1)), np.zeros((3,)),
           np.zeros(()), [["a", "b", "c"]] * 2, np.zeros((1, 3, 3)), "text"]
    for values in bad:
        with pytest.raises((ValueError, TypeError)):
            A.append(values)
        assert A.shape == (7, 3, 2)
        assert A[:].tobytes() == before.tobytes()
    assert view.tobytes() == before.tobytes()
    with pytest.raises(ValueError) as e:
        A.append(np.zeros((2, 2, 2)))
    assert e.value.code == bigarray.ESHAPE
    db.commit()
    assert db["ua"].shape == (7, 3, 2)


def test_append_from_its_own_views(db):
    A = db.create("self", data=np.arange(12.0).reshape(6, 2), block_size=BLOCK)
    A.append(A[:3])
    A.append(A[::-1])
    ref = np.arange(12.0).reshape(6, 2)
    ref = np.append(ref, ref[:3], axis=0)
    ref = np.append(ref, ref[::-1], axis=0)
    check(A, ref)


@pytest.mark.parametrize("order", ["C", "F"])
def test_resize_like_zero_padded_ndarray_resize(db, order):
    ref = fill_unique((10, 7), "i4")
    ref = np.array(ref, order=order)
    A = db.create("r", data=ref, order=order, block_size=BLOCK)
    for shape in [(11, 7), (10, 7), (13, 9), (4, 3), (4, 3), (40, 31), (0, 31), (5, 31),
                  (700, 1), (3, 3)]:
        A.resize(shape)
        ref = resized(ref, shape, order)
        check(A, ref)
    db.commit()
    check(db["r"], ref)
    A.resize(12, 4)  # numpy's *args form
    ref = resized(ref, (12, 4), order)
    check(A, ref)
    db.abort()
    assert A.shape == (3, 3)


def test_resize_grow_keeps_old_views(db):
    """ZBigArray's resize case: (10,3) -> (11,3)."""
    ref = fill_unique((10, 3), "i4")
    A = db.create("g", data=ref, block_size=BLOCK)
    old = A[:]
    A.resize((11, 3))
    new = A[:]
    assert old.shape == (10, 3) and new.shape == (11, 3)
    assert np.array_equal(old, ref)
    assert np.array_equal(new[:10], ref)
    assert not new[10].any()
    new[0, 0] = 100
    assert old[0, 0] == 100
    old[1, 1] = 101
    assert new[1, 1] == 101
    with pytest.raises(IndexError):
        old[10]
    new[10] = [7, 8, 9]
    assert A[10].tolist() == [7, 8, 9]


def test_shrink_then_regrow_shows_zeros(db):
    A = db.create("z", data=np.arange(1, 10001, dtype="f8"), block_size=BLOCK)
    db.commit()
    A.resize(1000)
    A.resize(10000)
    assert A[999] == 1000 and not A[1000:].any()
    db.commit()
    assert not db["z"][1000:].any()
    A.resize(500)
    db.commit()
    A.resize(10000)
    db.commit()
    assert A[499] == 500 and not A[500:].any()


def test_resize_errors(db):
    A = db.create("re", shape=(4, 4), dtype="f8")
    with pytest.raises(ValueError):
        A.resize((16,))
    with pytest.raises(ValueError):
        A.resize((4, -1))
    with pytest.raises(TypeError):
        A.resize("big")
    assert A.shape == (4, 4)
