#!/bin/sh
# SPDX-License-Identifier: MIT
# Source coverage of the parsers reached by a corpus: builds the replay programs
# with clang's source-based coverage (build-fuzzcov/), replays the seed corpus and
# regression inputs plus any extra directories given (e.g. a corpus kept by
# `BA_FUZZ_KEEP_CORPUS=1 tests/fuzz/run.sh`), and prints llvm-cov's per-function
# report for the files each harness is about.
#
#   tests/fuzz/coverage.sh HARNESS [EXTRA_DIR...]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
h=${1:?usage: $0 HARNESS [EXTRA_DIR...]}
shift
case $h in
block) files="$top/store/store_record.c" ;;
catalog) files="$top/store/store_catalog.c" ;;
changes) files="$top/store/store_changes.c" ;;
slice) files="$top/lib/ba_slice.c $top/lib/ba_dtype.c $top/lib/ba_spec.c $top/common/ba_inject.c" ;;
npy) files="$top/tools/npy.c" ;;
elem) files="$top/tools/elem.c" ;;
*)
    echo "coverage.sh: unknown harness '$h'" >&2
    exit 2
    ;;
esac
build=${BA_FUZZ_COV_BUILD:-$top/build-fuzzcov}
if [ ! -f "$build/CMakeCache.txt" ]; then
    CC=clang cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DBA_BUILD_BENCH=OFF \
        -DBA_BUILD_PYTHON=OFF -DBA_BUILD_TOOLS=OFF \
        -DCMAKE_C_FLAGS="-fprofile-instr-generate -fcoverage-mapping" >/dev/null
fi
cmake --build "$build" --target "fuzz_$h" >/dev/null
prof=$build/fuzz_$h
rm -f "$prof".profraw "$prof".profdata
LLVM_PROFILE_FILE=$prof.profraw "$build/tests/fuzz/fuzz_$h" "$here/corpus/$h" \
    "$here/regression/$h" "$@" 2>/dev/null
llvm-profdata merge -o "$prof.profdata" "$prof.profraw"
# shellcheck disable=SC2086
llvm-cov report "$build/tests/fuzz/fuzz_$h" -instr-profile="$prof.profdata" -show-functions $files
