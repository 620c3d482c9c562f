# SPDX-License-Identifier: MIT
"""Run a Python script (demo/demo.py) under ctest: exit 77 (skipped) with the reason
when the module was not built or numpy is missing, else the script's own status."""
import os
import runpy
import sys


def main():
    reason = os.environ.get("BA_PYTHON_SKIP_REASON")
    if reason:
        print(f"SKIP: {reason}")
        return 77
    try:
        import numpy  # noqa: F401
    except ImportError as e:
        print(f"SKIP: numpy is missing for {sys.executable}: {e}")
        return 77
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
