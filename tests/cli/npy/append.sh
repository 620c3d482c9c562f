# --append and `append` grow the major axis; the result equals np.concatenate.
. "$CLI_TESTS/common.sh"
need_numpy
py make a.npy '<f8' 10,7 C 1
py make b.npy '<f8' 5,7 C 2
py make c.npy '<f8' 7 C 3
py raw d.raw '<f8' 3,7 C 4
try bigarray import db x a.npy --block-size 4K
try bigarray import db x b.npy --append
try bigarray append db x c.npy
try bigarray append db x d.raw --dtype f8
py make d.npy '<f8' 3,7 C 4
py make c2.npy '<f8' 1,7 C 3
py concat want.npy 0 a.npy b.npy c2.npy d.npy
bigarray export db x got.npy
echo "C order: $(py equal want.npy got.npy)"
bigarray get db x --json >x.json && py getjson want.npy x.json
# Fortran order grows the last axis.
py make fa.npy '<i4' 4,3,5 F 5
py make fb.npy '<i4' 4,3,2 F 6
try bigarray import db f fa.npy --codec zstd
try bigarray append db f fb.npy
py concat fwant.npy 2 fa.npy fb.npy
bigarray export db f fgot.npy
echo "F order: $(py same fwant.npy fgot.npy)"
# appending to an empty array
py make z.npy '<u2' 0,4 C 7
py make zb.npy '<u2' 6,4 C 8
bigarray import db z z.npy && bigarray append db z zb.npy && bigarray export db z zgot.npy
echo "from empty: $(py same zb.npy zgot.npy)"
# what does not fit fails and changes nothing
py make bad1.npy '<f4' 2,7 C 9
py make bad2.npy '<f8' 2,6 C 9
py make bad3.npy '<i4' 4,3,2 C 9
try bigarray append db x bad1.npy
try bigarray append db x bad2.npy
try bigarray append db f bad3.npy
try bigarray append db nosuch a.npy
try bigarray append db x d.raw --dtype f8 --shape 2,7
bigarray export db x got2.npy
echo "unchanged: $(py same got.npy got2.npy)"
try bigarray import db x a.npy
