#!/bin/sh
# SPDX-License-Identifier: MIT
# The CI mode of the fuzz harnesses: build them (clang, libFuzzer, ASan+UBSan) if
# needed, run each for SECONDS on a temporary copy of its seed corpus and regression
# inputs (the committed corpus never grows), and fail if any harness reports a crash,
# a leak, a timeout, running out of memory or any sanitizer finding.
#
#   tests/fuzz/run.sh [SECONDS] [HARNESS...]     (default: 60 s, every harness)
#
# Environment: BA_FUZZ_BUILD (build directory, default build-fuzz at the top of the
# checkout), BA_FUZZ_OUT (where logs and reproducers go, default tests/fuzz/artifacts,
# which git ignores), BA_FUZZ_KEEP_CORPUS=1 (keep the grown temporary corpora in the
# output directory, e.g. to minimise them and pick new seeds by hand).
#
# Exit status: 0 all clean, 1 a finding (its reproducer path is printed: replay it
# with `build-fuzz/tests/fuzz/fuzz_<harness> FILE`), 2 a build or usage error.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
all="block catalog changes slice npy elem"

secs=${1:-60}
case $secs in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS] [HARNESS...]  (harnesses: $all)" >&2
    exit 2
    ;;
esac
[ $# -gt 0 ] && shift
harnesses=${*:-$all}
for h in $harnesses; do
    [ -f "$here/fuzz_$h.c" ] || {
        echo "run.sh: no harness '$h' (harnesses: $all)" >&2
        exit 2
    }
done

build=${BA_FUZZ_BUILD:-$top/build-fuzz}
if ! grep -qs '^BA_BUILD_FUZZ:BOOL=ON' "$build/CMakeCache.txt"; then
    echo "== configuring $build (clang, BA_BUILD_FUZZ=ON)"
    CC=clang cmake -S "$top" -B "$build" -DBA_BUILD_FUZZ=ON -DBA_BUILD_BENCH=OFF \
        -DBA_BUILD_PYTHON=OFF >"$build.configure.log" 2>&1 || {
        cat "$build.configure.log" >&2
        echo "run.sh: cmake failed" >&2
        exit 2
    }
fi
targets=""
for h in $harnesses; do targets="$targets fuzz_$h"; done
echo "== building$targets"
# shellcheck disable=SC2086
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target $targets >"$build/fuzz-build.log" 2>&1 || {
    cat "$build/fuzz-build.log" >&2
    echo "run.sh: build failed" >&2
    exit 2
}

out=${BA_FUZZ_OUT:-$here/artifacts}/$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$out" || exit 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bafuzz.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

# Copy the non-hidden files of a directory (missing directory: nothing).
copy_inputs() { # from to
    [ -d "$1" ] || return 0
    for f in "$1"/*; do
        [ -f "$f" ] && cp "$f" "$2/"
    done
    return 0
}

stat_of() { # log name
    sed -n "s/^stat::$2: *//p" "$1" | tail -n 1
}

echo "== fuzzing $secs s per harness; logs and reproducers in $out"
printf '%-8s %8s %12s %10s %6s  %s\n' harness seconds executions exec/s cov result
failed=0
for h in $harnesses; do
    corpus=$tmp/$h
    mkdir -p "$corpus"
    copy_inputs "$here/corpus/$h" "$corpus"
    copy_inputs "$here/regression/$h" "$corpus"
    dict=""
    [ -f "$here/dict/$h.dict" ] && dict=-dict=$here/dict/$h.dict
    log=$out/$h.log
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$build/tests/fuzz/fuzz_$h" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 $dict -artifact_prefix="$out/$h-" "$corpus" >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    execs=$(stat_of "$log" number_of_executed_units)
    speed=$(stat_of "$log" average_exec_per_sec)
    cov=$(sed -n 's/.*DONE *cov: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
    repro=$(ls "$out/$h-"* 2>/dev/null)
    result=ok
    if [ $rc -ne 0 ] || [ -n "$repro" ] ||
        grep -qE 'runtime error:|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' "$log"; then
        result=FAIL
        failed=1
    fi
    printf '%-8s %8s %12s %10s %6s  %s\n' "$h" "$took" "${execs:-?}" "${speed:-?}" \
        "${cov:-?}" "$result"
    if [ $result = FAIL ]; then
        echo "---- $h: exit status $rc; the report:"
        grep -E -A25 'ERROR:|runtime error:|invariant failed' "$log" | head -n 60
        for r in $repro; do echo "---- $h reproducer: $r"; done
        [ -n "$repro" ] || echo "---- $h: no reproducer written; see $log"
    fi
    if [ "${BA_FUZZ_KEEP_CORPUS:-0}" = 1 ]; then
        mv "$corpus" "$out/corpus-$h"
    fi
done
if [ $failed -ne 0 ]; then
    echo "== FAILED: a harness found something (logs in $out)"
    exit 1
fi
echo "== all harnesses clean"
exit 0
