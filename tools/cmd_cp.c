/* SPDX-License-Identifier: MIT */
/* `bigarray cp DB SRC DST`: copy an array inside a database (blocks are not
 * decompressed). */
#include "cli.h"

int cmd_cp(struct cli *c, int argc, char **argv)
{
    struct cli_args p;
    cli_args_init(&p, c, NULL, argc, argv);
    int done, rc;
    if ((rc = cli_args_finish(&p, 3, 3, &done)) != 0 || done)
        return rc;
    const char *path = p.pos[0], *src = p.pos[1], *dst = p.pos[2];
    ba_db *db;
    ba_session *s = NULL;
    if ((rc = cli_db_open(c, path, 0, &db)) != 0)
        return rc;
    if ((rc = cli_session_begin(c, db, path, &s)) != 0)
        goto out;
    int err = ba_array_copy(s, src, dst);
    if (err == BA_ENOTFOUND)
        rc = cli_fail(c, "%s: no array named '%s'", path, src);
    else if (err == BA_EEXIST)
        rc = cli_fail(c, "%s: an array named '%s' already exists", path, dst);
    else if (err != 0)
        rc = cli_fail_ba(c, err, "cannot copy '%s' to '%s'", src, dst);
    else
        rc = cli_commit(c, s, "the copy");
out:
    ba_session_end(s);
    ba_db_close(db);
    return rc;
}
