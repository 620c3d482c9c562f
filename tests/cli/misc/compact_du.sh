# compact writes a copy that holds the same arrays; du and info --json are valid JSON
# with consistent numbers.
. "$CLI_TESTS/common.sh"
need_numpy
skip_under_tsan "ba_db_compact() fails with ENOMEM there (the library maps a 1 TiB copy)"
py make a.npy '<f8' 200,50 C 1
py make b.npy '<i2' 3000 C 2
bigarray import db a a.npy --codec zstd
bigarray import db b b.npy
bigarray import db c a.npy
bigarray rm db c
try bigarray compact db out
try bigarray ls out
bigarray export out a a2.npy && echo "a: $(py same a.npy a2.npy)"
bigarray export out b b2.npy && echo "b: $(py same b.npy b2.npy)"
try bigarray verify out
try bigarray compact db out
try bigarray compact nosuch out2
bigarray du db --json >du.json
py json du.json
/usr/bin/python3 -c "
import json
d = json.load(open('du.json'))
print('arrays:', [a['name'] for a in d['arrays']])
print('sizes:', [a['nbytes'] for a in d['arrays']])
print('total is the sum:', d['stored_bytes'] == sum(a['stored_bytes'] for a in d['arrays']))
print('free bytes:', d['free_bytes'] == d['pages_free'] * d['page_size'])"
bigarray du db | head -1
bigarray du db | sed -n '2,3p' | awk '{print $NF}'
bigarray du db --bytes | sed -n '2,3p' | awk '{print $3, $NF}'
