# SPDX-License-Identifier: MIT
"""`cmake --install` puts a working package where Debian's interpreter looks: under a
temporary prefix the installed module imports (finding the installed library by its
relative RPATH, not the build tree's) and works; with the default prefix /usr/local
its directory is on /usr/bin/python3's sys.path."""
import os
import subprocess
import sys

import pytest

from conftest import run_python


def test_install_under_a_prefix_imports_and_works(tmp_path):
    build = os.environ.get("BA_BUILD_DIR")
    if not build:
        pytest.skip("BA_BUILD_DIR is not set (run through ctest)")
    prefix = tmp_path / "prefix"
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)  # a sanitizer runtime preloaded for Python, not cmake
    r = subprocess.run(["cmake", "--install", build, "--prefix", str(prefix)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    inits = [os.path.join(d, "__init__.py") for d, _, files in os.walk(prefix)
             if os.path.basename(d) == "bigarray" and "__init__.py" in files]
    assert len(inits) == 1, inits
    pkg_parent = os.path.dirname(os.path.dirname(inits[0]))
    rel = os.path.relpath(pkg_parent, prefix)
    assert os.path.join("/usr/local", rel) in sys.path, (rel, sys.path)
    code = ("import bigarray, numpy as np, tempfile, os\n"
            "assert bigarray.__file__.startswith(%r), bigarray.__file__\n"
            "d = tempfile.mkdtemp()\n"
            "with bigarray.open(os.path.join(d, 'x.db')) as db:\n"
            "    A = db.create('a', data=np.arange(10.0)); db.commit()\n"
            "    print('ok', float(np.sum(A)))\n" % str(prefix))
    env = {"PYTHONPATH": pkg_parent, "LD_LIBRARY_PATH": ""}
    r = run_python(code, env=env)
    assert r.returncode == 0 and "ok 45.0" in r.stdout, r.stdout + r.stderr
