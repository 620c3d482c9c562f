/* SPDX-License-Identifier: MIT */
/* Element values and conversions (see elem.h). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "elem.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define ELEM_NATIVE '>'
#else
#define ELEM_NATIVE '<'
#endif

int elem_class_of(const ba_dtype *dt)
{
    switch (dt->kind) {
    case 'b':
        return ELEM_BOOL;
    case 'i':
        return ELEM_INT;
    case 'u':
        return ELEM_UINT;
    case 'f':
        return ELEM_FLOAT;
    case 'c':
        return ELEM_COMPLEX;
    default:
        return ELEM_VOID;
    }
}

int elem_swapped(const ba_dtype *dt)
{
    return dt->itemsize > 1 && dt->kind != 'V' && (dt->byteorder == '<' || dt->byteorder == '>') &&
           dt->byteorder != ELEM_NATIVE;
}

/* Copy n bytes reversing their order when swap is set. */
static void load_bytes(void *dst, const void *src, size_t n, int swap)
{
    if (!swap) {
        memcpy(dst, src, n);
        return;
    }
    const unsigned char *s = src;
    unsigned char *d = dst;
    for (size_t i = 0; i < n; i++)
        d[i] = s[n - 1 - i];
}

double elem_half_to_double(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    double v;
    if (exp == 0)
        v = ldexp(man, -24);
    else if (exp == 31)
        v = man ? NAN : INFINITY;
    else
        v = ldexp(man | 0x400, exp - 25);
    return sign ? -v : v;
}

uint16_t elem_double_to_half(double d)
{
    uint16_t sign = signbit(d) ? 0x8000 : 0;
    if (isnan(d))
        return sign | 0x7e00;
    double a = fabs(d);
    if (a >= 65520.0) /* rounds to infinity */
        return sign | 0x7c00;
    if (a < ldexp(1, -25)) /* rounds to zero (ties to even: 2^-25 itself goes to 0) */
        return sign;
    int e;
    (void)frexp(a, &e); /* a = f * 2^e, f in [0.5, 1) */
    int exp = e - 1 + 15;
    double scaled;
    if (exp <= 0) /* subnormal: units of 2^-24 */
        scaled = ldexp(a, 24);
    else /* 11 significant bits */
        scaled = ldexp(a, 10 - (e - 1));
    double r = nearbyint(scaled); /* current rounding mode: to nearest even */
    uint32_t m = (uint32_t)r;
    if (exp <= 0)
        return (uint16_t)(sign | m); /* m may reach 0x400: the smallest normal */
    if (m == 0x800) {                /* rounding carried into the next binade */
        m = 0x400;
        exp++;
        if (exp >= 31)
            return sign | 0x7c00;
    }
    return (uint16_t)(sign | (uint16_t)(exp << 10) | (m & 0x3ff));
}

static double load_float(const ba_dtype *dt, const unsigned char *p, int swap)
{
    switch (dt->itemsize) {
    case 2: {
        uint16_t h;
        load_bytes(&h, p, 2, swap);
        return elem_half_to_double(h);
    }
    case 4: {
        float f;
        load_bytes(&f, p, 4, swap);
        return f;
    }
    default: {
        double d;
        load_bytes(&d, p, 8, swap);
        return d;
    }
    }
}

static int64_t load_int(const unsigned char *p, uint32_t size, int swap)
{
    switch (size) {
    case 1:
        return (int8_t)p[0];
    case 2: {
        int16_t v;
        load_bytes(&v, p, 2, swap);
        return v;
    }
    case 4: {
        int32_t v;
        load_bytes(&v, p, 4, swap);
        return v;
    }
    default: {
        int64_t v;
        load_bytes(&v, p, 8, swap);
        return v;
    }
    }
}

static uint64_t load_uint(const unsigned char *p, uint32_t size, int swap)
{
    switch (size) {
    case 1:
        return p[0];
    case 2: {
        uint16_t v;
        load_bytes(&v, p, 2, swap);
        return v;
    }
    case 4: {
        uint32_t v;
        load_bytes(&v, p, 4, swap);
        return v;
    }
    default: {
        uint64_t v;
        load_bytes(&v, p, 8, swap);
        return v;
    }
    }
}

void elem_get(const ba_dtype *dt, const void *ptr, struct elem_val *v)
{
    const unsigned char *p = ptr;
    int swap = elem_swapped(dt);
    memset(v, 0, sizeof *v);
    v->cls = elem_class_of(dt);
    switch (v->cls) {
    case ELEM_BOOL:
        v->i = p[0] != 0;
        break;
    case ELEM_INT:
        v->i = load_int(p, dt->itemsize, swap);
        break;
    case ELEM_UINT:
        v->u = load_uint(p, dt->itemsize, swap);
        break;
    case ELEM_FLOAT:
        v->re = load_float(dt, p, swap);
        break;
    case ELEM_COMPLEX: {
        ba_dtype half = *dt;
        half.itemsize = dt->itemsize / 2;
        v->re = load_float(&half, p, swap);
        v->im = load_float(&half, p + half.itemsize, swap);
        break;
    }
    default:
        break;
    }
}

/* One loop per type so the common cases compile to tight code. */
#define RUN_LOOP(T, EXPR)                                                                          \
    do {                                                                                           \
        for (int64_t k = 0; k < n; k++, p += stride) {                                             \
            T x;                                                                                   \
            memcpy(&x, p, sizeof x);                                                               \
            out[k] = (double)(EXPR);                                                               \
        }                                                                                          \
    } while (0)

void elem_run_to_double(const ba_dtype *dt, const unsigned char *p, int64_t stride, int64_t n,
                        double *out)
{
    int swap = elem_swapped(dt);
    if (swap || (dt->kind == 'f' && dt->itemsize == 2)) {
        struct elem_val v;
        for (int64_t k = 0; k < n; k++, p += stride) {
            elem_get(dt, p, &v);
            out[k] = v.cls == ELEM_INT || v.cls == ELEM_BOOL ? (double)v.i
                     : v.cls == ELEM_UINT                    ? (double)v.u
                                                             : v.re;
        }
        return;
    }
    switch (dt->kind) {
    case 'b':
        RUN_LOOP(uint8_t, x != 0);
        return;
    case 'i':
        if (dt->itemsize == 1)
            RUN_LOOP(int8_t, x);
        else if (dt->itemsize == 2)
            RUN_LOOP(int16_t, x);
        else if (dt->itemsize == 4)
            RUN_LOOP(int32_t, x);
        else
            RUN_LOOP(int64_t, x);
        return;
    case 'u':
        if (dt->itemsize == 1)
            RUN_LOOP(uint8_t, x);
        else if (dt->itemsize == 2)
            RUN_LOOP(uint16_t, x);
        else if (dt->itemsize == 4)
            RUN_LOOP(uint32_t, x);
        else
            RUN_LOOP(uint64_t, x);
        return;
    case 'f':
        if (dt->itemsize == 4)
            RUN_LOOP(float, x);
        else
            RUN_LOOP(double, x);
        return;
    default:
        for (int64_t k = 0; k < n; k++)
            out[k] = NAN;
        return;
    }
}

/* ---- parsing values ------------------------------------------------------------- */

static void store_bytes(void *dst, const void *src, size_t n, int swap)
{
    load_bytes(dst, src, n, swap);
}

static int parse_real(const char *s, const char **end, double *out)
{
    char *e;
    errno = 0;
    double d = strtod(s, &e);
    if (e == s)
        return -1;
    /* strtod accepts hex floats and "infinity"; both are fine. Overflow gives inf. */
    *out = d;
    *end = e;
    return 0;
}

static int store_float(const ba_dtype *dt, uint32_t size, double d, unsigned char *out, char *err,
                       size_t errlen, const char *text)
{
    int swap = elem_swapped(dt);
    if (size == 2) {
        uint16_t h = elem_double_to_half(d);
        if (isfinite(d) && isinf(elem_half_to_double(h))) {
            snprintf(err, errlen, "value '%s' is out of range for %s", text, "float16");
            return -1;
        }
        store_bytes(out, &h, 2, swap);
    } else if (size == 4) {
        float f = (float)d;
        if (isfinite(d) && isinf(f)) {
            snprintf(err, errlen, "value '%s' is out of range for %s", text, "float32");
            return -1;
        }
        store_bytes(out, &f, 4, swap);
    } else {
        store_bytes(out, &d, 8, swap);
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int parse_complex(const char *text, double *re, double *im)
{
    char buf[256];
    size_t n = strlen(text);
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, text, n + 1);
    char *s = buf;
    while (*s == ' ')
        s++;
    if (*s == '(') {
        if (n < 2 || buf[n - 1] != ')')
            return -1;
        buf[n - 1] = '\0';
        s++;
    }
    const char *end;
    double a;
    *re = 0;
    *im = 0;
    if (parse_real(s, &end, &a) != 0)
        return -1;
    if (*end == 'j' || *end == 'J') { /* "3j" */
        *im = a;
        end++;
    } else {
        *re = a;
        if (*end == '+' || *end == '-') {
            double b;
            const char *e2;
            if (parse_real(end, &e2, &b) != 0 || (*e2 != 'j' && *e2 != 'J'))
                return -1;
            *im = b;
            end = e2 + 1;
        }
    }
    while (*end == ' ')
        end++;
    return *end == '\0' ? 0 : -1;
}

int elem_parse(const ba_dtype *dt, const char *text, void *out, char *err, size_t errlen)
{
    unsigned char *o = out;
    int swap = elem_swapped(dt);
    switch (elem_class_of(dt)) {
    case ELEM_BOOL:
        if (!strcasecmp(text, "true") || !strcmp(text, "1"))
            o[0] = 1;
        else if (!strcasecmp(text, "false") || !strcmp(text, "0"))
            o[0] = 0;
        else {
            snprintf(err, errlen, "'%s' is not a bool (true, false, 1, 0)", text);
            return -1;
        }
        return 0;
    case ELEM_INT: {
        char *e;
        errno = 0;
        long long v = strtoll(text, &e, 0);
        int bits = (int)dt->itemsize * 8;
        long long lo = bits == 64 ? INT64_MIN : -(1LL << (bits - 1));
        long long hi = bits == 64 ? INT64_MAX : (1LL << (bits - 1)) - 1;
        if (e == text || *e != '\0') {
            snprintf(err, errlen, "'%s' is not an integer", text);
            return -1;
        }
        if (errno == ERANGE || v < lo || v > hi) {
            snprintf(err, errlen, "%s is out of range for int%d [%lld, %lld]", text, bits, lo, hi);
            return -1;
        }
        int64_t x = v;
        unsigned char tmp[8];
        memcpy(tmp, &x, 8);
        /* Little-endian host: the low bytes come first. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        store_bytes(o, tmp + 8 - dt->itemsize, dt->itemsize, swap);
#else
        store_bytes(o, tmp, dt->itemsize, swap);
#endif
        return 0;
    }
    case ELEM_UINT: {
        char *e;
        errno = 0;
        const char *t = text;
        while (isspace((unsigned char)*t)) /* all that strtoull() skips, not only ' ' */
            t++;
        if (*t == '-') {
            snprintf(err, errlen, "%s is out of range for uint%d", text, (int)dt->itemsize * 8);
            return -1;
        }
        unsigned long long v = strtoull(t, &e, 0);
        int bits = (int)dt->itemsize * 8;
        unsigned long long hi = bits == 64 ? UINT64_MAX : (1ULL << bits) - 1;
        if (e == t || *e != '\0') {
            snprintf(err, errlen, "'%s' is not an integer", text);
            return -1;
        }
        if (errno == ERANGE || v > hi) {
            snprintf(err, errlen, "%s is out of range for uint%d [0, %llu]", text, bits, hi);
            return -1;
        }
        uint64_t x = v;
        unsigned char tmp[8];
        memcpy(tmp, &x, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        store_bytes(o, tmp + 8 - dt->itemsize, dt->itemsize, swap);
#else
        store_bytes(o, tmp, dt->itemsize, swap);
#endif
        return 0;
    }
    case ELEM_FLOAT: {
        const char *e;
        double d;
        if (parse_real(text, &e, &d) != 0 || *e != '\0') {
            snprintf(err, errlen, "'%s' is not a number", text);
            return -1;
        }
        return store_float(dt, dt->itemsize, d, o, err, errlen, text);
    }
    case ELEM_COMPLEX: {
        double re, im;
        if (parse_complex(text, &re, &im) != 0) {
            snprintf(err, errlen, "'%s' is not a complex number (like 1.5-2j)", text);
            return -1;
        }
        uint32_t half = dt->itemsize / 2;
        if (store_float(dt, half, re, o, err, errlen, text) != 0 ||
            store_float(dt, half, im, o + half, err, errlen, text) != 0)
            return -1;
        return 0;
    }
    default: {
        if (strcmp(text, "0") == 0) {
            memset(o, 0, dt->itemsize);
            return 0;
        }
        if ((text[0] != '0' || (text[1] != 'x' && text[1] != 'X'))) {
            snprintf(err, errlen, "a V%u value is \"0\" or 0x and %u hex bytes", dt->itemsize,
                     dt->itemsize);
            return -1;
        }
        const char *h = text + 2;
        if (strlen(h) != 2 * (size_t)dt->itemsize) {
            snprintf(err, errlen, "'%s' has %zu hex digits; a V%u value needs %u", text, strlen(h),
                     dt->itemsize, 2 * dt->itemsize);
            return -1;
        }
        for (uint32_t k = 0; k < dt->itemsize; k++) {
            int a = hexval(h[2 * k]), b = hexval(h[2 * k + 1]);
            if (a < 0 || b < 0) {
                snprintf(err, errlen, "'%s' is not hex", text);
                return -1;
            }
            o[k] = (unsigned char)(a << 4 | b);
        }
        return 0;
    }
    }
}
