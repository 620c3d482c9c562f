# Paths that are not databases: missing, a plain file, a directory of other files.
. "$CLI_TESTS/common.sh"
try bigarray ls nosuch
try bigarray info nosuch
try bigarray append nosuch a x.npy
echo "just text" >plain
try bigarray ls plain
try bigarray create plain a --dtype f8 --shape 3
mkdir other && echo hi >other/notes.txt
try bigarray ls other
try bigarray verify other
ls other
cat plain
