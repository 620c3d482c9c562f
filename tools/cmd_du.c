/* SPDX-License-Identifier: MIT */
/* `bigarray du DB`: space used by each array, the free pages, the file and map sizes. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "arrinfo.h"

enum { OPT_BYTES = 1 };

static const struct cli_opt opts[] = {
    {"bytes", 'b', 0, OPT_BYTES},
    {NULL, 0, 0, 0},
};

static const char *amount(int exact, uint64_t n, char *buf, size_t len)
{
    if (exact) {
        snprintf(buf, len, "%" PRIu64, n);
        return buf;
    }
    return cli_format_bytes(n, buf, len);
}

int cmd_du(struct cli *c, int argc, char **argv)
{
    int exact = 0;
    struct cli_args p;
    cli_args_init(&p, c, opts, argc, argv);
    const char *arg;
    int id, rc, done;
    while ((id = cli_args_next(&p, &arg)) > 0)
        exact = 1;
    if (id == CLI_ARGS_ERROR)
        return CLI_EXIT_USAGE;
    if ((rc = cli_args_finish(&p, 1, 1, &done)) != 0 || done)
        return rc;
    const char *path = p.pos[0];
    ba_db *db;
    ba_session *s = NULL;
    struct namelist l = {0};
    ba_array_info *infos = NULL;
    if ((rc = cli_db_open(c, path, CLI_OPEN_RDONLY, &db)) != 0)
        return rc;
    ba_db_stat st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    int err = ba_db_stat_get(db, &st);
    if (err != 0) {
        rc = cli_fail_ba(c, err, "%s", path);
        goto out;
    }
    if ((rc = cli_session_begin(c, db, path, &s)) != 0 || (rc = namelist_get(c, s, path, &l)) != 0)
        goto out;
    infos = calloc(l.n ? l.n : 1, sizeof *infos);
    if (!infos) {
        rc = cli_fail(c, "out of memory");
        goto out;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < l.n; i++) {
        ba_array *a;
        if ((rc = cli_array_open(c, s, path, l.names[i], &a)) != 0)
            goto out;
        rc = cli_array_info(c, a, l.names[i], &infos[i]);
        ba_array_close(a);
        if (rc)
            goto out;
        total += infos[i].stored_bytes;
    }
    uint64_t free_bytes = st.pages_free * st.page_size;
    if (c->json) {
        struct json j;
        json_init(&j, stdout);
        json_object_begin(&j);
        json_key(&j, "arrays");
        json_array_begin(&j);
        for (size_t i = 0; i < l.n; i++) {
            json_object_begin(&j);
            json_key(&j, "name");
            json_string(&j, l.names[i]);
            json_key(&j, "stored_bytes");
            json_uint(&j, infos[i].stored_bytes);
            json_key(&j, "stored_blocks");
            json_uint(&j, infos[i].stored_blocks);
            json_key(&j, "nbytes");
            json_uint(&j, infos[i].nbytes);
            json_object_end(&j);
        }
        json_array_end(&j);
        json_key(&j, "stored_bytes");
        json_uint(&j, total);
        json_key(&j, "page_size");
        json_uint(&j, st.page_size);
        json_key(&j, "pages_used");
        json_uint(&j, st.pages_used);
        json_key(&j, "pages_free");
        json_uint(&j, st.pages_free);
        json_key(&j, "free_bytes");
        json_uint(&j, free_bytes);
        json_key(&j, "file_size");
        json_uint(&j, st.file_size);
        json_key(&j, "map_size");
        json_uint(&j, st.map_size);
        json_object_end(&j);
        json_end(&j);
        goto out;
    }
    char a1[32], a2[32];
    printf("%12s %10s %12s  %s\n", "STORED", "BLOCKS", "SIZE", "NAME");
    for (size_t i = 0; i < l.n; i++)
        printf("%12s %10" PRIu64 " %12s  %s\n", amount(exact, infos[i].stored_bytes, a1, 32),
               infos[i].stored_blocks, amount(exact, infos[i].nbytes, a2, 32), l.names[i]);
    printf("%12s %10s %12s  %s\n", amount(exact, total, a1, 32), "", "", "(all arrays)");
    printf("free pages: %" PRIu64 " of %" PRIu64 " (%s)\n", st.pages_free, st.pages_used,
           amount(exact, free_bytes, a1, 32));
    printf("file size:  %s\n", amount(exact, st.file_size, a1, 32));
    printf("map size:   %s\n", amount(exact, st.map_size, a1, 32));
out:
    free(infos);
    namelist_free(&l);
    ba_session_end(s);
    ba_db_close(db);
    return rc;
}
