# A database in use by other writers. Two imports into one array at once: the later
# commit fails with a conflict and changes nothing. A bigarray writer busy in another
# process (it holds writer.lock; flock(1) stands in for it): a command that commits
# waits --lock-wait seconds, then fails with a one-line error and changes nothing.
# A foreign LMDB writer (mdb_load) does not take writer.lock: readers go on, and a
# command that commits waits inside LMDB (`timeout` shows the wait).
. "$CLI_TESTS/common.sh"
need_numpy
py make a.npy '<i4' 1000,10 C 1
py raw b.raw '<i4' 10,10 C 2
py make c.npy '<i4' 5,10 C 3
bigarray import db a a.npy
wait_for() {
    i=0
    while [ ! -e "$1" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
}
mkfifo fifo
/usr/bin/python3 "$CLI_TESTS/npyutil.py" gatedfeed fifo b.raw fed go &
"$BIGARRAY" append db a fifo --dtype i4 --shape 10,10 2>slow.err &
slow=$!
wait_for fed
try bigarray append db a c.npy
touch go
wait $slow
echo "the slower append: exit $?"
cat slow.err
py concat want.npy 0 a.npy c.npy
bigarray export db a got.npy && echo "a: $(py equal want.npy got.npy)"

flock -o db/writer.lock sleep 30 &
holder=$!
while flock -n db/writer.lock true; do sleep 0.05; done
try bigarray --lock-wait 0.5 set db a : 0
try bigarray get db a '0, 0:3'
pkill -P $holder sleep
wait $holder 2>/dev/null
try bigarray --lock-wait 0.5 set db a '0, 0:2' 5
try bigarray get db a '0, 0:3'

command -v mdb_load >/dev/null || skip "mdb_load (lmdb-utils) is missing for the lock test"
mkfifo in
mdb_load -f in -s locktest -T db &
holder=$!
exec 7>in
printf 'k\nv\n' >&7
sleep 0.5
try timeout 3 "$BIGARRAY" set db a : 0
try bigarray get db a '0, 0:6'
kill -9 $holder
exec 3>&2 2>/dev/null 7>&-
wait $holder
exec 2>&3 3>&-
try bigarray set db a '0, 0:3' 7
try bigarray get db a '0, 0:6'
try bigarray verify db
