/* SPDX-License-Identifier: MIT */
/* `bigarray verify DB`: walk every record; exit 0 when clean, 1 with every problem
 * listed (one per line on stdout, or as JSON). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

struct vctx {
    struct cli *c;
    struct json j;
};

static void on_problem(const ba_problem *pb, void *ctx)
{
    struct vctx *v = ctx;
    if (v->c->json) {
        json_object_begin(&v->j);
        json_key(&v->j, "array");
        if (pb->array)
            json_string(&v->j, pb->array);
        else
            json_null(&v->j);
        json_key(&v->j, "array_id");
        json_uint(&v->j, pb->array_id);
        json_key(&v->j, "block");
        if (pb->blkno >= 0)
            json_int(&v->j, pb->blkno);
        else
            json_null(&v->j);
        json_key(&v->j, "error");
        json_string(&v->j, ba_strerror(pb->code));
        json_key(&v->j, "what");
        json_string(&v->j, pb->what ? pb->what : "");
        json_object_end(&v->j);
        return;
    }
    /* The library's sentence may name the array and block itself. */
    char where[400] = "";
    if (pb->array)
        snprintf(where, sizeof where, "array '%s'", pb->array);
    else if (pb->array_id)
        snprintf(where, sizeof where, "array id %" PRIu64, pb->array_id);
    if (pb->blkno >= 0) {
        size_t n = strlen(where);
        snprintf(where + n, sizeof where - n, "%sblock %" PRId64, n ? " " : "", pb->blkno);
    }
    const char *what = pb->what ? pb->what : ba_strerror(pb->code);
    if (where[0] && !strstr(what, where))
        printf("%s: %s\n", where, what);
    else
        printf("%s\n", what);
}

int cmd_verify(struct cli *c, int argc, char **argv)
{
    struct cli_args p;
    cli_args_init(&p, c, NULL, argc, argv);
    int done, rc;
    if ((rc = cli_args_finish(&p, 1, 1, &done)) != 0 || done)
        return rc;
    const char *path = p.pos[0];
    ba_db *db;
    if ((rc = cli_db_open(c, path, CLI_OPEN_RDONLY, &db)) != 0)
        return rc;
    struct vctx v = {c, {0}};
    json_init(&v.j, stdout);
    if (c->json) {
        json_object_begin(&v.j);
        json_key(&v.j, "problems");
        json_array_begin(&v.j);
    }
    uint64_t n = 0;
    int err = ba_db_verify(db, on_problem, &v, &n);
    if (c->json) {
        json_array_end(&v.j);
        json_key(&v.j, "count");
        json_uint(&v.j, n);
        json_key(&v.j, "complete");
        json_bool(&v.j, err == 0);
        json_object_end(&v.j);
        json_end(&v.j);
    }
    if (err != 0)
        rc = cli_fail_ba(c, err, "%s: verification could not complete", path);
    else if (n > 0)
        rc = cli_fail(c, "%s: %" PRIu64 " problem%s found", path, n, n == 1 ? "" : "s");
    ba_db_close(db);
    return rc;
}
