/* SPDX-License-Identifier: MIT */
/* `bigarray get DB NAME [SLICE]`: print values numpy-style, or as JSON. */
#include <string.h>

#include "cli.h"
#include "json.h"
#include "print.h"
#include "sel.h"

enum { OPT_FULL = 1 };

static const struct cli_opt opts[] = {
    {"full", 0, 0, OPT_FULL},
    {NULL, 0, 0, 0},
};

/* Read every element once (its first and last byte). */
struct touch {
    uint32_t itemsize;
    unsigned char sum;
};

static int touch_run(void *ctx, unsigned char *p, int64_t stride, int64_t n)
{
    struct touch *t = ctx;
    for (int64_t k = 0; k < n; k++, p += stride)
        t->sum ^= p[0] ^ p[t->itemsize - 1];
    return 0;
}

/* Views up to this size are preloaded, so a damaged block is reported as an error;
 * a summary of a larger one touches only the blocks it prints. */
#define PRELOAD_MAX (64u << 20)

int cmd_get(struct cli *c, int argc, char **argv)
{
    int full = 0;
    struct cli_args p;
    cli_args_init(&p, c, opts, argc, argv);
    const char *arg;
    int id, rc, done;
    while ((id = cli_args_next(&p, &arg)) > 0)
        full = 1;
    if (id == CLI_ARGS_ERROR)
        return CLI_EXIT_USAGE;
    if ((rc = cli_args_finish(&p, 2, 3, &done)) != 0 || done)
        return rc;
    const char *path = p.pos[0], *name = p.pos[1], *slice = p.npos > 2 ? p.pos[2] : "";
    ba_slice tmp[2 * BA_MAX_DIMS + 1];
    int n, err = ba_slice_parse(slice, tmp, 2 * BA_MAX_DIMS + 1, &n);
    if (err)
        return cli_usage(c, "slice: %s", *ba_errmsg() ? ba_errmsg() : ba_strerror(err));

    ba_db *db;
    ba_session *s = NULL;
    ba_array *a = NULL;
    ba_view v = {0};
    if ((rc = cli_db_open(c, path, CLI_OPEN_RDONLY, &db)) != 0)
        return rc;
    if ((rc = cli_session_begin(c, db, path, &s)) != 0 ||
        (rc = cli_array_open(c, s, path, name, &a)) != 0)
        goto out;
    /* Check the slice against the shape first: the message then reads as in the
     * other commands. */
    ba_array_info info;
    if ((rc = cli_array_info(c, a, name, &info)) != 0)
        goto out;
    int64_t off, shp[BA_MAX_DIMS], str[BA_MAX_DIMS];
    int nd;
    err = ba_slice_apply(info.ndim, info.shape, info.strides, tmp, n, &off, &nd, shp, str);
    if (err == 0)
        err = ba_array_view(a, tmp, n, BA_VIEW_READONLY, &v);
    if (err) {
        rc = cli_fail_ba(c, err, "slice '%s' of '%s'", slice, name);
        goto out;
    }
    if (ba_view_size(&v) * v.dtype.itemsize <= PRELOAD_MAX && (err = ba_view_preload(&v, 0))) {
        rc = cli_fail_ba(c, err, "array '%s'", name);
        goto out;
    }
    /* A bigger view is not preloaded (a summary touches few blocks): a block that
     * cannot be loaded raises SIGBUS while the values are first read, and the
     * handler jumps back here. */
    if (sigsetjmp(cli_sigbus_jmp, 1)) {
        int64_t blk;
        err = ba_array_fault_error(a, &blk);
        if (err)
            rc = cli_fail_ba(c, err, "array '%s'", name);
        else
            rc = cli_fail(c, "array '%s': a block could not be loaded", name);
        goto out;
    }
    cli_sigbus_armed = 1;
    if (c->json) {
        struct touch t = {v.dtype.itemsize, 0};
        sel_walk(&v, 'C', touch_run, &t);
        cli_sigbus_armed = 0;
        struct json j;
        char dt[BA_DTYPE_STRLEN];
        json_init(&j, stdout);
        json_object_begin(&j);
        json_key(&j, "dtype");
        json_string(&j, ba_dtype_format(&v.dtype, dt));
        json_key(&j, "shape");
        json_array_begin(&j);
        for (int d = 0; d < v.ndim; d++)
            json_int(&j, v.shape[d]);
        json_array_end(&j);
        json_key(&j, "data");
        print_view_json(&j, &v);
        json_object_end(&j);
        json_end(&j);
    } else {
        char msg[256];
        int pr = print_view(stdout, &v, full, msg, sizeof msg);
        cli_sigbus_armed = 0;
        if (pr != 0)
            rc = cli_fail(c, "slice '%s' of '%s': %s", slice, name, msg);
    }
out:
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    return rc;
}
