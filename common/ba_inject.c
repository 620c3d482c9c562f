/* SPDX-License-Identifier: MIT */
/*
 * Fault-injection seams (see ba_common.h) and allocation through them, plus the
 * small utilities every module uses.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ba_common.h"

int ba_inject_armed;

struct inject_slot {
    int code;       /* 0 = disarmed */
    unsigned skip;  /* hits that pass before failing */
    unsigned count; /* hits that fail (0 = unlimited) */
    unsigned hits;  /* hits seen since arming */
    unsigned fails; /* hits failed since arming */
};

static struct inject_slot slots[BA_INJ_NPOINTS];

static const char *const point_names[BA_INJ_NPOINTS] = {
    [BA_INJ_ALLOC] = "alloc",
    [BA_INJ_STORE_OPEN] = "store_open",
    [BA_INJ_STORE_READ] = "store_read",
    [BA_INJ_STORE_PUT] = "store_put",
    [BA_INJ_STORE_COMMIT] = "store_commit",
    [BA_INJ_STORE_COMPACT] = "store_compact",
    [BA_INJ_SPILL_WRITE] = "spill_write",
    [BA_INJ_SPILL_READ] = "spill_read",
    [BA_INJ_STORE_RESERVE] = "store_reserve",
};

const char *ba_inject_point_name(enum ba_inject_point p)
{
    return (unsigned)p < BA_INJ_NPOINTS ? point_names[p] : "?";
}

int ba_inject_slow(enum ba_inject_point p)
{
    struct inject_slot *s = &slots[p];
    unsigned hit = __atomic_fetch_add(&s->hits, 1, __ATOMIC_RELAXED);
    int code = __atomic_load_n(&s->code, __ATOMIC_RELAXED);
    if (!code || hit < s->skip)
        return 0;
    if (s->count) {
        unsigned f = __atomic_fetch_add(&s->fails, 1, __ATOMIC_RELAXED);
        if (f >= s->count)
            return 0;
    }
    return code;
}

void ba_inject_arm(enum ba_inject_point p, int code, unsigned skip, unsigned count)
{
    struct inject_slot *s = &slots[p];
    __atomic_store_n(&s->code, 0, __ATOMIC_RELAXED);
    s->skip = skip;
    s->count = count;
    __atomic_store_n(&s->hits, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->fails, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->code, code, __ATOMIC_RELEASE);
    __atomic_store_n(&ba_inject_armed, 1, __ATOMIC_RELEASE);
}

void ba_inject_clear(void)
{
    for (int i = 0; i < BA_INJ_NPOINTS; i++) {
        __atomic_store_n(&slots[i].code, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&slots[i].hits, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&slots[i].fails, 0, __ATOMIC_RELAXED);
    }
    /* Keep counting hits: tests use ba_inject_hits() to enumerate points. */
    __atomic_store_n(&ba_inject_armed, 1, __ATOMIC_RELEASE);
}

unsigned ba_inject_hits(enum ba_inject_point p)
{
    return __atomic_load_n(&slots[p].hits, __ATOMIC_RELAXED);
}

static int parse_code(const char *s, size_t n, int *code)
{
    static const struct {
        const char *name;
        int code;
    } names[] = {
        {"ENOSPC", -ENOSPC}, {"EIO", -EIO},       {"ENOMEM", -ENOMEM},
        {"EDQUOT", -EDQUOT}, {"EACCES", -EACCES}, {"MAP_FULL", BA_INJ_MAP_FULL},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == n && !memcmp(names[i].name, s, n)) {
            *code = names[i].code;
            return 0;
        }
    return -1;
}

int ba_inject_from_env(void)
{
    const char *env = getenv("BIGARRAY_INJECT");
    if (!env || !*env)
        return 0;
    const char *p = env;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *c1 = memchr(p, ':', len);
        if (!c1)
            return ba_error_set(BA_EINVAL, "BIGARRAY_INJECT: '%.*s' lacks ':code'", (int)len, p);
        int point = -1;
        for (int i = 0; i < BA_INJ_NPOINTS; i++)
            if (strlen(point_names[i]) == (size_t)(c1 - p) &&
                !memcmp(point_names[i], p, (size_t)(c1 - p)))
                point = i;
        if (point < 0)
            return ba_error_set(BA_EINVAL, "BIGARRAY_INJECT: unknown point '%.*s'", (int)(c1 - p),
                                p);
        const char *rest = c1 + 1;
        size_t rlen = len - (size_t)(rest - p);
        const char *c2 = memchr(rest, ':', rlen);
        size_t clen = c2 ? (size_t)(c2 - rest) : rlen;
        int code;
        if (parse_code(rest, clen, &code))
            return ba_error_set(BA_EINVAL, "BIGARRAY_INJECT: unknown code '%.*s'", (int)clen, rest);
        unsigned skip = 0, count = 0;
        if (c2) {
            char buf[64];
            size_t n = rlen - clen - 1;
            if (n >= sizeof buf)
                n = sizeof buf - 1;
            memcpy(buf, c2 + 1, n);
            buf[n] = '\0';
            char *e;
            skip = (unsigned)strtoul(buf, &e, 10);
            if (*e == ':')
                count = (unsigned)strtoul(e + 1, &e, 10);
            if (*e)
                return ba_error_set(BA_EINVAL, "BIGARRAY_INJECT: bad numbers in '%.*s'", (int)len,
                                    p);
        }
        ba_inject_arm((enum ba_inject_point)point, code, skip, count);
        p = end ? end + 1 : p + len;
    }
    return 0;
}

void *ba_malloc(size_t n)
{
    if (ba_inject(BA_INJ_ALLOC))
        return NULL;
    return malloc(n);
}

void *ba_calloc(size_t n, size_t size)
{
    if (ba_inject(BA_INJ_ALLOC))
        return NULL;
    return calloc(n, size);
}

void *ba_realloc(void *p, size_t n)
{
    if (ba_inject(BA_INJ_ALLOC))
        return NULL;
    return realloc(p, n);
}

char *ba_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = ba_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

uint64_t ba_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int ba_parse_size(const char *text, uint64_t *out)
{
    if (!text || !*text)
        return ba_error_set(BA_EINVAL, "empty size");
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    /* Digits first: strtoull() also skips blanks and takes a sign (" -5" is 2^64 - 5). */
    if (end == text || errno || text[0] < '0' || text[0] > '9')
        return ba_error_set(BA_EINVAL, "bad size '%s'", text);
    unsigned shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    case 't':
    case 'T':
        shift = 40;
        break;
    case '\0':
        break;
    default:
        return ba_error_set(BA_EINVAL, "bad size suffix in '%s'", text);
    }
    if (*end) {
        end++;
        if (*end == 'i' && end[1] == 'B')
            end += 2;
        else if (*end == 'B')
            end++;
    }
    if (*end)
        return ba_error_set(BA_EINVAL, "trailing characters in size '%s'", text);
    if (shift && v > (UINT64_MAX >> shift))
        return ba_error_set(BA_EINVAL, "size '%s' too large", text);
    *out = (uint64_t)v << shift;
    return 0;
}
