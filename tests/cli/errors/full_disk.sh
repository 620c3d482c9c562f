# A full disk (injected ENOSPC and EIO at commit, /dev/full for export):
# one-line errors, and the database keeps its previous state.
. "$CLI_TESTS/common.sh"
need_numpy
py make a.npy '<f8' 100,10 C 1
py make b.npy '<f8' 50,10 C 2
bigarray import db a a.npy
try env BIGARRAY_INJECT=store_commit:ENOSPC:0:0 "$BIGARRAY" import db b b.npy
try env BIGARRAY_INJECT=store_commit:ENOSPC:0:0 "$BIGARRAY" append db a b.npy
try env BIGARRAY_INJECT=store_commit:EIO:0:0 "$BIGARRAY" set db a : 0
try bigarray ls db
bigarray export db a got.npy && echo "a: $(py same a.npy got.npy)"
try bigarray verify db
try bigarray export db a /dev/full
try bigarray export db a /dev/full --format raw
