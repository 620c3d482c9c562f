/* SPDX-License-Identifier: MIT */
/* Open (or create) a database, create an array unless it exists, list the arrays and
 * describe one. Run it twice: the second run opens what the first one created. */
#include <bigarray.h>
#include <stdio.h>
#include <stdlib.h>

static void check(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", what, ba_strerror(rc), ba_errmsg());
        exit(1);
    }
}

static int print_name(const char *name, void *ctx)
{
    (void)ctx;
    printf("  %s\n", name);
    return 0; /* nonzero would stop the walk */
}

int main(void)
{
    ba_db_options opts;
    ba_db_options_init(&opts); /* defaults; sets opts.size */
    opts.flags = BA_DB_CREATE;
    ba_db *db;
    check(ba_db_open("data.db", &opts, &db), "open data.db");

    ba_session *s;
    check(ba_session_begin(db, &s), "begin");
    ba_array *a;
    int rc = ba_array_open(s, "temps", &a);
    if (rc == BA_ENOTFOUND) {
        ba_array_spec spec;
        ba_array_spec_init(&spec);
        check(ba_dtype_parse("float32", &spec.dtype), "dtype");  /* or "<f4" */
        check(ba_codec_parse("zstd:1+shuffle", &spec), "codec"); /* or BA_CODEC_ZSTD */
        spec.ndim = 2;
        spec.shape[0] = 0; /* rows are appended later */
        spec.shape[1] = 1024;
        spec.block_size = 1u << 20; /* 1 MiB; 0 means the default, 2 MiB */
        rc = ba_array_create(s, "temps", &spec, &a);
        if (!rc)
            rc = ba_session_commit(s); /* others see the array from now on */
    }
    check(rc, "open or create 'temps'");

    printf("arrays:\n");
    check(ba_array_list(s, print_name, NULL), "list");

    ba_array_info info;
    info.size = sizeof info;
    check(ba_array_info_get(a, &info), "info");
    char dt[BA_DTYPE_STRLEN], codec[32];
    printf("%s: dtype %s, shape (%lld, %lld), order %c, blocks of %u bytes, codec %s,\n"
           "  created by commit %llu, %llu bytes stored\n",
           info.name, ba_dtype_format(&info.dtype, dt), (long long)info.shape[0],
           (long long)info.shape[1], info.order, info.block_size,
           ba_codec_format(info.codec, info.level, info.filters, codec),
           (unsigned long long)info.created_seq, (unsigned long long)info.stored_bytes);

    ba_array_close(a);
    ba_session_end(s); /* aborts whatever was not committed */
    ba_db_close(db);
    return 0;
}
