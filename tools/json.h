/* SPDX-License-Identifier: MIT */
/*
 * A small streaming JSON writer for --json output: one document per command, on
 * one line, keys in a fixed order, strings escaped, 64-bit integers exact, doubles
 * in the shortest form that reads back to the same value. JSON has no NaN or
 * infinity: json_double() writes them as the strings "nan", "inf" and "-inf".
 */
#ifndef BA_JSON_H
#define BA_JSON_H

#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 48

struct json {
    FILE *f;
    int depth;
    int count[JSON_MAX_DEPTH]; /* values written at each level */
    int after_key;
};

void json_init(struct json *j, FILE *f);
void json_object_begin(struct json *j);
void json_object_end(struct json *j);
void json_array_begin(struct json *j);
void json_array_end(struct json *j);
void json_key(struct json *j, const char *key);
void json_string(struct json *j, const char *s);
/* A string of n bytes (any bytes; non-UTF-8 bytes become \u00XX). */
void json_string_n(struct json *j, const char *s, size_t n);
void json_int(struct json *j, int64_t v);
void json_uint(struct json *j, uint64_t v);
void json_double(struct json *j, double v);
/* A float32 value, shortest for float32. */
void json_float(struct json *j, float v);
void json_bool(struct json *j, int v);
void json_null(struct json *j);
/* End the document with a newline. */
void json_end(struct json *j);

/* Shortest "%.Ng" text of v that reads back as v ("0.1", "1e+300"); non-finite
 * values as "nan", "inf", "-inf". Returns buf (>= 32 bytes). */
char *fmt_double_shortest(double v, char *buf, size_t len);
char *fmt_float_shortest(float v, char *buf, size_t len);

#endif /* BA_JSON_H */
