#!/bin/sh
# SPDX-License-Identifier: MIT
# One entry point for a fresh Debian 12 machine (as root, or with sudo):
#   ./build.sh demo   install what is missing, build, run the demo
#   ./build.sh test   install what is missing, build, run the whole test suite
#   ./build.sh asan   the test suite built with ASan+UBSan (build-asan/)
#   ./build.sh tsan   the test suite built with TSan (build-tsan/)
# Every step says what it does; running it again only redoes what changed.
set -eu
cd "$(dirname "$0")"
mode=${1:-test}
jobs=$(nproc 2>/dev/null || echo 2)

say() { printf '\n== %s\n' "$*"; }

packages="build-essential cmake pkg-config liblmdb-dev libzstd-dev liburing-dev check
libxxhash-dev libdlpack-dev libopenblas-dev python3 python3-dev python3-numpy
python3-pytest clang clang-format libclang-rt-dev lmdb-utils"

install_missing() {
    missing=""
    for p in $packages; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing="$missing $p"
    done
    if [ -z "$missing" ]; then
        say "dependencies: all installed"
        return
    fi
    say "installing missing Debian packages:$missing"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    # shellcheck disable=SC2086
    $sudo apt-get install -y -q --no-install-recommends $missing
}

configure_build() { # dir, extra cmake args...
    dir=$1
    shift
    werror=OFF
    [ "${CI:-}" = true ] && werror=ON
    say "configuring $dir ($*)"
    cmake -S . -B "$dir" -DBA_WERROR=$werror "$@" >"$dir.configure.log" 2>&1 || {
        cat "$dir.configure.log"; exit 1; }
    say "building $dir with $jobs jobs"
    cmake --build "$dir" -j "$jobs"
}

run_tests() { # dir
    say "running the test suite in $1"
    (cd "$1" && ctest --output-on-failure -j "$jobs" --timeout 900)
}

case "$mode" in
demo)
    install_missing
    configure_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
    db=$(mktemp -d "${TMPDIR:-/tmp}/bigarray-demo-XXXXXX")
    say "running the demo on $db/demo.db"
    ./build/demo/demo "$db/demo.db"
    rm -rf "$db"
    ;;
test)
    install_missing
    configure_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
    run_tests build
    ;;
asan)
    install_missing
    configure_build build-asan -DCMAKE_BUILD_TYPE=Debug -DBA_SANITIZE=address -DBA_BUILD_BENCH=OFF
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} run_tests build-asan
    ;;
tsan)
    install_missing
    configure_build build-tsan -DCMAKE_BUILD_TYPE=Debug -DBA_SANITIZE=thread -DBA_BUILD_BENCH=OFF
    TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} run_tests build-tsan
    ;;
*)
    echo "usage: $0 demo|test|asan|tsan" >&2
    exit 2
    ;;
esac
say "$mode: done"
