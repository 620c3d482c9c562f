/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the change-record decoder of store/ (store_chg_decode): the input is the
 * LMDB value of one change record (a header, LEB128-encoded entries, a checksum).
 * Every input is decoded as it is, and again with its trailing checksum recomputed,
 * so the fuzzer reaches the varint reader and the entry checks. The decoder is run
 * with a callback that collects the entries (as store_changes() does), with no
 * callback (as verify does), and with a callback that stops early; a record that
 * decodes must re-encode (store_chg_add, store_chg_finish: what commits write) to a
 * record that decodes to the same entries. Never a crash, an out-of-bounds read or
 * a leak.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "store_internal.h"

#define FUZZ_SEQ   UINT64_C(12345)
#define FUZZ_STOP  (-777)
#define FUZZ_MAXCH 4096 /* entries collected; more are counted only */

struct collect {
    struct store_change v[FUZZ_MAXCH];
    size_t n;       /* entries seen */
    size_t stop_at; /* return FUZZ_STOP at this entry (SIZE_MAX: never) */
};

static struct collect first, second;

static int collect_cb(const struct store_change *c, void *ctx)
{
    struct collect *cl = ctx;
    FUZZ_CHECK(c->seq == FUZZ_SEQ);
    if (cl->n == cl->stop_at)
        return FUZZ_STOP;
    if (cl->n < FUZZ_MAXCH)
        cl->v[cl->n] = *c;
    cl->n++;
    return 0;
}

static void decode(const unsigned char *val, size_t len)
{
    const char *why = NULL;
    int rc0 = store_chg_decode(val, len, FUZZ_SEQ, NULL, NULL, &why);
    FUZZ_CHECK(rc0 == 0 || (rc0 == BA_ECORRUPT && why));

    first.n = 0;
    first.stop_at = SIZE_MAX;
    why = NULL;
    int rc = store_chg_decode(val, len, FUZZ_SEQ, collect_cb, &first, &why);
    FUZZ_CHECK(rc == rc0);
    if (rc)
        return;

    if (first.n) {
        /* A callback's nonzero return stops the walk and is passed on. */
        struct collect *stopper = &second;
        stopper->n = 0;
        stopper->stop_at = first.n / 2;
        FUZZ_CHECK(store_chg_decode(val, len, FUZZ_SEQ, collect_cb, stopper, &why) == FUZZ_STOP);
        FUZZ_CHECK(stopper->n == first.n / 2);
    }
    if (first.n > FUZZ_MAXCH)
        return;

    struct store_chg_buf b;
    memset(&b, 0, sizeof b);
    for (size_t i = 0; i < first.n; i++)
        store_chg_add(&b, first.v[i].array_id, first.v[i].flags, first.v[i].first, first.v[i].n);
    FUZZ_CHECK(store_chg_finish(&b) == 0);
    second.n = 0;
    second.stop_at = SIZE_MAX;
    FUZZ_CHECK(store_chg_decode(b.p, b.len, FUZZ_SEQ, collect_cb, &second, &why) == 0);
    FUZZ_CHECK(second.n == first.n);
    for (size_t i = 0; i < first.n; i++) {
        const struct store_change *x = &first.v[i], *y = &second.v[i];
        FUZZ_CHECK(x->array_id == y->array_id && x->flags == y->flags);
        FUZZ_CHECK(x->first == y->first && x->n == y->n);
    }
    FUZZ_CHECK(b.len <= len); /* canonical varints are never longer */
    store_chg_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode(data, size);
    if (size < 8)
        return 0;
    unsigned char *copy = malloc(size);
    FUZZ_CHECK(copy);
    memcpy(copy, data, size);
    store_le64_put(copy + size - 8, store_hash(copy, size - 8));
    decode(copy, size);
    free(copy);
    return 0;
}
