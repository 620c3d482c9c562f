/* SPDX-License-Identifier: MIT */
/*
 * Array specs: their defaults, and codec text: "none", "zstd", "zstd:L" (L = 1..19),
 * each zstd form optionally followed by "+shuffle", parsed into a spec's codec, level
 * and filters and formatted back in the same form ("zstd" alone means level 1).
 * Validation of a whole spec happens at ba_array_create() (ba_array.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ba_internal.h"

#define ZSTD_LEVEL_MAX 19

BA_API void ba_array_spec_init(ba_array_spec *s)
{
    memset(s, 0, sizeof *s);
    s->size = sizeof *s;
    ba_dtype_parse("<f8", &s->dtype);
    s->order = 'C';
    s->block_size = BA_BLOCK_SIZE_DEFAULT;
    s->codec = BA_CODEC_NONE;
}

BA_API int ba_codec_parse(const char *text, ba_array_spec *spec)
{
    if (!text || !spec)
        return ba_error_set(BA_EINVAL, "ba_codec_parse: NULL argument");
    const char *plus = strchr(text, '+');
    size_t len = plus ? (size_t)(plus - text) : strlen(text);
    unsigned filters = 0;
    if (plus) {
        if (strcmp(plus + 1, "shuffle"))
            return ba_error_set(BA_EINVAL, "codec '%s': unknown filter '%s' (known: shuffle)", text,
                                plus + 1);
        filters = BA_FILTER_SHUFFLE;
    }
    if (len == 4 && !strncmp(text, "none", 4)) {
        if (filters)
            return ba_error_set(BA_EINVAL, "codec '%s': the shuffle filter needs zstd", text);
        spec->codec = BA_CODEC_NONE;
        spec->level = 0;
        spec->filters = 0;
        return 0;
    }
    if (len < 4 || strncmp(text, "zstd", 4) || (len > 4 && text[4] != ':'))
        return ba_error_set(BA_EINVAL,
                            "unknown codec '%s' (known: none, zstd, zstd:L, "
                            "zstd:L+shuffle)",
                            text);
    long level = 1;
    if (len > 4) {
        const char *num = text + 5;
        char *end;
        if (num == text + len || *num < '0' || *num > '9')
            return ba_error_set(BA_EINVAL, "codec '%s': expected a level after 'zstd:'", text);
        level = strtol(num, &end, 10);
        if (end != text + len || level < 1 || level > ZSTD_LEVEL_MAX)
            return ba_error_set(BA_EINVAL, "codec '%s': the zstd level must be 1..%d", text,
                                ZSTD_LEVEL_MAX);
    }
    spec->codec = BA_CODEC_ZSTD;
    spec->level = (int)level;
    spec->filters = filters;
    return 0;
}

BA_API char *ba_codec_format(int codec, int level, unsigned filters, char *buf)
{
    if (codec == BA_CODEC_NONE)
        snprintf(buf, 32, "none");
    else if (codec == BA_CODEC_ZSTD)
        snprintf(buf, 32, "zstd:%d%s", level ? level : 1,
                 (filters & BA_FILTER_SHUFFLE) ? "+shuffle" : "");
    else
        snprintf(buf, 32, "codec%d", codec);
    return buf;
}
