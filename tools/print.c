/* SPDX-License-Identifier: MIT */
/*
 * numpy-style printing (see print.h). The layout follows numpy's _formatArray()
 * (arrayprint.py, numpy 1.24): a hanging indent, wrapping at 75 columns, blank
 * lines between blocks of 3-d and deeper arrays, "..." for summarised axes. The
 * element formats follow FloatingFormat, IntegerFormat, BoolFormat and
 * ComplexFloatingFormat with the default options (precision 8, floatmode
 * 'maxprec', no suppress_small): every element of an array gets the same width,
 * computed from the elements that are shown.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "elem.h"
#include "print.h"

#define LINEWIDTH 75
#define EDGEITEMS 3
#define THRESHOLD 1000
#define PRECISION 8
#define MAX_SHOWN (16u << 20) /* elements; beyond this, use export */

/* ---- a growable string ----------------------------------------------------------- */

struct sb {
    char *p;
    size_t n, cap;
    int oom;
};

static void sb_add(struct sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_puts(struct sb *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_spaces(struct sb *b, int n)
{
    for (int i = 0; i < n; i++)
        sb_add(b, " ", 1);
}

/* ---- shortest digits ----------------------------------------------------------- */

/* Whether text reads back as v in a float of itemsize bytes. */
static int roundtrips(double v, const char *text, uint32_t size)
{
    double d = strtod(text, NULL);
    if (size == 2)
        return elem_double_to_half(d) == elem_double_to_half(v);
    if (size == 4)
        return (float)d == (float)v;
    return d == v;
}

/* numpy's dragon4_positional(unique=True, precision=8, trim='.'): the fewest
 * fractional digits (at most 8) that identify v; "3." for integral values. */
static void fmt_positional(double v, uint32_t size, int sign_plus, char *out, size_t len)
{
    char buf[400];
    int p;
    for (p = 0; p <= PRECISION; p++) {
        snprintf(buf, sizeof buf, "%.*f", p, v);
        if (roundtrips(v, buf, size))
            break;
    }
    if (p > PRECISION) {
        snprintf(buf, sizeof buf, "%.*f", PRECISION, v);
        size_t n = strlen(buf);
        while (n > 0 && buf[n - 1] == '0')
            buf[--n] = '\0';
    }
    if (!strchr(buf, '.'))
        strcat(buf, ".");
    snprintf(out, len, "%s%s", sign_plus && !signbit(v) ? "+" : "", buf);
}

/* The fewest mantissa digits after the point (at most 8) for scientific notation. */
static int sci_digits(double v, uint32_t size)
{
    char buf[64];
    for (int p = 0; p <= PRECISION; p++) {
        snprintf(buf, sizeof buf, "%.*e", p, v);
        if (roundtrips(v, buf, size))
            return p;
    }
    snprintf(buf, sizeof buf, "%.*e", PRECISION, v);
    char *e = strchr(buf, 'e');
    int p = PRECISION;
    while (p > 0 && e[-1] == '0') {
        e--;
        p--;
    }
    return p;
}

/* ---- element formats ------------------------------------------------------------- */

struct ffmt {
    uint32_t size; /* itemsize of one float */
    int sign_plus; /* '+' for the imaginary part */
    int any_finite;
    double max_abs, min_abs; /* of the non-zero finite values */
    int any_nonzero;
    int any_nonfinite, any_neginf;
    int exp_format;
    int pad_left, pad_right, precision, exp_size;
};

static void ffmt_scan(struct ffmt *f, double v)
{
    if (!isfinite(v)) {
        f->any_nonfinite = 1;
        if (isinf(v) && v < 0)
            f->any_neginf = 1;
        return;
    }
    f->any_finite = 1;
    double a = fabs(v);
    if (a != 0) {
        if (!f->any_nonzero || a > f->max_abs)
            f->max_abs = a;
        if (!f->any_nonzero || a < f->min_abs)
            f->min_abs = a;
        f->any_nonzero = 1;
    }
}

static void ffmt_decide(struct ffmt *f)
{
    f->exp_format = f->any_nonzero &&
                    (f->max_abs >= 1e8 || f->min_abs < 0.0001 || f->max_abs / f->min_abs > 1000.0);
}

/* Second pass: digit counts of a finite value. */
static void ffmt_measure(struct ffmt *f, double v)
{
    if (!isfinite(v))
        return;
    char buf[400];
    if (f->exp_format) {
        int p = sci_digits(v, f->size);
        if (p > f->precision)
            f->precision = p;
        snprintf(buf, sizeof buf, "%.*e", p, v);
        char *e = strchr(buf, 'e');
        int ed = (int)strlen(e + 2);
        if (ed > f->exp_size)
            f->exp_size = ed;
        int il = (int)(strchr(buf, '.') ? strchr(buf, '.') - buf : e - buf);
        il += f->sign_plus && !signbit(v);
        if (il > f->pad_left)
            f->pad_left = il;
    } else {
        fmt_positional(v, f->size, f->sign_plus, buf, sizeof buf);
        char *dot = strchr(buf, '.');
        int il = (int)(dot - buf), fl = (int)strlen(dot + 1);
        if (il > f->pad_left)
            f->pad_left = il;
        if (fl > f->pad_right)
            f->pad_right = fl;
    }
}

static void ffmt_finish(struct ffmt *f)
{
    if (f->exp_format)
        f->pad_right = f->exp_size + 2 + f->precision;
    if (f->any_nonfinite) {
        int neginf = f->sign_plus || f->any_neginf;
        int off = f->pad_right + 1;
        if (3 - off > f->pad_left)
            f->pad_left = 3 - off;
        if (3 + neginf - off > f->pad_left)
            f->pad_left = 3 + neginf - off;
    }
}

static void ffmt_word(const struct ffmt *f, double v, struct sb *out)
{
    char buf[400];
    if (!isfinite(v)) {
        const char *s = isnan(v) ? (f->sign_plus ? "+nan" : "nan")
                        : v < 0  ? "-inf"
                                 : (f->sign_plus ? "+inf" : "inf");
        sb_spaces(out, f->pad_left + f->pad_right + 1 - (int)strlen(s));
        sb_puts(out, s);
        return;
    }
    if (f->exp_format) {
        snprintf(buf, sizeof buf, "%.*e", f->precision, v);
        char *e = strchr(buf, 'e');
        char *dot = strchr(buf, '.');
        int il = (int)((dot ? dot : e) - buf);
        int plus = f->sign_plus && !signbit(v);
        sb_spaces(out, f->pad_left - il - plus);
        if (plus)
            sb_puts(out, "+");
        sb_add(out, buf, (size_t)il);
        sb_puts(out, ".");
        if (dot)
            sb_add(out, dot + 1, (size_t)(e - dot - 1));
        sb_add(out, e, 2); /* "e+" or "e-" */
        int ed = (int)strlen(e + 2);
        for (int i = ed; i < f->exp_size; i++)
            sb_puts(out, "0");
        sb_puts(out, e + 2);
        return;
    }
    fmt_positional(v, f->size, f->sign_plus, buf, sizeof buf);
    char *dot = strchr(buf, '.');
    int il = (int)(dot - buf), fl = (int)strlen(dot + 1);
    sb_spaces(out, f->pad_left - il);
    sb_puts(out, buf);
    sb_spaces(out, f->pad_right - fl);
}

struct fmt {
    const ba_dtype *dt;
    unsigned char touch; /* records: bytes read by the first pass */
    int cls;
    int scalar;    /* 0-d: no padding */
    int int_width; /* ints and bools */
    int any_false;
    struct ffmt re, im;
};

static void scan_elem(void *ctx, const unsigned char *p)
{
    struct fmt *f = ctx;
    struct elem_val v;
    elem_get(f->dt, p, &v);
    char buf[32];
    int w;
    switch (v.cls) {
    case ELEM_BOOL:
        if (!v.i)
            f->any_false = 1;
        break;
    case ELEM_INT:
        w = snprintf(buf, sizeof buf, "%" PRId64, v.i);
        if (w > f->int_width)
            f->int_width = w;
        break;
    case ELEM_UINT:
        w = snprintf(buf, sizeof buf, "%" PRIu64, v.u);
        if (w > f->int_width)
            f->int_width = w;
        break;
    case ELEM_FLOAT:
        ffmt_scan(&f->re, v.re);
        break;
    case ELEM_COMPLEX:
        ffmt_scan(&f->re, v.re);
        ffmt_scan(&f->im, v.im);
        break;
    default:
        /* Records are read only when rendered: touch them now, so that a block that
         * cannot be loaded faults here, before anything is allocated (see get). */
        f->touch ^= p[0] ^ p[f->dt->itemsize - 1];
        break;
    }
}

static void measure_elem(void *ctx, const unsigned char *p)
{
    struct fmt *f = ctx;
    struct elem_val v;
    elem_get(f->dt, p, &v);
    if (v.cls == ELEM_FLOAT || v.cls == ELEM_COMPLEX)
        ffmt_measure(&f->re, v.re);
    if (v.cls == ELEM_COMPLEX)
        ffmt_measure(&f->im, v.im);
}

static void word(const struct fmt *f, const unsigned char *p, struct sb *out)
{
    struct elem_val v;
    char buf[64];
    elem_get(f->dt, p, &v);
    switch (v.cls) {
    case ELEM_BOOL:
        sb_puts(out, v.i ? " True" : "False");
        return;
    case ELEM_INT:
        snprintf(buf, sizeof buf, "%*" PRId64, f->int_width, v.i);
        sb_puts(out, buf);
        return;
    case ELEM_UINT:
        snprintf(buf, sizeof buf, "%*" PRIu64, f->int_width, v.u);
        sb_puts(out, buf);
        return;
    case ELEM_FLOAT:
        ffmt_word(&f->re, v.re, out);
        return;
    case ELEM_COMPLEX: {
        ffmt_word(&f->re, v.re, out);
        struct sb im = {0};
        ffmt_word(&f->im, v.im, &im);
        if (im.oom || !im.p) {
            out->oom = 1;
            free(im.p);
            return;
        }
        /* 'j' goes before the imaginary part's trailing spaces. */
        size_t n = im.n;
        while (n > 0 && im.p[n - 1] == ' ')
            n--;
        sb_add(out, im.p, n);
        sb_puts(out, "j");
        sb_add(out, im.p + n, im.n - n);
        free(im.p);
        return;
    }
    default:
        sb_puts(out, "b'");
        for (uint32_t k = 0; k < f->dt->itemsize; k++) {
            snprintf(buf, sizeof buf, "\\x%02X", p[k]);
            sb_puts(out, buf);
        }
        sb_puts(out, "'");
        return;
    }
}

/* ---- walking the shown elements ---------------------------------------------- */

typedef void (*visit_fn)(void *ctx, const unsigned char *p);

static void visit(const ba_view *v, int summarize, int axis, const unsigned char *p, visit_fn fn,
                  void *ctx)
{
    if (axis == v->ndim) {
        fn(ctx, p);
        return;
    }
    int64_t n = v->shape[axis];
    int cut = summarize && n > 2 * EDGEITEMS;
    for (int64_t i = 0; i < n; i++) {
        if (cut && i == EDGEITEMS)
            i = n - EDGEITEMS;
        visit(v, summarize, axis + 1, p + i * v->strides[axis], fn, ctx);
    }
}

/* numpy's _extendLine(): wrap before word when the line would grow past width,
 * unless the line holds only the hanging indent. */
static void extend_line(struct sb *s, struct sb *line, const char *w, size_t wlen, int width,
                        const char *hang, size_t hang_len)
{
    int wrap = (int)(line->n + wlen) > width && line->n > hang_len;
    if (wrap) {
        size_t n = line->n;
        while (n > 0 && line->p[n - 1] == ' ')
            n--;
        sb_add(s, line->p, n);
        sb_puts(s, "\n");
        line->n = 0;
        sb_add(line, hang, hang_len);
    }
    sb_add(line, w, wlen);
}

struct render {
    const ba_view *v;
    const struct fmt *f;
    int summarize;
};

/* numpy's recurser(): the text of the sub-array at p from axis on, into out. */
static void render(const struct render *r, int axis, const unsigned char *p, const char *hang,
                   int width, struct sb *out)
{
    const ba_view *v = r->v;
    size_t hang_len = strlen(hang);
    int left = v->ndim - axis;
    int64_t n = v->shape[axis];
    int cut = r->summarize && n > 2 * EDGEITEMS;
    struct sb s = {0};
    sb_puts(&s, "");
    char *next_hang = malloc(hang_len + 2);
    if (!next_hang) {
        out->oom = 1;
        return;
    }
    memcpy(next_hang, hang, hang_len);
    next_hang[hang_len] = ' ';
    next_hang[hang_len + 1] = '\0';

    if (left == 1) {
        struct sb line = {0}, w = {0};
        sb_add(&line, hang, hang_len);
        int elem_width = width - 1;
        for (int64_t i = 0; i < n; i++) {
            if (cut && i == EDGEITEMS) {
                extend_line(&s, &line, "...", 3, elem_width, hang, hang_len);
                sb_puts(&line, " ");
                i = n - EDGEITEMS;
            }
            w.n = 0;
            word(r->f, p + i * v->strides[axis], &w);
            if (w.oom)
                s.oom = 1;
            extend_line(&s, &line, w.p ? w.p : "", w.n, elem_width, hang, hang_len);
            if (i < n - 1)
                sb_puts(&line, " ");
        }
        sb_add(&s, line.p ? line.p : "", line.n);
        if (line.oom)
            s.oom = 1;
        free(line.p);
        free(w.p);
    } else {
        for (int64_t i = 0; i < n; i++) {
            if (cut && i == EDGEITEMS) {
                sb_puts(&s, hang);
                sb_puts(&s, "...");
                for (int k = 0; k < left - 1; k++)
                    sb_puts(&s, "\n");
                i = n - EDGEITEMS;
            }
            struct sb nested = {0};
            render(r, axis + 1, p + i * v->strides[axis], next_hang, width - 1, &nested);
            sb_puts(&s, hang);
            sb_add(&s, nested.p ? nested.p : "", nested.n);
            if (nested.oom)
                s.oom = 1;
            free(nested.p);
            if (i < n - 1)
                for (int k = 0; k < left - 1; k++)
                    sb_puts(&s, "\n");
        }
    }
    sb_puts(out, "[");
    if (s.n >= hang_len)
        sb_add(out, s.p + hang_len, s.n - hang_len);
    sb_puts(out, "]");
    if (s.oom)
        out->oom = 1;
    free(s.p);
    free(next_hang);
}

/* ---- scalars ------------------------------------------------------------------- */

/* Python's repr() of a float (float64), or numpy's str() of a float32/float16:
 * the shortest digits that identify it, positional when 1e-4 <= |v| < 1e16.
 * add_dot0: "3.0" rather than "3" (complex parts omit it). */
static void fmt_repr(double v, uint32_t size, int add_dot0, char *out, size_t len)
{
    if (isnan(v)) {
        snprintf(out, len, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(out, len, v < 0 ? "-inf" : "inf");
        return;
    }
    char buf[64];
    int p;
    for (p = 0; p < 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p, v);
        if (roundtrips(v, buf, size))
            break;
    }
    /* buf = [-]d[.ddd]e[+-]XX */
    char *e = strchr(buf, 'e');
    int exp10 = atoi(e + 1);
    char digits[32];
    size_t nd = 0;
    const char *q = buf;
    int neg = *q == '-';
    if (neg)
        q++;
    for (; q < e; q++)
        if (*q >= '0' && *q <= '9')
            digits[nd++] = *q;
    digits[nd] = '\0';
    struct sb s = {0};
    if (neg)
        sb_puts(&s, "-");
    if (v != 0 && (exp10 < -4 || exp10 >= 16)) {
        sb_add(&s, digits, 1);
        if (nd > 1) {
            sb_puts(&s, ".");
            sb_add(&s, digits + 1, nd - 1);
        }
        char eb[16];
        snprintf(eb, sizeof eb, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
        sb_puts(&s, eb);
    } else if (exp10 >= 0) {
        size_t ip = (size_t)exp10 + 1;
        for (size_t i = 0; i < ip; i++)
            sb_add(&s, i < nd ? &digits[i] : "0", 1);
        if (nd > ip) {
            sb_puts(&s, ".");
            sb_add(&s, digits + ip, nd - ip);
        } else if (add_dot0) {
            sb_puts(&s, ".0");
        }
    } else {
        sb_puts(&s, "0.");
        for (int i = 0; i < -exp10 - 1; i++)
            sb_puts(&s, "0");
        sb_add(&s, digits, nd);
    }
    snprintf(out, len, "%s", s.p ? s.p : "?");
    free(s.p);
}

char *print_scalar(const ba_dtype *dt, const void *ptr, char *buf, size_t len)
{
    const unsigned char *p = ptr;
    struct elem_val v;
    elem_get(dt, p, &v);
    switch (v.cls) {
    case ELEM_BOOL:
        snprintf(buf, len, "%s", v.i ? "True" : "False");
        break;
    case ELEM_INT:
        snprintf(buf, len, "%" PRId64, v.i);
        break;
    case ELEM_UINT:
        snprintf(buf, len, "%" PRIu64, v.u);
        break;
    case ELEM_FLOAT:
        fmt_repr(v.re, dt->itemsize, 1, buf, len);
        break;
    case ELEM_COMPLEX: {
        char re[64], im[64];
        uint32_t half = dt->itemsize / 2;
        fmt_repr(v.im, half, 0, im, sizeof im);
        if (v.re == 0 && !signbit(v.re)) {
            snprintf(buf, len, "%sj", im);
            break;
        }
        fmt_repr(v.re, half, 0, re, sizeof re);
        snprintf(buf, len, "(%s%s%sj)", re, im[0] == '-' ? "" : "+", im);
        break;
    }
    default: {
        size_t off = (size_t)snprintf(buf, len, "b'");
        for (uint32_t k = 0; k < dt->itemsize && off + 5 < len; k++)
            off += (size_t)snprintf(buf + off, len - off, "\\x%02X", p[k]);
        if (off + 1 < len)
            snprintf(buf + off, len - off, "'");
        break;
    }
    }
    return buf;
}

/* ---- entry points ----------------------------------------------------------------- */

int print_view(FILE *out, const ba_view *v, int full, char *err, size_t errlen)
{
    uint64_t size = ba_view_size(v);
    if (v->ndim == 0) {
        char buf[1024];
        fprintf(out, "%s\n", print_scalar(&v->dtype, v->data, buf, sizeof buf));
        return 0;
    }
    if (size == 0) {
        fputs("[]\n", out);
        return 0;
    }
    int summarize = !full && size > THRESHOLD;
    uint64_t shown = 1;
    for (int d = 0; d < v->ndim; d++) {
        uint64_t n = (uint64_t)v->shape[d];
        shown *= summarize && n > 2 * EDGEITEMS ? 2 * EDGEITEMS : n;
        if (shown > MAX_SHOWN) {
            snprintf(err, errlen, "too many elements to print (use 'bigarray export')");
            return -1;
        }
    }
    struct fmt f;
    memset(&f, 0, sizeof f);
    f.dt = &v->dtype;
    f.cls = elem_class_of(&v->dtype);
    uint32_t fsize = f.cls == ELEM_COMPLEX ? v->dtype.itemsize / 2 : v->dtype.itemsize;
    f.re.size = f.im.size = fsize;
    f.im.sign_plus = 1;
    visit(v, summarize, 0, v->data, scan_elem, &f);
    if (f.cls == ELEM_FLOAT || f.cls == ELEM_COMPLEX) {
        ffmt_decide(&f.re);
        ffmt_decide(&f.im);
        visit(v, summarize, 0, v->data, measure_elem, &f);
        ffmt_finish(&f.re);
        ffmt_finish(&f.im);
    }
    struct render r = {v, &f, summarize};
    struct sb s = {0};
    render(&r, 0, v->data, " ", LINEWIDTH, &s);
    if (s.oom) {
        free(s.p);
        snprintf(err, errlen, "out of memory formatting the values");
        return -1;
    }
    fputs(s.p, out);
    fputc('\n', out);
    free(s.p);
    return 0;
}

static void json_elem(struct json *j, const ba_dtype *dt, const unsigned char *p)
{
    struct elem_val v;
    elem_get(dt, p, &v);
    switch (v.cls) {
    case ELEM_BOOL:
        json_bool(j, (int)v.i);
        return;
    case ELEM_INT:
        json_int(j, v.i);
        return;
    case ELEM_UINT:
        json_uint(j, v.u);
        return;
    case ELEM_FLOAT:
        if (dt->itemsize == 4)
            json_float(j, (float)v.re);
        else
            json_double(j, v.re);
        return;
    case ELEM_COMPLEX:
        json_array_begin(j);
        if (dt->itemsize == 8) {
            json_float(j, (float)v.re);
            json_float(j, (float)v.im);
        } else {
            json_double(j, v.re);
            json_double(j, v.im);
        }
        json_array_end(j);
        return;
    default: {
        char hex[3];
        struct sb s = {0};
        for (uint32_t k = 0; k < dt->itemsize; k++) {
            snprintf(hex, sizeof hex, "%02x", p[k]);
            sb_add(&s, hex, 2);
        }
        json_string_n(j, s.p ? s.p : "", s.n);
        free(s.p);
        return;
    }
    }
}

static void json_rec(struct json *j, const ba_view *v, int axis, const unsigned char *p)
{
    if (axis == v->ndim) {
        json_elem(j, &v->dtype, p);
        return;
    }
    json_array_begin(j);
    for (int64_t i = 0; i < v->shape[axis]; i++)
        json_rec(j, v, axis + 1, p + i * v->strides[axis]);
    json_array_end(j);
}

void print_view_json(struct json *j, const ba_view *v)
{
    json_rec(j, v, 0, v->data);
}
