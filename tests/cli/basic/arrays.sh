# create, ls, info, cp, resize, rm on a fresh database, and their failures.
. "$CLI_TESTS/common.sh"
try bigarray create db temps --dtype f4 --shape 100,24
try bigarray create db counts --dtype '>i8' --shape '(10, 20, 30)' --order F --block-size 64K --codec zstd:3+shuffle
try bigarray create db flags --dtype bool --shape 7 --codec zstd
try bigarray create db recs --dtype V12 --shape 5
try bigarray ls db
try bigarray ls db --json
try bigarray info db counts
try bigarray info db counts --json
try bigarray info db temps
try bigarray create db temps --dtype f8 --shape 1
try bigarray cp db temps temps2
try bigarray cp db temps temps2
try bigarray cp db nosuch x
try bigarray resize db temps2 1000,24
try bigarray resize db temps2 1000
try bigarray get db temps2 '999, 20:'
try bigarray rm db temps counts
try bigarray rm db flags nosuch
try bigarray ls db
try bigarray info db nosuch
# a database is a directory; info DB describes it (sizes vary, so only some keys)
bigarray info db | grep -E '^(database|last commit|arrays|page size):'
bigarray info db --json >db.json && py json db.json
