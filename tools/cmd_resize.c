/* SPDX-License-Identifier: MIT */
/* `bigarray resize DB NAME SHAPE`: change the shape (O(1); growing shows zeros). */
#include "cli.h"

int cmd_resize(struct cli *c, int argc, char **argv)
{
    struct cli_args p;
    cli_args_init(&p, c, NULL, argc, argv);
    int done, rc;
    if ((rc = cli_args_finish(&p, 3, 3, &done)) != 0 || done)
        return rc;
    const char *path = p.pos[0], *name = p.pos[1];
    int ndim;
    int64_t shape[BA_MAX_DIMS];
    if ((rc = cli_opt_shape(c, NULL, p.pos[2], &ndim, shape)) != 0)
        return rc;
    ba_db *db;
    ba_session *s = NULL;
    ba_array *a = NULL;
    ba_array_info info;
    if ((rc = cli_db_open(c, path, 0, &db)) != 0)
        return rc;
    if ((rc = cli_session_begin(c, db, path, &s)) != 0 ||
        (rc = cli_array_open(c, s, path, name, &a)) != 0 ||
        (rc = cli_array_info(c, a, name, &info)) != 0)
        goto out;
    if (ndim != info.ndim) {
        char cur[512];
        rc = cli_fail(c, "'%s' has %d dimensions %s; the new shape must have as many", name,
                      info.ndim, cli_format_shape(info.ndim, info.shape, cur, sizeof cur));
        goto out;
    }
    int err = ba_array_resize(a, ndim, shape);
    if (err != 0) {
        rc = cli_fail_ba(c, err, "cannot resize '%s'", name);
        goto out;
    }
    rc = cli_commit(c, s, "the new shape");
out:
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    return rc;
}
