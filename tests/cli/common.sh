# SPDX-License-Identifier: MIT
# Sourced by every CLI scenario (run by run.sh in a fresh directory). Provides:
#   bigarray ARGS...     the binary under test
#   try CMD ARGS...      run a command, echoing "$ CMD ARGS" to stdout and stderr first
#                        and "[exit N]" to stdout after, so both expected files read
#                        as a transcript
#   need_numpy           skip (exit 77) with a reason when numpy is missing
#   py CMD ARGS...       tests/cli/npyutil.py with Debian's python3
#   skip REASON          print the reason and exit 77

bigarray() {
    "$BIGARRAY" "$@"
}

try() {
    echo "\$ $*"
    echo "\$ $*" >&2
    "$@"
    echo "[exit $?]"
}

skip() {
    echo "SKIP: $*"
    exit 77
}

need_numpy() {
    if ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
        skip "Debian's python3-numpy is not installed (apt-get install python3-numpy)"
    fi
}

py() {
    /usr/bin/python3 "$CLI_TESTS/npyutil.py" "$@"
}

# Skip under ThreadSanitizer (the binary links libtsan), with the reason.
skip_under_tsan() {
    if ldd "$BIGARRAY" 2>/dev/null | grep -q libtsan; then
        skip "under ThreadSanitizer: $*"
    fi
}
