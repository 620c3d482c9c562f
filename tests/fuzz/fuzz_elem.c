/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the CLI's value parser (tools/elem.c, elem_parse: the text of `bigarray set`).
 * The first input byte picks a dtype (every kind, size and byte order, and records
 * of 1, 3 and 16 bytes), the rest is the text. The value is written into a buffer of
 * exactly itemsize bytes. Checked besides memory errors: a failure comes with a
 * terminated message (also in tiny buffers); an accepted value is in range for its
 * type (an unsigned type never takes a negative number), and the value read back
 * with elem_get(), printed and parsed again gives the same bytes (NaNs excepted).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "elem.h"
#include "fuzz.h"

static const char *const dtypes[] = {
    "|b1", "|i1", "<i2", ">i2",  "<i4",  ">i4", "<i8", ">i8",  "|u1", "<u2",
    ">u2", "<u4", ">u4", "<u8",  ">u8",  "<f2", ">f2", "<f4",  ">f4", "<f8",
    ">f8", "<c8", ">c8", "<c16", ">c16", "|V1", "|V3", "|V16",
};
#define NDTYPES (sizeof dtypes / sizeof dtypes[0])

/* Parse text again and compare with the bytes of the first parse. */
static void reparse(const ba_dtype *dt, const char *text, const unsigned char *want)
{
    unsigned char *b = malloc(dt->itemsize);
    char err[160];
    FUZZ_CHECK(b);
    int rc = elem_parse(dt, text, b, err, sizeof err);
    if (rc)
        fprintf(stderr, "reparse of '%s' failed: %s\n", text, err);
    FUZZ_CHECK(rc == 0);
    if (memcmp(b, want, dt->itemsize))
        fprintf(stderr, "reparse of '%s' gives other bytes\n", text);
    FUZZ_CHECK(memcmp(b, want, dt->itemsize) == 0);
    free(b);
}

static void check_value(const ba_dtype *dt, const char *text, const unsigned char *out)
{
    struct elem_val v;
    char buf[128];
    int bits = (int)dt->itemsize * 8;
    elem_get(dt, out, &v);
    switch (elem_class_of(dt)) {
    case ELEM_BOOL:
        FUZZ_CHECK(out[0] == 0 || out[0] == 1);
        break;
    case ELEM_INT:
        FUZZ_CHECK(v.cls == ELEM_INT);
        if (bits < 64)
            FUZZ_CHECK(v.i >= -(INT64_C(1) << (bits - 1)) && v.i < (INT64_C(1) << (bits - 1)));
        snprintf(buf, sizeof buf, "%lld", (long long)v.i);
        reparse(dt, buf, out);
        break;
    case ELEM_UINT:
        FUZZ_CHECK(v.cls == ELEM_UINT);
        if (bits < 64)
            FUZZ_CHECK(v.u < (UINT64_C(1) << bits));
        if (v.u != 0)
            FUZZ_CHECK(strchr(text, '-') == NULL); /* no negative number wraps around */
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)v.u);
        reparse(dt, buf, out);
        break;
    case ELEM_FLOAT:
        FUZZ_CHECK(v.cls == ELEM_FLOAT);
        if (isnan(v.re))
            break;
        snprintf(buf, sizeof buf, "%.17g", v.re);
        reparse(dt, buf, out);
        break;
    case ELEM_COMPLEX:
        FUZZ_CHECK(v.cls == ELEM_COMPLEX);
        if (isnan(v.re) || isnan(v.im))
            break;
        snprintf(buf, sizeof buf, "(%.17g%+.17gj)", v.re, v.im);
        reparse(dt, buf, out);
        break;
    default: {
        FUZZ_CHECK(dt->itemsize <= 16);
        int n = snprintf(buf, sizeof buf, "0x");
        for (uint32_t k = 0; k < dt->itemsize; k++)
            n += snprintf(buf + n, sizeof buf - (size_t)n, "%02x", out[k]);
        reparse(dt, buf, out);
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    ba_dtype dt;
    FUZZ_CHECK(ba_dtype_parse(dtypes[data[0] % NDTYPES], &dt) == 0);
    char *text = malloc(size);
    FUZZ_CHECK(text);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    unsigned char *out = malloc(dt.itemsize); /* exactly one element */
    FUZZ_CHECK(out);
    char err[200];
    err[0] = '\0';
    int rc = elem_parse(&dt, text, out, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc) {
        FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);
        char tiny[4];
        memset(tiny, 'x', sizeof tiny);
        FUZZ_CHECK(elem_parse(&dt, text, out, tiny, 3) == -1);
        FUZZ_CHECK(memchr(tiny, '\0', 3) != NULL && tiny[3] == 'x');
    } else {
        check_value(&dt, text, out);
    }
    free(out);
    free(text);
    return 0;
}
