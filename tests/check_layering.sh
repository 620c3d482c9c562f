#!/bin/sh
# SPDX-License-Identifier: MIT
# Fail when pager/ and store/ reach into each other, when they include headers that
# belong to the other layer (LMDB/zstd in pager/, signals/mmap in store/), or when
# tools/, python/ or demo/ include anything but the public header.
top=${1:-.}
cd "$top" || exit 2
bad=0
check() { # dir pattern why
    hits=$(grep -nE "$2" "$1"/*.c "$1"/*.h 2>/dev/null)
    if [ -n "$hits" ]; then
        echo "layering: $1/ $3:"
        echo "$hits" | sed 's/^/  /'
        bad=1
    fi
}
check pager '#include *["<](\.\./)?store/|#include *"store[a-z_]*\.h"' "includes store/"
check pager '#include *<(lmdb|zstd|xxhash)\.h>' "includes a storage library"
check store '#include *["<](\.\./)?pager/|#include *"pager[a-z_]*\.h"' "includes pager/"
check store '#include *<(signal|sys/mman|linux/userfaultfd)\.h>' "includes signal or mapping headers"
for d in tools python demo; do
    [ -d "$d" ] || continue
    for f in $(find "$d" -name '*.c' -o -name '*.h'); do
        hits=$(grep -nE '#include *"' "$f" | grep -vE '#include *"(bigarray\.h|[a-z_0-9]+\.h)"' )
        int=$(grep -nE '#include *"(ba_common|store|pager|ba_internal)[a-z_]*\.h"' "$f")
        if [ -n "$hits$int" ]; then
            echo "layering: $f uses internal headers:"; echo "$hits$int" | sed 's/^/  /'; bad=1
        fi
    done
done
[ $bad = 0 ] && echo "layering: ok"
exit $bad
