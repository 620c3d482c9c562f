# Raw files: --dtype with --shape (or a 1-d shape from the size), size mismatches,
# and raw data from a pipe, a FIFO and standard input.
. "$CLI_TESTS/common.sh"
need_numpy
py raw r.raw '<i2' 6,5 C 1
py make r.npy '<i2' 6,5 C 1
try bigarray import db a r.raw --dtype i2 --shape 6,5
bigarray export db a a.npy && echo "2-d: $(py same r.npy a.npy)"
try bigarray import db flat r.raw --dtype '<i2'
bigarray info db flat | grep shape
try bigarray import db b r.raw --dtype i2 --shape 6,6
try bigarray import db b r.raw --dtype i2 --shape 5,5
try bigarray import db b r.raw --dtype f8
try bigarray import db b r.raw --dtype V7
py raw rf.raw '<f4' 4,3 F 2
py make rf.npy '<f4' 4,3 F 2
try bigarray import db f rf.raw --dtype f4 --shape 4,3 --order F
bigarray export db f f.npy && echo "F: $(py same rf.npy f.npy)"
# a pipe: the size is learned at the end
cat r.raw | bigarray import db p - --dtype i2 --shape 6,5 && echo "pipe: imported"
bigarray export db p p.npy && echo "pipe: $(py same r.npy p.npy)"
try sh -c "head -c 50 r.raw | \"$BIGARRAY\" import db p2 - --dtype i2 --shape 6,5"
try sh -c "cat r.raw r.raw | \"$BIGARRAY\" import db p3 - --dtype i2 --shape 6,5"
try sh -c "cat r.raw | \"$BIGARRAY\" import db p4 - --dtype i2"
mkfifo fifo
(cat r.raw >fifo &)
try bigarray import db q fifo --dtype i2 --shape 6,5
bigarray export db q q.npy && echo "fifo: $(py same r.npy q.npy)"
# stdin as .npy
try sh -c "\"$BIGARRAY\" import db s - <r.npy"
bigarray export db s s.npy && echo "stdin npy: $(py same r.npy s.npy)"
bigarray ls db
