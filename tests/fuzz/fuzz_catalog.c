/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the catalog record decoder of store/ (store_arr_decode): the input is the
 * LMDB value of one array record. Every input is decoded as it is, and again with
 * its length field (bytes 8..11) and trailing checksum recomputed, so the fuzzer gets
 * past those gates to the field checks and store_arr_validate(). A record that
 * decodes must re-encode to the same length and decode back to the same array
 * (store_arr_encode is what commits write), and the derived block count must be
 * computable. Never a crash, an out-of-bounds read or a leak.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "store_internal.h"

static void check_same(const struct store_array *a, const struct store_array *b)
{
    FUZZ_CHECK(a->id == b->id);
    FUZZ_CHECK(strcmp(a->name, b->name) == 0);
    FUZZ_CHECK(strncmp(a->dtype, b->dtype, BA_DTYPE_STRLEN) == 0);
    FUZZ_CHECK(a->itemsize == b->itemsize && a->ndim == b->ndim);
    for (uint32_t i = 0; i < a->ndim; i++)
        FUZZ_CHECK(a->shape[i] == b->shape[i]);
    FUZZ_CHECK(a->order == b->order && a->block_size == b->block_size);
    FUZZ_CHECK(a->codec == b->codec && a->level == b->level && a->filters == b->filters);
    FUZZ_CHECK(a->created_seq == b->created_seq && a->meta_seq == b->meta_seq &&
               a->data_seq == b->data_seq);
    FUZZ_CHECK(a->stored_bytes == b->stored_bytes && a->stored_blocks == b->stored_blocks);
}

static void decode(const unsigned char *val, size_t len)
{
    struct store_array a;
    const char *why = NULL;
    int rc = store_arr_decode(val, len, &a, &why);
    if (rc) {
        FUZZ_CHECK(rc == BA_ECORRUPT && why);
        return;
    }
    FUZZ_CHECK(a.ndim <= BA_MAX_DIMS);
    FUZZ_CHECK(strlen(a.name) >= 1 && strlen(a.name) <= BA_NAME_MAX);
    FUZZ_CHECK(store_arr_validate(&a) == 0);
    (void)store_arr_nblocks(&a);

    size_t elen = store_arr_encoded_len(&a);
    FUZZ_CHECK(elen == len);
    unsigned char *enc = malloc(elen);
    FUZZ_CHECK(enc);
    store_arr_encode(&a, enc, elen);
    struct store_array b;
    FUZZ_CHECK(store_arr_decode(enc, elen, &b, &why) == 0);
    check_same(&a, &b);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode(data, size);
    if (size < 16)
        return 0;
    unsigned char *copy = malloc(size);
    FUZZ_CHECK(copy);
    memcpy(copy, data, size);
    store_le32_put(copy + 8, (uint32_t)size);
    store_le64_put(copy + size - 8, store_hash(copy, size - 8));
    decode(copy, size);
    free(copy);
    return 0;
}
