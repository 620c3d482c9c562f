# A full LMDB map that cannot grow: the commit fails with one line, nothing written.
. "$CLI_TESTS/common.sh"
need_numpy
skip_under_tsan "growing the map means mapping 2 TiB, which TSan's address space cannot hold"
py make a.npy '<f8' 100,10 C 1
py make b.npy '<f8' 50,10 C 2
bigarray import db a a.npy
try env BIGARRAY_INJECT=store_put:MAP_FULL:0:0 "$BIGARRAY" append db a b.npy
bigarray export db a got.npy && echo "a: $(py same a.npy got.npy)"
try bigarray verify db
