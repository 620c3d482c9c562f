# A database the user may not write: commands that change it fail with one line and
# change nothing. Needs root (to drop to an unprivileged user with setpriv).
. "$CLI_TESTS/common.sh"
need_numpy
[ "$(id -u)" = 0 ] || skip "needs root to run the CLI as another user"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is missing"
py make a.npy '<i4' 10 C 1
bigarray import db a a.npy
chmod -R a+rX db
chmod 755 .
as_nobody() {
    setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}
try as_nobody "$BIGARRAY" set db a : 0
try as_nobody "$BIGARRAY" rm db a
try as_nobody "$BIGARRAY" create db b --dtype f8 --shape 3
try as_nobody "$BIGARRAY" import db c a.npy
bigarray export db a got.npy && echo "unchanged: $(py same a.npy got.npy)"
bigarray ls db
