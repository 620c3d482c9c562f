# SPDX-License-Identifier: MIT
"""A worker interpreter for the Python suite (see conftest.Worker): reads JSON lines
{"code": ...}, runs each in one namespace, answers {"ok": true, "result": repr} or
{"ok": false, "type": class name, "msg": text}."""
import json
import sys

import numpy as np

import bigarray

ns = {"np": np, "bigarray": bigarray}
for line in sys.stdin:
    req = json.loads(line)
    try:
        exec(req["code"], ns)  # noqa: S102 (test code)
        out = {"ok": True, "result": repr(ns.pop("result", None))}
    except BaseException as e:  # noqa: B902 (report everything to the parent)
        out = {"ok": False, "type": type(e).__name__, "msg": str(e)}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
