#!/bin/sh
# SPDX-License-Identifier: MIT
# valgrind memcheck over the suites that do not go through the pager (issue #7 item 8):
#   tests/reliability/valgrind.sh BUILD_DIR
# exits 0 when every suite below passes with no memcheck error and no definite leak, 1
# on a failure, 77 (skip, with the reason) when valgrind is missing or the build is not
# a plain one. About 70 s on the 2-vCPU VM.
#
# Why only these. The pager resolves page faults either with userfaultfd (the faulting
# thread sleeps in the kernel until the service thread maps the block; valgrind runs one
# guest thread at a time, so the service thread never runs: a deadlock) or with a
# SIGSEGV handler that moves frames between mappings with mremap() (memcheck's shadow
# memory does not follow pages that mremap moves between a memfd's mappings, and each
# fault of guest code costs milliseconds). So memcheck runs store/ and common/ (every
# record codec, transactions, conflicts, change records, verify, compact) and the
# slicing/dtype code (lib/ba_slice.c, lib/ba_dtype.c); the pager and everything above
# it are covered by ASan+UBSan and TSan (./build.sh asan, ./build.sh tsan).
#
# Left out, each for a reason:
#   check_store "snapshots": 8 threads decompressing 1600 zstd blocks take over 7
#     minutes under memcheck (valgrind serialises the threads);
#   check_store_txn "processes": the tests fork committers that exit() holding what
#     their parent allocated, which memcheck counts as a definite leak in the child;
#   check_store_fault "inject": its full-map test doubles the map to 64 GiB, past the
#     32 GiB that valgrind lets one mmap() have (EINVAL).
set -eu
build=${1:?usage: $0 BUILD_DIR}
if ! command -v valgrind >/dev/null 2>&1; then
    echo "SKIP: valgrind is not installed (apt-get install valgrind)"
    exit 77
fi
# suite:tcase pairs
runs="check_store:open check_store:records check_store:map check_store:catalog
check_store_txn:conflicts check_store_txn:changes
check_store_fault:verify check_store_fault:compact
check_lib_slice:"
for r in $runs; do
    s=${r%%:*}
    if [ ! -x "$build/tests/$s" ]; then
        echo "SKIP: $build/tests/$s is not built"
        exit 77
    fi
done
if ldd "$build/tests/check_store" 2>/dev/null | grep -q -e libasan -e libtsan; then
    echo "SKIP: $build is a sanitizer build; memcheck needs a plain one"
    exit 77
fi
log=$(mktemp -d "${TMPDIR:-/tmp}/ba-valgrind-XXXXXX")
trap 'rm -rf "$log"' EXIT
# The tests run in the suite's own process (CK_FORK=no), so that memcheck sees all of
# them and checks for leaks once at the end; processes the tests fork themselves run
# unchecked. Timeouts grow for the ~30x slowdown.
export CK_FORK=no CK_DEFAULT_TIMEOUT=3000
status=0
for r in $runs; do
    s=${r%%:*}
    tc=${r#*:}
    name=$s${tc:+ ($tc)}
    start=$(date +%s)
    if [ -n "$tc" ]; then export CK_RUN_CASE="$tc"; else unset CK_RUN_CASE; fi
    if valgrind --quiet --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite --show-leak-kinds=definite \
        --child-silent-after-fork=yes --log-file="$log/$s-$tc.log" \
        "$build/tests/$s" >"$log/$s-$tc.out" 2>&1; then
        result=passed
    else
        result=FAILED
        status=1
    fi
    if [ -s "$log/$s-$tc.log" ]; then
        result=FAILED
        status=1
        cat "$log/$s-$tc.log"
    fi
    echo "valgrind memcheck: $name: $result ($(($(date +%s) - start)) s)"
    [ "$result" = passed ] || cat "$log/$s-$tc.out"
done
exit $status
