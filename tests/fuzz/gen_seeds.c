/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpus of the fuzz harnesses: tests/fuzz/corpus/<harness>/. The
 * store seeds are real records made by the store's own encoders (block records for
 * each codec, filter and shuffle stride, tombstones, page-aligned raw payloads;
 * catalog records; change records), the .npy seeds real headers from
 * npy_header_write() re-wrapped as versions 1.0, 2.0 and 3.0 plus hand-written
 * variants numpy also produces, and the text seeds slice, dtype, codec and size
 * strings. A few near-valid inputs (truncated, a flipped byte) are added for each.
 *
 * The elem seeds are values for `bigarray set` of every dtype.
 *
 *   fuzz_gen_seeds DIR      (DIR = tests/fuzz/corpus; existing files are replaced)
 *
 * Output is deterministic, so regenerating after a format change shows up as a
 * plain diff of the corpus.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "npy.h"
#include "store_internal.h"

static const char *outdir;
static unsigned nfiles;
static size_t nbytes;

static void die(const char *what)
{
    fprintf(stderr, "gen_seeds: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void mkdir_p(const char *path)
{
    if (mkdir(path, 0755) && errno != EEXIST)
        die(path);
}

static void put(const char *harness, const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", outdir, harness);
    mkdir_p(path);
    snprintf(path, sizeof path, "%s/%s/%s", outdir, harness, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f))
        die(path);
    nfiles++;
    nbytes += n;
}

/* The valid input, then near-valid ones: truncated by one byte, cut in half and with
 * one byte flipped at `flip` (all three only when n allows). */
static void put_variants(const char *harness, const char *name, const unsigned char *p, size_t n,
                         size_t flip)
{
    char nm[256];
    put(harness, name, p, n);
    if (n > 1) {
        snprintf(nm, sizeof nm, "%s-trunc", name);
        put(harness, nm, p, n - 1);
    }
    if (flip < n) {
        unsigned char *q = malloc(n);
        if (!q)
            die("malloc");
        memcpy(q, p, n);
        q[flip] ^= 0x5a;
        snprintf(nm, sizeof nm, "%s-flip%zu", name, flip);
        put(harness, nm, q, n);
        free(q);
    }
}

/* ---- deterministic data ------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

enum fill { FILL_RAMP_F8, FILL_RAMP_I2, FILL_NOISE, FILL_SPARSE, FILL_RECORDS };

static void fill(unsigned char *p, size_t n, enum fill how)
{
    switch (how) {
    case FILL_RAMP_F8:
        for (size_t i = 0; i + 8 <= n; i += 8) {
            double d = (double)(i / 8) * 0.25;
            memcpy(p + i, &d, 8);
        }
        break;
    case FILL_RAMP_I2:
        for (size_t i = 0; i + 2 <= n; i += 2) {
            uint16_t v = (uint16_t)(i / 2 * 3);
            memcpy(p + i, &v, 2);
        }
        break;
    case FILL_NOISE:
        for (size_t i = 0; i < n; i++)
            p[i] = (unsigned char)next_rand();
        break;
    case FILL_SPARSE:
        memset(p, 0, n);
        for (size_t i = 0; i < n; i += 997)
            p[i] = (unsigned char)(i & 0xff);
        break;
    case FILL_RECORDS:
        for (size_t i = 0; i < n; i++)
            p[i] = (unsigned char)((i % 37) < 5 ? i / 37 : 'a' + i % 7);
        break;
    }
}

/* ---- block records ---------------------------------------------------------------- */

static void block_seed(const char *name, uint32_t block_size, uint8_t codec, uint8_t level,
                       uint8_t filters, uint32_t itemsize, enum fill how, int zero)
{
    struct store_array a;
    memset(&a, 0, sizeof a);
    a.block_size = block_size;
    a.codec = codec;
    a.level = level;
    a.filters = filters;
    a.itemsize = itemsize;
    unsigned char *raw = malloc(block_size);
    if (!raw)
        die("malloc");
    if (zero)
        memset(raw, 0, block_size);
    else
        fill(raw, block_size, how);
    struct store_cctx c;
    memset(&c, 0, sizeof c);
    unsigned char *out = NULL;
    size_t cap = 0;
    struct store_enc enc;
    if (store_block_encode(&c, &a, raw, &out, &cap, &enc, 1)) {
        fprintf(stderr, "gen_seeds: cannot encode %s\n", name);
        exit(1);
    }
    store_enc_layout(&enc, raw, 4096, 8);
    unsigned char *val = calloc(1, enc.value_len);
    if (!val)
        die("malloc");
    store_enc_fill(val, &enc, 42);
    /* Check what we made decodes (it is the point of a valid seed). */
    struct store_blk_hdr h;
    const char *why = "";
    if (store_blk_hdr_parse(val, enc.value_len, &h, &why)) {
        fprintf(stderr, "gen_seeds: %s does not parse: %s\n", name, why);
        exit(1);
    }
    /* Flip a payload byte (the header checksum stays good, the payload's does not). */
    size_t flip = enc.zero ? 3 : enc.payload_off + enc.stored_len / 2;
    put_variants("block", name, val, enc.value_len, flip);
    free(val);
    free(out);
    store_cctx_free(&c);
    free(raw);
}

static void block_seeds(void)
{
    const uint8_t Z = STORE_CODEC_ZSTD, N = STORE_CODEC_NONE, S = STORE_FILTER_SHUFFLE;
    block_seed("raw-4k", 4096, N, 0, 0, 8, FILL_NOISE, 0);
    block_seed("raw-64k-aligned", 65536, N, 0, 0, 8, FILL_NOISE, 0);
    block_seed("tombstone", 4096, Z, 1, 0, 8, FILL_NOISE, 1);
    block_seed("zstd1-f8", 4096, Z, 1, 0, 8, FILL_RAMP_F8, 0);
    block_seed("zstd3-sparse-16k", 16384, Z, 3, 0, 1, FILL_SPARSE, 0);
    block_seed("zstd19-i2", 8192, Z, 19, 0, 2, FILL_RAMP_I2, 0);
    block_seed("zstd-noise-falls-back-raw", 4096, Z, 1, 0, 8, FILL_NOISE, 0);
    block_seed("shuffle2-i2", 8192, Z, 1, S, 2, FILL_RAMP_I2, 0);
    block_seed("shuffle4", 4096, Z, 1, S, 4, FILL_RAMP_F8, 0);
    block_seed("shuffle8-f8", 16384, Z, 3, S, 8, FILL_RAMP_F8, 0);
    block_seed("shuffle16-c16", 4096, Z, 1, S, 16, FILL_RAMP_F8, 0);
    block_seed("shuffle3-V3", 4096, Z, 1, S, 3, FILL_RECORDS, 0);
    block_seed("shuffle37-V37", 8192, Z, 1, S, 37, FILL_RECORDS, 0);
    block_seed("shuffle256-V256", 8192, Z, 1, S, 256, FILL_RECORDS, 0);
    block_seed("shuffle-V300-unshuffled", 4096, Z, 1, S, 300, FILL_RECORDS, 0);
    /* More than one 64 KiB shuffle chunk, and a chunk that does not divide by 24. */
    block_seed("shuffle8-256k", 262144, Z, 1, S, 8, FILL_RAMP_F8, 0);
    block_seed("shuffle24-V24-128k", 131072, Z, 1, S, 24, FILL_RECORDS, 0);
    /* A header alone, and a record shorter than a header. */
    struct store_blk_hdr h = {.format = STORE_BLK_FORMAT,
                              .codec = STORE_CODEC_ZSTD,
                              .payload_off = STORE_BLK_HDR,
                              .stored_len = 0,
                              .raw_len = 4096,
                              .seq = 1,
                              .stride = 1};
    unsigned char hdr[STORE_BLK_HDR];
    store_blk_hdr_write(hdr, &h);
    put("block", "header-only-empty-zstd", hdr, sizeof hdr);
    put("block", "short", hdr, 20);
}

/* ---- catalog records ---------------------------------------------------------------- */

static void catalog_seed(const char *name, const char *aname, const char *dtype, uint32_t itemsize,
                         uint32_t ndim, const int64_t *shape, char order, uint32_t block_size,
                         uint8_t codec, uint8_t level, uint8_t filters)
{
    struct store_array a;
    memset(&a, 0, sizeof a);
    a.id = 7;
    snprintf(a.name, sizeof a.name, "%s", aname);
    snprintf(a.dtype, sizeof a.dtype, "%s", dtype);
    a.itemsize = itemsize;
    a.ndim = ndim;
    for (uint32_t i = 0; i < ndim; i++)
        a.shape[i] = shape[i];
    a.order = order;
    a.block_size = block_size;
    a.codec = codec;
    a.level = level;
    a.filters = filters;
    a.created_seq = 3;
    a.meta_seq = 5;
    a.data_seq = 9;
    a.stored_bytes = 123456;
    a.stored_blocks = 17;
    if (store_arr_validate(&a)) {
        fprintf(stderr, "gen_seeds: catalog seed %s invalid: %s\n", name, ba_errmsg());
        exit(1);
    }
    size_t len = store_arr_encoded_len(&a);
    unsigned char *d = malloc(len);
    if (!d)
        die("malloc");
    store_arr_encode(&a, d, len);
    put_variants("catalog", name, d, len, 64);
    free(d);
}

static void catalog_seeds(void)
{
    const int64_t s1[] = {1000};
    const int64_t s3[] = {4, 0, 6};
    const int64_t sbig[] = {INT64_C(1) << 40, 1 << 18};
    int64_t s32[BA_MAX_DIMS];
    for (int i = 0; i < BA_MAX_DIMS; i++)
        s32[i] = i % 3 + 1;
    char longname[BA_NAME_MAX + 1];
    memset(longname, 'n', BA_NAME_MAX);
    longname[BA_NAME_MAX] = '\0';
    catalog_seed("f8-1d", "x", "<f8", 8, 1, s1, 'C', 1u << 21, STORE_CODEC_NONE, 0, 0);
    catalog_seed("i2-3d-zstd-shuffle", "temps", "<i2", 2, 3, s3, 'F', 4096, STORE_CODEC_ZSTD, 3,
                 STORE_FILTER_SHUFFLE);
    catalog_seed("V24-32d", "records/2024", "|V24", 24, BA_MAX_DIMS, s32, 'C', 1u << 30,
                 STORE_CODEC_ZSTD, 19, 0);
    catalog_seed("big-longname", longname, ">c16", 16, 2, sbig, 'C', 65536, STORE_CODEC_ZSTD, 1, 0);
    catalog_seed("scalar", "s", "|b1", 1, 0, NULL, 'C', 4096, STORE_CODEC_NONE, 0, 0);
}

/* ---- change records ----------------------------------------------------------------- */

struct chg {
    uint64_t id;
    unsigned flags;
    uint64_t first, n;
};

static void changes_seed(const char *name, const struct chg *c, size_t n)
{
    struct store_chg_buf b;
    memset(&b, 0, sizeof b);
    for (size_t i = 0; i < n; i++)
        store_chg_add(&b, c[i].id, c[i].flags, c[i].first, c[i].n);
    if (store_chg_finish(&b))
        die("store_chg_finish");
    put_variants("changes", name, b.p, b.len, 9);
    store_chg_free(&b);
}

static void changes_seeds(void)
{
    const unsigned B = STORE_CHANGE_BLOCKS, M = STORE_CHANGE_META, C = STORE_CHANGE_CREATE,
                   D = STORE_CHANGE_DROP, X = STORE_CHANGE_CUT;
    changes_seed("empty", NULL, 0);
    const struct chg one[] = {{1, B, 0, 1}};
    changes_seed("one-block", one, 1);
    const struct chg all[] = {{1, C | B, 0, 100},
                              {2, M | X, 17, 0},
                              {3, D, 0, 0},
                              {300, B, 5, 1},
                              {300, B, 9, 70000},
                              {4, M, 0, 0},
                              {UINT64_MAX, B | M, UINT64_MAX - 1, 1}};
    changes_seed("every-flag", all, sizeof all / sizeof all[0]);
    struct chg many[200];
    for (unsigned i = 0; i < 200; i++)
        many[i] = (struct chg){i / 20 + 1, B, (uint64_t)i * 3, i % 5 + 1};
    changes_seed("many-ranges", many, 200);
}

/* ---- .npy headers ------------------------------------------------------------------- */

/* Re-wrap a version 1.0 header as version `major` (4-byte length, same dict). */
static size_t npy_rewrap(const unsigned char *v1, size_t n1, int major, unsigned char *out,
                         size_t cap)
{
    size_t dict = n1 - 10;
    size_t n = 12 + dict;
    if (n > cap)
        return 0;
    memcpy(out, v1, 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    for (int i = 0; i < 4; i++)
        out[8 + i] = (unsigned char)(dict >> (8 * i));
    memcpy(out + 12, v1 + 10, dict);
    return n;
}

/* A hand-written header: dict text wrapped as version major (no padding rules). */
static void npy_text(const char *name, int major, const char *dict)
{
    unsigned char buf[4096];
    size_t dl = strlen(dict);
    size_t pre = major == 1 ? 10 : 12;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        buf[8 + i] = (unsigned char)(dl >> (8 * i));
    memcpy(buf + pre, dict, dl);
    put("npy", name, buf, pre + dl);
}

static void npy_seed(const char *name, const char *descr, int fortran, int ndim,
                     const int64_t *shape)
{
    ba_dtype dt;
    if (ba_dtype_parse(descr, &dt)) {
        fprintf(stderr, "gen_seeds: npy seed %s: %s\n", name, ba_errmsg());
        exit(1);
    }
    unsigned char v1[NPY_WRITE_MAX], vx[NPY_WRITE_MAX + 8];
    size_t n = npy_header_write(v1, sizeof v1, &dt, fortran, ndim, shape);
    if (!n) {
        fprintf(stderr, "gen_seeds: npy seed %s not written\n", name);
        exit(1);
    }
    char nm[256];
    snprintf(nm, sizeof nm, "%s-v1", name);
    put_variants("npy", nm, v1, n, 20);
    for (int major = 2; major <= 3; major++) {
        size_t m = npy_rewrap(v1, n, major, vx, sizeof vx);
        snprintf(nm, sizeof nm, "%s-v%d", name, major);
        put("npy", nm, vx, m);
    }
}

static void npy_seeds(void)
{
    const int64_t s1[] = {10};
    const int64_t s2[] = {3, 4};
    const int64_t s0[] = {0, 5};
    const int64_t sbig[] = {INT64_C(1) << 31, INT64_C(1) << 31};
    int64_t s32[BA_MAX_DIMS];
    for (int i = 0; i < BA_MAX_DIMS; i++)
        s32[i] = 1;
    npy_seed("f8-1d", "<f8", 0, 1, s1);
    npy_seed("i4-2d-fortran", ">i4", 1, 2, s2);
    npy_seed("u1-empty", "|u1", 0, 2, s0);
    npy_seed("b1-scalar", "|b1", 0, 0, NULL);
    npy_seed("c16-big", "<c16", 0, 2, sbig);
    npy_seed("V12-32d", "V12", 0, BA_MAX_DIMS, s32);
    npy_seed("f2", "<f2", 1, 1, s1);
    npy_text("python2-long-v1", 1,
             "{'descr': '<i8', 'fortran_order': False, 'shape': (2L, 3L), }\n");
    npy_text("double-quotes-v3", 3,
             "{\"descr\": \"<u2\", \"fortran_order\": True, \"shape\": (7,)}          \n");
    npy_text("key-order-v2", 2, "{'shape': (), 'descr': '|V5', 'fortran_order': False}\n");
    npy_text("object-dtype-v1", 1, "{'descr': '|O', 'fortran_order': False, 'shape': (3,), }\n");
    npy_text("structured-v1", 1,
             "{'descr': [('a', '<i4'), ('b', '<f8')], 'fortran_order': False, 'shape': (2,), }\n");
    npy_text("not-a-tuple-v1", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5), }\n");
    npy_text("huge-v1", 1,
             "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 2), }\n");
}

/* ---- text: slices, dtypes, codecs, sizes ----------------------------------------------- */

static void slice_seeds(void)
{
    static const char *const texts[] = {
        "",
        "5",
        "-1",
        "1:5",
        "::-1",
        "::2, 3",
        "..., None",
        "newaxis, ..., 0",
        " 1 : 10 : 3 ,",
        "\t-3:\t,:-2",
        "0:0, :, 1",
        "9223372036854775807",
        "-9223372036854775807:9223372036854775807:-9223372036854775807",
        "9223372036854775808",
        "::0",
        "..., ...",
        "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33",
        "None,None,None,None,None,None,None,None,None,None,None,None,None,None,None,None,None,"
        "None,None,None,None,None,None,None,None,None,None,None,None,None,None,None,None",
        "Nonex",
        "+4:-",
        "<f8",
        "float64",
        "|V24",
        "=c16",
        ">u2",
        "bool",
        "zstd:3+shuffle",
        "zstd",
        "none",
        "zstd:19",
        "2M",
        "64KiB",
        "1TB",
        "18446744073709551615",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "text%02zu", i);
        put("slice", nm, texts[i], strlen(texts[i]));
    }
}

/* ---- values for `bigarray set` (fuzz_elem: a dtype index byte, then text) ------------ */

static void elem_seeds(void)
{
    /* Indices into fuzz_elem.c's dtype table. */
    static const struct {
        unsigned char dtype;
        const char *text;
    } seeds[] = {
        {0, "true"},
        {0, "0"},
        {1, "-128"},
        {3, "0x7fff"},
        {6, "-9223372036854775808"},
        {8, "255"},
        {12, " 4294967295"},
        {14, "18446744073709551615"},
        {13, "0"},
        {15, "65504"},
        {16, "-inf"},
        {17, "3.4028234663852886e+38"},
        {18, "nan"},
        {19, "1e-320"},
        {20, "0x1.8p3"},
        {21, "(1.5-2j)"},
        {22, "3j"},
        {24, " (inf+nanj)"},
        {25, "0x7f"},
        {26, "0xABcdef"},
        {27, "0"},
        {27, "0x000102030405060708090a0b0c0d0e0f"},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char nm[32];
        unsigned char buf[64];
        size_t n = strlen(seeds[i].text);
        buf[0] = seeds[i].dtype;
        memcpy(buf + 1, seeds[i].text, n);
        snprintf(nm, sizeof nm, "value%02zu", i);
        put("elem", nm, buf, n + 1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    mkdir_p(outdir);
    block_seeds();
    catalog_seeds();
    changes_seeds();
    npy_seeds();
    slice_seeds();
    elem_seeds();
    printf("gen_seeds: %u files, %zu bytes in %s\n", nfiles, nbytes, outdir);
    return 0;
}
