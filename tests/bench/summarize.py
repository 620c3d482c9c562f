#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Turn benchmark result files (JSON lines from bench_run.py) into Markdown tables.

  summarize.py RUN.jsonl              tables of one run: medians, ranges, ratios within it,
                                      the goals of issues #8 and #4 checked
  summarize.py OLD.jsonl NEW.jsonl    the tables of NEW, then NEW against OLD figure by figure

Ratios are always within one run. "bigarray ÷ peer" columns are oriented so that > 1
means bigarray is better (faster, or smaller for bytes/seconds).
"""
import json
import sys

HIGHER = {"MB/s", "reads/s"}
BIGARRAY = ("bigarray-c", "bigarray-c-zstd1", "bigarray-py", "bigarray-py-zstd1")
BIGARRAY_EXTRA = ("bigarray-c-copy", "bigarray-c-rdmap", "bigarray-c-zstd1-rdmap",
                  "bigarray-c-zstd1-shuffle")
ORDER = ("memmap", "h5py", "h5py-gzip1", "zarr-lmdb", "zarr-lmdb-zstd1", "zarr-dir",
         "zarr-dir-zstd1", "zarr-dir-blosc", "lmdb-c", "lmdb-c-zstd1") + BIGARRAY + BIGARRAY_EXTRA
WORKLOADS = [
    ("W1", "W1 write + durable commit"),
    ("W2", "W2 warm scan, data already in the process (one handle, after one untimed pass)"),
    ("W2-fresh", "W2' warm page cache, fresh handle per repetition (the anchors' W2)"),
    ("W3-cold", "W3 cold scan (sync; drop_caches before each repetition)"),
    ("W3-cgroup-cached", "W3 scan in a 512 MiB memory cgroup, store in the page cache"),
    ("W3-cgroup-cold", "W3 scan in a 512 MiB memory cgroup, cold (the anchors' W8)"),
    ("W4-warm", "W4 2,000 random 64 KiB reads, warm page cache, fresh handle"),
    ("W4-cold", "W4 2,000 random 64 KiB reads, cold"),
    ("W5", "W5 rewrite one row in each of 1% of the blocks + durable commit"),
    ("W5-1block", "W5' a 1-block change + durable commit (issue #4's commit latency)"),
    ("W6", "W6 1,000 appends of 1 MiB, durable commit after each, from an empty array"),
    ("W6-16G", "W6 at 16 GiB: the same appends to an array of 16 GiB"),
    ("W7", "W7 bytes on disk"),
    ("W9-warm-1t", "W9 scan, warm page cache, 1 thread"),
    ("W9-warm-2t", "W9 scan, warm page cache, 2 threads"),
    ("W9-cold-1t", "W9 scan, cold, 1 thread"),
    ("W9-cold-2t", "W9 scan, cold, 2 threads"),
    ("E2E-mean-warm", "Issue #4: mean over an array 4x bigarray's RAM budget, warm page cache"),
    ("E2E-mean-cold", "Issue #4: mean over an array 4x bigarray's RAM budget, cold"),
    ("W8-fault", "W8 pager fault cost per 2 MiB block, no-op load (bench_pager fault)"),
    ("W8-seq-512M", "W8 pager sequential read, 512 MiB budget (bench_pager seq)"),
]


def load(path):
    recs = []
    with open(path) as f:
        for ln in f:
            ln = ln.strip()
            if ln:
                recs.append(json.loads(ln))
    return recs


def fmt(v, unit=None):
    if v is None:
        return "–"
    if unit == "bytes":
        return f"{v / 2**20:,.1f} MiB"
    a = abs(v)
    if a >= 10000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def better_ratio(ba, peer, unit):
    """> 1 when ba is better than peer."""
    if ba is None or peer is None or ba == 0 or peer == 0:
        return None
    return ba / peer if unit in HIGHER else peer / ba


class Run:
    def __init__(self, recs):
        self.recs = recs
        self.facts = next((r["extra"] for r in recs if r.get("workload") == "facts"), {})
        self.end = next((r["extra"] for r in recs if r.get("workload") == "end"), {})
        self.fig = {}
        self.errors = []
        for r in recs:
            if r.get("system") == "machine" and r.get("workload") in ("facts", "end"):
                continue
            if r.get("value") is None:
                self.errors.append(r)
                continue
            self.fig[(r["system"], r["workload"], r["dataset"])] = r

    def get(self, system, workload, dataset="sin"):
        return self.fig.get((system, workload, dataset))

    def val(self, system, workload, dataset="sin"):
        r = self.get(system, workload, dataset)
        return r["value"] if r else None

    def systems(self, workload, dataset):
        have = {s for (s, w, d) in self.fig if w == workload and d == dataset}
        return [s for s in ORDER if s in have] + sorted(have - set(ORDER))


def cell(r):
    if not r:
        return "–"
    if r["n"] > 1 and r["min"] != r["max"]:
        u = r["unit"]
        return f"{fmt(r['value'], u)} [{fmt(r['min'], u)}–{fmt(r['max'], u)}]"
    return fmt(r["value"], r["unit"])


def headline(run, out):
    cols = [("W1", "W1 write MB/s"), ("W2", "W2 in-process MB/s"),
            ("W2-fresh", "W2' fresh MB/s"), ("W3-cold", "W3 cold MB/s"),
            ("W3-cgroup-cached", "W3 cg cached MB/s"), ("W3-cgroup-cold", "W3 cg cold MB/s"),
            ("W4-warm", "W4 warm reads/s"), ("W4-cold", "W4 cold reads/s"),
            ("W5", "W5 ms/commit"), ("W6", "W6 s"), ("W6-16G", "W6 16G s"),
            ("W7", "W7 MiB"), ("W9-warm-2t", "W9 2t/1t warm"), ("W9-cold-2t", "W9 2t/1t cold")]
    out.append("| system | " + " | ".join(c[1] for c in cols) + " |")
    out.append("|---" * (len(cols) + 1) + "|")
    for s in ORDER:
        if not any(run.get(s, w) for w, _ in cols):
            continue
        row = []
        for w, _ in cols:
            if w.startswith("W9"):
                two, one = run.val(s, w), run.val(s, w.replace("2t", "1t"))
                row.append(f"{two / one:.2f}" if two and one else "–")
            else:
                r = run.get(s, w)
                row.append(fmt(r["value"], r["unit"]) if r else "–")
        out.append(f"| {s} | " + " | ".join(row) + " |")


def workload_tables(run, out):
    for w, title in WORKLOADS:
        for ds in ("sin", "rand", "i32", "-"):
            systems = run.systems(w, ds)
            if not systems:
                continue
            bas = [b for b in BIGARRAY if run.get(b, w, ds)]
            unit = run.get(systems[0], w, ds)["unit"]
            out.append(f"\n### {title} — dataset {ds} ({unit})\n")
            hdr = ["system", "median [min–max]", "n", "×memmap"]
            hdr += [f"{b} ÷ this" for b in bas]
            out.append("| " + " | ".join(hdr) + " |")
            out.append("|---" * len(hdr) + "|")
            mm = run.val("memmap", w, ds)
            for s in systems:
                r = run.get(s, w, ds)
                x = better_ratio(r["value"], mm, unit) if mm and s != "memmap" else None
                xm = f"{x:.2f}" if x else ("1" if s == "memmap" else "–")
                row = [s, cell(r), str(r["n"]), xm]
                for b in bas:
                    q = better_ratio(run.val(b, w, ds), r["value"], unit)
                    row.append("" if b == s else (f"{q:.2f}" if q else "–"))
                out.append("| " + " | ".join(row) + " |")
            cmds = sorted({run.get(s, w, ds).get("command", "") for s in systems})
            out.append("\n<details><summary>commands</summary>\n")
            for c in cmds:
                out.append(f"    {c}")
            out.append("\n</details>")


def goals(run, out):
    """The goals of issues #8 and #4, as ratios within this run."""
    G = []

    def ratio_goal(text, w, ba, peer, need, ds="sin"):
        r = run.get(ba, w, ds)
        p = run.get(peer, w, ds)
        q = better_ratio(r["value"] if r else None, p["value"] if p else None,
                         (r or p or {"unit": "MB/s"})["unit"])
        G.append((text, f"{ba} vs {peer}", fmt(q) if q else "–", f">= {need}",
                  None if q is None else q >= need))

    for ba in ("bigarray-py-zstd1", "bigarray-c-zstd1"):
        ratio_goal("W1 write+commit, compressible, >= 1.0x memmap", "W1", ba, "memmap", 1.0)
    for ba in ("bigarray-py", "bigarray-c"):
        ratio_goal("W1 write+commit, uncompressed, >= 0.8x memmap", "W1", ba, "memmap", 0.8)
    for w in ("W2", "W2-fresh"):
        for ba in ("bigarray-py", "bigarray-py-zstd1"):
            ratio_goal(f"{w} warm scan >= 0.9x memmap", w, ba, "memmap", 0.9)
    ratio_goal("W3 cold scan, uncompressed, >= 0.9x memmap", "W3-cold", "bigarray-py",
               "memmap", 0.9)
    ratio_goal("W3 cold scan, compressible, >= 2.0x memmap", "W3-cold", "bigarray-py-zstd1",
               "memmap", 2.0)
    for w in ("W4-warm", "W4-cold"):
        for ba in ("bigarray-py", "bigarray-py-zstd1"):
            ratio_goal(f"{w} random 64 KiB reads >= 1.0x memmap", w, ba, "memmap", 1.0)
    ratio_goal("W5 1% rewrite + commit no slower than bare LMDB", "W5", "bigarray-c", "lmdb-c",
               1.0)
    ratio_goal("W5 1% rewrite + commit no slower than bare LMDB (zstd-1)", "W5",
               "bigarray-c-zstd1", "lmdb-c-zstd1", 1.0)
    for ba in ("bigarray-py", "bigarray-c", "bigarray-py-zstd1", "bigarray-c-zstd1"):
        ratio_goal("W6 1,000 appends + commits no slower than memmap", "W6", ba, "memmap", 1.0)
    for ba in ("bigarray-c", "bigarray-c-zstd1", "bigarray-py", "bigarray-py-zstd1"):
        # Per-append medians: the totals carry the machine's stalls (p90 moved 2.5 -> 8 ms
        # between two identical runs of 300 appends).
        a, b = run.get(ba, "W6"), run.get(ba, "W6-16G")
        ma = a and a["extra"].get("ms_median")
        mb = b and b["extra"].get("ms_median")
        q = mb / ma if ma and mb else None
        tot = f" (totals {b['value'] / a['value']:.2f})" if a and b else ""
        G.append(("W6 flat to 16 GiB: median ms per append+commit at 16 GiB / from empty", ba,
                  (fmt(q) if q else "–") + tot, "<= 1.3 (noise)",
                  None if q is None else q <= 1.3))
    ratio_goal("W7 zstd-1 as small as zarr+zstd", "W7", "bigarray-c-zstd1", "zarr-dir-zstd1", 1.0)
    r, p = run.val("bigarray-c-zstd1-shuffle", "W7", "i32"), run.val("zarr-dir-blosc", "W7", "i32")
    q = p / r if p and r else None
    G.append(("W7 shuffle+zstd-1 on int32 counters as small as Blosc",
              "bigarray-c-zstd1-shuffle vs zarr-dir-blosc", fmt(q) if q else "–", ">= 1.0",
              None if q is None else q >= 1.0))
    ratio_goal("512 MiB cgroup scan (cold) >= 1.0x memmap, uncompressed", "W3-cgroup-cold",
               "bigarray-py", "memmap", 1.0)
    ratio_goal("512 MiB cgroup scan (cold) >= 1.3x memmap, compressible", "W3-cgroup-cold",
               "bigarray-py-zstd1", "memmap", 1.3)
    for c in ("warm", "cold"):
        ratio_goal(f"#4 mean, 4x budget, uncompressed, >= 0.6x memmap ({c})",
                   f"E2E-mean-{c}", "bigarray-py", "memmap", 0.6)
        ratio_goal(f"#4 mean, 4x budget, uncompressed, >= 0.9x memmap with zero-copy ({c})",
                   f"E2E-mean-{c}", "bigarray-py", "memmap", 0.9)
        for ba in ("bigarray-py", "bigarray-py-zstd1"):
            ratio_goal(f"#4 mean ahead of h5py ({c})", f"E2E-mean-{c}", ba, "h5py", 1.0)
        ratio_goal(f"#4 mean ahead of h5py, compressed ({c})", f"E2E-mean-{c}",
                   "bigarray-py-zstd1", "h5py-gzip1", 1.0)
    out.append("| goal | compared | ratio (>1 = bigarray better) | needed | met |")
    out.append("|---|---|---|---|---|")
    for text, what, shown, need, ok in G:
        met = "–" if ok is None else ("yes" if ok else "**no**")
        out.append(f"| {text} | {what} | {shown} | {need} | {met} |")


def ahead(run, out):
    """Ahead of h5py and zarr on every workload: bigarray-py against each, same codec class."""
    pairs = [("bigarray-py", p) for p in ("h5py", "zarr-lmdb", "zarr-dir")] + \
        [("bigarray-py-zstd1", p) for p in ("h5py-gzip1", "zarr-lmdb-zstd1", "zarr-dir-zstd1")]
    ws = [w for w, _ in WORKLOADS if not w.startswith(("W8", "E2E"))]
    out.append("| workload | " + " | ".join(f"{a} ÷ {p}" for a, p in pairs) + " |")
    out.append("|---" * (len(pairs) + 1) + "|")
    wins = total = 0
    for w in ws:
        row = []
        for a, p in pairs:
            ra, rp = run.get(a, w), run.get(p, w)
            q = better_ratio(ra["value"] if ra else None, rp["value"] if rp else None,
                             (ra or rp or {"unit": "MB/s"})["unit"])
            if q is not None:
                total += 1
                wins += q >= 1
            row.append("–" if q is None else (f"{q:.2f}" if q >= 1 else f"**{q:.2f}**"))
        if any(c != "–" for c in row):
            out.append(f"| {w} | " + " | ".join(row) + " |")
    out.append(f"\nbigarray ahead in {wins} of {total} comparisons (bold: behind).")


def calibration(run, out):
    rows = [r for (s, w, d), r in run.fig.items() if s == "machine"]
    if not rows:
        return
    out.append("| quantity | median [min–max] | unit |")
    out.append("|---|---|---|")
    for r in rows:
        out.append(f"| {r['workload']} | {cell(r)} | {r['unit']} |")


def compare(old, new, out):
    out.append("| system | workload | dataset | old | new | new ÷ old (>1 = better) |")
    out.append("|---|---|---|---|---|---|")
    for key in sorted(new.fig):
        if key in old.fig:
            o, n = old.fig[key], new.fig[key]
            q = better_ratio(n["value"], o["value"], n["unit"])
            out.append(f"| {key[0]} | {key[1]} | {key[2]} | {fmt(o['value'], o['unit'])} | "
                       f"{fmt(n['value'], n['unit'])} | {fmt(q) if q else '–'} |")


def main():
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    runs = [Run(load(p)) for p in sys.argv[1:]]
    run = runs[-1]
    out = []
    f = run.facts
    rid = next((r.get("run") for r in run.recs if r.get("run")), "?")
    out.append(f"# Benchmark run {rid}\n")
    out.append(f"- mode: {f.get('mode')}, date: {f.get('date')}, kernel {f.get('kernel')}")
    out.append(f"- load average at start: {f.get('loadavg_start')}; at end: "
               f"{run.end.get('loadavg_end')}")
    out.append(f"- git: {f.get('git_head')}")
    if f.get("git_dirty_lib_pager_store"):
        out.append(f"- uncommitted changes in the tree: {f['git_dirty_lib_pager_store']!r}")
    out.append(f"- versions (python numpy h5py hdf5 zarr numcodecs py-lmdb liblmdb): "
               f"{f.get('python_numpy_h5py_hdf5_zarr_numcodecs_pylmdb_liblmdb')}")
    out.append(f"- bigarray pager default: {f.get('bigarray_pager_default')}")
    out.append("\n## Headline (dataset sin, medians; W9 = 2-thread / 1-thread throughput)\n")
    headline(run, out)
    out.append("\n## Goals (issues #8 and #4), ratios within this run\n")
    goals(run, out)
    out.append("\n## Ahead of h5py and zarr? (bigarray-py against each, same run)\n")
    ahead(run, out)
    out.append("\n## Machine limits measured in this run (bench_calib)\n")
    calibration(run, out)
    out.append("\n## Per workload\n")
    workload_tables(run, out)
    if run.errors:
        out.append("\n## Failed steps\n")
        for e in run.errors:
            out.append(f"- {e.get('system')} {e.get('workload')}: {e.get('error')}  \n"
                       f"  `{e.get('command')}`")
    if len(runs) == 2:
        out.append("\n## Against the previous run\n")
        compare(runs[0], run, out)
    print("\n".join(out))


if __name__ == "__main__":
    main()
