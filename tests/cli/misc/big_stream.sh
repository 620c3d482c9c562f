# Arrays bigger than the RAM budget stream through: import, stats and export of 96 MiB
# with --ram-limit 8M, and the results match numpy.
. "$CLI_TESTS/common.sh"
need_numpy
skip_under_tsan "with an 8 MiB budget the pager evicts blocks of the chunk being read while the
next chunk is preloaded on another thread, which TSan reports as a race on the mapping"
py bigfile big.raw 96
try bigarray --ram-limit 8M import db big big.raw --dtype f8 --shape 12288,1024 --block-size 64K --codec zstd:1
bigarray --ram-limit 8M stats db big --json >s.json
/usr/bin/python3 -c "
import numpy as np
np.save('big.npy', np.fromfile('big.raw', dtype='<f8').reshape(12288, 1024))"
echo "stats: $(py stats big.npy s.json)"
bigarray --ram-limit 8M stats db big --slice '::-5, 1000:' --json >s.json
echo "stats of a slice: $(py stats big.npy s.json '::-5, 1000:')"
try bigarray --ram-limit 8M export db big out.raw --format raw
cmp big.raw out.raw && echo "export: same bytes"
try bigarray --ram-limit 8M set db big '100:12000, 3' -1
py assign big.npy want.npy '100:12000, 3' -1
bigarray --ram-limit 8M export db big got.npy && echo "set: $(py equal want.npy got.npy)"
