/* SPDX-License-Identifier: MIT */
/* Describing arrays (see arrinfo.h). */
#include <stdlib.h>
#include <string.h>

#include "arrinfo.h"

static int add_name(const char *name, void *ctx)
{
    struct namelist *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **p = realloc(l->names, cap * sizeof *p);
        if (!p)
            return -1;
        l->names = p;
        l->cap = cap;
    }
    char *d = strdup(name);
    if (!d)
        return -1;
    l->names[l->n++] = d;
    return 0;
}

int namelist_get(const struct cli *c, ba_session *s, const char *path, struct namelist *l)
{
    memset(l, 0, sizeof *l);
    int rc = ba_array_list(s, add_name, l);
    if (rc == -1)
        return cli_fail(c, "%s: out of memory listing arrays", path);
    if (rc != 0)
        return cli_fail_ba(c, rc, "%s: cannot list arrays", path);
    return 0;
}

void namelist_free(struct namelist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}

uint64_t arrinfo_nblocks(const ba_array_info *info)
{
    if (!info->block_size)
        return 0;
    return (info->nbytes + info->block_size - 1) / info->block_size;
}

char *arrinfo_codec(const ba_array_info *info, char *buf)
{
    return ba_codec_format(info->codec, info->level, info->filters, buf);
}

const char *arrinfo_pager_name(int pager)
{
    return pager == BA_PAGER_UFFD ? "uffd" : pager == BA_PAGER_SIGSEGV ? "sigsegv" : "unknown";
}

void arrinfo_json(struct json *j, const char *name, const ba_array_info *info)
{
    char buf[64];
    json_object_begin(j);
    json_key(j, "name");
    json_string(j, name);
    json_key(j, "dtype");
    json_string(j, ba_dtype_format(&info->dtype, buf));
    json_key(j, "shape");
    json_array_begin(j);
    for (int d = 0; d < info->ndim; d++)
        json_int(j, info->shape[d]);
    json_array_end(j);
    json_key(j, "order");
    json_string_n(j, &info->order, 1);
    json_key(j, "block_size");
    json_uint(j, info->block_size);
    json_key(j, "codec");
    json_string(j, arrinfo_codec(info, buf));
    json_key(j, "nbytes");
    json_uint(j, info->nbytes);
    json_key(j, "stored_bytes");
    json_uint(j, info->stored_bytes);
    json_key(j, "blocks");
    json_uint(j, arrinfo_nblocks(info));
    json_key(j, "stored_blocks");
    json_uint(j, info->stored_blocks);
    json_key(j, "ratio");
    if (info->stored_bytes)
        json_double(j, (double)info->nbytes / (double)info->stored_bytes);
    else
        json_null(j);
    json_key(j, "created_seq");
    json_uint(j, info->created_seq);
    json_key(j, "changed_seq");
    json_uint(j, info->changed_seq);
    json_object_end(j);
}
