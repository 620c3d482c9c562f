/* SPDX-License-Identifier: MIT */
/* `bigarray append DB NAME FILE`: the same as `bigarray import --append`. */
#include "cli.h"

int cmd_append(struct cli *c, int argc, char **argv)
{
    return cli_import_run(c, argc, argv, 1);
}
