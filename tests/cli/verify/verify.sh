# verify: exit 0 and silent on a clean database; on a damaged one, exit 1 with every
# problem listed; reading the damaged block is an error, not a crash.
. "$CLI_TESTS/common.sh"
need_numpy
/usr/bin/python3 -c "
import numpy as np
np.save('pat.npy', np.random.default_rng(1).integers(0, 256, 16384).astype('u1'))
np.save('other.npy', np.arange(1000.))"
bigarray import db a pat.npy --block-size 4K
bigarray import db b other.npy
try bigarray verify db
try bigarray verify db --json
# Flip one byte inside the stored bytes of block 2 of 'a'.
py damage db/data.mdb "$(/usr/bin/python3 -c "
import numpy as np
print(bytes(np.load('pat.npy')[8192 + 100:8192 + 140]).hex())")"
try bigarray verify db
bigarray verify db --json >v.json
py json v.json
try bigarray get db a '8192:8200'
try bigarray export db a x.npy
try bigarray stats db a
# the other array and the other blocks still read
bigarray export db b b.npy && echo "b: $(py same other.npy b.npy)"
try bigarray get db a '0:4'
# A view too big to preload (more than 64 MiB): get prints a summary touching few
# blocks; a damaged one among them is reported as an error (from SIGBUS), not a crash.
/usr/bin/python3 -c "
import numpy as np
np.save('big.npy', np.random.default_rng(2).integers(0, 256, 66 << 20).astype('u1'))"
bigarray import db big big.npy --block-size 64K
try bigarray get db big
py damage db/data.mdb "$(/usr/bin/python3 -c "
import numpy as np
print(bytes(np.load('big.npy')[100:140]).hex())")"
try bigarray get db big
try bigarray --pager sigsegv get db big
try bigarray get db big '1000000:1000004'
