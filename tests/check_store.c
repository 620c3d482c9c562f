/* SPDX-License-Identifier: MIT */
/*
 * Check suite for store/ (part 1): opening and its errors, codec round trips (none,
 * zstd, shuffle with several item sizes, compressible, incompressible, all-zero and
 * partial data), holes and tombstones, page-aligned raw payloads, checksum damage
 * found by flipping bytes in data.mdb, durability across reopen, damaged catalog
 * records, snapshots shared by threads, copies and statistics. Map growth and the
 * writable map are in check_store_map.c, conflicts and change records in
 * check_store_txn.c, injected failures, verify and compact in check_store_fault.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ba_common.h"
#include "store.h"
#include "store_fixture.h"
#include "testutil.h"

/* ---- helpers -------------------------------------------------------------------------- */

/* What the newest snapshot says of block blkno of array id (asserting the call works). */
static struct store_block_info block_info(struct store *st, uint64_t id, uint64_t blkno)
{
    struct store_snap *sn;
    struct store_block_info bi;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    ck_assert_int_eq(store_block_info(sn, id, blkno, &bi), 0);
    store_snap_unref(sn);
    return bi;
}

/* Read a whole file into memory. */
static unsigned char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    struct stat sb;
    ck_assert_int_eq(fstat(fd, &sb), 0);
    unsigned char *p = malloc((size_t)sb.st_size + 1);
    ck_assert_ptr_nonnull(p);
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t r = pread(fd, p + got, (size_t)sb.st_size - got, (off_t)got);
        ck_assert_int_gt(r, 0);
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return p;
}

/* Offsets of every occurrence of pat in data.mdb (at most max). */
static size_t find_all(const char *dir, const void *pat, size_t plen, size_t *offs, size_t max)
{
    char *path = tu_path(dir, "data.mdb");
    size_t len, n = 0;
    unsigned char *f = slurp(path, &len);
    for (size_t i = 0; i + plen <= len && n < max; i++)
        if (f[i] == ((const unsigned char *)pat)[0] && !memcmp(f + i, pat, plen))
            offs[n++] = i;
    free(f);
    free(path);
    return n;
}

static void flip_byte(const char *dir, size_t off)
{
    char *path = tu_path(dir, "data.mdb");
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    unsigned char c;
    ck_assert_int_eq(pread(fd, &c, 1, (off_t)off), 1);
    c ^= 0x5a;
    ck_assert_int_eq(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
    free(path);
}

/* ---- opening ---------------------------------------------------------------------------- */

START_TEST(test_store_open_missing_without_create_is_notfound)
{
    char *dir = tu_mkdtemp("st-open");
    char *p = tu_path(dir, "nope");
    struct store_opts o;
    store_opts_init(&o);
    struct store *st = NULL;
    int rc = store_open(p, &o, &st);
    ck_assert_int_eq(rc, BA_ENOTFOUND);
    ck_assert_ptr_null(st);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), p));
    /* An empty directory without STORE_CREATE: nothing to open either. */
    ck_assert_int_eq(mkdir(p, 0755), 0);
    ck_assert_int_eq(store_open(p, &o, &st), BA_ENOTFOUND);
    free(p);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_open_file_is_notdb)
{
    char *dir = tu_mkdtemp("st-open");
    char *p = tu_path(dir, "file");
    FILE *f = fopen(p, "w");
    fputs("hello", f);
    fclose(f);
    struct store_opts o;
    store_opts_init(&o);
    o.flags = STORE_CREATE;
    struct store *st = NULL;
    ck_assert_int_eq(store_open(p, &o, &st), BA_ENOTDB);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), p));
    free(p);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_open_garbage_datamdb_is_notdb)
{
    char *dir = tu_mkdtemp("st-open");
    char *p = tu_path(dir, "data.mdb");
    unsigned char junk[3 * 4096];
    tu_fill_random(junk, sizeof junk, 7);
    FILE *f = fopen(p, "w");
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);
    struct store_opts o;
    store_opts_init(&o);
    struct store *st = NULL;
    ck_assert_int_eq(store_open(dir, &o, &st), BA_ENOTDB);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), dir));
    /* A directory holding something else entirely. */
    unlink(p);
    char *q = tu_path(dir, "notes.txt");
    f = fopen(q, "w");
    fclose(f);
    o.flags = STORE_CREATE;
    ck_assert_int_eq(store_open(dir, &o, &st), BA_ENOTDB);
    free(q);
    free(p);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_open_foreign_lmdb_is_notdb)
{
    char *dir = tu_mkdtemp("st-open");
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    MDB_val k = {3, (void *)(uintptr_t) "key"}, v = {5, (void *)(uintptr_t) "value"};
    ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    struct store_opts o;
    store_opts_init(&o);
    o.flags = STORE_CREATE;
    struct store *st = NULL;
    ck_assert_int_eq(store_open(dir, &o, &st), BA_ENOTDB);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "format record"));
    tu_rmtree(dir);
}
END_TEST

/* Rewrite meta/"format" with a newer version through raw LMDB. */
static void set_format_version(const char *dir, uint32_t version)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    mdb_env_set_mapsize(env, 1u << 30);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    MDB_val k = {6, (void *)(uintptr_t) "format"}, v;
    ck_assert_int_eq(mdb_get(txn, dbi, &k, &v), 0);
    unsigned char rec[64];
    ck_assert_uint_le(v.mv_size, sizeof rec);
    memcpy(rec, v.mv_data, v.mv_size);
    rec[8] = (unsigned char)version;
    rec[9] = (unsigned char)(version >> 8);
    MDB_val nv = {v.mv_size, rec};
    ck_assert_int_eq(mdb_put(txn, dbi, &k, &nv, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

START_TEST(test_store_open_newer_version_is_eversion)
{
    char *dir = tu_mkdtemp("st-open");
    struct store *st = open_st(dir, 0, 0);
    store_close(st);
    set_format_version(dir, 2);
    struct store_opts o;
    store_opts_init(&o);
    st = NULL;
    ck_assert_int_eq(store_open(dir, &o, &st), BA_EVERSION);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), dir));
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "version 2"));
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_open_twice_in_process_is_busy)
{
    char *dir = tu_mkdtemp("st-open");
    struct store *st = open_st(dir, 0, 0);
    struct store_opts o;
    store_opts_init(&o);
    struct store *st2 = NULL;
    ck_assert_int_eq(store_open(dir, &o, &st2), BA_EBUSY);
    store_close(st);
    ck_assert_int_eq(store_open(dir, &o, &st2), 0);
    store_close(st2);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_open_rdonly_refuses_writes)
{
    char *dir = tu_mkdtemp("st-open");
    struct store *st = open_st(dir, 0, 0);
    struct store_array a = mkarr(st, "a", STORE_CODEC_NONE, 0, 0, 8, 4096, 4);
    store_close(st);
    struct store_opts o;
    store_opts_init(&o);
    o.flags = STORE_RDONLY;
    ck_assert_int_eq(store_open(dir, &o, &st), 0);
    ck_assert_int_eq(store_readonly(st), 1);
    struct store_txn *tx;
    ck_assert_int_eq(store_txn_begin(st, 0, 0, &tx), BA_EREADONLY);
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    struct store_array b;
    ck_assert_int_eq(store_array_by_name(sn, "a", &b), 0);
    ck_assert_uint_eq(b.id, a.id);
    store_snap_unref(sn);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

/* ---- codecs -------------------------------------------------------------------------------- */

enum { DATA_COUNTERS, DATA_RANDOM, DATA_PARTIAL, DATA_SMOOTH, DATA_NKINDS };

static void make_data(unsigned char *buf, size_t bs, int kind, uint64_t seed)
{
    switch (kind) {
    case DATA_COUNTERS:
        fill_counters(buf, bs, seed * 1000);
        break;
    case DATA_RANDOM:
        tu_fill_random(buf, bs, seed);
        break;
    case DATA_PARTIAL: /* a partial last block: odd-length data, then zeros */
        memset(buf, 0, bs);
        tu_fill_random(buf, bs / 3 + 7, seed);
        break;
    case DATA_SMOOTH: {
        float *f = (float *)(void *)buf;
        for (size_t i = 0; i < bs / 4; i++)
            f[i] = (float)(i % 1000) * 0.25f + (float)seed;
        break;
    }
    default:
        break;
    }
}

START_TEST(test_store_codec_roundtrip)
{
    static const struct {
        uint8_t codec, level, filters;
        uint32_t itemsize, bs;
    } cfg[] = {
        {STORE_CODEC_NONE, 0, 0, 8, 4096},
        {STORE_CODEC_NONE, 0, 0, 8, 1u << 17},
        {STORE_CODEC_ZSTD, 1, 0, 8, 1u << 16},
        {STORE_CODEC_ZSTD, 19, 0, 4, 8192},
        {STORE_CODEC_ZSTD, 3, STORE_FILTER_SHUFFLE, 1, 1u << 16},
        {STORE_CODEC_ZSTD, 3, STORE_FILTER_SHUFFLE, 2, 1u << 16},
        {STORE_CODEC_ZSTD, 3, STORE_FILTER_SHUFFLE, 4, 1u << 18},
        {STORE_CODEC_ZSTD, 3, STORE_FILTER_SHUFFLE, 8, 1u << 17},
        {STORE_CODEC_ZSTD, 3, STORE_FILTER_SHUFFLE, 16, 1u << 16},
        {STORE_CODEC_ZSTD, 3, STORE_FILTER_SHUFFLE, 3, 1u << 16}, /* odd: partial elements */
        {STORE_CODEC_ZSTD, 3, STORE_FILTER_SHUFFLE, 24, 4096},
        {STORE_CODEC_ZSTD, 3, STORE_FILTER_SHUFFLE, 300, 1u << 16}, /* too wide: unshuffled */
    };
    char *dir = tu_mkdtemp("st-codec");
    struct store *st = open_st(dir, 0, 0);
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        char name[32];
        snprintf(name, sizeof name, "arr%zu", c);
        uint32_t bs = cfg[c].bs;
        struct store_array a = mkarr(st, name, cfg[c].codec, cfg[c].level, cfg[c].filters,
                                     cfg[c].itemsize, bs, DATA_NKINDS + 1);
        unsigned char *in = malloc(bs), *out = malloc(bs);
        for (int k = 0; k < DATA_NKINDS; k++) {
            make_data(in, bs, k, c + 1);
            ck_assert_int_eq(put_block(st, &a, (uint64_t)k, in), 0);
            memset(out, 0xee, bs);
            read_block(st, &a, (uint64_t)k, out);
            ck_assert_msg(!memcmp(in, out, bs), "config %zu data %d differs", c, k);
            struct store_block_info bi = block_info(st, a.id, (uint64_t)k);
            ck_assert_int_eq(bi.present, 1);
            if (cfg[c].codec == STORE_CODEC_NONE)
                ck_assert_int_eq(bi.codec, STORE_CODEC_NONE);
            if (cfg[c].codec == STORE_CODEC_ZSTD && k == DATA_COUNTERS)
                ck_assert_int_eq(bi.codec, STORE_CODEC_ZSTD); /* compressible: compressed */
            if (k == DATA_RANDOM)
                ck_assert_int_eq(bi.codec, STORE_CODEC_NONE); /* did not pay: stored raw */
            if (cfg[c].filters && bi.codec == STORE_CODEC_ZSTD)
                ck_assert_int_eq(bi.filters,
                                 cfg[c].itemsize >= 2 && cfg[c].itemsize <= 256 ? 1 : 0);
        }
        /* all zeros: nothing stored */
        memset(in, 0, bs);
        ck_assert_int_eq(put_block(st, &a, DATA_NKINDS, in), 0);
        ck_assert_int_eq(block_info(st, a.id, DATA_NKINDS).present, 0);
        free(in);
        free(out);
    }
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_shuffle_improves_int32_counters)
{
    char *dir = tu_mkdtemp("st-codec");
    struct store *st = open_st(dir, 0, 0);
    uint32_t bs = 1u << 20;
    struct store_array plain = mkarr(st, "plain", STORE_CODEC_ZSTD, 1, 0, 4, bs, 1);
    struct store_array shuf =
        mkarr(st, "shuf", STORE_CODEC_ZSTD, 1, STORE_FILTER_SHUFFLE, 4, bs, 1);
    uint32_t *in = malloc(bs);
    for (uint32_t i = 0; i < bs / 4; i++)
        in[i] = i;
    ck_assert_int_eq(put_block(st, &plain, 0, in), 0);
    ck_assert_int_eq(put_block(st, &shuf, 0, in), 0);
    struct store_block_info a = block_info(st, plain.id, 0), b = block_info(st, shuf.id, 0);
    ck_assert_msg(b.stored_len * 10 < a.stored_len, "shuffle %u vs plain %u", b.stored_len,
                  a.stored_len);
    void *out = malloc(bs);
    read_block(st, &shuf, 0, out);
    ck_assert(!memcmp(in, out, bs));
    free(out);
    free(in);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

/* zstd's window spans the whole block: a block whose second half repeats its first
 * (random bytes, so only the repeat compresses) stores about half its size at level 1,
 * whose own window (512 KiB for such inputs) would not reach back 1 MiB. */
START_TEST(test_store_zstd_window_spans_the_block)
{
    char *dir = tu_mkdtemp("st-codec");
    struct store *st = open_st(dir, 0, 0);
    uint32_t bs = 2u << 20;
    struct store_array a = mkarr(st, "w", STORE_CODEC_ZSTD, 1, 0, 8, bs, 1);
    unsigned char *in = malloc(bs), *out = malloc(bs);
    tu_fill_random(in, bs / 2, 77);
    memcpy(in + bs / 2, in, bs / 2);
    ck_assert_int_eq(put_block(st, &a, 0, in), 0);
    struct store_block_info bi = block_info(st, a.id, 0);
    ck_assert_int_eq(bi.codec, STORE_CODEC_ZSTD);
    ck_assert_msg(bi.stored_len < bs / 2 + bs / 16, "stored %u of %u", bi.stored_len, bs);
    memset(out, 0, bs);
    read_block(st, &a, 0, out);
    ck_assert(!memcmp(in, out, bs));
    free(in);
    free(out);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_hole_and_tombstone_read_as_zeros)
{
    char *dir = tu_mkdtemp("st-zero");
    struct store *st = open_st(dir, 0, 0);
    uint32_t bs = 8192;
    struct store_array a = mkarr(st, "z", STORE_CODEC_ZSTD, 1, 0, 8, bs, 4);
    unsigned char *in = malloc(bs), *out = malloc(bs), *zero = calloc(1, bs);
    fill_counters(in, bs, 5);
    memset(out, 0x11, bs);
    read_block(st, &a, 2, out); /* hole */
    ck_assert(!memcmp(out, zero, bs));
    ck_assert_int_eq(put_block(st, &a, 2, in), 0);
    struct store_snap *sn;
    struct store_array cat;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    ck_assert_int_eq(store_array_by_id(sn, a.id, &cat), 0);
    store_snap_unref(sn);
    ck_assert_uint_eq(cat.stored_blocks, 1);
    ck_assert_uint_gt(cat.stored_bytes, 48);
    ck_assert_int_eq(put_block(st, &a, 2, zero), 0); /* zeroed away: tombstone */
    uint64_t s = last_seq(st);
    struct store_block_info bi;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    ck_assert_int_eq(store_block_info(sn, a.id, 2, &bi), 0);
    ck_assert_int_eq(bi.present, -1);
    ck_assert_uint_eq(bi.seq, s);
    ck_assert_int_eq(store_array_by_id(sn, a.id, &cat), 0);
    ck_assert_uint_eq(cat.stored_blocks, 0);
    ck_assert_uint_eq(cat.stored_bytes, 0);
    ck_assert_uint_eq(cat.data_seq, s);
    memset(out, 0x11, bs);
    ck_assert_int_eq(store_block_read(sn, &a, 2, out, 0), 0);
    ck_assert(!memcmp(out, zero, bs));
    store_snap_unref(sn);
    free(in);
    free(out);
    free(zero);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_uncompressed_payload_is_page_aligned)
{
    char *dir = tu_mkdtemp("st-align");
    struct store *st = open_st(dir, 0, 0);
    for (uint32_t bs = 1u << 16; bs <= (1u << 21); bs <<= 5) {
        char name[16];
        snprintf(name, sizeof name, "al%u", bs);
        struct store_array a = mkarr(st, name, STORE_CODEC_NONE, 0, 0, 8, bs, 3);
        unsigned char *in = malloc(bs);
        for (uint64_t b = 0; b < 3; b++) {
            tu_fill_random(in, bs, 100 + b + bs);
            ck_assert_int_eq(put_block(st, &a, b, in), 0);
        }
        store_close(st);
        size_t offs[4];
        size_t n = find_all(dir, in, 64, offs, 4); /* the last block's first bytes */
        ck_assert_uint_ge(n, 1);
        long psize = sysconf(_SC_PAGESIZE);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(offs[i] % (size_t)psize == 0, "payload at %zu", offs[i]);
        free(in);
        st = open_st(dir, 0, 0);
    }
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_checksum_corruption_detected)
{
    char *dir = tu_mkdtemp("st-sum");
    struct store *st = open_st(dir, 0, 0);
    uint32_t bs = 1u << 16;
    struct store_array a = mkarr(st, "victim", STORE_CODEC_NONE, 0, 0, 8, bs, 2);
    unsigned char *in = malloc(bs), *out = malloc(bs);
    tu_fill_random(in, bs, 99);
    ck_assert_int_eq(put_block(st, &a, 1, in), 0);
    store_close(st);
    size_t offs[4];
    size_t n = find_all(dir, in + 1000, 32, offs, 4);
    ck_assert_uint_eq(n, 1);
    flip_byte(dir, offs[0] + 5);
    st = open_st(dir, 0, 0);
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    ck_assert_int_eq(store_block_read(sn, &a, 1, out, 0), BA_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "victim"));
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "block 1"));
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "checksum"));
    /* Quiet reads (fault context) report the code and leave the message alone. */
    ba_error_set(BA_EINVAL, "sentinel");
    ck_assert_int_eq(store_block_read(sn, &a, 1, out, STORE_READ_QUIET), BA_ECORRUPT);
    ck_assert_str_eq(ba_errmsg(), "sentinel");
    store_snap_unref(sn);
    /* Rewriting the block repairs it. */
    ck_assert_int_eq(put_block(st, &a, 1, in), 0);
    read_block(st, &a, 1, out);
    ck_assert(!memcmp(in, out, bs));
    store_close(st);
    free(in);
    free(out);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_compressed_corruption_detected)
{
    char *dir = tu_mkdtemp("st-sum");
    struct store *st = open_st(dir, 0, 0);
    uint32_t bs = 1u << 16;
    struct store_array a = mkarr(st, "zvictim", STORE_CODEC_ZSTD, 1, 0, 8, bs, 1);
    unsigned char *in = malloc(bs), *out = malloc(bs);
    /* Half random (incompressible, so its bytes appear verbatim in the frame), half zero. */
    memset(in, 0, bs);
    tu_fill_random(in, bs / 2, 5);
    ck_assert_int_eq(put_block(st, &a, 0, in), 0);
    struct store_block_info bi = block_info(st, a.id, 0);
    ck_assert_int_eq(bi.codec, STORE_CODEC_ZSTD);
    store_close(st);
    size_t offs[4];
    size_t n = find_all(dir, in + 4000, 32, offs, 4);
    ck_assert_uint_eq(n, 1);
    flip_byte(dir, offs[0] + 3);
    st = open_st(dir, 0, 0);
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    ck_assert_int_eq(store_block_read(sn, &a, 0, out, 0), BA_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "zvictim"));
    store_snap_unref(sn);
    store_close(st);
    free(in);
    free(out);
    tu_rmtree(dir);
}
END_TEST

/* ---- durability, snapshots, threads -------------------------------------------------------------- */

START_TEST(test_store_data_survives_close_and_reopen)
{
    char *dir = tu_mkdtemp("st-dur");
    for (int wm = 0; wm < 2; wm++) {
        struct store *st = open_st(dir, wm ? STORE_WRITEMAP : 0, 0);
        char name[8];
        snprintf(name, sizeof name, "d%d", wm);
        uint32_t bs = 1u << 16;
        struct store_array a = mkarr(st, name, STORE_CODEC_ZSTD, 3, 0, 8, bs, 8);
        unsigned char *in = malloc(bs), *out = malloc(bs);
        for (uint64_t b = 0; b < 8; b++) {
            fill_counters(in, bs, b * 7 + (uint64_t)wm);
            ck_assert_int_eq(put_block(st, &a, b, in), 0);
        }
        uint64_t seq = last_seq(st);
        store_close(st);
        st = open_st(dir, 0, 0);
        ck_assert_uint_eq(last_seq(st), seq);
        struct store_snap *sn;
        struct store_array b2;
        ck_assert_int_eq(store_snap_begin(st, &sn), 0);
        ck_assert_int_eq(store_array_by_name(sn, name, &b2), 0);
        ck_assert_uint_eq(b2.stored_blocks, 8);
        ck_assert_int_eq(b2.shape[0], a.shape[0]);
        for (uint64_t b = 0; b < 8; b++) {
            fill_counters(in, bs, b * 7 + (uint64_t)wm);
            ck_assert_int_eq(store_block_read(sn, &b2, b, out, 0), 0);
            ck_assert(!memcmp(in, out, bs));
        }
        store_snap_unref(sn);
        store_close(st);
        free(in);
        free(out);
    }
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_snapshot_keeps_its_view)
{
    char *dir = tu_mkdtemp("st-snap");
    struct store *st = open_st(dir, 0, 0);
    uint32_t bs = 4096;
    struct store_array a = mkarr(st, "s", STORE_CODEC_NONE, 0, 0, 8, bs, 2);
    unsigned char in[4096], out[4096];
    fill_counters(in, bs, 1);
    ck_assert_int_eq(put_block(st, &a, 0, in), 0);
    struct store_snap *old;
    ck_assert_int_eq(store_snap_begin(st, &old), 0);
    store_snap_ref(old); /* two holders */
    fill_counters(in, bs, 2);
    ck_assert_int_eq(put_block(st, &a, 0, in), 0);
    store_snap_unref(old); /* one left: still valid */
    ck_assert_int_eq(store_block_read(old, &a, 0, out, 0), 0);
    fill_counters(in, bs, 1);
    ck_assert(!memcmp(in, out, bs));
    ck_assert_ptr_eq(store_snap_store(old), st);
    store_snap_unref(old);
    read_block(st, &a, 0, out);
    fill_counters(in, bs, 2);
    ck_assert(!memcmp(in, out, bs));
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

struct reader_arg {
    struct store_snap *sn;
    const struct store_array *a;
    uint64_t nblk;
    int seed;
    int bad;
};

static void *reader_main(void *p)
{
    struct reader_arg *r = p;
    size_t bs = r->a->block_size;
    unsigned char *out = malloc(bs), *want = malloc(bs);
    for (int it = 0; it < 200; it++) {
        uint64_t b = (uint64_t)(it * 7 + r->seed) % r->nblk;
        if (store_block_read(r->sn, r->a, b, out, it & 1 ? STORE_READ_QUIET : 0))
            r->bad++;
        fill_counters(want, bs, b << 16);
        if (memcmp(out, want, bs))
            r->bad++;
    }
    free(out);
    free(want);
    store_snap_unref(r->sn);
    return NULL;
}

START_TEST(test_store_threads_read_one_snapshot)
{
    char *dir = tu_mkdtemp("st-thr");
    struct store *st = open_st(dir, STORE_NOSYNC, 0);
    uint32_t bs = 1u << 16;
    uint64_t nblk = 16;
    struct store_array a = mkarr(st, "t", STORE_CODEC_ZSTD, 1, STORE_FILTER_SHUFFLE, 8, bs, nblk);
    unsigned char *in = malloc(bs);
    for (uint64_t b = 0; b < nblk; b++) {
        fill_counters(in, bs, b << 16);
        ck_assert_int_eq(put_block(st, &a, b, in), 0);
    }
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    enum { NT = 8 };
    pthread_t th[NT];
    struct reader_arg args[NT];
    for (int i = 0; i < NT; i++) {
        store_snap_ref(sn);
        args[i] = (struct reader_arg){sn, &a, nblk, i, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main, &args[i]), 0);
    }
    store_snap_unref(sn); /* the threads hold the rest */
    /* Meanwhile, commits move on (readers keep their snapshot). */
    for (int k = 0; k < 5; k++) {
        fill_counters(in, bs, 12345);
        ck_assert_int_eq(put_block(st, &a, (uint64_t)k, in), 0);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(args[i].bad, 0);
    }
    free(in);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

/* ---- catalog -------------------------------------------------------------------------------------- */

START_TEST(test_store_array_names_validated)
{
    char *dir = tu_mkdtemp("st-cat");
    struct store *st = open_st(dir, 0, 0);
    struct store_array a;
    memset(&a, 0, sizeof a);
    strcpy(a.dtype, "<f8");
    a.itemsize = 8;
    a.ndim = 2;
    a.shape[0] = 10;
    a.shape[1] = 3;
    a.order = 'F';
    a.block_size = 4096;
    struct store_txn *tx;
    ck_assert_int_eq(store_txn_begin(st, 0, 0, &tx), 0);
    ck_assert_int_eq(store_txn_array_create(tx, &a), BA_EINVAL); /* empty name */
    memset(a.name, 'x', BA_NAME_MAX);
    ck_assert_int_eq(store_txn_array_create(tx, &a), 0); /* 255 bytes */
    ck_assert_int_eq(store_txn_array_create(tx, &a), BA_EEXIST);
    strcpy(a.name, "bad-bs");
    a.block_size = 5000;
    ck_assert_int_eq(store_txn_array_create(tx, &a), BA_EINVAL);
    a.block_size = 4096;
    a.codec = STORE_CODEC_ZSTD;
    a.level = 20;
    ck_assert_int_eq(store_txn_array_create(tx, &a), BA_EINVAL);
    a.level = 1;
    a.shape[0] = -1;
    ck_assert_int_eq(store_txn_array_create(tx, &a), BA_ESHAPE);
    a.shape[0] = 10;
    ck_assert_int_eq(store_txn_array_create(tx, &a), 0);
    ck_assert_int_eq(store_txn_commit(tx, NULL), 0);
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    struct store_array b;
    ck_assert_int_eq(store_array_by_name(sn, "bad-bs", &b), 0);
    ck_assert_int_eq(b.ndim, 2);
    ck_assert_int_eq(b.shape[1], 3);
    ck_assert_int_eq(b.order, 'F');
    ck_assert_str_eq(b.dtype, "<f8");
    ck_assert_int_eq(store_array_by_name(sn, "nope", &b), BA_ENOTFOUND);
    ck_assert_int_eq(store_array_by_id(sn, 999, &b), BA_ENOTFOUND);
    store_snap_unref(sn);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

static int list_cb(const struct store_array *a, void *ctx)
{
    char *acc = ctx;
    strcat(acc, a->name);
    strcat(acc, ",");
    return 0;
}

START_TEST(test_store_array_list_in_name_order)
{
    char *dir = tu_mkdtemp("st-cat");
    struct store *st = open_st(dir, 0, 0);
    mkarr(st, "cherry", STORE_CODEC_NONE, 0, 0, 1, 4096, 1);
    mkarr(st, "apple", STORE_CODEC_NONE, 0, 0, 1, 4096, 1);
    mkarr(st, "banana", STORE_CODEC_NONE, 0, 0, 1, 4096, 1);
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    char acc[128] = "";
    ck_assert_int_eq(store_array_list(sn, list_cb, acc), 0);
    ck_assert_str_eq(acc, "apple,banana,cherry,");
    store_snap_unref(sn);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_damaged_catalog_record_is_corrupt)
{
    char *dir = tu_mkdtemp("st-cat");
    struct store *st = open_st(dir, 0, 0);
    struct store_array a = mkarr(st, "damaged", STORE_CODEC_NONE, 0, 0, 8, 4096, 1);
    store_close(st);
    /* Flip a dtype byte of every copy of the record (old copies in free pages too). */
    unsigned char magic[6] = {'B', 'A', 'A', 'R', 1, 0};
    size_t offs[16];
    size_t n = find_all(dir, magic, sizeof magic, offs, 16);
    ck_assert_uint_ge(n, 1);
    for (size_t i = 0; i < n; i++)
        flip_byte(dir, offs[i] + 73);
    st = open_st(dir, 0, 0);
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    struct store_array b;
    ck_assert_int_eq(store_array_by_name(sn, "damaged", &b), BA_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(ba_errmsg(), "catalog record"));
    ck_assert_int_eq(store_array_by_id(sn, a.id, &b), BA_ECORRUPT);
    char acc[64] = "";
    ck_assert_int_eq(store_array_list(sn, list_cb, acc), BA_ECORRUPT);
    store_snap_unref(sn);
    /* Writing to it is refused too, without killing the process. */
    struct store_txn *tx;
    ck_assert_int_eq(store_txn_begin(st, last_seq(st), 0, &tx), 0);
    unsigned char blk[4096] = {1};
    ck_assert_int_eq(store_txn_block_write(tx, &a, 0, blk), BA_ECORRUPT);
    store_txn_abort(tx);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_array_copy_holds_same_data)
{
    char *dir = tu_mkdtemp("st-copy");
    struct store *st = open_st(dir, 0, 0);
    uint32_t bs = 1u << 16;
    struct store_array a = mkarr(st, "src", STORE_CODEC_ZSTD, 1, 0, 8, bs, 4);
    unsigned char *in = malloc(bs), *out = malloc(bs), *zero = calloc(1, bs);
    for (uint64_t b = 0; b < 3; b++) {
        fill_counters(in, bs, b * 99);
        ck_assert_int_eq(put_block(st, &a, b, in), 0);
    }
    ck_assert_int_eq(put_block(st, &a, 1, zero), 0); /* tombstone: not copied */
    struct store_txn *tx;
    struct store_array c;
    ck_assert_int_eq(store_txn_begin(st, last_seq(st), 0, &tx), 0);
    ck_assert_int_eq(store_txn_array_copy(tx, a.id, "src", &c), BA_EEXIST);
    ck_assert_int_eq(store_txn_array_copy(tx, a.id, "dst", &c), 0);
    uint64_t seq;
    ck_assert_int_eq(store_txn_commit(tx, &seq), 0);
    ck_assert_uint_ne(c.id, a.id);
    ck_assert_uint_eq(c.created_seq, seq);
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    struct store_array d, s2;
    ck_assert_int_eq(store_array_by_name(sn, "dst", &d), 0);
    ck_assert_int_eq(store_array_by_name(sn, "src", &s2), 0);
    ck_assert_uint_eq(d.stored_blocks, 2);
    ck_assert_uint_eq(d.stored_bytes, s2.stored_bytes);
    for (uint64_t b = 0; b < 4; b++) {
        ck_assert_int_eq(store_block_read(sn, &s2, b, in, 0), 0);
        ck_assert_int_eq(store_block_read(sn, &d, b, out, 0), 0);
        ck_assert(!memcmp(in, out, bs));
        struct store_block_info bi;
        ck_assert_int_eq(store_block_info(sn, d.id, b, &bi), 0);
        if (bi.present)
            ck_assert_uint_eq(bi.seq, seq);
        if (b == 1)
            ck_assert_int_eq(bi.present, 0);
    }
    store_snap_unref(sn);
    free(in);
    free(out);
    free(zero);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_batch_write_equals_single_writes)
{
    char *dir = tu_mkdtemp("st-batch");
    struct store_opts o;
    store_opts_init(&o);
    o.flags = STORE_CREATE | STORE_NOSYNC;
    o.workers = 3;
    struct store *st;
    ck_assert_int_eq(store_open(dir, &o, &st), 0);
    uint32_t bs = 1u << 17;
    enum { N = 24 };
    struct store_array a =
        mkarr(st, "batch", STORE_CODEC_ZSTD, 3, STORE_FILTER_SHUFFLE, 4, bs, N + 4);
    unsigned char *bufs[N];
    const void *raws[N];
    uint64_t blknos[N];
    for (int i = 0; i < N; i++) {
        bufs[i] = malloc(bs);
        if (i % 5 == 4)
            memset(bufs[i], 0, bs);
        else if (i % 7 == 3)
            tu_fill_random(bufs[i], bs, (uint64_t)i);
        else
            fill_counters(bufs[i], bs, (uint64_t)i << 24);
        raws[i] = bufs[i];
        blknos[i] = (uint64_t)i + (i > 10 ? 3 : 0);
    }
    struct store_txn *tx;
    ck_assert_int_eq(store_txn_begin(st, last_seq(st), N * (uint64_t)bs, &tx), 0);
    ck_assert_int_eq(store_txn_blocks_write(tx, &a, N, blknos, raws), 0);
    ck_assert_int_eq(store_txn_commit(tx, NULL), 0);
    unsigned char *out = malloc(bs);
    struct store_snap *sn;
    ck_assert_int_eq(store_snap_begin(st, &sn), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(store_block_read(sn, &a, blknos[i], out, 0), 0);
        ck_assert_msg(!memcmp(out, bufs[i], bs), "block %d", i);
    }
    struct store_array cat;
    ck_assert_int_eq(store_array_by_id(sn, a.id, &cat), 0);
    ck_assert_uint_eq(cat.stored_blocks, N - N / 5);
    store_snap_unref(sn);
    /* Not ascending: refused. */
    uint64_t bad[2] = {5, 4};
    ck_assert_int_eq(store_txn_begin(st, last_seq(st), 0, &tx), 0);
    ck_assert_int_eq(store_txn_blocks_write(tx, &a, 2, bad, raws), BA_EINVAL);
    store_txn_abort(tx);
    for (int i = 0; i < N; i++)
        free(bufs[i]);
    free(out);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_store_stat_counts)
{
    char *dir = tu_mkdtemp("st-stat");
    struct store *st = open_st(dir, 0, 0);
    uint32_t bs = 1u << 16;
    struct store_array a = mkarr(st, "x", STORE_CODEC_NONE, 0, 0, 8, bs, 4);
    mkarr(st, "y", STORE_CODEC_NONE, 0, 0, 8, bs, 4);
    unsigned char *in = malloc(bs);
    for (int k = 0; k < 3; k++) {
        tu_fill_random(in, bs, (uint64_t)k);
        ck_assert_int_eq(put_block(st, &a, 0, in), 0);
    }
    struct store_snap *held;
    ck_assert_int_eq(store_snap_begin(st, &held), 0);
    struct store_stat ss;
    ck_assert_int_eq(store_stat(st, &ss), 0);
    ck_assert_uint_eq(ss.last_seq, 5);
    ck_assert_uint_eq(ss.narrays, 2);
    ck_assert_uint_eq(ss.change_records, 5);
    ck_assert_uint_eq(ss.readers, 1);
    /* 1 TiB by default; less where the address space is restricted (e.g. TSan) */
    ck_assert_uint_le(ss.map_size, 1ull << 40);
    ck_assert_uint_ge(ss.map_size, 1ull << 30);
    ck_assert_uint_gt(ss.file_size, bs);
    ck_assert_uint_gt(ss.pages_used, bs / ss.page_size);
    ck_assert_uint_gt(ss.pages_free, 0); /* rewritten block freed its old run */
    store_snap_unref(held);
    free(in);
    store_close(st);
    tu_rmtree(dir);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("open");
    tcase_add_test(tc, test_store_open_missing_without_create_is_notfound);
    tcase_add_test(tc, test_store_open_file_is_notdb);
    tcase_add_test(tc, test_store_open_garbage_datamdb_is_notdb);
    tcase_add_test(tc, test_store_open_foreign_lmdb_is_notdb);
    tcase_add_test(tc, test_store_open_newer_version_is_eversion);
    tcase_add_test(tc, test_store_open_twice_in_process_is_busy);
    tcase_add_test(tc, test_store_open_rdonly_refuses_writes);
    suite_add_tcase(s, tc);
    tc = tcase_create("records");
    tcase_add_test(tc, test_store_codec_roundtrip);
    tcase_add_test(tc, test_store_shuffle_improves_int32_counters);
    tcase_add_test(tc, test_store_zstd_window_spans_the_block);
    tcase_add_test(tc, test_store_hole_and_tombstone_read_as_zeros);
    tcase_add_test(tc, test_store_uncompressed_payload_is_page_aligned);
    tcase_add_test(tc, test_store_checksum_corruption_detected);
    tcase_add_test(tc, test_store_compressed_corruption_detected);
    tcase_add_test(tc, test_store_batch_write_equals_single_writes);
    suite_add_tcase(s, tc);
    tc = tcase_create("snapshots");
    tcase_set_timeout(tc, 300); /* 8 reader threads: slow under TSan on a loaded machine */
    tcase_add_test(tc, test_store_data_survives_close_and_reopen);
    tcase_add_test(tc, test_store_snapshot_keeps_its_view);
    tcase_add_test(tc, test_store_threads_read_one_snapshot);
    suite_add_tcase(s, tc);
    tc = tcase_create("catalog");
    tcase_add_test(tc, test_store_array_names_validated);
    tcase_add_test(tc, test_store_array_list_in_name_order);
    tcase_add_test(tc, test_store_damaged_catalog_record_is_corrupt);
    tcase_add_test(tc, test_store_array_copy_holds_same_data);
    tcase_add_test(tc, test_store_stat_counts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(store_suite());
}
