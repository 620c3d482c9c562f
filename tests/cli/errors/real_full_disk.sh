# A filesystem that really fills up (an 8 MiB tmpfs): the import that does not fit
# fails with one line, and the database keeps what it had. Needs root for mount.
. "$CLI_TESTS/common.sh"
need_numpy
[ "$(id -u)" = 0 ] || skip "needs root to mount a small tmpfs"
mkdir small
mount -t tmpfs -o size=8m tmpfs small 2>/dev/null || skip "cannot mount a tmpfs here"
trap 'umount small' EXIT
py make a.npy '<f8' 1000 C 1
py make big.npy '<f8' 2097152 C 2
bigarray import small/db a a.npy
try bigarray import small/db big big.npy
try bigarray import small/db big big.npy --codec zstd
try bigarray ls small/db
bigarray export small/db a got.npy && echo "a: $(py same a.npy got.npy)"
try bigarray verify small/db
