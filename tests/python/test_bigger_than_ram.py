# SPDX-License-Identifier: MIT
"""An array 4x larger than the RAM limit is filled (dirty data spills past the
limit), committed, and summed with numpy through one view: the sum equals the
expected value and the pager stays within its budget (uncompressed blocks are mapped
from the database file with the SIGSEGV pager: zero-copy, no RAM frames at all)."""
import numpy as np
import pytest

import bigarray
from conftest import skip_uffd_under_tsan

RAM = 16 << 20
N = 4 * RAM // 8  # float64 elements: 64 MiB


@pytest.mark.parametrize("pager", ["uffd", "sigsegv"])
@pytest.mark.parametrize("codec", ["none", "zstd:1"])
def test_sum_of_an_array_4x_the_ram_limit(dbpath, pager, codec):
    skip_uffd_under_tsan(pager)
    with bigarray.open(dbpath, ram_limit=RAM, pager=pager) as db:
        A = db.create("x", shape=(N,), dtype="f8", block_size="256K", codec=codec)
        step = N // 16
        for i in range(0, N, step):  # fill through views, a piece at a time
            A[i:i + step] = np.arange(i, i + step, dtype="f8")
        db.commit()
        st = db.pager_stat()
        assert st["ram_limit"] == RAM and st["ram_used"] <= RAM
        assert st["spills"] > 0 or st["evictions"] > 0
    with bigarray.open(dbpath, ram_limit=RAM, pager=pager) as db:
        A = db["x"]
        total = np.sum(A[:])  # one numpy call over 4x the RAM limit
        assert total == N * (N - 1) / 2
        assert np.sum(np.asarray(A)[::-1]) == total
        st = db.pager_stat()
        assert st["ram_used"] <= RAM
        if codec == "none" and db.pager == "sigsegv":
            # Zero-copy: the blocks are mapped from the database file, outside the budget
            # (the counters are the handle's: the loads are the fill's, above).
            assert st["direct_loads"] * (256 << 10) >= N * 8
        else:
            assert st["evictions"] > 0
            assert st["loads"] * (256 << 10) >= 2 * N * 8
