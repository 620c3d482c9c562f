/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the .npy header parser of the CLI (tools/npy.c, npy_header_parse): the input
 * is the start of a file handed to `bigarray import`. Checked besides memory errors:
 *
 *   - the result is NPY_OK, NPY_ETRUNC (then more bytes are really needed) or
 *     NPY_EBAD with a message; NULL/0 and tiny error buffers give the same answer;
 *   - the parser reads nothing past the header: parsing exactly the header's bytes
 *     (in an exact-size buffer) gives the same answer as parsing the whole input, and
 *     the two-step read of cmd_import (a 12-byte prefix, then header_len bytes) too;
 *   - an accepted header is sane (ndim, non-negative shape, a supported dtype, data
 *     length = itemsize * product of shape < 2^63), and npy_header_write() of what
 *     was parsed gives a 64-byte aligned header that parses back to the same array.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "npy.h"

static void check_same(const struct npy_header *a, const struct npy_header *b)
{
    FUZZ_CHECK(a->major == b->major && a->minor == b->minor);
    FUZZ_CHECK(a->dtype.kind == b->dtype.kind && a->dtype.byteorder == b->dtype.byteorder &&
               a->dtype.itemsize == b->dtype.itemsize);
    FUZZ_CHECK(a->fortran_order == b->fortran_order && a->ndim == b->ndim);
    for (int i = 0; i < a->ndim; i++)
        FUZZ_CHECK(a->shape[i] == b->shape[i]);
    FUZZ_CHECK(a->header_len == b->header_len && a->data_len == b->data_len);
}

static void check_ok(const struct npy_header *h, size_t size)
{
    FUZZ_CHECK(h->major >= 1 && h->major <= 3 && h->minor == 0);
    FUZZ_CHECK(h->header_len <= size);
    FUZZ_CHECK(h->ndim >= 0 && h->ndim <= BA_MAX_DIMS);
    FUZZ_CHECK(h->dtype.itemsize >= 1 && strchr("biufcV", h->dtype.kind) && h->dtype.kind);
    FUZZ_CHECK(h->dtype.byteorder == '<' || h->dtype.byteorder == '>' || h->dtype.byteorder == '|');
    uint64_t bytes = h->dtype.itemsize;
    int zero = 0;
    for (int i = 0; i < h->ndim; i++) {
        FUZZ_CHECK(h->shape[i] >= 0);
        if (h->shape[i] == 0)
            zero = 1;
        else if (!zero)
            FUZZ_CHECK(!__builtin_mul_overflow(bytes, (uint64_t)h->shape[i], &bytes) &&
                       bytes <= (uint64_t)INT64_MAX);
    }
    FUZZ_CHECK(h->data_len == (zero ? 0 : bytes));
}

static void round_trip(const struct npy_header *h)
{
    unsigned char *buf = malloc(NPY_WRITE_MAX);
    FUZZ_CHECK(buf);
    size_t n = npy_header_write(buf, NPY_WRITE_MAX, &h->dtype, h->fortran_order, h->ndim, h->shape);
    FUZZ_CHECK(n > 0 && n <= NPY_WRITE_MAX && n % 64 == 0);
    struct npy_header w;
    char err[128];
    int rc = npy_header_parse(buf, n, &w, err, sizeof err);
    if (rc != NPY_OK)
        fprintf(stderr, "rewritten header does not parse: %s\n", err);
    FUZZ_CHECK(rc == NPY_OK);
    FUZZ_CHECK(w.header_len == n && w.ndim == h->ndim && w.fortran_order == h->fortran_order);
    FUZZ_CHECK(w.dtype.kind == h->dtype.kind && w.dtype.itemsize == h->dtype.itemsize &&
               w.dtype.byteorder == h->dtype.byteorder);
    for (int i = 0; i < h->ndim; i++)
        FUZZ_CHECK(w.shape[i] == h->shape[i]);
    FUZZ_CHECK(w.data_len == h->data_len);
    free(buf);
}

/* Parse the first len bytes of data from an exact-size copy. */
static int parse_exact(const uint8_t *data, size_t len, struct npy_header *h)
{
    unsigned char *copy = malloc(len ? len : 1);
    FUZZ_CHECK(copy);
    memcpy(copy, data, len);
    char err[200];
    int rc = npy_header_parse(copy, len, h, err, sizeof err);
    free(copy);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct npy_header h, h2;
    char err[256];
    int rc = npy_header_parse(data, size, &h, err, sizeof err);
    FUZZ_CHECK(rc == NPY_OK || rc == NPY_ETRUNC || rc == NPY_EBAD);
    FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
    if (rc != NPY_OK)
        FUZZ_CHECK(err[0] != '\0');

    /* No message buffer, and buffers too small for the message. */
    FUZZ_CHECK(npy_header_parse(data, size, &h2, NULL, 0) == rc);
    if (rc == NPY_OK)
        check_same(&h, &h2);
    for (size_t k = 1; k <= 9; k += 4) {
        char small[9];
        memset(small, 'x', sizeof small);
        FUZZ_CHECK(npy_header_parse(data, size, &h2, small, k) == rc);
        FUZZ_CHECK(memchr(small, '\0', k) != NULL);
        for (size_t j = k; j < sizeof small; j++)
            FUZZ_CHECK(small[j] == 'x');
    }

    if (rc == NPY_ETRUNC) {
        FUZZ_CHECK(h.header_len > size);
        return 0;
    }

    /* cmd_import's reads: a prefix, then the whole header. */
    size_t pre = size < NPY_HEADER_PREFIX ? size : NPY_HEADER_PREFIX;
    int rp = parse_exact(data, pre, &h2);
    if (rp == NPY_ETRUNC && h2.header_len <= size && h2.header_len > pre) {
        size_t hl = (size_t)h2.header_len;
        FUZZ_CHECK(parse_exact(data, hl, &h2) == rc);
        if (rc == NPY_OK)
            check_same(&h, &h2);
    } else if (rc == NPY_OK) {
        FUZZ_CHECK(rp == NPY_OK && h.header_len <= pre);
    }

    if (rc != NPY_OK)
        return 0;
    check_ok(&h, size);
    FUZZ_CHECK(parse_exact(data, (size_t)h.header_len, &h2) == NPY_OK);
    check_same(&h, &h2);
    round_trip(&h);
    return 0;
}
