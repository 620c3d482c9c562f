# SPDX-License-Identifier: MIT
"""Fixtures of the Python suite: databases in pytest's temporary directories, and
worker processes that run bigarray code in another interpreter (for two-process
transactions and for cases that may kill the interpreter)."""
import json
import os
import selectors
import subprocess
import sys

import numpy as np
import pytest

import bigarray

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "worker.py")


UNDER_TSAN = os.environ.get("BA_SANITIZE") == "thread"


def skip_uffd_under_tsan(pager):
    if pager == "uffd" and UNDER_TSAN:
        pytest.skip("TSan cannot see the kernel's ordering of userfaultfd faults")


@pytest.fixture
def dbpath(tmp_path):
    return str(tmp_path / "t.db")


@pytest.fixture
def db(dbpath):
    d = bigarray.open(dbpath, ram_limit="64M")
    yield d
    d.close()


class RemoteError(Exception):
    """An exception raised in a worker: .type is its class name."""

    def __init__(self, type_, msg):
        super().__init__(f"{type_}: {msg}")
        self.type = type_
        self.msg = msg


class Worker:
    """Another interpreter running bigarray code sent to it line by line.

    w("x = 1; result = x + 1") runs the code in the worker's namespace (which starts
    with np and bigarray) and returns the value it left in `result` (through repr and
    eval, so numbers, strings, tuples, lists and bools come back), or raises
    RemoteError carrying the remote exception's class name.
    """

    def __init__(self, env=None, timeout=60):
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.timeout = timeout
        self.p = subprocess.Popen([sys.executable, WORKER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=full_env)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.p.stdout, selectors.EVENT_READ)

    def __call__(self, code):
        self.p.stdin.write(json.dumps({"code": code}) + "\n")
        self.p.stdin.flush()
        if not self.sel.select(self.timeout):
            self.p.kill()
            raise TimeoutError(f"worker did not answer within {self.timeout}s: {code}")
        line = self.p.stdout.readline()
        if not line:
            rc = self.p.wait()
            raise RemoteError("Died", f"worker exited with {rc}: {self.p.stderr.read()}")
        out = json.loads(line)
        if not out["ok"]:
            raise RemoteError(out["type"], out["msg"])
        return eval(out["result"], {"__builtins__": {}}, {})  # noqa: S307 (test code)

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            try:
                self.p.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p.stdout.close()
        self.p.stderr.close()
        self.sel.close()


@pytest.fixture
def worker():
    made = []

    def make(env=None):
        w = Worker(env)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def run_python(code, env=None, timeout=120):
    """Run code in a fresh interpreter; return the CompletedProcess."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


def fill_unique(shape, dtype):
    """An array of the given shape and dtype whose elements all differ (within the
    dtype's range), records included."""
    n = int(np.prod(shape))
    dt = np.dtype(dtype)
    idx = np.arange(n, dtype=np.int64)
    if dt.fields:
        out = np.zeros(n, dtype=dt)
        for k, name in enumerate(dt.names):
            ft = dt.fields[name][0]
            out[name] = ((idx * (k + 3) + k) % 251).astype(ft) if ft.kind in "ui" and \
                ft.itemsize == 1 else (idx * (k + 3) + k).astype(ft)
        return out.reshape(shape)
    if dt.kind == "c":
        return (idx + 1j * (idx + 7)).astype(dt).reshape(shape)
    if dt.kind == "b":
        return ((idx % 3) == 1).reshape(shape)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return (idx % (int(info.max) + 1 if info.max < 2**62 else 2**62)).astype(dt).reshape(shape)
    return (idx * 1.25 + 0.5).astype(dt).reshape(shape)
