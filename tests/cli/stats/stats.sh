# stats against numpy: count, NaNs, min, max, mean, std, over whole arrays and slices.
. "$CLI_TESTS/common.sh"
need_numpy
py make f8.npy '<f8' 300,200 C 1
py make f4.npy '<f4' 50,40,3 F 2
py make i4.npy '<i4' 1000,3 C 3
py make u8.npy '<u8' 500 C 4
py make b1.npy '|b1' 77,3 C 5
py make h2.npy '<f2' 200 C 6
py make bi.npy '>i8' 40,40 C 7
# a large mean and a small spread: the textbook sum of squares loses every digit
/usr/bin/python3 -c "
import numpy as np
r = np.random.default_rng(8)
np.save('offset.npy', 1e9 + r.standard_normal(100000))
np.save('special.npy', np.array([1.0, np.inf, 2.0, np.nan]))
np.save('allnan.npy', np.array([np.nan, np.nan]))"
for a in f8 f4 i4 u8 b1 h2 bi offset special allnan; do
    bigarray import db $a $a.npy --block-size 4K || echo "import $a failed"
    bigarray stats db $a --json >s.json
    echo "$a: $(py stats $a.npy s.json)"
done
for s in '10:20' '::7, 3' '-1' '::-3, 1::2'; do
    bigarray stats db f8 --slice "$s" --json >s.json
    echo "f8 [$s]: $(py stats f8.npy s.json "$s")"
done
bigarray stats db f4 --slice '..., 1' --json >s.json
echo "f4 [..., 1]: $(py stats f4.npy s.json '..., 1')"
bigarray stats db f8 --ddof 1 --json >s.json
echo "f8 ddof=1: $(py stats f8.npy s.json '' 1)"
# text output of a small known array
py values k.npy '<f8' 5 '[1, 2, 3, 4, np.nan]'
bigarray import db k k.npy
try bigarray stats db k
try bigarray stats db k --slice '0:0'
try bigarray stats db k --slice 9
py make c.npy '<c8' 4 C 1
bigarray import db c c.npy
try bigarray stats db c
