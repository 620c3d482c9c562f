/* SPDX-License-Identifier: MIT */
/*
 * The .npy header parser and writer (see npy.h). The parser is a small recursive-
 * descent reader of the one Python literal numpy writes, with every read bounded by
 * the header's length; it never trusts a count before checking it against what is
 * there. Error messages name the byte offset from the start of the file.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "npy.h"

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define NPY_NATIVE '>'
#else
#define NPY_NATIVE '<'
#endif

/* The dict reader's state: the header text is p[0..end), at file offset base. */
struct rd {
    const unsigned char *p;
    size_t pos, end;
    size_t base;
    char *err;
    size_t errlen;
    int major;
};

static int fail(struct rd *r, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct rd *r, size_t at, const char *fmt, ...)
{
    if (r->errlen) {
        int n = snprintf(r->err, r->errlen, "byte %zu: ", r->base + at);
        if (n > 0 && (size_t)n < r->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return NPY_EBAD;
}

static void skip_ws(struct rd *r)
{
    while (r->pos < r->end) {
        unsigned char ch = r->p[r->pos];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
            break;
        r->pos++;
    }
}

/* What is at the current position, for messages. */
static const char *what_here(struct rd *r, char *buf, size_t len)
{
    if (r->pos >= r->end)
        return "the end of the header";
    unsigned char ch = r->p[r->pos];
    if (ch >= 0x20 && ch < 0x7f)
        snprintf(buf, len, "'%c'", ch);
    else
        snprintf(buf, len, "byte 0x%02x", ch);
    return buf;
}

static int expect(struct rd *r, char ch, const char *context)
{
    skip_ws(r);
    if (r->pos < r->end && r->p[r->pos] == (unsigned char)ch) {
        r->pos++;
        return 0;
    }
    char buf[16];
    return fail(r, r->pos, "expected '%c' %s, found %s", ch, context,
                what_here(r, buf, sizeof buf));
}

/* A Python string literal without escapes: '...' or "...". */
static int read_string(struct rd *r, char *out, size_t cap, const char *context)
{
    skip_ws(r);
    size_t start = r->pos;
    if (r->pos >= r->end || (r->p[r->pos] != '\'' && r->p[r->pos] != '"')) {
        char buf[16];
        return fail(r, r->pos, "expected a string %s, found %s", context,
                    what_here(r, buf, sizeof buf));
    }
    unsigned char q = r->p[r->pos++];
    size_t n = 0;
    for (;;) {
        if (r->pos >= r->end)
            return fail(r, start, "unterminated string %s", context);
        unsigned char ch = r->p[r->pos];
        if (ch == q)
            break;
        if (ch == '\\')
            return fail(r, r->pos, "escape sequences in strings are not supported");
        if (ch < 0x20 || ch >= 0x7f)
            return fail(r, r->pos, "byte 0x%02x in a string %s", ch, context);
        if (n + 1 >= cap)
            return fail(r, start, "string %s is too long", context);
        out[n++] = (char)ch;
        r->pos++;
    }
    r->pos++;
    out[n] = '\0';
    return 0;
}

static int match_word(struct rd *r, const char *w)
{
    size_t n = strlen(w);
    if (r->end - r->pos < n || memcmp(r->p + r->pos, w, n) != 0)
        return 0;
    /* Not a prefix of a longer identifier ("Truex"). */
    if (r->pos + n < r->end) {
        unsigned char ch = r->p[r->pos + n];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '_')
            return 0;
    }
    r->pos += n;
    return 1;
}

static int parse_descr(struct rd *r, size_t at, const char *s, ba_dtype *dt)
{
    const char *p = s;
    char order = 0;
    if (*p == '<' || *p == '>' || *p == '|' || *p == '=')
        order = *p++;
    char kind = *p++;
    if (kind == '\0' || !strchr("biufcV", kind))
        return fail(r, at,
                    "unsupported dtype '%s' (bigarray stores b1, i1-i8, u1-u8, f2, f4, "
                    "f8, c8, c16 and V<n>)",
                    s);
    if (*p < '1' || *p > '9')
        goto unsupported;
    uint64_t size = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        size = size * 10 + (uint64_t)(*p - '0');
        if (size > UINT32_MAX)
            return fail(r, at, "dtype '%s': item size too large", s);
    }
    if (*p != '\0')
        goto unsupported;
    int ok;
    switch (kind) {
    case 'b':
        ok = size == 1;
        break;
    case 'i':
    case 'u':
        ok = size == 1 || size == 2 || size == 4 || size == 8;
        break;
    case 'f':
        ok = size == 2 || size == 4 || size == 8;
        break;
    case 'c':
        ok = size == 8 || size == 16;
        break;
    default: /* 'V' */
        ok = 1;
        break;
    }
    if (!ok)
        goto unsupported;
    if (size == 1 || kind == 'V')
        order = '|';
    else if (order == 0 || order == '=' || order == '|')
        order = NPY_NATIVE;
    memset(dt, 0, sizeof *dt);
    dt->kind = kind;
    dt->byteorder = order;
    dt->itemsize = (uint32_t)size;
    return 0;
unsupported:
    return fail(r, at,
                "unsupported dtype '%s' (bigarray stores b1, i1-i8, u1-u8, f2, f4, f8, c8, "
                "c16 and V<n>)",
                s);
}

/* A non-negative Python int literal; version 1.0 headers written by Python 2 may
 * carry an 'L' suffix. */
static int read_dim(struct rd *r, int64_t *out)
{
    size_t start = r->pos;
    if (r->pos < r->end && r->p[r->pos] == '-')
        return fail(r, start, "negative dimension in shape");
    uint64_t v = 0;
    size_t n = 0;
    while (r->pos < r->end && r->p[r->pos] >= '0' && r->p[r->pos] <= '9') {
        if (v > (uint64_t)INT64_MAX / 10)
            return fail(r, start, "dimension too large");
        v = v * 10 + (uint64_t)(r->p[r->pos] - '0');
        if (v > (uint64_t)INT64_MAX)
            return fail(r, start, "dimension too large");
        r->pos++;
        n++;
    }
    if (n == 0) {
        char buf[16];
        return fail(r, start, "expected a dimension in shape, found %s",
                    what_here(r, buf, sizeof buf));
    }
    if (n > 1 && r->p[start] == '0')
        return fail(r, start, "dimension with a leading zero");
    if (r->major == 1 && r->pos < r->end && r->p[r->pos] == 'L')
        r->pos++;
    *out = (int64_t)v;
    return 0;
}

static int parse_shape(struct rd *r, struct npy_header *h)
{
    skip_ws(r);
    size_t start = r->pos;
    if (r->pos >= r->end || r->p[r->pos] != '(') {
        char buf[16];
        return fail(r, r->pos, "shape must be a tuple, found %s", what_here(r, buf, sizeof buf));
    }
    r->pos++;
    int n = 0, comma = 0;
    for (;;) {
        skip_ws(r);
        if (r->pos < r->end && r->p[r->pos] == ')') {
            r->pos++;
            break;
        }
        if (n > 0 && !comma) {
            char buf[16];
            return fail(r, r->pos, "expected ',' or ')' in shape, found %s",
                        what_here(r, buf, sizeof buf));
        }
        if (n == BA_MAX_DIMS)
            return fail(r, start, "shape has more than %d dimensions", BA_MAX_DIMS);
        int rc = read_dim(r, &h->shape[n]);
        if (rc)
            return rc;
        n++;
        skip_ws(r);
        comma = 0;
        if (r->pos < r->end && r->p[r->pos] == ',') {
            r->pos++;
            comma = 1;
        }
    }
    if (n == 1 && !comma)
        return fail(r, start, "shape '(%" PRId64 ")' is not a tuple (a 1-tuple needs a comma)",
                    h->shape[0]);
    h->ndim = n;
    return 0;
}

static int parse_dict(struct rd *r, struct npy_header *h)
{
    enum { K_DESCR = 1, K_FORTRAN = 2, K_SHAPE = 4 };
    unsigned seen = 0;
    int rc = expect(r, '{', "at the start of the header");
    if (rc)
        return rc;
    for (;;) {
        skip_ws(r);
        if (r->pos < r->end && r->p[r->pos] == '}') {
            r->pos++;
            break;
        }
        char key[32] = "";
        size_t key_at = r->pos;
        if ((rc = read_string(r, key, sizeof key, "as a key")) != 0)
            return rc;
        unsigned k = strcmp(key, "descr") == 0           ? K_DESCR
                     : strcmp(key, "fortran_order") == 0 ? K_FORTRAN
                     : strcmp(key, "shape") == 0         ? K_SHAPE
                                                         : 0;
        if (!k)
            return fail(r, key_at, "unexpected key '%s'", key);
        if (seen & k)
            return fail(r, key_at, "key '%s' appears twice", key);
        seen |= k;
        if ((rc = expect(r, ':', "after a key")) != 0)
            return rc;
        skip_ws(r);
        size_t val_at = r->pos;
        if (k == K_DESCR) {
            if (r->pos < r->end && r->p[r->pos] == '[')
                return fail(r, val_at, "structured dtypes are not supported");
            char descr[64] = "";
            if ((rc = read_string(r, descr, sizeof descr, "as descr")) != 0)
                return rc;
            if ((rc = parse_descr(r, val_at, descr, &h->dtype)) != 0)
                return rc;
        } else if (k == K_FORTRAN) {
            if (match_word(r, "True"))
                h->fortran_order = 1;
            else if (match_word(r, "False"))
                h->fortran_order = 0;
            else {
                size_t e = r->pos;
                while (e < r->end && e - r->pos < 16 && r->p[e] != ',' && r->p[e] != '}' &&
                       r->p[e] >= 0x20 && r->p[e] < 0x7f)
                    e++;
                return fail(r, val_at, "fortran_order must be True or False, not '%.*s'",
                            (int)(e - r->pos), (const char *)r->p + r->pos);
            }
        } else if ((rc = parse_shape(r, h)) != 0) {
            return rc;
        }
        skip_ws(r);
        if (r->pos < r->end && r->p[r->pos] == ',') {
            r->pos++;
            continue;
        }
        if (r->pos < r->end && r->p[r->pos] == '}') {
            r->pos++;
            break;
        }
        char buf[16];
        return fail(r, r->pos, "expected ',' or '}' after a value, found %s",
                    what_here(r, buf, sizeof buf));
    }
    if (!(seen & K_DESCR))
        return fail(r, r->pos, "the header has no 'descr'");
    if (!(seen & K_FORTRAN))
        return fail(r, r->pos, "the header has no 'fortran_order'");
    if (!(seen & K_SHAPE))
        return fail(r, r->pos, "the header has no 'shape'");
    skip_ws(r);
    if (r->pos != r->end) {
        char buf[16];
        return fail(r, r->pos, "unexpected %s after the header dict",
                    what_here(r, buf, sizeof buf));
    }
    return 0;
}

int npy_header_parse(const void *buf, size_t len, struct npy_header *h, char *err, size_t errlen)
{
    const unsigned char *b = buf;
    struct rd r = {.p = b, .err = err, .errlen = errlen};
    memset(h, 0, sizeof *h);
    if (errlen)
        err[0] = '\0';
    size_t m = len < sizeof npy_magic ? len : sizeof npy_magic;
    if (m > 0 && memcmp(b, npy_magic, m) != 0)
        return fail(&r, 0, "not a .npy file (no \\x93NUMPY magic)");
    h->header_len = NPY_HEADER_PREFIX;
    if (len < 8) {
        if (errlen)
            snprintf(err, errlen, "byte %zu: truncated: the file ends inside the magic", len);
        return NPY_ETRUNC;
    }
    h->major = b[6];
    h->minor = b[7];
    r.major = h->major;
    if (h->major < 1 || h->major > 3 || h->minor != 0)
        return fail(&r, 6, "unsupported .npy version %d.%d", h->major, h->minor);
    size_t prefix = h->major == 1 ? 10 : 12;
    if (len < prefix) {
        if (errlen)
            snprintf(err, errlen, "byte %zu: truncated: the file ends inside the header length",
                     len);
        return NPY_ETRUNC;
    }
    uint64_t hlen = h->major == 1 ? (uint64_t)b[8] | (uint64_t)b[9] << 8
                                  : (uint64_t)b[8] | (uint64_t)b[9] << 8 | (uint64_t)b[10] << 16 |
                                        (uint64_t)b[11] << 24;
    if (hlen > NPY_HEADER_MAX)
        return fail(&r, 8, "header length %" PRIu64 " is larger than %u", hlen, NPY_HEADER_MAX);
    h->header_len = prefix + hlen;
    if (len < h->header_len) {
        if (errlen)
            snprintf(err, errlen,
                     "byte %zu: truncated: the file ends inside the header (%" PRIu64
                     " bytes long)",
                     len, h->header_len);
        return NPY_ETRUNC;
    }
    r.p = b + prefix;
    r.base = prefix;
    r.end = (size_t)hlen;
    int rc = parse_dict(&r, h);
    if (rc)
        return rc;
    uint64_t bytes = h->dtype.itemsize;
    for (int i = 0; i < h->ndim; i++) {
        if (h->shape[i] == 0) {
            bytes = 0;
            continue;
        }
        if (bytes && (__builtin_mul_overflow(bytes, (uint64_t)h->shape[i], &bytes) ||
                      bytes > (uint64_t)INT64_MAX)) {
            r.p = b;
            r.base = 0;
            return fail(&r, prefix, "shape describes more than 2^63 bytes");
        }
    }
    h->data_len = bytes;
    return NPY_OK;
}

char *npy_descr_format(const ba_dtype *dt, char *buf)
{
    if (!dt->itemsize || !strchr("biufcV", dt->kind) || dt->kind == 0)
        return NULL;
    char order = dt->byteorder;
    if (dt->itemsize == 1 || dt->kind == 'V')
        order = '|';
    else if (order != '<' && order != '>')
        order = NPY_NATIVE;
    snprintf(buf, 16, "%c%c%u", order, dt->kind, (unsigned)dt->itemsize);
    return buf;
}

size_t npy_header_write(void *buf, size_t cap, const ba_dtype *dt, int fortran_order, int ndim,
                        const int64_t *shape)
{
    char descr[16];
    if (!npy_descr_format(dt, descr) || ndim < 0 || ndim > BA_MAX_DIMS)
        return 0;
    /* The dict as numpy's _write_array_header() builds it: sorted keys, repr() values,
     * then spare spaces so the growth axis can be rewritten in place. */
    char dict[NPY_WRITE_MAX];
    size_t n = 0;
    n += (size_t)snprintf(dict + n, sizeof dict - n,
                          "{'descr': '%s', 'fortran_order': %s, 'shape': (", descr,
                          fortran_order ? "True" : "False");
    for (int i = 0; i < ndim; i++)
        n += (size_t)snprintf(dict + n, sizeof dict - n, "%s%" PRId64, i ? ", " : "", shape[i]);
    n += (size_t)snprintf(dict + n, sizeof dict - n, "%s), }", ndim == 1 ? "," : "");
    if (ndim > 0) {
        char digits[24];
        int d = snprintf(digits, sizeof digits, "%" PRId64, shape[fortran_order ? ndim - 1 : 0]);
        for (int i = d; i < 21; i++)
            dict[n++] = ' ';
    }
    /* _wrap_header(): total = magic(6) + version(2) + length field + dict + pad + '\n',
     * a multiple of 64; a dict ending exactly on the boundary still gets 64 pad bytes. */
    size_t hlen = n + 1;
    size_t field = 2;
    size_t pad = 64 - ((8 + field + hlen) % 64);
    int major = 1;
    if (hlen + pad > 65535) {
        field = 4;
        pad = 64 - ((8 + field + hlen) % 64);
        major = 2;
    }
    size_t total = 8 + field + hlen + pad;
    if (total > cap)
        return 0;
    unsigned char *o = buf;
    memcpy(o, npy_magic, 6);
    o[6] = (unsigned char)major;
    o[7] = 0;
    uint64_t l = hlen + pad;
    for (size_t i = 0; i < field; i++)
        o[8 + i] = (unsigned char)(l >> (8 * i));
    memcpy(o + 8 + field, dict, n);
    memset(o + 8 + field + n, ' ', pad);
    o[total - 1] = '\n';
    return total;
}
