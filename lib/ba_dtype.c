/* SPDX-License-Identifier: MIT */
/*
 * Data types: numpy type strings ("<f8", "|u1", "V24", "=c16") and numpy's names
 * ("float64", "uint8", "bool") parsed into a ba_dtype, formatted back in numpy's
 * canonical form, and compared. Byte order: '=' becomes the native order; 1-byte
 * types and records always get '|' (numpy does the same); '|' on a multi-byte type
 * means native, as in numpy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ba_internal.h"

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_ORDER '<'
#else
#define NATIVE_ORDER '>'
#endif

/* Largest record accepted: numpy's own limit on itemsize. */
#define RECORD_MAX 0x7fffffffu

static const struct {
    const char *name;
    char kind;
    uint32_t itemsize;
} dtype_names[] = {
    {"bool", 'b', 1},      {"int8", 'i', 1},        {"int16", 'i', 2},   {"int32", 'i', 4},
    {"int64", 'i', 8},     {"uint8", 'u', 1},       {"uint16", 'u', 2},  {"uint32", 'u', 4},
    {"uint64", 'u', 8},    {"float16", 'f', 2},     {"float32", 'f', 4}, {"float64", 'f', 8},
    {"complex64", 'c', 8}, {"complex128", 'c', 16}, {"half", 'f', 2},    {"single", 'f', 4},
    {"double", 'f', 8},    {"float", 'f', 8},       {"int", 'i', 8},     {"complex", 'c', 16},
};

/* Nonzero when kind/itemsize name a supported type. */
static int dtype_valid(char kind, uint32_t itemsize)
{
    switch (kind) {
    case 'b':
        return itemsize == 1;
    case 'i':
    case 'u':
        return itemsize == 1 || itemsize == 2 || itemsize == 4 || itemsize == 8;
    case 'f':
        return itemsize == 2 || itemsize == 4 || itemsize == 8;
    case 'c':
        return itemsize == 8 || itemsize == 16;
    case 'V':
        return itemsize >= 1 && itemsize <= RECORD_MAX;
    default:
        return 0;
    }
}

static void dtype_set(ba_dtype *out, char kind, char order, uint32_t itemsize)
{
    out->kind = kind;
    out->reserved = 0;
    out->itemsize = itemsize;
    if (itemsize == 1 || kind == 'V')
        out->byteorder = '|';
    else if (order == '=' || order == '|' || order == 0)
        out->byteorder = NATIVE_ORDER;
    else
        out->byteorder = order;
}

BA_API int ba_dtype_parse(const char *text, ba_dtype *out)
{
    if (!text || !out)
        return ba_error_set(BA_EINVAL, "ba_dtype_parse: NULL argument");
    for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (!strcmp(text, dtype_names[i].name)) {
            dtype_set(out, dtype_names[i].kind, '=', dtype_names[i].itemsize);
            return 0;
        }
    const char *p = text;
    char order = 0;
    if (*p == '<' || *p == '>' || *p == '=' || *p == '|')
        order = *p++;
    char kind = *p++;
    if (!kind || !strchr("biufcV", kind))
        return ba_error_set(BA_EDTYPE,
                            "unknown dtype '%s': expected a numpy type string such as '<f8', "
                            "'|u1', 'V16', or a name such as 'float64'",
                            text);
    if (*p < '0' || *p > '9')
        return ba_error_set(BA_EDTYPE, "dtype '%s': the type letter must be followed by a size",
                            text);
    char *end;
    unsigned long long size = strtoull(p, &end, 10);
    if (*end)
        return ba_error_set(BA_EDTYPE, "dtype '%s': trailing characters after the size", text);
    if (size > RECORD_MAX || !dtype_valid(kind, (uint32_t)size))
        return ba_error_set(BA_EDTYPE, "dtype '%s': %c%llu is not a supported type", text, kind,
                            size);
    dtype_set(out, kind, order, (uint32_t)size);
    return 0;
}

BA_API char *ba_dtype_format(const ba_dtype *dt, char *buf)
{
    snprintf(buf, BA_DTYPE_STRLEN, "%c%c%u", dt->byteorder ? dt->byteorder : '?',
             dt->kind ? dt->kind : '?', (unsigned)dt->itemsize);
    return buf;
}

BA_API int ba_dtype_equal(const ba_dtype *a, const ba_dtype *b)
{
    return a->kind == b->kind && a->itemsize == b->itemsize && a->byteorder == b->byteorder;
}

/* Check a caller-filled dtype (not from ba_dtype_parse) before using it. */
int dtype_check(const ba_dtype *dt)
{
    char buf[BA_DTYPE_STRLEN];
    if (!dtype_valid(dt->kind, dt->itemsize))
        return ba_error_set(BA_EDTYPE, "dtype '%s' is not a supported type",
                            ba_dtype_format(dt, buf));
    int single = dt->itemsize == 1 || dt->kind == 'V';
    if (single ? dt->byteorder != '|' : (dt->byteorder != '<' && dt->byteorder != '>'))
        return ba_error_set(BA_EDTYPE,
                            "dtype '%s': bad byte order '%c' (parse it with "
                            "ba_dtype_parse() to get the canonical form)",
                            ba_dtype_format(dt, buf), dt->byteorder ? dt->byteorder : '?');
    return 0;
}
