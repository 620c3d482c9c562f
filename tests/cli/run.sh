#!/bin/sh
# SPDX-License-Identifier: MIT
# Run one CLI scenario the way zstd's cli-tests do: the script runs in a fresh
# temporary directory with $BIGARRAY pointing at the binary, and its stdout, stderr
# and exit status are compared exactly with SCRIPT.stdout.exact, SCRIPT.stderr.exact
# and SCRIPT.exit (a missing .exact file means "must be empty", a missing .exit
# means 0). The temporary directory's path is replaced by $TMP before comparing.
# Exit 77 from the script is a skip: its output (the reason) is shown and passed on.
#
#   run.sh BIGARRAY SCRIPT          run and compare
#   BA_CLI_UPDATE=1 run.sh ...      write the expected files from this run instead
set -u
if [ $# -ne 2 ]; then
    echo "usage: $0 BIGARRAY SCRIPT" >&2
    exit 2
fi
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
here=$(cd "$(dirname "$0")" && pwd)
sdir=$(cd "$(dirname "$2")" && pwd)
name=$(basename "$2")
script=$sdir/$name
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bigarray-cli-XXXXXX") || exit 1
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
mkdir "$tmp/work"
cd "$tmp/work" || exit 1

BIGARRAY=$bin CLI_TESTS=$here PYTHON=/usr/bin/python3 LC_ALL=C \
    sh -u "$script" >"$tmp/stdout" 2>"$tmp/stderr" </dev/null
rc=$?
if [ $rc -eq 77 ]; then
    cat "$tmp/stdout" "$tmp/stderr"
    exit 77
fi
for f in stdout stderr; do
    sed -e "s|$bin|bigarray|g" -e "s|$tmp/work|\$TMP|g" -e "s|$tmp|\$TMP|g" "$tmp/$f" >"$tmp/$f.norm"
done
echo "$rc" >"$tmp/exit.norm"

if [ "${BA_CLI_UPDATE:-}" = 1 ]; then
    for f in stdout stderr; do
        if [ -s "$tmp/$f.norm" ]; then
            cp "$tmp/$f.norm" "$script.$f.exact"
        else
            rm -f "$script.$f.exact"
        fi
    done
    if [ "$rc" -ne 0 ]; then echo "$rc" >"$script.exit"; else rm -f "$script.exit"; fi
    echo "updated expectations of $name"
    exit 0
fi

fail=0
check() { # what actual expected
    if [ -f "$3" ]; then
        exp=$3
    else
        exp=/dev/null
    fi
    if ! cmp -s "$2" "$exp"; then
        echo "$name: $1 differs from $(basename "$3") (- expected, + actual):"
        diff -u "$exp" "$2" | sed '1,2d'
        fail=1
    fi
}
check stdout "$tmp/stdout.norm" "$script.stdout.exact"
check stderr "$tmp/stderr.norm" "$script.stderr.exact"
if [ -f "$script.exit" ]; then
    echo "$(cat "$script.exit")" >"$tmp/exit.exp"
else
    echo 0 >"$tmp/exit.exp"
fi
check "exit status" "$tmp/exit.norm" "$tmp/exit.exp"
[ $fail -eq 0 ] && echo "$name: ok"
exit $fail
