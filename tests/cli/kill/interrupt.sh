# An import stopped part way (kill -9, SIGTERM, SIGINT) leaves the database as it was:
# the array keeps its old contents, a new array does not appear, verify is clean.
. "$CLI_TESTS/common.sh"
need_numpy
py make base.npy '<f8' 1000,128 C 1
bigarray import db a base.npy --codec zstd
mkfifo fifo
wait_for() { # file: up to 120 s
    i=0
    while [ ! -e "$1" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
    [ -e "$1" ] || echo "timed out waiting for $1"
}
# A slow source: 64 MiB arrive, then the writer stalls with 64 MiB still to come.
stalled_import() { # signal, bigarray args...
    sig=$1
    shift
    rm -f fed
    # python3 itself in the background (not the py function, whose subshell would
    # be what $! names), so that killing $feeder ends the writer.
    /usr/bin/python3 "$CLI_TESTS/npyutil.py" slowfeed fifo 64 fed &
    feeder=$!
    "$BIGARRAY" "$@" &
    pid=$!
    wait_for fed
    sleep 0.5
    kill -s "$sig" $pid
    # The shell itself reports a job killed by a signal on its stderr; hide that.
    exec 3>&2 2>/dev/null
    wait $pid
    st=$?
    exec 2>&3 3>&-
    echo "$sig: exit $st"
    kill $feeder 2>/dev/null
    wait $feeder 2>/dev/null
}
stalled_import KILL append db a fifo --dtype f8 --shape 131072,128
stalled_import KILL import db new fifo --dtype f8 --shape 131072,128
stalled_import TERM append db a fifo --dtype f8 --shape 131072,128
stalled_import INT import db new fifo --dtype f8 --shape 131072,128
stalled_import HUP append db a fifo --dtype f8 --shape 131072,128
bigarray export db a after.npy
echo "a: $(py same base.npy after.npy)"
try bigarray ls db
try bigarray verify db
