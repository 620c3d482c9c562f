# export --slice equals numpy's a[slice], for C and F arrays; raw export in either order.
. "$CLI_TESTS/common.sh"
need_numpy
py make c.npy '<i4' 30,20,10 C 1
py make f.npy '<f8' 30,20,10 F 2
bigarray import db c c.npy --block-size 4K
bigarray import db f f.npy --block-size 4K --codec zstd
for s in '2:10' '2:10, ::3' '::-1' '..., 1' '5' '-1, -1' '3:27:4, 19:0:-6, ::2' ':, :, 5:6' '0:0' '..., None, 2'; do
    for a in c f; do
        bigarray export db $a got.npy --slice "$s" || echo "export '$s' failed"
        py slice $a.npy want.npy "$s"
        echo "$a [$s]: $(py equal want.npy got.npy)"
    done
done
# raw output: the array's order by default, or --order
bigarray export db f f.raw
bigarray export db f fc.raw --order C
/usr/bin/python3 -c "
import numpy as np
a = np.load('f.npy')
print('raw F:', open('f.raw', 'rb').read() == a.tobytes(order='F'))
print('raw C:', open('fc.raw', 'rb').read() == a.tobytes(order='C'))"
bigarray export db c - --slice '0, 0' --format raw | od -An -tx1 | head -1 >/dev/null && echo "stdout ok"
try bigarray export db c x.npy --slice '30'
try bigarray export db c x.npy --slice '0, 0, 0, 0'
try bigarray export db c x.npy --slice '::0'
try bigarray export db c /nonexistent/dir/x.npy
ls
