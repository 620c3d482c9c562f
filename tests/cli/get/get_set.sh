# get prints what numpy prints; get --json carries every value; set assigns and commits.
. "$CLI_TESTS/common.sh"
need_numpy
cmp_numpy() { # name file slice
    bigarray get db "$1" "$3" >got.txt
    py str "$2" "$3" >want.txt
    if cmp -s got.txt want.txt; then
        echo "$1 [$3]: same as numpy"
    else
        echo "$1 [$3]: differs from numpy:"
        diff want.txt got.txt
    fi
}
py arange ar.npy '<i8' 4,5 C
py values fl.npy '<f8' 6 '[0.1, 2.5, -3.25, 1e-3, 100.0, 7]'
py values sci.npy '<f8' 4 '[1e-5, 1e10, -3.25, 0]'
py values sp.npy '<f8' 4 '[np.inf, -np.inf, np.nan, 1.5]'
py values bo.npy '|b1' 2,2 '[True, False, False, True]'
py values cx.npy '<c16' 3 '[1+2j, 3.5-4j, np.nan+1j]'
py values f4.npy '<f4' 3 '[0.1, 0.2, 1/3]'
py values ints.npy '<i2' 3,2 '[[-1, 200], [3, -32768], [0, 5]]'
py arange big.npy '<f8' 40,50 C
py arange cube.npy '<u1' 2,3,4 C
py arange long.npy '<i4' 2000 C
py make rec.npy '|V3' 2 C 1
py make wide.npy '<f8' 3,12 C 2
for a in ar fl sci sp bo cx f4 ints big cube long rec wide; do
    bigarray import db $a $a.npy
done
for a in ar fl sci sp bo cx f4 ints big cube long rec wide; do
    cmp_numpy $a $a.npy ''
done
cmp_numpy ar ar.npy '1'
cmp_numpy ar ar.npy '1:3, ::-2'
cmp_numpy ar ar.npy '2, 3'
cmp_numpy fl fl.npy '0'
cmp_numpy cx cx.npy '1'
cmp_numpy f4 f4.npy '0'
cmp_numpy cube cube.npy '..., 1'
cmp_numpy big big.npy '::-1, 7'
try bigarray get db ar '1:3, 1'
try bigarray get db ar '1:3, 1' --json
try bigarray get db ar '9'
try bigarray get db ar '0, 0, 0'
try bigarray get db nosuch
for a in fl sci sp cx f4 rec big; do
    bigarray get db $a --json >g.json
    echo "$a: $(py getjson $a.npy g.json)"
done
# set: scalars into slices, committed; compare with numpy doing the same
try bigarray set db ar '1:3, ::2' -7
py assign ar.npy ar2.npy '1:3, ::2' -7
bigarray export db ar ar_got.npy && echo "set ints: $(py equal ar2.npy ar_got.npy)"
try bigarray set db fl '::-2' -inf
py assign fl.npy fl2.npy '::-2' -inf
bigarray export db fl got.npy && echo "set floats: $(py equal fl2.npy got.npy)"
try bigarray set db bo '0' true
try bigarray get db bo
try bigarray set db cx '1:' '(2-0.5j)'
try bigarray get db cx
try bigarray set db rec 1 0x0a0b0c
try bigarray get db rec
try bigarray set db big '5:7, 10:12' 1e300
bigarray stats db big --slice '5:7, 10:12' | grep -E 'min|max'
# bad values: usage errors, nothing written
try bigarray set db ar 0 1.5
try bigarray set db ar 0 99999999999999999999
try bigarray set db ints 0 40000
try bigarray set db bo 0 maybe
try bigarray set db rec 0 0x0102
try bigarray set db f4 0 1e39
try bigarray set db ar 7 1
bigarray export db ar ar_got2.npy && echo "unchanged: $(py same ar_got.npy ar_got2.npy)"
