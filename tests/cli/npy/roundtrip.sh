# import then export reproduces numpy's .npy file byte for byte, for every dtype and
# both orders, with and without compression, across several blocks.
. "$CLI_TESTS/common.sh"
need_numpy
for dt in '|b1' '|i1' '<i2' '<i4' '<i8' '|u1' '<u2' '<u4' '<u8' '<f2' '<f4' '<f8' '<c8' '<c16' '|V7' '>i4' '>f8' '>c16'; do
    for order in C F; do
        py make in.npy "$dt" 37,29,3 $order 1
        name=$(echo "a$dt$order" | sed 's/</le/; s/>/be/; s/|/na/')
        bigarray import db "$name" in.npy --block-size 4K --codec zstd:1+shuffle || echo "import $dt $order failed"
        bigarray export db "$name" out.npy || echo "export $dt $order failed"
        echo "$dt $order: $(py same in.npy out.npy)"
        bigarray import db "raw$name" in.npy || echo "import (no codec) $dt $order failed"
        bigarray export db "raw$name" out2.npy
        echo "$dt $order uncompressed: $(py same in.npy out2.npy)"
    done
done
# 1-d, a zero-length axis, one element, and a big-endian 1-d
py make e1.npy '<f8' 1000 C 2
py make e2.npy '<i4' 0,5 C 2
py make e3.npy '<u2' 1 C 2
for f in e1 e2 e3; do
    bigarray import db $f $f.npy && bigarray export db $f $f.out.npy && echo "$f: $(py same $f.npy $f.out.npy)"
done
# version 2.0 and 3.0 headers are read; export writes version 1.0 (same values)
/usr/bin/python3 -c "
import numpy as np, numpy.lib.format as f
a = np.arange(24.).reshape(2, 3, 4)
for v in (2, 3):
    with open('v%d.npy' % v, 'wb') as o: f.write_array(o, a, version=(v, 0))
np.save('v1.npy', a)"
for v in v2 v3; do
    bigarray import db $v $v.npy && bigarray export db $v $v.out.npy && echo "$v: $(py same v1.npy $v.out.npy)"
done
bigarray ls db | wc -l
try bigarray verify db
