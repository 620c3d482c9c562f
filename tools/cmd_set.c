/* SPDX-License-Identifier: MIT */
/*
 * `bigarray set DB NAME SLICE VALUE`: assign one value to every element of a slice
 * and commit. The slice is written chunk by chunk through views. Assigning a
 * constant is idempotent, so a commit that loses to a concurrent one (BA_ECONFLICT)
 * is simply redone on the new snapshot, a few times.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "elem.h"
#include "sel.h"

#define RETRIES 5

struct fill {
    const unsigned char *val;
    uint32_t size;
};

static int fill_run(void *ctx, unsigned char *p, int64_t stride, int64_t n)
{
    const struct fill *f = ctx;
    for (int64_t k = 0; k < n; k++, p += stride)
        memcpy(p, f->val, f->size);
    return 0;
}

/* One attempt: write the value into the session's view of the slice. */
static int assign(struct cli *c, ba_db *db, ba_session *s, const char *path, const char *name,
                  const char *slice, const char *text)
{
    ba_array *a;
    ba_array_info info;
    int rc;
    if ((rc = cli_array_open(c, s, path, name, &a)) != 0)
        return rc;
    if ((rc = cli_array_info(c, a, name, &info)) != 0)
        goto out;
    unsigned char val[4096];
    unsigned char *vp = info.dtype.itemsize <= sizeof val ? val : malloc(info.dtype.itemsize);
    char msg[256];
    if (!vp) {
        rc = cli_fail(c, "out of memory");
        goto out;
    }
    if (elem_parse(&info.dtype, text, vp, msg, sizeof msg) != 0) {
        char dt[BA_DTYPE_STRLEN];
        rc = cli_usage(c, "VALUE for '%s' (%s): %s", name, ba_dtype_format(&info.dtype, dt), msg);
        goto free_val;
    }
    struct sel sl;
    int err = sel_init(&sl, &info, slice, info.order, cli_chunk_bytes(db));
    if (err) {
        rc = cli_fail_ba(c, err, "slice '%s' of '%s'", slice, name);
        goto free_val;
    }
    struct fill f = {vp, info.dtype.itemsize};
    int64_t nchunks = sel_nchunks(&sl);
    for (int64_t k = 0; k < nchunks; k++) {
        ba_view v;
        err = sel_view(&sl, a, k, 0, &v);
        if (err == 0 && (err = ba_view_preload(&v, BA_PRELOAD_WRITE)) != 0)
            ba_view_release(&v);
        if (err) {
            rc = cli_fail_ba(c, err, "array '%s'", name);
            goto free_val;
        }
        sel_walk(&v, info.order, fill_run, &f);
        ba_view_release(&v);
    }
free_val:
    if (vp != val)
        free(vp);
out:
    ba_array_close(a);
    return rc;
}

int cmd_set(struct cli *c, int argc, char **argv)
{
    struct cli_args p;
    cli_args_init(&p, c, NULL, argc, argv);
    int done, rc;
    if ((rc = cli_args_finish(&p, 4, 4, &done)) != 0 || done)
        return rc;
    const char *path = p.pos[0], *name = p.pos[1], *slice = p.pos[2], *text = p.pos[3];
    ba_slice tmp[2 * BA_MAX_DIMS + 1];
    int n, err = ba_slice_parse(slice, tmp, 2 * BA_MAX_DIMS + 1, &n);
    if (err)
        return cli_usage(c, "slice: %s", *ba_errmsg() ? ba_errmsg() : ba_strerror(err));
    ba_db *db;
    ba_session *s = NULL;
    if ((rc = cli_db_open(c, path, 0, &db)) != 0)
        return rc;
    if ((rc = cli_session_begin(c, db, path, &s)) != 0)
        goto out;
    for (int attempt = 0;; attempt++) {
        if ((rc = assign(c, db, s, path, name, slice, text)) != 0)
            goto out;
        err = ba_session_commit(s);
        if (err == BA_ECONFLICT && attempt < RETRIES) {
            if ((err = ba_session_abort(s)) == 0)
                continue;
        }
        if (err)
            rc = cli_fail_ba(c, err, "cannot commit the assignment");
        break;
    }
out:
    ba_session_end(s);
    ba_db_close(db);
    return rc;
}
