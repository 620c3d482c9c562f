#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the build tree into a temporary prefix, then build and run a tiny program
# against it twice: with pkg-config, and with CMake's find_package(bigarray).
# Usage: check_install.sh SOURCE_DIR BUILD_DIR
# BA_EXTRA_CFLAGS: compiler flags the consumer needs too (a sanitizer build's).
set -eu
extra=${BA_EXTRA_CFLAGS:-}
src=$1
build=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ba-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log"; echo "FAIL: cmake --install"; exit 1; }
libdir=$(find "$prefix" -name 'libbigarray.so' -printf '%h\n' | head -n 1)
[ -n "$libdir" ] || { echo "FAIL: libbigarray.so not installed"; exit 1; }
[ -f "$prefix/include/bigarray.h" ] || { echo "FAIL: bigarray.h not installed"; exit 1; }
if [ -f "$build/tools/bigarray" ] || [ -f "$build/bigarray" ]; then
    [ -x "$prefix/bin/bigarray" ] || { echo "FAIL: bigarray CLI not installed"; exit 1; }
fi
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc=${CC:-cc}
# shellcheck disable=SC2046
$cc -std=c11 -Wall -Werror $extra -o "$tmp/hello_pc" "$src/tests/install/hello.c" \
    $(pkg-config --cflags --libs bigarray)
LD_LIBRARY_PATH=$libdir "$tmp/hello_pc"
mkdir "$tmp/proj"
cp "$src/tests/install/hello.c" "$tmp/proj/"
cp "$src/tests/install/CMakeLists.txt.in" "$tmp/proj/CMakeLists.txt"
cmake -S "$tmp/proj" -B "$tmp/proj/build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="$extra" >"$tmp/cmake.log" 2>&1 || {
    cat "$tmp/cmake.log"; echo "FAIL: find_package(bigarray)"; exit 1; }
cmake --build "$tmp/proj/build" >"$tmp/build.log" 2>&1 || {
    cat "$tmp/build.log"; echo "FAIL: building against the CMake package"; exit 1; }
LD_LIBRARY_PATH=$libdir "$tmp/proj/build/hello_cmake"
echo "install: ok"
