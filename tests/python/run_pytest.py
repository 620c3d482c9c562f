# SPDX-License-Identifier: MIT
"""Run one file of the Python suite with pytest (called by ctest).

Exits 77 (ctest: skipped) with the reason when the module was not built, or numpy
or pytest is missing. A module that was built but does not import is a failure.
"""
import os
import sys


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(77)


def main():
    reason = os.environ.get("BA_PYTHON_SKIP_REASON")
    if reason:
        skip(reason)
    try:
        import numpy  # noqa: F401
    except ImportError as e:
        skip(f"numpy is missing for {sys.executable} (apt-get install python3-numpy): {e}")
    try:
        import pytest
    except ImportError as e:
        skip(f"pytest is missing for {sys.executable} (apt-get install python3-pytest): {e}")
    try:
        import bigarray  # noqa: F401
    except ImportError as e:
        print(f"FAIL: the module was built but does not import from "
              f"PYTHONPATH={os.environ.get('PYTHONPATH')}: {e}")
        return 1
    here = os.path.dirname(os.path.abspath(__file__))
    # --capture=sys: what C code writes to fd 2 (a sanitizer's report, the reason of a
    # crash) reaches the log even when the interpreter dies.
    args = ["-q", "-rs", "-p", "no:cacheprovider", "--capture=sys", "--rootdir", here]
    args += sys.argv[1:]
    return pytest.main(args)


if __name__ == "__main__":
    sys.exit(main())
