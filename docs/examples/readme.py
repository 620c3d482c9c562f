# SPDX-License-Identifier: MIT
"""The README's Python example: numpy views over an array in ./data.db."""
import numpy as np

import bigarray

with bigarray.open("data.db", ram_limit="1G") as db:  # created if missing
    A = db.create("m", shape=(0, 1000), dtype="f8", codec="zstd:1")
    A.append(np.random.default_rng(0).random((5000, 1000)))  # grows axis 0
    A[100:200, ::2] = 0.0  # numpy assignment, straight into the mapping
    db.commit()  # or db.abort()
    v = A[:, 10]  # a numpy.ndarray over the mapping: no copy
    print(A, v.shape, v.strides, round(float(np.mean(A[:])), 4))
