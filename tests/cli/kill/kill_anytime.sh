# kill -9 at an arbitrary moment of a large import, including during the commit:
# afterwards the array either does not exist or holds all the data, never part.
. "$CLI_TESTS/common.sh"
need_numpy
py bigfile big.raw 96
bigarray create db keep --dtype i4 --shape 10
for delay in 0.05 0.2 0.4 0.7 1.0 1.5 2.5; do
    "$BIGARRAY" import db big big.raw --dtype f8 --codec zstd:1 &
    pid=$!
    sleep $delay
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    if bigarray info db big >/dev/null 2>&1; then
        bigarray export db big got.raw --format raw
        if cmp -s big.raw got.raw; then state=complete; else state=PARTIAL; fi
        bigarray rm db big
    else
        state=absent
    fi
    case $state in
    complete | absent) echo "killed after ${delay}s: consistent" ;;
    *) echo "killed after ${delay}s: $state" ;;
    esac
    bigarray verify db || echo "verify failed after ${delay}s"
done
bigarray ls db
