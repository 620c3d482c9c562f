/* SPDX-License-Identifier: MIT */
/*
 * `bigarray export DB NAME FILE [--slice S]`: an array or a slice to a .npy or raw
 * file. The selection is walked chunk by chunk (views preloaded, so a damaged block
 * is an error, not a crash) and copied into the io_uring writer's buffers, which go
 * to the kernel while the next chunk is copied.
 *
 * A .npy file is what numpy.save() would write for the same array: the same header
 * bytes, Fortran order for a Fortran-order array with more than one axis longer
 * than 1, C order otherwise. So import followed by export reproduces a file
 * numpy wrote, byte for byte. A regular output file is written under a temporary
 * name and renamed at the end: an error or Ctrl-C leaves no partial file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "npy.h"
#include "progress.h"
#include "sel.h"
#include "stream.h"
#include "uring_io.h"

enum { OPT_SLICE = 1, OPT_FORMAT, OPT_ORDER };

static const struct cli_opt opts[] = {
    {"slice", 0, 1, OPT_SLICE},
    {"format", 0, 1, OPT_FORMAT},
    {"order", 0, 1, OPT_ORDER},
    {NULL, 0, 0, 0},
};

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

struct out {
    struct cli *c;
    struct uio w;
    uint32_t itemsize;
    int rc;
};

static int write_run(void *ctx, unsigned char *p, int64_t stride, int64_t n)
{
    struct out *o = ctx;
    size_t isz = o->itemsize;
    if (stride == (int64_t)isz) {
        int rc = uio_writer_write(&o->w, p, (size_t)n * isz);
        if (rc)
            o->rc = rc;
        return rc;
    }
    while (n > 0) {
        size_t avail;
        unsigned char *dst = uio_writer_space(&o->w, &avail);
        if (!dst) {
            o->rc = o->w.failed ? o->w.failed : -EINTR;
            return o->rc;
        }
        size_t k = 0;
        /* Whole elements that fit; an element that straddles buffers goes bytewise. */
        while (n > 0 && avail - k >= isz) {
            memcpy(dst + k, p, isz);
            k += isz;
            p += stride;
            n--;
        }
        if (k == 0) {
            int rc = uio_writer_write(&o->w, p, isz);
            if (rc) {
                o->rc = rc;
                return rc;
            }
            p += stride;
            n--;
            continue;
        }
        int rc = uio_writer_commit(&o->w, k);
        if (rc) {
            o->rc = rc;
            return rc;
        }
    }
    return 0;
}

/* A temporary name next to path, created empty with the usual permissions. */
static char *temp_beside(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path + 1) : 0;
    const char *base = slash ? slash + 1 : path;
    size_t n = dirlen + strlen(base) + 32;
    char *t = malloc(n);
    if (!t)
        return NULL;
    snprintf(t, n, "%.*s.%s.bigarray-XXXXXX", (int)dirlen, path, base);
    int fd = mkstemp(t);
    if (fd < 0) {
        free(t);
        return NULL;
    }
    mode_t um = umask(0);
    umask(um);
    if (fchmod(fd, 0666 & ~um) != 0) {
        /* Keep the private mode; the data is still correct. */
    }
    close(fd);
    return t;
}

int cmd_export(struct cli *c, int argc, char **argv)
{
    const char *slice = NULL, *format = NULL;
    char order = 0;
    struct cli_args p;
    cli_args_init(&p, c, opts, argc, argv);
    const char *arg;
    int id, rc = 0, done;
    while ((id = cli_args_next(&p, &arg)) > 0) {
        if (id == OPT_SLICE)
            slice = arg;
        else if (id == OPT_FORMAT) {
            if (strcmp(arg, "npy") != 0 && strcmp(arg, "raw") != 0)
                return cli_usage(c, "--format: '%s' is not npy or raw", arg);
            format = arg;
        } else if ((rc = cli_opt_order(c, arg, &order)) != 0)
            return rc;
    }
    if (id == CLI_ARGS_ERROR)
        return CLI_EXIT_USAGE;
    if ((rc = cli_args_finish(&p, 3, 3, &done)) != 0 || done)
        return rc;
    const char *path = p.pos[0], *name = p.pos[1], *file = p.pos[2];
    int npy =
        format ? strcmp(format, "npy") == 0
               : !(ends_with(file, ".raw") || ends_with(file, ".bin") || ends_with(file, ".dat"));
    if (npy && order)
        return cli_usage(c, "--order applies to raw output; a .npy file follows numpy's rule");
    if (slice) {
        ba_slice tmp[2 * BA_MAX_DIMS + 1];
        int n, err = ba_slice_parse(slice, tmp, 2 * BA_MAX_DIMS + 1, &n);
        if (err)
            return cli_usage(c, "--slice: %s", *ba_errmsg() ? ba_errmsg() : ba_strerror(err));
    }

    ba_db *db;
    ba_session *s = NULL;
    ba_array *a = NULL;
    ba_array_info info;
    struct out o = {.c = c};
    int writer_open = 0;
    char *tmp = NULL;
    ba_view v = {0};
    struct stream stm = {0};
    if ((rc = cli_db_open(c, path, CLI_OPEN_RDONLY, &db)) != 0)
        return rc;
    if ((rc = cli_session_begin(c, db, path, &s)) != 0 ||
        (rc = cli_array_open(c, s, path, name, &a)) != 0 ||
        (rc = cli_array_info(c, a, name, &info)) != 0)
        goto out;

    /* The selection's shape decides the .npy order; then walk in that order. */
    struct sel sl;
    int err = sel_init(&sl, &info, slice, 'C', cli_chunk_bytes(db));
    if (err) {
        rc = cli_fail_ba(c, err, "--slice '%s' of '%s'", slice ? slice : "", name);
        goto out;
    }
    int fortran = 0;
    if (npy) {
        int long_axes = 0;
        for (int d = 0; d < sl.ndim; d++)
            long_axes += sl.shape[d] > 1;
        fortran = info.order == 'F' && long_axes > 1;
    }
    char walk_order = npy ? (fortran ? 'F' : 'C') : (order ? order : info.order);
    if (walk_order == 'F' && (err = sel_init(&sl, &info, slice, 'F', cli_chunk_bytes(db))) != 0) {
        rc = cli_fail_ba(c, err, "--slice '%s' of '%s'", slice ? slice : "", name);
        goto out;
    }

    /* Output: a temporary file renamed at the end, unless it is a device or a pipe. */
    const char *target = file;
    struct stat st;
    if (strcmp(file, "-") != 0 && (stat(file, &st) != 0 || S_ISREG(st.st_mode))) {
        tmp = temp_beside(file);
        if (!tmp) {
            rc = cli_fail(c, "%s: %s", file, strerror(errno));
            goto out;
        }
        target = tmp;
    }
    if (uio_writer_open(&o.w, target) != 0) {
        rc = cli_fail(c, "%s", o.w.err);
        goto out;
    }
    o.w.name = strcmp(file, "-") == 0 ? "standard output" : file;
    writer_open = 1;
    o.itemsize = info.dtype.itemsize;
    cli_stop_signals_install();
    if (npy) {
        unsigned char hdr[NPY_WRITE_MAX];
        size_t hl = npy_header_write(hdr, sizeof hdr, &info.dtype, fortran, sl.ndim, sl.shape);
        if (hl == 0) {
            rc = cli_fail(c, "cannot write a .npy header for this array");
            goto out;
        }
        if ((err = uio_writer_write(&o.w, hdr, hl)) != 0)
            goto io_error;
    }
    struct progress pg;
    progress_begin(&pg, "export", sl.nbytes, c->quiet);
    stream_start(&stm, &sl, a, BA_VIEW_READONLY, 0);
    for (;;) {
        int r = stream_next(&stm, &v);
        if (r == 1 || r == -EINTR)
            break;
        if (r) {
            progress_end(&pg);
            rc = cli_fail(c, "%s", stm.msg);
            goto out;
        }
        if (sel_walk(&v, walk_order, write_run, &o) != 0) {
            err = o.rc;
            progress_end(&pg);
            if (err == -EINTR && cli_stop_signal)
                break;
            goto io_error;
        }
        ba_view_release(&v);
        progress_update(&pg, uio_writer_offset(&o.w));
    }
    progress_end(&pg);
    if (cli_stop_signal) {
        rc = cli_fail(c, "interrupted; %s was not written", file);
        goto out;
    }
    if ((err = uio_writer_finish(&o.w)) != 0)
        goto io_error;
    uio_close(&o.w);
    writer_open = 0;
    if (tmp && rename(tmp, file) != 0) {
        rc = cli_fail(c, "%s: %s", file, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;
    goto out;
io_error:
    rc = cli_fail(c, "%s", o.w.err[0] ? o.w.err : strerror(-err));
out:
    ba_view_release(&v);
    stream_stop(&stm);
    if (writer_open)
        uio_close(&o.w);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    return rc;
}
