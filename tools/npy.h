/* SPDX-License-Identifier: MIT */
/*
 * numpy's .npy format: a strict, length-checked header parser and a writer that
 * produces the same bytes as numpy.save(). Pure functions over memory: no I/O, no
 * allocation, no global state, so a fuzzer can drive npy_header_parse() directly.
 *
 * Layout: "\x93NUMPY", major, minor, header length (2 bytes little-endian for
 * version 1.0, 4 bytes for 2.0 and 3.0), then a Python dict literal with exactly
 * the keys 'descr', 'fortran_order' and 'shape', padded with spaces and ended by a
 * newline so that the data starts at a multiple of 64 bytes. Version 3.0 only
 * allows UTF-8 in the header; the types supported here never need it.
 */
#ifndef BA_NPY_H
#define BA_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "bigarray.h"

#define NPY_HEADER_MAX    (1u << 20) /* longest header accepted (numpy's own limit is 10k) */
#define NPY_HEADER_PREFIX 12         /* bytes that always suffice to learn the header length */
#define NPY_WRITE_MAX     2048       /* npy_header_write() never needs more */

struct npy_header {
    int major, minor;  /* format version */
    ba_dtype dtype;    /* byte order '<', '>' or '|' */
    int fortran_order; /* 1 when the data is in Fortran order */
    int ndim;          /* 0 .. BA_MAX_DIMS */
    int64_t shape[BA_MAX_DIMS];
    uint64_t header_len; /* bytes before the data (or, on NPY_ETRUNC, bytes needed) */
    uint64_t data_len;   /* itemsize * product of shape: the exact data size */
};

#define NPY_OK     0
#define NPY_ETRUNC 1  /* buf holds less than the header: read h->header_len bytes */
#define NPY_EBAD   -1 /* not a valid header: err says what is wrong and at which byte */

/*
 * Parse the header at the start of buf (len bytes; more may follow). Returns
 * NPY_OK with *h filled; NPY_ETRUNC when buf ends before the header does (then
 * h->header_len is the number of bytes needed, or NPY_HEADER_PREFIX while the
 * length field itself is incomplete, and err describes the truncation for a caller
 * that has reached the end of the file); or NPY_EBAD with a message in err naming
 * the problem and its byte offset. Rejected: a bad magic or version, a header
 * longer than NPY_HEADER_MAX, dict syntax errors, missing, unknown or repeated
 * keys, fortran_order other than True/False, a shape that is not a tuple of
 * non-negative integers (or has more than BA_MAX_DIMS axes, or more than 2^63
 * bytes), and dtypes bigarray does not store (objects, strings, datetimes,
 * structured records, long doubles). err may be NULL when errlen is 0.
 */
int npy_header_parse(const void *buf, size_t len, struct npy_header *h, char *err, size_t errlen);

/*
 * Write the header numpy.save() would write for an array of this dtype, order and
 * shape into buf (cap bytes): version 1.0 unless the header needs 2.0, padded so
 * the data starts at a multiple of 64. Returns the header length, or 0 when cap is
 * too small (NPY_WRITE_MAX always suffices) or the dtype cannot be written.
 */
size_t npy_header_write(void *buf, size_t cap, const ba_dtype *dt, int fortran_order, int ndim,
                        const int64_t *shape);

/* numpy's descr string for a dtype ("<f8", "|b1", "|V12") into buf (>= 16 bytes);
 * returns buf, or NULL if the dtype has no .npy descr. */
char *npy_descr_format(const ba_dtype *dt, char *buf);

#endif /* BA_NPY_H */
