/* SPDX-License-Identifier: MIT */
/* `bigarray ls DB`: the arrays, by name; -l adds a line of facts, --json all of them. */
#include <inttypes.h>
#include <string.h>

#include "arrinfo.h"

enum { OPT_LONG = 1 };

static const struct cli_opt opts[] = {
    {"long", 'l', 0, OPT_LONG},
    {NULL, 0, 0, 0},
};

int cmd_ls(struct cli *c, int argc, char **argv)
{
    int lng = 0;
    struct cli_args p;
    cli_args_init(&p, c, opts, argc, argv);
    const char *arg;
    int id, rc, done;
    while ((id = cli_args_next(&p, &arg)) > 0)
        lng = 1;
    if (id == CLI_ARGS_ERROR)
        return CLI_EXIT_USAGE;
    if ((rc = cli_args_finish(&p, 1, 1, &done)) != 0 || done)
        return rc;
    const char *path = p.pos[0];
    ba_db *db;
    ba_session *s = NULL;
    struct namelist l = {0};
    if ((rc = cli_db_open(c, path, CLI_OPEN_RDONLY, &db)) != 0)
        return rc;
    if ((rc = cli_session_begin(c, db, path, &s)) != 0 || (rc = namelist_get(c, s, path, &l)) != 0)
        goto out;
    struct json j;
    json_init(&j, stdout);
    if (c->json)
        json_array_begin(&j);
    else if (lng)
        printf("%-20s %-6s %-20s %-5s %-16s %12s %12s\n", "NAME", "DTYPE", "SHAPE", "ORDER",
               "CODEC", "SIZE", "STORED");
    for (size_t i = 0; i < l.n; i++) {
        if (!c->json && !lng) {
            printf("%s\n", l.names[i]);
            continue;
        }
        ba_array *a;
        ba_array_info info;
        if ((rc = cli_array_open(c, s, path, l.names[i], &a)) != 0)
            goto out;
        rc = cli_array_info(c, a, l.names[i], &info);
        if (rc == 0 && c->json) {
            arrinfo_json(&j, l.names[i], &info);
        } else if (rc == 0) {
            char dt[BA_DTYPE_STRLEN], sh[600], codec[64], sz[32], st[32];
            printf("%-20s %-6s %-20s %-5c %-16s %12s %12s\n", l.names[i],
                   ba_dtype_format(&info.dtype, dt),
                   cli_format_shape(info.ndim, info.shape, sh, sizeof sh), info.order,
                   arrinfo_codec(&info, codec), cli_format_bytes(info.nbytes, sz, sizeof sz),
                   cli_format_bytes(info.stored_bytes, st, sizeof st));
        }
        ba_array_close(a);
        if (rc)
            goto out;
    }
    if (c->json) {
        json_array_end(&j);
        json_end(&j);
    }
out:
    namelist_free(&l);
    ba_session_end(s);
    ba_db_close(db);
    return rc;
}
