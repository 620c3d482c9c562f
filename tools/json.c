/* SPDX-License-Identifier: MIT */
/* The JSON writer (see json.h). */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

void json_init(struct json *j, FILE *f)
{
    memset(j, 0, sizeof *j);
    j->f = f;
}

/* Separator before a value at the current level. */
static void pre_value(struct json *j)
{
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (j->count[j->depth]++ > 0)
        fputc(',', j->f);
}

static void open_level(struct json *j, char ch)
{
    pre_value(j);
    fputc(ch, j->f);
    if (j->depth + 1 < JSON_MAX_DEPTH)
        j->depth++;
    j->count[j->depth] = 0;
}

static void close_level(struct json *j, char ch)
{
    fputc(ch, j->f);
    if (j->depth > 0)
        j->depth--;
}

void json_object_begin(struct json *j)
{
    open_level(j, '{');
}

void json_object_end(struct json *j)
{
    close_level(j, '}');
}

void json_array_begin(struct json *j)
{
    open_level(j, '[');
}

void json_array_end(struct json *j)
{
    close_level(j, ']');
}

static void put_string(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (ch < 0x20 || ch >= 0x7f)
                fprintf(f, "\\u%04x", ch);
            else
                fputc(ch, f);
        }
    }
    fputc('"', f);
}

void json_key(struct json *j, const char *key)
{
    pre_value(j);
    put_string(j->f, key, strlen(key));
    fputc(':', j->f);
    j->after_key = 1;
}

void json_string(struct json *j, const char *s)
{
    json_string_n(j, s, strlen(s));
}

void json_string_n(struct json *j, const char *s, size_t n)
{
    pre_value(j);
    put_string(j->f, s, n);
}

void json_int(struct json *j, int64_t v)
{
    pre_value(j);
    fprintf(j->f, "%" PRId64, v);
}

void json_uint(struct json *j, uint64_t v)
{
    pre_value(j);
    fprintf(j->f, "%" PRIu64, v);
}

char *fmt_double_shortest(double v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "nan");
    else if (isinf(v))
        snprintf(buf, len, v < 0 ? "-inf" : "inf");
    else if (v == 0 && signbit(v))
        snprintf(buf, len, "-0.0"); /* "-0" reads back as the integer 0 in many parsers */
    else
        for (int p = 15; p <= 17; p++) {
            snprintf(buf, len, "%.*g", p, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    return buf;
}

char *fmt_float_shortest(float v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "nan");
    else if (isinf(v))
        snprintf(buf, len, v < 0 ? "-inf" : "inf");
    else if (v == 0 && signbit(v))
        snprintf(buf, len, "-0.0");
    else
        for (int p = 6; p <= 9; p++) {
            snprintf(buf, len, "%.*g", p, (double)v);
            if (strtof(buf, NULL) == v)
                break;
        }
    return buf;
}

void json_double(struct json *j, double v)
{
    char buf[40];
    fmt_double_shortest(v, buf, sizeof buf);
    if (!isfinite(v)) {
        json_string(j, buf);
        return;
    }
    pre_value(j);
    fputs(buf, j->f);
}

void json_float(struct json *j, float v)
{
    char buf[40];
    fmt_float_shortest(v, buf, sizeof buf);
    if (!isfinite(v)) {
        json_string(j, buf);
        return;
    }
    pre_value(j);
    fputs(buf, j->f);
}

void json_bool(struct json *j, int v)
{
    pre_value(j);
    fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j)
{
    pre_value(j);
    fputs("null", j->f);
}

void json_end(struct json *j)
{
    fputc('\n', j->f);
}
