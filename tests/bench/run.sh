#!/bin/sh
# SPDX-License-Identifier: MIT
# One command reruns the side-by-side benchmark of bigarray and its peers (issue #8) and
# issue #4's end-to-end benchmark:
#
#   tests/bench/run.sh quick   smoke check, < 5 min: 256 MiB data sets, 1-2 repetitions
#   tests/bench/run.sh full    the figures of docs/performance.md, <= 1 h: 4 GiB data sets
#
# Extra arguments go to bench_run.py (--only REGEX / --skip REGEX on "system:workload").
# It builds the committed revision BA_BENCH_REV (default HEAD, exported with git into
# $BA_BENCH_DIR/tree, so other people's uncommitted edits in this checkout never leak into
# the figures; BA_BENCH_REV=worktree builds the checkout as it is) in its own build
# directory (RelWithDebInfo), generates the data once into $BA_BENCH_DIR (default
# /var/tmp/ba-bench; kept for later runs), records the machine's facts, and writes one JSON
# line per figure to tests/bench/results/<run>.jsonl and the Markdown tables to
# tests/bench/results/<run>.md. Needs root (drop_caches, cgroup v1 memory limits) and free
# disk (checked first).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mode=${1:-}
case "$mode" in
quick) need_gb=4 ;;
full) need_gb=40 ;;
*)
    echo "usage: $0 quick|full [--only REGEX] [--skip REGEX]" >&2
    exit 2
    ;;
esac
shift
work=${BA_BENCH_DIR:-/var/tmp/ba-bench}
rev=${BA_BENCH_REV:-HEAD}
py=/usr/bin/python3

say() { printf '== %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
    echo "$0: needs root (drop_caches and cgroup memory limits)" >&2
    exit 1
fi

# Disk: the data sets, one store at a time and W6's 16 GiB array. What the work dir
# already holds (the generated data) counts as available.
mkdir -p "$work"
avail_kb=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
have_kb=$(du -sk "$work" | awk '{ print $1 }')
if [ $(((avail_kb + have_kb) / 1000000)) -lt "$need_gb" ]; then
    echo "$0: $mode needs about $need_gb GB free for $work ($((avail_kb / 1000000)) GB free," \
        "$((have_kb / 1000000)) GB already there); set BA_BENCH_DIR to a larger disk" >&2
    exit 1
fi

if [ "$rev" = worktree ]; then
    src=$root
    build=${BA_BENCH_BUILD:-$root/build-bench}
else
    # Only the files that differ from the last export are rewritten: builds stay incremental.
    src=$work/tree
    build=${BA_BENCH_BUILD:-$work/build}
    mkdir -p "$src"
    say "exporting $rev ($(git -C "$root" rev-parse --short "$rev")) to $src"
    GIT_INDEX_FILE=$work/tree.index git -C "$root" --work-tree="$src" read-tree --reset -u "$rev"
fi
mkdir -p "$build"
say "building $build from $src (RelWithDebInfo)"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBA_BUILD_BENCH=ON \
    -DBA_BUILD_PYTHON=ON >"$build/configure.log" 2>&1 || {
    cat "$build/configure.log" >&2
    exit 1
}
cmake --build "$build" -j "$(nproc)" --target bench_ba bench_lmdb bench_calib bench_pager \
    bigarray_python >"$build/build.log" 2>&1 || {
    tail -40 "$build/build.log" >&2
    exit 1
}

run=${BA_BENCH_RUN:-$(date -u +%Y%m%dT%H%M%SZ)-$mode}
results="$here/results"
mkdir -p "$results"
say "run $run: load average $(cut -d' ' -f1-3 /proc/loadavg), results in $results/$run.jsonl"
BA_BENCH_REPO=$root "$py" "$src/tests/bench/bench_run.py" --mode "$mode" --build "$build" \
    --work "$work" --src-root "$src" --rev "$rev" --out "$results/$run.jsonl" --run-id "$run" "$@"
"$py" "$src/tests/bench/summarize.py" "$results/$run.jsonl" >"$results/$run.md"
rm -rf "$work/stores"
say "tables: $results/$run.md (data kept in $work/src-$mode; remove it to free the disk)"
