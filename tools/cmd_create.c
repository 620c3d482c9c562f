/* SPDX-License-Identifier: MIT */
/* `bigarray create DB NAME --dtype T --shape S`: a new array, committed at once. */
#include <string.h>

#include "cli.h"

enum { OPT_DTYPE = 1, OPT_SHAPE, OPT_ORDER, OPT_BLOCK_SIZE, OPT_CODEC };

static const struct cli_opt opts[] = {
    {"dtype", 0, 1, OPT_DTYPE},           {"shape", 0, 1, OPT_SHAPE}, {"order", 0, 1, OPT_ORDER},
    {"block-size", 0, 1, OPT_BLOCK_SIZE}, {"codec", 0, 1, OPT_CODEC}, {NULL, 0, 0, 0},
};

int cmd_create(struct cli *c, int argc, char **argv)
{
    ba_array_spec spec;
    ba_array_spec_init(&spec);
    int have_dtype = 0, have_shape = 0;
    struct cli_args p;
    cli_args_init(&p, c, opts, argc, argv);
    const char *arg;
    int id, rc;
    while ((id = cli_args_next(&p, &arg)) > 0) {
        switch (id) {
        case OPT_DTYPE:
            rc = cli_opt_dtype(c, arg, &spec.dtype);
            have_dtype = 1;
            break;
        case OPT_SHAPE:
            rc = cli_opt_shape(c, "--shape", arg, &spec.ndim, spec.shape);
            have_shape = 1;
            break;
        case OPT_ORDER:
            rc = cli_opt_order(c, arg, &spec.order);
            break;
        case OPT_BLOCK_SIZE:
            rc = cli_opt_block_size(c, arg, &spec.block_size);
            break;
        default:
            rc = cli_opt_codec(c, arg, &spec);
            break;
        }
        if (rc)
            return rc;
    }
    if (id == CLI_ARGS_ERROR)
        return CLI_EXIT_USAGE;
    int done;
    if ((rc = cli_args_finish(&p, 2, 2, &done)) != 0 || done)
        return rc;
    if (!have_dtype)
        return cli_usage(c, "--dtype is required");
    if (!have_shape)
        return cli_usage(c, "--shape is required");
    const char *path = p.pos[0], *name = p.pos[1];

    ba_db *db;
    ba_session *s = NULL;
    ba_array *a = NULL;
    if ((rc = cli_db_open(c, path, CLI_OPEN_CREATE, &db)) != 0)
        return rc;
    if ((rc = cli_session_begin(c, db, path, &s)) != 0)
        goto out;
    int err = ba_array_create(s, name, &spec, &a);
    if (err == BA_EEXIST) {
        rc = cli_fail(c, "%s: an array named '%s' already exists", path, name);
        goto out;
    }
    if (err != 0) {
        rc = cli_fail_ba(c, err, "cannot create '%s'", name);
        goto out;
    }
    rc = cli_commit(c, s, "the new array");
out:
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    return rc;
}
