# Slices out of range and other bad slices, for every command that takes one.
. "$CLI_TESTS/common.sh"
try bigarray create db a --dtype i4 --shape 4,5
for s in '4' '-5' '0, 5' '0, 0, 0' '..., ...' '::0' '1:2:3:4' 'x'; do
    try bigarray get db a "$s"
done
try bigarray set db a 4 1
try bigarray stats db a --slice '0, -6'
try bigarray export db a x.npy --slice '9:, 7'
try bigarray get db a '4:, :'
