/* SPDX-License-Identifier: MIT */
/*
 * `bigarray stats DB NAME [--slice S]`: count, NaN count, min, max, mean and
 * standard deviation, streamed over views chunk by chunk, so arrays far bigger
 * than RAM work and memory stays bounded.
 *
 * Numerics: values are converted to double in batches of BATCH, minus a shift (the
 * first finite value seen), so the sums run over numbers near zero even when the data
 * sits far from it (1e9 + noise); the shift is added back to the mean. Each batch gets an
 * exact-as-possible two-pass summary (its mean, then the sum of squared deviations
 * from that mean with the compensation term of the corrected two-pass algorithm),
 * and batches are merged with Chan et al.'s pairwise update:
 *     n = na + nb,  d = mb - ma,  mean = ma + d*nb/n,  M2 = M2a + M2b + d^2*na*nb/n.
 * That keeps the error of the variance near machine precision even when the mean
 * is large compared with the spread, where the textbook sum-of-squares fails.
 * NaNs are counted and excluded (like numpy's nanmean/nanstd); an infinity makes the
 * mean infinite (or NaN for both signs) and the standard deviation NaN, as in numpy.
 * Integer min and max are kept exactly as integers.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "elem.h"
#include "json.h"
#include "progress.h"
#include "sel.h"
#include "stream.h"

#define BATCH 4096

enum { OPT_SLICE = 1, OPT_DDOF };

static const struct cli_opt opts[] = {
    {"slice", 0, 1, OPT_SLICE},
    {"ddof", 0, 1, OPT_DDOF},
    {NULL, 0, 0, 0},
};

struct acc {
    const ba_dtype *dt;
    int cls;
    uint64_t count, nans, n; /* n: finite values merged into mean/m2 */
    uint64_t pinf, ninf;
    double mean, m2; /* of the shifted values */
    double shift;
    int shifted;        /* shift is set */
    double fmin, fmax;  /* floats (finite and infinite) */
    int64_t imin, imax; /* ints and bools */
    uint64_t umin, umax;
    int have; /* a non-NaN value was seen */
    double buf[BATCH];
};

/* Merge one batch of finite values. */
static void merge_batch(struct acc *a, double *x, size_t m)
{
    if (m == 0)
        return;
    if (!a->shifted) {
        a->shift = x[0];
        a->shifted = 1;
    }
    for (size_t i = 0; i < m; i++)
        x[i] -= a->shift;
    double sum = 0;
    for (size_t i = 0; i < m; i++)
        sum += x[i];
    double mb = sum / (double)m;
    double m2 = 0, comp = 0;
    for (size_t i = 0; i < m; i++) {
        double d = x[i] - mb;
        m2 += d * d;
        comp += d;
    }
    m2 -= comp * comp / (double)m;
    if (m2 < 0)
        m2 = 0;
    double na = (double)a->n, nb = (double)m, n = na + nb;
    double d = mb - a->mean;
    a->mean += d * nb / n;
    a->m2 += m2 + d * d * na * nb / n;
    a->n += m;
}

static void add_floats(struct acc *a, double *x, size_t m)
{
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        double v = x[i];
        if (isnan(v)) {
            a->nans++;
            continue;
        }
        if (!a->have || v < a->fmin)
            a->fmin = v;
        if (!a->have || v > a->fmax)
            a->fmax = v;
        a->have = 1;
        if (isinf(v)) {
            if (v > 0)
                a->pinf++;
            else
                a->ninf++;
            continue;
        }
        x[k++] = v;
    }
    merge_batch(a, x, k);
}

static int stats_run(void *ctx, unsigned char *p, int64_t stride, int64_t n)
{
    struct acc *a = ctx;
    while (n > 0) {
        int64_t m = n < BATCH ? n : BATCH;
        a->count += (uint64_t)m;
        if (a->cls == ELEM_INT || a->cls == ELEM_UINT || a->cls == ELEM_BOOL) {
            struct elem_val v;
            unsigned char *q = p;
            for (int64_t i = 0; i < m; i++, q += stride) {
                elem_get(a->dt, q, &v);
                if (a->cls == ELEM_UINT) {
                    if (!a->have || v.u < a->umin)
                        a->umin = v.u;
                    if (!a->have || v.u > a->umax)
                        a->umax = v.u;
                } else {
                    if (!a->have || v.i < a->imin)
                        a->imin = v.i;
                    if (!a->have || v.i > a->imax)
                        a->imax = v.i;
                }
                a->have = 1;
            }
            elem_run_to_double(a->dt, p, stride, m, a->buf);
            merge_batch(a, a->buf, (size_t)m);
        } else {
            elem_run_to_double(a->dt, p, stride, m, a->buf);
            add_floats(a, a->buf, (size_t)m);
        }
        p += m * stride;
        n -= m;
    }
    return 0;
}

static void put_value(struct json *j, const struct acc *a, int which_max, FILE *f)
{
    char buf[64];
    if (!a->have) {
        if (j)
            json_null(j);
        else
            fputs("-", f);
        return;
    }
    if (a->cls == ELEM_UINT) {
        uint64_t u = which_max ? a->umax : a->umin;
        if (j)
            json_uint(j, u);
        else
            fprintf(f, "%" PRIu64, u);
    } else if (a->cls == ELEM_INT || a->cls == ELEM_BOOL) {
        int64_t i = which_max ? a->imax : a->imin;
        if (j)
            json_int(j, i);
        else
            fprintf(f, "%" PRId64, i);
    } else {
        double d = which_max ? a->fmax : a->fmin;
        if (a->dt->itemsize <= 4) {
            if (j)
                json_float(j, (float)d);
            else
                fputs(fmt_float_shortest((float)d, buf, sizeof buf), f);
        } else if (j) {
            json_double(j, d);
        } else {
            fputs(fmt_double_shortest(d, buf, sizeof buf), f);
        }
    }
}

int cmd_stats(struct cli *c, int argc, char **argv)
{
    const char *slice = NULL;
    int64_t ddof = 0;
    struct cli_args p;
    cli_args_init(&p, c, opts, argc, argv);
    const char *arg;
    int id, rc, done;
    while ((id = cli_args_next(&p, &arg)) > 0) {
        if (id == OPT_SLICE) {
            slice = arg;
        } else {
            char *end;
            ddof = strtoll(arg, &end, 10);
            if (end == arg || *end || ddof < 0)
                return cli_usage(c, "--ddof: '%s' is not a non-negative integer", arg);
        }
    }
    if (id == CLI_ARGS_ERROR)
        return CLI_EXIT_USAGE;
    if ((rc = cli_args_finish(&p, 2, 2, &done)) != 0 || done)
        return rc;
    const char *path = p.pos[0], *name = p.pos[1];
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
    struct acc *acc = NULL;
    struct stream stm = {0};
    if ((rc = cli_db_open(c, path, CLI_OPEN_RDONLY, &db)) != 0)
        return rc;
    if ((rc = cli_session_begin(c, db, path, &s)) != 0 ||
        (rc = cli_array_open(c, s, path, name, &a)) != 0 ||
        (rc = cli_array_info(c, a, name, &info)) != 0)
        goto out;
    int cls = elem_class_of(&info.dtype);
    if (cls == ELEM_COMPLEX || cls == ELEM_VOID) {
        char dt[BA_DTYPE_STRLEN];
        rc = cli_fail(c, "'%s' has dtype %s; stats needs booleans, integers or floats", name,
                      ba_dtype_format(&info.dtype, dt));
        goto out;
    }
    struct sel sl;
    int err = sel_init(&sl, &info, slice, info.order, cli_chunk_bytes(db));
    if (err) {
        rc = cli_fail_ba(c, err, "--slice '%s' of '%s'", slice ? slice : "", name);
        goto out;
    }
    acc = calloc(1, sizeof *acc);
    if (!acc) {
        rc = cli_fail(c, "out of memory");
        goto out;
    }
    acc->dt = &info.dtype;
    acc->cls = cls;
    cli_stop_signals_install();
    struct progress pg;
    progress_begin(&pg, "stats", sl.nbytes, c->quiet);
    stream_start(&stm, &sl, a, BA_VIEW_READONLY, 0);
    for (;;) {
        ba_view v;
        int r = stream_next(&stm, &v);
        if (r == 1)
            break;
        if (r) {
            progress_end(&pg);
            rc = r == -EINTR ? cli_fail(c, "interrupted") : cli_fail(c, "%s", stm.msg);
            goto out;
        }
        sel_walk(&v, info.order, stats_run, acc);
        ba_view_release(&v);
        progress_update(&pg, acc->count * info.dtype.itemsize);
    }
    progress_end(&pg);

    double mean = NAN, sd = NAN;
    if (acc->pinf || acc->ninf) {
        mean = acc->pinf && acc->ninf ? NAN : acc->pinf ? INFINITY : -INFINITY;
    } else if (acc->n > 0) {
        mean = acc->shift + acc->mean;
        if ((int64_t)acc->n > ddof)
            sd = sqrt(acc->m2 / (double)(acc->n - (uint64_t)ddof));
    }
    int any = acc->n > 0 || acc->pinf || acc->ninf;
    char b1[64];
    if (c->json) {
        struct json j;
        json_init(&j, stdout);
        json_object_begin(&j);
        json_key(&j, "count");
        json_uint(&j, acc->count);
        json_key(&j, "nan_count");
        json_uint(&j, acc->nans);
        json_key(&j, "min");
        put_value(&j, acc, 0, NULL);
        json_key(&j, "max");
        put_value(&j, acc, 1, NULL);
        json_key(&j, "mean");
        if (any)
            json_double(&j, mean);
        else
            json_null(&j);
        json_key(&j, "std");
        if (any && !(acc->n <= (uint64_t)ddof && !acc->pinf && !acc->ninf))
            json_double(&j, sd);
        else
            json_null(&j);
        json_object_end(&j);
        json_end(&j);
    } else {
        printf("count: %" PRIu64 "\n", acc->count);
        printf("nan:   %" PRIu64 "\n", acc->nans);
        fputs("min:   ", stdout);
        put_value(NULL, acc, 0, stdout);
        fputs("\nmax:   ", stdout);
        put_value(NULL, acc, 1, stdout);
        printf("\nmean:  %s\n", any ? fmt_double_shortest(mean, b1, sizeof b1) : "-");
        printf("std:   %s\n", any && !(acc->n <= (uint64_t)ddof && !acc->pinf && !acc->ninf)
                                  ? fmt_double_shortest(sd, b1, sizeof b1)
                                  : "-");
    }
out:
    stream_stop(&stm);
    free(acc);
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    return rc;
}
