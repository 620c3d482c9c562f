# --help, help COMMAND, --version: on stdout, exit 0.
. "$CLI_TESTS/common.sh"
try bigarray --version
try bigarray --help
try bigarray help create
try bigarray import --help
try bigarray stats -h
