# Bad usage of every kind: one line on stderr, exit 2, nothing created.
. "$CLI_TESTS/common.sh"
try bigarray
try bigarray frobnicate db
try bigarray help frobnicate
try bigarray ls
try bigarray ls db extra
try bigarray ls db --bogus
try bigarray ls db -x
try bigarray create db a --dtype f8
try bigarray create db a --shape 3
try bigarray create db a --dtype q7 --shape 3
try bigarray create db a --dtype f8 --shape 3,,4
try bigarray create db a --dtype f8 --shape '(3, 4'
try bigarray create db a --dtype f8 --shape 3x4
try bigarray create db a --dtype f8 --shape ''
try bigarray create db a --dtype f8 --shape 3 --order X
try bigarray create db a --dtype f8 --shape 3 --block-size 3000
try bigarray create db a --dtype f8 --shape 3 --block-size 2Q
try bigarray create db a --dtype f8 --shape 3 --codec lz4
try bigarray create db a --dtype f8 --shape 3 --json
try bigarray --ram-limit lots ls db
try bigarray ls db --pager fast
try bigarray ls --ram-limit
try bigarray get db a '1:2:3:4'
try bigarray stats db a --slice '(('
try bigarray stats db a --ddof -1
try bigarray import db a x.npy --dtype f8
try bigarray import db a x.raw --format raw
try bigarray import db a x.npy --append --codec zstd
try bigarray export db a x.npy --order F
try bigarray export db a x.npy --format csv
try bigarray compact db
try bigarray resize db a 3,x
# Nothing above touched the disk.
ls
