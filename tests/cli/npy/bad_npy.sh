# Truncated files and headers that lie: one line naming the problem and the byte,
# exit 1, and the database is unchanged.
. "$CLI_TESTS/common.sh"
need_numpy
py make good.npy '<f8' 4,5 C 1
try bigarray import db keep good.npy
/usr/bin/python3 - <<'PY'
import struct
good = open('good.npy', 'rb').read()
def hdr(d):
    d = d.encode('latin1')
    pad = 64 - (10 + len(d) + 1) % 64
    d = d + b' ' * pad + b'\n'
    return b'\x93NUMPY\x01\x00' + struct.pack('<H', len(d)) + d
body = good[128:]
cases = {
    'trunc_data': good[:-9],
    'trunc_header': good[:50],
    'trunc_magic': good[:4],
    'empty': b'',
    'extra_data': good + b'\0' * 8,
    'shape_lies': hdr("{'descr': '<f8', 'fortran_order': False, 'shape': (4, 6), }") + body,
    'bad_magic': b'\x93NUMPX' + good[6:],
    'bad_version': good[:6] + b'\x09\x00' + good[8:],
    'no_close': hdr("{'descr': '<f8', 'fortran_order': False, 'shape': (4, 5), ") + body,
    'junk_after': hdr("{'descr': '<f8', 'fortran_order': False, 'shape': (4, 5), } junk") + body,
    'fortran_yes': hdr("{'descr': '<f8', 'fortran_order': yes, 'shape': (4, 5), }") + body,
    'fortran_int': hdr("{'descr': '<f8', 'fortran_order': 0, 'shape': (4, 5), }") + body,
    'object': hdr("{'descr': '|O', 'fortran_order': False, 'shape': (4, 5), }") + body,
    'unicode': hdr("{'descr': '<U4', 'fortran_order': False, 'shape': (4, 5), }") + body,
    'structured': hdr("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (4, 5), }") + body,
    'missing_key': hdr("{'descr': '<f8', 'shape': (4, 5), }") + body,
    'extra_key': hdr("{'descr': '<f8', 'fortran_order': False, 'shape': (4, 5), 'x': 1, }") + body,
    'twice': hdr("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (4, 5), }") + body,
    'neg_dim': hdr("{'descr': '<f8', 'fortran_order': False, 'shape': (-4, 5), }") + body,
    'not_tuple': hdr("{'descr': '<f8', 'fortran_order': False, 'shape': 20, }") + body,
    'huge': hdr("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }") + body,
    'zero_d': hdr("{'descr': '<f8', 'fortran_order': False, 'shape': (), }") + body[:8],
    'header_len': b'\x93NUMPY\x02\x00\xff\xff\xff\x7f' + body,
}
for k, v in cases.items():
    open(k + '.npy', 'wb').write(v)
PY
for f in trunc_data trunc_header trunc_magic empty extra_data shape_lies bad_magic bad_version \
         no_close junk_after fortran_yes fortran_int object unicode structured missing_key \
         extra_key twice neg_dim not_tuple huge zero_d header_len; do
    try bigarray import db "$f" "$f.npy"
    try bigarray append db keep "$f.npy"
done
# the same bytes through a pipe (sizes cannot be checked up front)
for f in trunc_data extra_data shape_lies; do
    try sh -c "cat $f.npy | \"$BIGARRAY\" import db $f -"
done
try bigarray import db missing nosuchfile.npy
bigarray ls db
bigarray export db keep keep.npy && echo "keep: $(py same good.npy keep.npy)"
try bigarray verify db
