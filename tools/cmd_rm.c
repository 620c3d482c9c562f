/* SPDX-License-Identifier: MIT */
/* `bigarray rm DB NAME...`: drop arrays, all in one commit (none if one is missing). */
#include "cli.h"

int cmd_rm(struct cli *c, int argc, char **argv)
{
    struct cli_args p;
    cli_args_init(&p, c, NULL, argc, argv);
    int done, rc;
    if ((rc = cli_args_finish(&p, 2, CLI_MAX_POS, &done)) != 0 || done)
        return rc;
    const char *path = p.pos[0];
    ba_db *db;
    ba_session *s = NULL;
    if ((rc = cli_db_open(c, path, 0, &db)) != 0)
        return rc;
    if ((rc = cli_session_begin(c, db, path, &s)) != 0)
        goto out;
    for (int i = 1; i < p.npos; i++) {
        int err = ba_array_drop(s, p.pos[i]);
        if (err == BA_ENOTFOUND) {
            rc = cli_fail(c, "%s: no array named '%s'; nothing removed", path, p.pos[i]);
            goto out;
        }
        if (err != 0) {
            rc = cli_fail_ba(c, err, "cannot remove '%s'", p.pos[i]);
            goto out;
        }
    }
    rc = cli_commit(c, s, "the removal");
out:
    ba_session_end(s);
    ba_db_close(db);
    return rc;
}
