/* SPDX-License-Identifier: MIT */
/*
 * Describing arrays and databases, shared by ls, info and du: collecting the names
 * of a session's arrays, and the JSON object for one array.
 */
#ifndef BA_ARRINFO_H
#define BA_ARRINFO_H

#include "bigarray.h"
#include "cli.h"
#include "json.h"

struct namelist {
    char **names;
    size_t n, cap;
};

/* The names of the session's arrays in byte order. Returns 0 or CLI_EXIT_FAIL
 * (error printed). */
int namelist_get(const struct cli *c, ba_session *s, const char *path, struct namelist *l);
void namelist_free(struct namelist *l);

/* Blocks the array's bytes span. */
uint64_t arrinfo_nblocks(const ba_array_info *info);
/* "zstd:3+shuffle" */
char *arrinfo_codec(const ba_array_info *info, char *buf);
/* The array as a JSON object with stable keys. */
void arrinfo_json(struct json *j, const char *name, const ba_array_info *info);
/* The name of a pager backend. */
const char *arrinfo_pager_name(int pager);

#endif /* BA_ARRINFO_H */
