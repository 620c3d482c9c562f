/* SPDX-License-Identifier: MIT */
/* `bigarray compact DB OUT`: a compacted copy of the newest snapshot in a new
 * directory. */
#include "cli.h"

int cmd_compact(struct cli *c, int argc, char **argv)
{
    struct cli_args p;
    cli_args_init(&p, c, NULL, argc, argv);
    int done, rc;
    if ((rc = cli_args_finish(&p, 2, 2, &done)) != 0 || done)
        return rc;
    const char *path = p.pos[0], *out = p.pos[1];
    ba_db *db;
    if ((rc = cli_db_open(c, path, CLI_OPEN_RDONLY, &db)) != 0)
        return rc;
    int err = ba_db_compact(db, out);
    if (err != 0)
        rc = cli_fail_ba(c, err, "cannot compact %s into %s", path, out);
    ba_db_close(db);
    return rc;
}
