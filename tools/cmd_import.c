/* SPDX-License-Identifier: MIT */
/*
 * `bigarray import DB NAME FILE`: a .npy or raw file into a new array, or appended
 * to an existing one (--append, and `bigarray append`).
 *
 * Everything happens in one session and one commit: the array is created (or
 * resized), the bytes are copied into views of it chunk by chunk as the io_uring
 * reader delivers them, and only after the last byte arrived and matched what the
 * header promised is the session committed. Any error, SIGINT, SIGTERM or SIGHUP
 * before that ends the session without committing, and kill -9 loses only the
 * uncommitted session, so the database is never left with part of an import.
 *
 * Everything that can be checked before touching the database is: the header, the
 * file size against it, the dtype and shape against the array appended to.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "npy.h"
#include "progress.h"
#include "sel.h"
#include "uring_io.h"

enum { OPT_FORMAT = 1, OPT_DTYPE, OPT_SHAPE, OPT_ORDER, OPT_APPEND, OPT_BLOCK_SIZE, OPT_CODEC };

static const struct cli_opt opts[] = {
    {"format", 0, 1, OPT_FORMAT}, {"dtype", 0, 1, OPT_DTYPE},
    {"shape", 0, 1, OPT_SHAPE},   {"order", 0, 1, OPT_ORDER},
    {"append", 0, 0, OPT_APPEND}, {"block-size", 0, 1, OPT_BLOCK_SIZE},
    {"codec", 0, 1, OPT_CODEC},   {NULL, 0, 0, 0},
};

/* What the file holds. */
struct source {
    const char *file;
    ba_dtype dtype;
    char order;
    int ndim;
    int64_t shape[BA_MAX_DIMS];
    uint64_t data_len;
    uint64_t data_off; /* file offset of the data (the header's length) */
    /* Bytes of data already read while parsing the header. */
    const unsigned char *pending;
    size_t npending;
};

struct import {
    struct cli *c;
    const char *path, *name, *file;
    int append;
    int is_npy;
    int have_dtype, have_shape, have_order, have_spec;
    ba_array_spec spec; /* --dtype/--shape/--order and, for a new array, block size and codec */
    struct uio in;
    struct progress pg;
    unsigned char *hdr; /* .npy header bytes gathered from the first pieces */
    struct source src;
};

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static uint64_t shape_bytes(const ba_dtype *dt, int ndim, const int64_t *shape)
{
    uint64_t n = dt->itemsize;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 0)
            return 0;
        if (__builtin_mul_overflow(n, (uint64_t)shape[d], &n) || n > (uint64_t)INT64_MAX)
            return UINT64_MAX;
    }
    return n;
}

/* Wait for the next piece, treating a stop signal as the end of the import. */
static int next_piece(struct import *im, const void **p, size_t *n)
{
    for (;;) {
        if (cli_stop_signal)
            return -EINTR;
        int rc = uio_reader_next(&im->in, p, n);
        if (rc != -EINTR)
            return rc;
        /* A signal interrupted the wait. ThreadSanitizer runs handlers only when the
         * thread next enters a libc function it intercepts, and io_uring_enter() is a
         * raw system call: give it one, so cli_stop_signal is set before we look. */
        struct timespec zero = {0, 0};
        nanosleep(&zero, NULL);
    }
}

static int read_error(struct import *im, int rc)
{
    if (rc == -EINTR)
        return cli_fail(im->c, "interrupted by %s; nothing was imported",
                        cli_stop_signal == SIGTERM  ? "SIGTERM"
                        : cli_stop_signal == SIGHUP ? "SIGHUP"
                                                    : "SIGINT");
    return cli_fail(im->c, "%s", im->in.err);
}

/* Read and parse the .npy header; leaves the data bytes read with it pending. */
static int npy_source(struct import *im)
{
    struct source *src = &im->src;
    size_t have = 0, cap = 0, need = NPY_HEADER_PREFIX;
    const void *piece = NULL;
    size_t n = 0;
    struct npy_header h;
    char err[512];
    for (;;) {
        int rc = next_piece(im, &piece, &n);
        if (rc)
            return read_error(im, rc);
        if (n > 0) {
            size_t take = n;
            if (have + take > cap) {
                size_t ncap = have + take;
                unsigned char *p = realloc(im->hdr, ncap);
                if (!p)
                    return cli_fail(im->c, "out of memory");
                im->hdr = p;
                cap = ncap;
            }
            memcpy(im->hdr + have, piece, take);
            have += take;
        }
        if (have < need && n > 0)
            continue;
        int pr = npy_header_parse(im->hdr, have, &h, err, sizeof err);
        if (pr == NPY_OK)
            break;
        if (pr == NPY_EBAD)
            return cli_fail(im->c, "%s: %s", src->file, err);
        if (n == 0) /* end of file inside the header */
            return cli_fail(im->c, "%s: %s", src->file, err);
        need = (size_t)h.header_len;
    }
    if (h.ndim == 0)
        return cli_fail(im->c, "%s: a 0-dimensional array; bigarray arrays have 1 to %d axes",
                        src->file, BA_MAX_DIMS);
    src->dtype = h.dtype;
    src->order = h.fortran_order ? 'F' : 'C';
    src->ndim = h.ndim;
    memcpy(src->shape, h.shape, sizeof h.shape);
    src->data_len = h.data_len;
    src->data_off = h.header_len;
    src->pending = im->hdr + h.header_len;
    src->npending = have - (size_t)h.header_len;
    if (im->in.seekable && im->in.size != h.header_len + h.data_len) {
        char sh[600], dt[16];
        cli_format_shape(h.ndim, h.shape, sh, sizeof sh);
        npy_descr_format(&h.dtype, dt);
        uint64_t got = im->in.size - h.header_len;
        if (im->in.size < h.header_len + h.data_len)
            return cli_fail(im->c,
                            "%s: truncated at byte %" PRIu64 ": the header (shape %s, dtype %s) "
                            "promises %" PRIu64 " data bytes, the file holds %" PRIu64,
                            src->file, im->in.size, sh, dt, h.data_len, got);
        return cli_fail(im->c,
                        "%s: %" PRIu64 " bytes after the data at byte %" PRIu64
                        ": the header (shape %s, dtype %s) describes %" PRIu64 " data bytes",
                        src->file, got - h.data_len, h.header_len + h.data_len, sh, dt, h.data_len);
    }
    return 0;
}

/* A raw file: the dtype is given; the shape is given or follows from the size. */
static int raw_source(struct import *im, const ba_array_info *target)
{
    struct source *src = &im->src;
    src->dtype = im->spec.dtype;
    src->order = im->have_order ? im->spec.order : target ? target->order : 'C';
    char sh[600];
    if (im->have_shape) {
        src->ndim = im->spec.ndim;
        memcpy(src->shape, im->spec.shape, sizeof src->shape);
        src->data_len = shape_bytes(&src->dtype, src->ndim, src->shape);
        if (src->data_len == UINT64_MAX)
            return cli_fail(im->c, "--shape %s describes more than 2^63 bytes",
                            cli_format_shape(src->ndim, src->shape, sh, sizeof sh));
        if (im->in.seekable && im->in.size != src->data_len)
            return cli_fail(im->c,
                            "%s: the file has %" PRIu64 " bytes; shape %s of %u-byte items "
                            "needs %" PRIu64,
                            src->file, im->in.size,
                            cli_format_shape(src->ndim, src->shape, sh, sizeof sh),
                            src->dtype.itemsize, src->data_len);
        return 0;
    }
    if (!im->in.seekable)
        return cli_usage(im->c, "raw data from a pipe needs --shape");
    /* Default: the target's sub-array shape (append) or 1-D. */
    uint64_t unit = src->dtype.itemsize;
    src->ndim = 1;
    int major = 0;
    if (target) {
        src->ndim = target->ndim;
        major = target->order == 'F' ? target->ndim - 1 : 0;
        for (int d = 0; d < target->ndim; d++)
            if (d != major) {
                src->shape[d] = target->shape[d];
                unit *= (uint64_t)target->shape[d];
            }
    }
    if (unit == 0 || im->in.size % unit != 0)
        return cli_fail(
            im->c,
            "%s: the file has %" PRIu64 " bytes, not a multiple of %" PRIu64 " (the size of %s)",
            src->file, im->in.size, unit, target ? "one sub-array of the target" : "one item");
    src->shape[major] = (int64_t)(im->in.size / unit);
    src->data_len = im->in.size;
    return 0;
}

/* Check that the source fits the array and compute the new shape. */
static int check_append(struct import *im, const ba_array_info *t, int64_t *new_shape)
{
    struct source *src = &im->src;
    char a[600], b[600], d1[16], d2[16];
    if (!ba_dtype_equal(&src->dtype, &t->dtype))
        return cli_fail(im->c, "%s has dtype %s; array '%s' has %s", src->file,
                        ba_dtype_format(&src->dtype, d1), im->name, ba_dtype_format(&t->dtype, d2));
    int major = t->order == 'F' ? t->ndim - 1 : 0;
    int64_t add;
    int sub = src->ndim == t->ndim - 1; /* a single sub-array */
    if (src->ndim != t->ndim && !sub)
        goto bad_shape;
    if (src->ndim > 1 && src->order != t->order)
        return cli_fail(im->c, "%s is in %s order; array '%s' is in %s order", src->file,
                        src->order == 'F' ? "Fortran" : "C", im->name,
                        t->order == 'F' ? "Fortran" : "C");
    for (int d = 0, s = 0; d < t->ndim; d++) {
        if (d == major && sub)
            continue;
        if (d != major && src->shape[s] != t->shape[d])
            goto bad_shape;
        s++;
    }
    add = sub ? 1 : src->shape[major];
    memcpy(new_shape, t->shape, sizeof t->shape);
    new_shape[major] += add;
    return 0;
bad_shape:
    return cli_fail(im->c, "cannot append shape %s to array '%s' of shape %s: %s",
                    cli_format_shape(src->ndim, src->shape, a, sizeof a), im->name,
                    cli_format_shape(t->ndim, t->shape, b, sizeof b),
                    "every axis but the major one must match");
}

struct copier {
    struct import *im;
    ba_array *a;
    struct sel sel;
    char order;
    int64_t chunk; /* index of the mapped chunk, -1 before the first */
    ba_view v;
    uint64_t chunk_start, chunk_len; /* data bytes the mapped chunk covers */
    uint64_t done;
};

static int copy_bytes(struct copier *cp, const unsigned char *p, size_t n)
{
    struct import *im = cp->im;
    while (n > 0) {
        if (cp->done >= cp->chunk_start + cp->chunk_len) {
            ba_view_release(&cp->v);
            cp->chunk++;
            if (cp->chunk >= sel_nchunks(&cp->sel))
                return cli_fail(im->c, "%s: more data than the %s describes (%" PRIu64 " bytes)",
                                im->src.file, im->is_npy ? "header" : "shape", im->src.data_len);
            int rc = sel_view(&cp->sel, cp->a, cp->chunk, 0, &cp->v);
            if (rc == 0)
                rc = ba_view_preload(&cp->v, BA_PRELOAD_WRITE);
            if (rc)
                return cli_fail_ba(im->c, rc, "array '%s'", im->name);
            if (!sel_view_contiguous(&cp->v, cp->order))
                return cli_fail(im->c, "array '%s': unexpected non-contiguous view", im->name);
            cp->chunk_start = cp->done;
            cp->chunk_len = ba_view_size(&cp->v) * cp->v.dtype.itemsize;
        }
        uint64_t room = cp->chunk_start + cp->chunk_len - cp->done;
        size_t m = n < room ? n : (size_t)room;
        memcpy((unsigned char *)cp->v.data + (cp->done - cp->chunk_start), p, m);
        cp->done += m;
        p += m;
        n -= m;
    }
    return 0;
}

/* Stream the data into the array, chunk view by chunk view. */
static int copy_data(struct import *im, ba_db *db, ba_array *a, const ba_array_info *info,
                     int64_t old_major)
{
    struct copier cp = {.im = im, .a = a, .order = info->order, .chunk = -1};
    uint64_t chunk_bytes = cli_chunk_bytes(db);
    char slice[64];
    if (info->order == 'F')
        snprintf(slice, sizeof slice, "..., %" PRId64 ":", old_major);
    else
        snprintf(slice, sizeof slice, "%" PRId64 ":", old_major);
    ba_array_info now = *info;
    int err = sel_init(&cp.sel, &now, slice, info->order, chunk_bytes);
    if (err)
        return cli_fail_ba(im->c, err, "array '%s'", im->name);
    if (cp.sel.nbytes != im->src.data_len)
        return cli_fail(im->c, "array '%s': the new part has %" PRIu64 " bytes, expected %" PRIu64,
                        im->name, cp.sel.nbytes, im->src.data_len);

    struct progress *pg = &im->pg;
    progress_begin(pg, im->append ? "append" : "import", im->src.data_len, im->c->quiet);
    int rc = 0;
    if (im->src.npending) {
        size_t n = im->src.npending;
        if (n > im->src.data_len) {
            rc = cli_fail(im->c,
                          "%s: more data than the header describes: byte %" PRIu64
                          " is past the end of %" PRIu64 " data bytes",
                          im->src.file, im->src.data_off + im->src.data_len, im->src.data_len);
            goto out;
        }
        if ((rc = copy_bytes(&cp, im->src.pending, n)) != 0)
            goto out;
    }
    for (;;) {
        const void *p;
        size_t n;
        int r = next_piece(im, &p, &n);
        if (r) {
            rc = read_error(im, r);
            goto out;
        }
        if (n == 0)
            break;
        if (cp.done + n > im->src.data_len) {
            rc = cli_fail(im->c,
                          "%s: more data than the %s describes: byte %" PRIu64
                          " is past the end of %" PRIu64 " data bytes",
                          im->src.file, im->is_npy ? "header" : "shape",
                          im->src.data_off + im->src.data_len, im->src.data_len);
            goto out;
        }
        if ((rc = copy_bytes(&cp, p, n)) != 0)
            goto out;
        progress_update(pg, cp.done);
    }
    if (cp.done < im->src.data_len)
        rc = cli_fail(im->c,
                      "%s: truncated at byte %" PRIu64 ": %" PRIu64 " of %" PRIu64
                      " data bytes arrived",
                      im->src.file, im->src.data_off + cp.done, cp.done, im->src.data_len);
out:
    if (rc)
        progress_end(pg);
    ba_view_release(&cp.v);
    return rc;
}

static int run(struct import *im)
{
    struct cli *c = im->c;
    int rc;
    if (uio_reader_open(&im->in, im->file) != 0)
        return cli_fail(c, "%s", im->in.err);
    im->src.file = strcmp(im->file, "-") == 0 ? "standard input" : im->file;

    ba_db *db = NULL;
    ba_session *s = NULL;
    ba_array *a = NULL;
    ba_array_info info;
    int64_t new_shape[BA_MAX_DIMS];

    /* The header (or the raw size) first: a bad file never touches the database. */
    if (im->is_npy && (rc = npy_source(im)) != 0)
        goto out;
    if (!im->is_npy && !im->append && (rc = raw_source(im, NULL)) != 0)
        goto out;
    if ((rc = cli_db_open(c, im->path, im->append ? 0 : CLI_OPEN_CREATE, &db)) != 0)
        goto out;
    if ((rc = cli_session_begin(c, db, im->path, &s)) != 0)
        goto out;
    if (im->append) {
        if ((rc = cli_array_open(c, s, im->path, im->name, &a)) != 0 ||
            (rc = cli_array_info(c, a, im->name, &info)) != 0)
            goto out;
        if (!im->is_npy && (rc = raw_source(im, &info)) != 0)
            goto out;
        if ((rc = check_append(im, &info, new_shape)) != 0)
            goto out;
        int64_t old_major = info.shape[info.order == 'F' ? info.ndim - 1 : 0];
        int err = ba_array_resize(a, info.ndim, new_shape);
        if (err) {
            rc = cli_fail_ba(c, err, "cannot grow '%s'", im->name);
            goto out;
        }
        if ((rc = cli_array_info(c, a, im->name, &info)) != 0)
            goto out;
        if ((rc = copy_data(im, db, a, &info, old_major)) != 0)
            goto out;
    } else {
        ba_array_spec spec = im->spec;
        spec.dtype = im->src.dtype;
        spec.ndim = im->src.ndim;
        memcpy(spec.shape, im->src.shape, sizeof spec.shape);
        spec.order = im->src.order;
        int err = ba_array_create(s, im->name, &spec, &a);
        if (err == BA_EEXIST) {
            rc = cli_fail(c, "%s: an array named '%s' already exists (use --append, or rm it)",
                          im->path, im->name);
            goto out;
        }
        if (err) {
            rc = cli_fail_ba(c, err, "cannot create '%s'", im->name);
            goto out;
        }
        if ((rc = cli_array_info(c, a, im->name, &info)) != 0)
            goto out;
        if ((rc = copy_data(im, db, a, &info, 0)) != 0)
            goto out;
    }
    if (cli_stop_signal) {
        rc = read_error(im, -EINTR);
        goto out;
    }
    char what[64], sz[32];
    snprintf(what, sizeof what, "committing %s", cli_format_bytes(im->src.data_len, sz, sizeof sz));
    progress_note(&im->pg, what);
    rc = cli_commit(c, s, "the import");
    progress_end(&im->pg);
out:
    progress_end(&im->pg);
    /* Ending the session without a commit drops everything this import did. */
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    uio_close(&im->in);
    free(im->hdr);
    return rc;
}

int cli_import_run(struct cli *c, int argc, char **argv, int append)
{
    struct import im;
    memset(&im, 0, sizeof im);
    im.c = c;
    im.append = append;
    ba_array_spec_init(&im.spec);
    const char *format = NULL;
    struct cli_args p;
    cli_args_init(&p, c, opts, argc, argv);
    const char *arg;
    int id, rc = 0;
    while ((id = cli_args_next(&p, &arg)) > 0) {
        switch (id) {
        case OPT_FORMAT:
            if (strcmp(arg, "npy") != 0 && strcmp(arg, "raw") != 0)
                return cli_usage(c, "--format: '%s' is not npy or raw", arg);
            format = arg;
            break;
        case OPT_DTYPE:
            rc = cli_opt_dtype(c, arg, &im.spec.dtype);
            im.have_dtype = 1;
            break;
        case OPT_SHAPE:
            rc = cli_opt_shape(c, "--shape", arg, &im.spec.ndim, im.spec.shape);
            im.have_shape = 1;
            break;
        case OPT_ORDER:
            rc = cli_opt_order(c, arg, &im.spec.order);
            im.have_order = 1;
            break;
        case OPT_APPEND:
            im.append = 1;
            break;
        case OPT_BLOCK_SIZE:
            rc = cli_opt_block_size(c, arg, &im.spec.block_size);
            im.have_spec = 1;
            break;
        default:
            rc = cli_opt_codec(c, arg, &im.spec);
            im.have_spec = 1;
            break;
        }
        if (rc)
            return rc;
    }
    if (id == CLI_ARGS_ERROR)
        return CLI_EXIT_USAGE;
    int done;
    if ((rc = cli_args_finish(&p, 3, 3, &done)) != 0 || done)
        return rc;
    im.path = p.pos[0];
    im.name = p.pos[1];
    im.file = p.pos[2];
    if (format)
        im.is_npy = strcmp(format, "npy") == 0;
    else
        im.is_npy = !im.have_dtype || ends_with(im.file, ".npy");
    if (im.is_npy && (im.have_dtype || im.have_shape || im.have_order))
        return cli_usage(c, "--dtype, --shape and --order describe raw input; a .npy file "
                            "carries its own");
    if (!im.is_npy && !im.have_dtype)
        return cli_usage(c, "raw input needs --dtype");
    if (im.append && im.have_spec)
        return cli_usage(c, "--block-size and --codec apply to a new array, not to --append");
    cli_stop_signals_install();
    return run(&im);
}

int cmd_import(struct cli *c, int argc, char **argv)
{
    return cli_import_run(c, argc, argv, 0);
}
