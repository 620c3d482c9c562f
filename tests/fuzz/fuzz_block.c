/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the block-record decoder of store/ (store_blk_hdr_parse, store_block_decode):
 * the input is the LMDB value of one block record, header and payload, as a damaged
 * or hostile database file could hold it. Every input is decoded twice: as it is,
 * and with the header's own checksum (bytes 40..47) recomputed, so the fuzzer gets
 * past that gate and reaches the field checks, zstd, the unshuffle and the payload
 * checksum. A record the header parser accepts is decoded, as store_block_read()
 * does, into a buffer of exactly its declared raw length (records claiming more than
 * 1 MiB are skipped) with a decompression slot like the store's pool hands out. The
 * decoder must return 0 or BA_ECORRUPT with a reason: never crash, read or write out
 * of bounds, or leak.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "store_internal.h"

#define FUZZ_RAW_CAP (1u << 20)

static struct store_dslot slot;

static void slot_init(void)
{
    if (slot.z)
        return;
    slot.z = ZSTD_createDCtx();
    slot.scratch = malloc(STORE_SHUFFLE_CHUNK);
    FUZZ_CHECK(slot.z && slot.scratch);
}

static void decode(const unsigned char *val, size_t len)
{
    struct store_blk_hdr h;
    const char *why = NULL;
    int rc = store_blk_hdr_parse(val, len, &h, &why);
    if (rc) {
        FUZZ_CHECK(rc == BA_ECORRUPT && why);
        return;
    }
    FUZZ_CHECK(len >= STORE_BLK_HDR && h.format == STORE_BLK_FORMAT);

    /* What the parser accepted is what the writer would write. */
    unsigned char again[STORE_BLK_HDR];
    store_blk_hdr_write(again, &h);
    FUZZ_CHECK(memcmp(again, val, 36) == 0);

    if (h.flags & STORE_BLK_TOMBSTONE) {
        struct store_blk_hdr h2;
        FUZZ_CHECK(len == STORE_BLK_HDR && !h.stored_len && !h.raw_len);
        FUZZ_CHECK(store_blk_hdr_parse(again, STORE_BLK_HDR, &h2, &why) == 0 && h2.seq == h.seq);
        return;
    }
    FUZZ_CHECK(h.payload_off >= STORE_BLK_HDR && h.payload_off <= len &&
               h.stored_len <= len - h.payload_off);
    FUZZ_CHECK(h.codec == STORE_CODEC_NONE || h.codec == STORE_CODEC_ZSTD);
    if (h.raw_len > FUZZ_RAW_CAP)
        return;
    /* Exactly raw_len bytes, as the pager's block buffer: any overrun is caught. */
    unsigned char *buf = malloc(h.raw_len);
    if (!buf) {
        FUZZ_CHECK(h.raw_len == 0);
        return;
    }
    why = NULL;
    /* store_block_read() passes no slot for uncompressed records. */
    rc = store_block_decode(h.codec == STORE_CODEC_NONE ? NULL : &slot, &h, val + h.payload_off,
                            buf, &why);
    FUZZ_CHECK(rc == 0 || (rc == BA_ECORRUPT && why));
    if (rc == 0)
        FUZZ_CHECK(store_hash(buf, h.raw_len) == h.checksum);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    slot_init();
    decode(data, size);
    if (size < STORE_BLK_HDR)
        return 0;
    unsigned char *copy = malloc(size);
    FUZZ_CHECK(copy);
    memcpy(copy, data, size);
    store_le64_put(copy + 40, store_hash(copy, 40));
    decode(copy, size);
    free(copy);
    return 0;
}
