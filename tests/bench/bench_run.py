#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Run issue #8's side-by-side benchmark (bigarray and its peers, same data, same run) and
issue #4's end-to-end benchmark; write one JSON line per figure. Started by run.sh, which
builds the programs first; see docs/performance.md.

  bench_run.py --mode quick|full --build DIR --work DIR --out FILE [--only RE] [--skip RE]

Every figure is a line {"run", "system", "workload", "dataset", "value", "unit", "n",
"min", "max", "samples", "extra", "command"}; the first line (system "machine") holds the
machine facts. A step that fails leaves a line with "value": null and "error".
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

# The git checkout this script was started from (run.sh may run a copy exported from it).
REPO = os.environ.get("BA_BENCH_REPO", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
MiB, GiB = 1 << 20, 1 << 30
ROW_BYTES = 8192  # 1024 float64 per row

# Sizes and repetitions per mode. "big" is W6's large array (4x the data set: 16 GiB).
MODES = {
    "quick": dict(size=256 * MiB, i32=64 * MiB, reps=2, reps_write=1, reps_append=1,
                  appends=50, rand_reads=200, commits=5, big=512 * MiB, cgroup=512 * MiB,
                  pager_gib=1, rand=False, threads=(1, 2)),
    "full": dict(size=4 * GiB, i32=1 * GiB, reps=3, reps_write=3, reps_append=3,
                 appends=1000, rand_reads=2000, commits=10, big=16 * GiB, cgroup=512 * MiB,
                 pager_gib=4, rand=True, threads=(1, 2)),
}

# System -> (program kind, codec). "c" programs take --codec; Python systems name theirs.
SYSTEMS = {
    "memmap": ("py", None),
    "h5py": ("py", None),
    "h5py-gzip1": ("py", None),
    "zarr-lmdb": ("py", None),
    "zarr-lmdb-zstd1": ("py", None),
    "zarr-dir": ("py", None),
    "zarr-dir-zstd1": ("py", None),
    "lmdb-c": ("lmdb", "none"),
    "lmdb-c-zstd1": ("lmdb", "zstd:1"),
    "bigarray-py": ("py", None),
    "bigarray-py-zstd1": ("py", None),
    "bigarray-c": ("ba", "none"),
    "bigarray-c-zstd1": ("ba", "zstd:1"),
}
COMPRESSED = {"h5py-gzip1", "zarr-lmdb-zstd1", "zarr-dir-zstd1", "lmdb-c-zstd1",
              "bigarray-py-zstd1", "bigarray-c-zstd1"}
# W6 at 16 GiB: the systems whose append cost could depend on the array's size.
BIG_APPEND = ("memmap", "h5py", "zarr-lmdb-zstd1", "lmdb-c", "lmdb-c-zstd1", "bigarray-py",
              "bigarray-py-zstd1", "bigarray-c", "bigarray-c-zstd1")
# W9 (1 and 2 reader threads): the systems where threads could help, and h5py and one
# zarr store to show what their locks do. Slow peers skip the long repeated scans.
THREADS = ("memmap", "h5py", "zarr-lmdb-zstd1", "lmdb-c", "lmdb-c-zstd1", "bigarray-py",
           "bigarray-py-zstd1", "bigarray-c", "bigarray-c-zstd1")
SLOW = ("h5py-gzip1",)
# The copying read path of bigarray (BIGARRAY_ZEROCOPY=0) on bigarray-c's store, so the
# effect of zero-copy reads is measured within the run.
COPY_PATH = {"bigarray-c": "bigarray-c-copy"}
COPY_READS = ("W2-fresh", "W3-cold", "W4-warm", "W4-cold", "W3-cgroup-cold", "E2E-mean-warm",
              "E2E-mean-cold")
# bigarray's writes with LMDB's map kept read-only (BIGARRAY_WRITEMAP=0: LMDB copies every
# page of a commit into malloc'd memory first), so the writable map's effect is measured
# within the run.
RDMAP_PATH = {"bigarray-c": "bigarray-c-rdmap", "bigarray-c-zstd1": "bigarray-c-zstd1-rdmap"}
# Issue #4's end-to-end mean over an array 4x the bigarray RAM budget. h5py-gzip1 is h5py's
# compressed form, the peer of bigarray's zstd-1 arrays (h5py itself reads uncompressed bytes).
E2E = ("memmap", "h5py", "h5py-gzip1", "bigarray-py", "bigarray-py-zstd1", "bigarray-c",
       "bigarray-c-zstd1")
# W7 on int32 counters: (system, codec) pairs.
I32_SIZES = (("bigarray-c-zstd1", "zstd:1"), ("bigarray-c-zstd1-shuffle", "zstd:1+shuffle"),
             ("zarr-dir-zstd1", None), ("zarr-dir-blosc", None), ("h5py-gzip1", None))


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=60).stdout.strip()
    except Exception as e:  # noqa: BLE001 - a fact we cannot read is recorded as such
        return f"? ({e})"


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def warm(path):
    """Read the store into the page cache (bench_py's reader: allocated extents only)."""
    sys.path.insert(0, HERE)
    import bench_py  # noqa: E402 - same directory; imported when first needed
    bench_py.warm(path)


def rmtree(path):
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.unlink(path)


def settle(path, timeout=30.0):
    """Wait until the disk holding path has no I/O in flight (0.5 s in a row), at most
    timeout seconds. Deleting a 4 GiB store on a file system mounted with `discard` keeps
    the disk busy for seconds after rm returns; a workload timed right after it (W6 after
    the W1-W5 store is removed) measured 1.5-2.7x slower in its first repetition."""
    os.sync()
    try:
        st = os.stat(path if os.path.exists(path) else os.path.dirname(path))
        base = f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
        inflight = os.path.join(base, "inflight")
        if not os.path.exists(inflight):
            return
    except OSError:
        return
    quiet, t0 = 0, time.time()
    while quiet < 5 and time.time() - t0 < timeout:
        with open(inflight) as f:
            busy = sum(int(x) for x in f.read().split())
        quiet = quiet + 1 if busy == 0 else 0
        time.sleep(0.1)


def machine_facts(args, mode):
    rev = "HEAD" if args.rev == "worktree" else shlex.quote(args.rev)
    def py_versions():
        code = ("import sys, numpy, h5py, zarr, numcodecs, lmdb; "
                "print(sys.version.split()[0], numpy.__version__, h5py.__version__, "
                "h5py.version.hdf5_version, zarr.__version__, numcodecs.__version__, "
                "lmdb.__version__, lmdb.version())")
        return sh(f"{PY} -c {shlex.quote(code)}")
    lscpu = sh("lscpu")
    keep = ("Model name", "CPU(s):", "Thread(s) per core", "Hypervisor", "L2 cache", "L3 cache")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": args.mode, "params": mode,
        "kernel": " ".join(platform.uname()[2:4]),
        "cpu": [ln for ln in lscpu.splitlines() if ln.startswith(keep)],
        "flags_avx512f": "avx512f" in sh("grep -m1 flags /proc/cpuinfo"),
        "memory": sh("free -g | head -2 | tail -1"),
        "loadavg_start": open("/proc/loadavg").read().strip(),
        "uptime": sh("uptime"),
        "disk": sh(f"df -h {shlex.quote(args.work)} | tail -1"),
        "read_ahead_kb": sh("cat /sys/block/vda/queue/read_ahead_kb"),
        "thp": sh("cat /sys/kernel/mm/transparent_hugepage/enabled"),
        "thp_shmem": sh("cat /sys/kernel/mm/transparent_hugepage/shmem_enabled"),
        "unprivileged_userfaultfd": sh("cat /proc/sys/vm/unprivileged_userfaultfd"),
        "python_numpy_h5py_hdf5_zarr_numcodecs_pylmdb_liblmdb": py_versions(),
        "debs": sh("dpkg-query -W -f='${Package} ${Version}\\n' liblmdb0 libzstd1 gcc-12 "
                   "python3-h5py python3-zarr 2>/dev/null | tr '\\n' ';'"),
        "source": f"{args.src_root} ({args.rev})",
        "git_head": sh(f"git -C {REPO} log -1 --format='%H %cI %s' {rev}"),
        "git_dirty_lib_pager_store": sh(f"git -C {REPO} status --porcelain -- lib pager store "
                                        "common python") if args.rev == "worktree" else "",
        "git_log_pager_store_lib": sh(f"git -C {REPO} log -3 --format='%h %s' {rev} -- pager "
                                      "store lib"),
        "bigarray_pager_default": sh(
            f"PYTHONPATH={args.build}/python {PY} -c \"import bigarray, tempfile; "
            f"t = tempfile.TemporaryDirectory(dir='{args.work}'); "
            f"d = bigarray.open(t.name + '/db'); print(d.pager); d.close()\""),
    }


class Runner:
    def __init__(self, args):
        self.args = args
        self.mode = MODES[args.mode]
        self.run_id = args.run_id
        self.out = open(args.out, "a")
        self.only = re.compile(args.only) if args.only else None
        self.skip = re.compile(args.skip) if args.skip else None
        self.bench = os.path.join(args.build, "tests", "bench")
        self.env = dict(os.environ, PYTHONPATH=os.path.join(args.build, "python"))
        self.srcdir = os.path.join(args.work, f"src-{args.mode}")
        self.src = {d: os.path.join(self.srcdir, f"src_{d}.{'i32' if d == 'i32' else 'f64'}")
                    for d in ("sin", "rand", "i32")}
        self.stores = os.path.join(args.work, "stores")
        os.makedirs(self.stores, exist_ok=True)
        self.cg = None

    # ---- recording ---------------------------------------------------------------------------

    def record(self, rec):
        rec = dict(rec, run=self.run_id)
        self.out.write(json.dumps(rec) + "\n")
        self.out.flush()

    def wanted(self, system, workload):
        key = f"{system}:{workload}"
        if self.only and not self.only.search(key):
            return False
        return not (self.skip and self.skip.search(key))

    def program(self, system, op, store, **kw):
        """The argv (and env additions) running op for system."""
        kind, codec = SYSTEMS.get(system, ("ba" if system.startswith("bigarray-c") else "py",
                                           None))
        if kind == "py":
            argv = [PY, os.path.join(HERE, "bench_py.py"), op, "--system", system]
        else:
            argv = [os.path.join(self.bench, "bench_" + kind), op, "--system", system,
                    "--codec", kw.pop("codec", codec)]
        argv += ["--store", store]
        for k, v in kw.items():
            if v is not None:
                argv += ["--" + k.replace("_", "-"), str(v)]
        return argv

    def command_text(self, argv, env_add, cgroup):
        env = {"PYTHONPATH": self.env["PYTHONPATH"]} if argv[0] == PY else {}
        env.update(env_add or {})
        text = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        text = (text + " " if text else "") + " ".join(shlex.quote(a) for a in argv)
        if cgroup:
            text = f"[in a cgroup v1 memory group, limit {cgroup >> 20} MiB] " + text
        return text

    def run(self, system, workload, argv, env_add=None, cgroup=None, record=True, timeout=3600):
        """Run one program; record its result lines (or an error line). Returns the lines."""
        env = dict(self.env, **(env_add or {}))
        cmd = self.command_text(argv, env_add, cgroup)
        log(f"{system} {workload}: {cmd}")
        pre = None
        if cgroup:
            procs = os.path.join(self.cg, "cgroup.procs")

            def pre():
                with open(procs, "w") as f:
                    f.write(str(os.getpid()))
        t0 = time.time()
        try:
            p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                               preexec_fn=pre)
            rc, out, err = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            rc, out, err = -1, e.stdout or "", f"timeout after {timeout} s"
            out = out.decode() if isinstance(out, bytes) else out
        lines = []
        for ln in out.splitlines():
            if ln.startswith("{"):
                try:
                    lines.append(json.loads(ln))
                except json.JSONDecodeError:
                    pass
        if rc != 0 or not lines:
            why = f"exit {rc}" + (f" ({signal.Signals(-rc).name})" if rc < 0 and
                                  -rc in signal.valid_signals() else "")
            tail = " | ".join(err.strip().splitlines()[-3:])
            log(f"  FAILED: {why}: {tail}")
            if record:
                self.record({"system": system, "workload": workload, "dataset": "?",
                             "value": None, "unit": None, "n": 0, "error": f"{why}: {tail}",
                             "command": cmd})
            return []
        if record:
            for rec in lines:
                rec["command"] = cmd
                rec["wall_s"] = round(time.time() - t0, 2)
                self.record(rec)
                log(f"  {rec['workload']} {rec['dataset']}: {rec['value']:.6g} {rec['unit']} "
                    f"[{rec['min']:.4g}-{rec['max']:.4g}] n={rec['n']}")
        return lines

    # ---- cgroup --------------------------------------------------------------------------------

    def cgroup_setup(self):
        root = "/sys/fs/cgroup/memory"
        if not os.path.isdir(root):
            return "no cgroup v1 memory controller at /sys/fs/cgroup/memory"
        self.cg = os.path.join(root, f"ba-bench-{os.getpid()}")
        os.makedirs(self.cg, exist_ok=True)
        with open(os.path.join(self.cg, "memory.limit_in_bytes"), "w") as f:
            f.write(str(self.mode["cgroup"]))
        return None

    def cgroup_counters(self):
        def rd(n):
            try:
                return open(os.path.join(self.cg, n)).read().strip()
            except OSError:
                return "?"
        oom = dict(ln.split() for ln in rd("memory.oom_control").splitlines() if " " in ln)
        return {"cgroup_max_usage_MiB": int(rd("memory.max_usage_in_bytes")) >> 20,
                "cgroup_failcnt": int(rd("memory.failcnt")),
                "cgroup_oom_kill": int(oom.get("oom_kill", 0))}

    def cgroup_reset(self):
        for n in ("memory.max_usage_in_bytes", "memory.failcnt"):
            try:
                with open(os.path.join(self.cg, n), "w") as f:
                    f.write("0")
            except OSError:
                pass

    def cgroup_teardown(self):
        if self.cg:
            try:
                os.rmdir(self.cg)
            except OSError as e:
                log(f"cannot remove {self.cg}: {e}")

    def in_cgroup(self, system, workload, argv, before, reps, env_add=None):
        """reps processes, each one repetition inside the cgroup after before(); the
        samples are merged into one figure."""
        samples, last, extras = [], None, []
        oom0 = self.cgroup_counters()["cgroup_oom_kill"]
        for _ in range(reps):
            before()
            self.cgroup_reset()
            lines = self.run(system, workload, argv, env_add=env_add, cgroup=self.mode["cgroup"],
                             record=False)
            c = self.cgroup_counters()
            c["cgroup_oom_kill"] -= oom0
            extras.append(c)
            if not lines:
                self.record({"system": system, "workload": workload, "dataset": "sin",
                             "value": None, "unit": "MB/s", "n": 0,
                             "error": f"failed in the cgroup (oom kills so far: "
                                      f"{c['cgroup_oom_kill']})",
                             "command": self.command_text(argv, env_add, self.mode["cgroup"])})
                return
            last = lines[-1]
            samples += last["samples"]
        s = sorted(samples)
        n = len(s)
        rec = dict(last, workload=workload, n=n, samples=samples, min=s[0], max=s[-1],
                   value=s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2,
                   command=self.command_text(argv, env_add, self.mode["cgroup"]))
        rec["extra"] = dict(rec.get("extra", {}), cgroup=extras)
        self.record(rec)
        log(f"  {workload}: {rec['value']:.6g} MB/s [{rec['min']:.4g}-{rec['max']:.4g}] "
            f"max usage {max(e['cgroup_max_usage_MiB'] for e in extras)} MiB")

    # ---- stages --------------------------------------------------------------------------------

    def calibrate(self):
        if self.wanted("machine", "calib"):
            self.run("machine", "calib", [os.path.join(self.bench, "bench_calib"), "--reps",
                                          str(self.mode["reps"]), "--src", self.src["sin"]])

    def system_main(self, system):
        m = self.mode
        rows = m["size"] // ROW_BYTES
        store = os.path.join(self.stores, f"{system}-sin")
        w = lambda wl: self.wanted(system, wl)  # noqa: E731
        reps = m["reps"]
        slow = system in SLOW  # fewer repetitions for the slowest peer
        nrand = m["rand_reads"] // 4 if slow else m["rand_reads"]
        reads = ["W2", "W2-fresh", "W4-warm", "W3-cold", "W4-cold", "W3-cgroup-cached",
                 "W3-cgroup-cold", "W5", "W5-1block", "E2E-mean-warm", "E2E-mean-cold"]
        reads += [f"W9-{c}-{t}t" for c in ("warm", "cold") for t in m["threads"]]
        if w("W1") or any(w(x) for x in reads):
            self.run(system, "W1", self.program(system, "write", store, src=self.src["sin"],
                                                reps=min(2, m["reps_write"]) if slow
                                                else m["reps_write"], cache="cold"),
                     record=w("W1"))
        if w("W2"):
            self.run(system, "W2", self.program(system, "scanhot", store, reps=reps,
                                                cache="warm"))
        if w("W2-fresh"):
            self.run(system, "W2-fresh", self.program(system, "scan", store, reps=reps,
                                                      cache="warm"))
        if w("W4-warm"):
            self.run(system, "W4-warm", self.program(system, "rand", store, reps=reps,
                                                     cache="warm", count=nrand))
        if w("W3-cold"):
            self.run(system, "W3-cold", self.program(system, "scan", store, reps=reps,
                                                     cache="cold"))
        if w("W4-cold"):
            self.run(system, "W4-cold", self.program(system, "rand", store, reps=reps,
                                                     cache="cold", count=nrand))
        if self.cg and w("W3-cgroup-cached") and system not in SLOW:
            self.in_cgroup(system, "W3-cgroup-cached",
                           self.program(system, "scan", store, reps=1,
                                        workload="W3-cgroup-cached"),
                           lambda: warm(store), reps)
        if self.cg and w("W3-cgroup-cold"):
            self.in_cgroup(system, "W3-cgroup-cold",
                           self.program(system, "scan", store, reps=1,
                                        workload="W3-cgroup-cold"),
                           drop_caches, reps)
        for cache in ("warm", "cold"):
            for t in m["threads"]:
                wl = f"W9-{cache}-{t}t"
                if w(wl) and system in THREADS:
                    self.run(system, wl, self.program(system, "scan", store, reps=reps,
                                                      cache=cache, threads=t, workload=wl))
        if system in E2E and any(w(f"E2E-mean-{c}") for c in ("warm", "cold")):
            self.e2e(system, store, rows)
        if system in COPY_PATH:
            self.copy_path(system, COPY_PATH[system], store)
        if w("W5"):
            self.run(system, "W5", self.program(system, "rewrite", store, cache="warm",
                                                count=m["commits"]))
        if w("W5-1block"):
            self.run(system, "W5-1block", self.program(system, "rewrite", store, cache="warm",
                                                       count=m["commits"], blocks=1))
        rmtree(store)
        if w("W6"):
            app = os.path.join(self.stores, f"{system}-append")
            rmtree(app)
            settle(self.stores)
            self.run(system, "W6", self.program(system, "append", app, src=self.src["sin"],
                                                count=m["appends"],
                                                reps=1 if slow else m["reps_append"]))
            rmtree(app)
        if system in RDMAP_PATH:
            self.rdmap_path(system, RDMAP_PATH[system])
        if system in BIG_APPEND and w("W6-16G"):
            big = os.path.join(self.stores, f"{system}-big")
            rmtree(big)
            big_rows = m["big"] // ROW_BYTES
            log(f"{system}: building the {m['big'] >> 30} GiB array for W6-16G (untimed)")
            ok = self.run(system, "W6-16G-setup",
                          self.program(system, "write", big, src=self.src["sin"], rows=big_rows,
                                       reps=1, commit_rows=GiB // ROW_BYTES,
                                       workload="setup"), record=False)
            if ok:
                self.run(system, "W6-16G", self.program(system, "append", big,
                                                        src=self.src["sin"],
                                                        count=m["appends"],
                                                        reps=m["reps_append"],
                                                        workload="W6-16G"))
            rmtree(big)

    def copy_path(self, system, label, store):
        """bigarray's reads with zero-copy off (every block copied into a frame), on the
        same store, labelled `label`."""
        m, env = self.mode, {"BIGARRAY_ZEROCOPY": "0"}
        w = lambda wl: self.wanted(label, wl)  # noqa: E731

        def prog(op, **kw):
            argv = self.program(system, op, store, **kw)
            argv[argv.index("--system") + 1] = label
            return argv
        for wl, op, kw in (("W2-fresh", "scan", dict(cache="warm")),
                           ("W3-cold", "scan", dict(cache="cold")),
                           ("W4-warm", "rand", dict(cache="warm", count=m["rand_reads"])),
                           ("W4-cold", "rand", dict(cache="cold", count=m["rand_reads"]))):
            if w(wl):
                self.run(label, wl, prog(op, reps=m["reps"], **kw), env_add=env)
        if self.cg and w("W3-cgroup-cold"):
            self.in_cgroup(label, "W3-cgroup-cold",
                           prog("scan", reps=1, workload="W3-cgroup-cold"), drop_caches,
                           m["reps"], env_add=env)
        budget = str(max(64 * MiB, m["size"] // 4))
        for cache in ("warm", "cold"):
            wl = f"E2E-mean-{cache}"
            if w(wl):
                self.run(label, wl, prog("scan", reps=m["reps"], cache=cache, workload=wl),
                         env_add=dict(env, BIGARRAY_RAM_LIMIT=budget))

    def rdmap_path(self, system, label):
        """system's writes (W1, W5, W6) with LMDB's map read-only, labelled `label`."""
        m, env = self.mode, {"BIGARRAY_WRITEMAP": "0"}
        w = lambda wl: self.wanted(label, wl)  # noqa: E731

        def prog(op, store, **kw):
            argv = self.program(system, op, store, **kw)
            argv[argv.index("--system") + 1] = label
            return argv
        store = os.path.join(self.stores, f"{label}-sin")
        rmtree(store)
        if any(w(x) for x in ("W1", "W5", "W5-1block")):
            self.run(label, "W1", prog("write", store, src=self.src["sin"],
                                       reps=m["reps_write"], cache="cold"),
                     env_add=env, record=w("W1"))
        if w("W5"):
            self.run(label, "W5", prog("rewrite", store, cache="warm", count=m["commits"]),
                     env_add=env)
        if w("W5-1block"):
            self.run(label, "W5-1block", prog("rewrite", store, cache="warm",
                                              count=m["commits"], blocks=1), env_add=env)
        rmtree(store)
        if w("W6"):
            app = os.path.join(self.stores, f"{label}-append")
            rmtree(app)
            settle(self.stores)
            self.run(label, "W6", prog("append", app, src=self.src["sin"], count=m["appends"],
                                       reps=m["reps_append"]), env_add=env)
            rmtree(app)

    def e2e(self, system, store, rows):
        """Issue #4: the mean over an array 4x bigarray's RAM budget, same bytes and same
        page-cache state for every system."""
        budget = str(max(64 * MiB, self.mode["size"] // 4))
        env = {"BIGARRAY_RAM_LIMIT": budget} if system.startswith("bigarray") else {}
        for cache in ("warm", "cold"):
            wl = f"E2E-mean-{cache}"
            if not self.wanted(system, wl):
                continue
            if system.startswith("bigarray-c"):
                argv = self.program(system, "scan", store, reps=self.mode["reps"], cache=cache,
                                    workload=wl)
            else:
                argv = self.program(system, "mean", store, reps=self.mode["reps"], cache=cache,
                                    workload=wl)
            self.run(system, wl, argv, env_add=env)

    def dataset_rand(self, system):
        """The compressed systems' worst case: incompressible data (W1, W7, W2-fresh, W3)."""
        store = os.path.join(self.stores, f"{system}-rand")
        m = self.mode
        if not any(self.wanted(system, x) for x in ("W1", "W7", "W2-fresh", "W3-cold")):
            return
        self.run(system, "W1", self.program(system, "write", store, src=self.src["rand"],
                                            dataset="rand", reps=min(2, m["reps_write"]),
                                            cache="cold"))
        if self.wanted(system, "W2-fresh"):
            self.run(system, "W2-fresh", self.program(system, "scan", store, dataset="rand",
                                                      reps=m["reps"], cache="warm"))
        if self.wanted(system, "W3-cold"):
            self.run(system, "W3-cold", self.program(system, "scan", store, dataset="rand",
                                                     reps=m["reps"], cache="cold"))
        rmtree(store)

    def sizes_i32(self):
        for system, codec in I32_SIZES:
            if not self.wanted(system, "W7"):
                continue
            store = os.path.join(self.stores, f"{system}-i32")
            kw = dict(src=self.src["i32"], dataset="i32", dtype="<i4", reps=1)
            if codec:
                kw["codec"] = codec
                argv = [os.path.join(self.bench, "bench_ba"), "write", "--system", system,
                        "--codec", codec, "--store", store]
                for k, v in kw.items():
                    if k != "codec":
                        argv += ["--" + k, str(v)]
            else:
                argv = self.program(system, "write", store, **kw)
            self.run(system, "W7", argv)
            rmtree(store)

    def pager(self):
        if not self.wanted("pager", "W8"):
            return
        argv = [os.path.join(self.bench, "bench_pager"), "all", "-r", str(self.mode["reps"] + 2),
                "-d", self.stores, "-s", str(self.mode["pager_gib"])]
        cmd = self.command_text(argv, None, None)
        log(f"pager W8: {cmd}")
        p = subprocess.run(argv, capture_output=True, text=True)
        for ln in p.stdout.splitlines():
            kv = dict(x.split("=", 1) for x in ln.split()[1:] if "=" in x)
            base = {"dataset": "-", "command": cmd, "n": int(kv.get("reps", 0) or 0),
                    "extra": kv}
            if ln.startswith("fault_noop") and "us_per_fault_median" in kv:
                self.record(dict(base, system=f"pager-{kv['backend']}", workload="W8-fault",
                                 value=float(kv["us_per_fault_median"]), unit="us/fault",
                                 min=float(kv["min"]), max=float(kv["max"])))
            elif ln.startswith("seqread") and "pager_GBps_median" in kv:
                b = kv["backend"]
                for key, sysname in (("pager_GBps_median", f"pager-{b}"),
                                     ("mmap_fresh_GBps_median", f"mmap-loop ({b} run)"),
                                     ("copy_pipeline_GBps_median", f"copy-pipeline ({b} run)")):
                    v = float(kv[key]) * 1000
                    self.record(dict(base, system=sysname, workload="W8-seq-512M",
                                     value=v, unit="MB/s", min=v, max=v))
            elif ln.startswith("zerocopy_seqread") and "aligned_GBps_median" in kv:
                for key, sysname in (("aligned_GBps_median", "pager-zerocopy-2MiB-aligned"),
                                     ("shift4k_GBps_median", "pager-zerocopy-as-in-data.mdb")):
                    v = float(kv[key]) * 1000
                    self.record(dict(base, system=sysname, workload="W8-seq-512M",
                                     value=v, unit="MB/s", min=v, max=v))
                for key, sysname in (("fault_us_median", "pager-zerocopy"),
                                     ("remap_us_median", "pager-zerocopy-remap")):
                    v = float(kv[key])
                    self.record(dict(base, system=sysname, workload="W8-fault", value=v,
                                     unit="us/fault", min=v, max=v))
            log(f"  {ln}")
        if p.returncode:
            self.record({"system": "pager", "workload": "W8", "dataset": "-", "value": None,
                         "unit": None, "n": 0, "command": cmd,
                         "error": f"exit {p.returncode}: {p.stderr.strip()[-300:]}"})

    def all(self):
        m = self.mode
        why = self.cgroup_setup()
        if why:
            log(f"W3 cgroup rows skipped: {why}")
        try:
            self.calibrate()
            for system in SYSTEMS:
                self.system_main(system)
            if m["rand"]:
                for system in SYSTEMS:
                    if system in COMPRESSED and system != "h5py-gzip1":
                        self.dataset_rand(system)
            self.sizes_i32()
            self.pager()
        finally:
            self.cgroup_teardown()
        self.record({"system": "machine", "workload": "end", "dataset": "-", "value": None,
                     "unit": None, "n": 0,
                     "extra": {"loadavg_end": open("/proc/loadavg").read().strip(),
                               "date": datetime.datetime.now(datetime.timezone.utc)
                               .isoformat(timespec="seconds")}})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=sorted(MODES), required=True)
    p.add_argument("--build", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--src-root", required=True, help="the source tree that was built")
    p.add_argument("--rev", default="worktree", help="the git revision it holds")
    p.add_argument("--only", help="regex on 'system:workload' to run only those")
    p.add_argument("--skip", help="regex on 'system:workload' to leave out")
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_run: needs root (drop_caches, cgroups)")
    mode = MODES[args.mode]
    # SIGTERM ends the run through the finally clauses (the cgroup is removed).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    r = Runner(args)
    r.record({"system": "machine", "workload": "facts", "dataset": "-", "value": None,
              "unit": None, "n": 0, "extra": machine_facts(args, mode)})
    t0 = time.time()
    log(f"generating the data in {r.srcdir} (once; kept for later runs)")
    subprocess.run([PY, os.path.join(HERE, "bench_gen.py"), r.srcdir, str(mode["size"]),
                    str(mode["i32"])], check=True)
    r.all()
    log(f"done in {time.time() - t0:.0f} s: {args.out}")


if __name__ == "__main__":
    main()
