/* SPDX-License-Identifier: MIT */
/* `bigarray info DB [NAME]`: facts about the database, or about one array. */
#include <inttypes.h>
#include <string.h>

#include "arrinfo.h"

static void kv(const char *key, const char *fmt_value)
{
    printf("%-14s %s\n", key, fmt_value);
}

static int db_info(struct cli *c, ba_db *db, const char *path)
{
    ba_db_stat st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    int err = ba_db_stat_get(db, &st);
    if (err != 0)
        return cli_fail_ba(c, err, "%s", path);
    const char *pager = arrinfo_pager_name(ba_db_pager(db));
    if (c->json) {
        struct json j;
        json_init(&j, stdout);
        json_object_begin(&j);
        json_key(&j, "path");
        json_string(&j, path);
        json_key(&j, "last_commit");
        json_uint(&j, st.last_commit);
        json_key(&j, "arrays");
        json_uint(&j, st.narrays);
        json_key(&j, "file_size");
        json_uint(&j, st.file_size);
        json_key(&j, "map_size");
        json_uint(&j, st.map_size);
        json_key(&j, "page_size");
        json_uint(&j, st.page_size);
        json_key(&j, "pages_used");
        json_uint(&j, st.pages_used);
        json_key(&j, "pages_free");
        json_uint(&j, st.pages_free);
        json_key(&j, "readers");
        json_uint(&j, st.readers);
        json_key(&j, "pager");
        json_string(&j, pager);
        json_object_end(&j);
        json_end(&j);
        return 0;
    }
    char b[64], h[32];
    kv("database:", path);
    snprintf(b, sizeof b, "%" PRIu64, st.last_commit);
    kv("last commit:", b);
    snprintf(b, sizeof b, "%" PRIu64, st.narrays);
    kv("arrays:", b);
    snprintf(b, sizeof b, "%" PRIu64 " bytes (%s)", st.file_size,
             cli_format_bytes(st.file_size, h, sizeof h));
    kv("file size:", b);
    snprintf(b, sizeof b, "%" PRIu64 " bytes (%s)", st.map_size,
             cli_format_bytes(st.map_size, h, sizeof h));
    kv("map size:", b);
    snprintf(b, sizeof b, "%" PRIu64, st.page_size);
    kv("page size:", b);
    snprintf(b, sizeof b, "%" PRIu64 " used, %" PRIu64 " free", st.pages_used, st.pages_free);
    kv("pages:", b);
    snprintf(b, sizeof b, "%" PRIu64, st.readers);
    kv("readers:", b);
    kv("pager:", pager);
    return 0;
}

static int array_info(struct cli *c, ba_session *s, const char *path, const char *name)
{
    ba_array *a;
    ba_array_info info;
    int rc;
    if ((rc = cli_array_open(c, s, path, name, &a)) != 0)
        return rc;
    if ((rc = cli_array_info(c, a, name, &info)) != 0) {
        ba_array_close(a);
        return rc;
    }
    if (c->json) {
        struct json j;
        json_init(&j, stdout);
        arrinfo_json(&j, name, &info);
        json_end(&j);
        ba_array_close(a);
        return 0;
    }
    char b[700], h[32], t[64];
    kv("name:", name);
    kv("dtype:", ba_dtype_format(&info.dtype, t));
    kv("shape:", cli_format_shape(info.ndim, info.shape, b, sizeof b));
    snprintf(b, sizeof b, "%c", info.order);
    kv("order:", b);
    snprintf(b, sizeof b, "%" PRIu32 " (%s)", info.block_size,
             cli_format_bytes(info.block_size, h, sizeof h));
    kv("block size:", b);
    kv("codec:", arrinfo_codec(&info, t));
    snprintf(b, sizeof b, "%" PRIu64 " bytes (%s)", info.nbytes,
             cli_format_bytes(info.nbytes, h, sizeof h));
    kv("size:", b);
    snprintf(b, sizeof b, "%" PRIu64 " bytes (%s)", info.stored_bytes,
             cli_format_bytes(info.stored_bytes, h, sizeof h));
    kv("stored:", b);
    snprintf(b, sizeof b, "%" PRIu64 " of %" PRIu64, info.stored_blocks, arrinfo_nblocks(&info));
    kv("blocks stored:", b);
    if (info.stored_bytes)
        snprintf(b, sizeof b, "%.3g", (double)info.nbytes / (double)info.stored_bytes);
    else
        snprintf(b, sizeof b, "- (nothing stored: all zeros)");
    kv("ratio:", b);
    snprintf(b, sizeof b, "commit %" PRIu64, info.created_seq);
    kv("created:", b);
    snprintf(b, sizeof b, "commit %" PRIu64, info.changed_seq);
    kv("last change:", b);
    ba_array_close(a);
    return 0;
}

int cmd_info(struct cli *c, int argc, char **argv)
{
    struct cli_args p;
    cli_args_init(&p, c, NULL, argc, argv);
    int done, rc;
    if ((rc = cli_args_finish(&p, 1, 2, &done)) != 0 || done)
        return rc;
    const char *path = p.pos[0];
    ba_db *db;
    ba_session *s = NULL;
    if ((rc = cli_db_open(c, path, CLI_OPEN_RDONLY, &db)) != 0)
        return rc;
    if (p.npos == 1) {
        rc = db_info(c, db, path);
    } else if ((rc = cli_session_begin(c, db, path, &s)) == 0) {
        rc = array_info(c, s, path, p.pos[1]);
    }
    ba_session_end(s);
    ba_db_close(db);
    return rc;
}
