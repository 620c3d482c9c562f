/* SPDX-License-Identifier: MIT */
/*
 * Elements of every dtype as values: loading one element (in either byte order)
 * into a tagged value, converting runs of elements to doubles for statistics,
 * IEEE half-precision conversions, and parsing the text of a value for `set`.
 */
#ifndef BA_ELEM_H
#define BA_ELEM_H

#include <stddef.h>
#include <stdint.h>

#include "bigarray.h"

enum elem_class { ELEM_BOOL, ELEM_INT, ELEM_UINT, ELEM_FLOAT, ELEM_COMPLEX, ELEM_VOID };

struct elem_val {
    int cls;    /* enum elem_class */
    int64_t i;  /* ELEM_INT, ELEM_BOOL */
    uint64_t u; /* ELEM_UINT */
    double re;  /* ELEM_FLOAT; ELEM_COMPLEX real part */
    double im;  /* ELEM_COMPLEX imaginary part */
};

/* The class of a dtype. */
int elem_class_of(const ba_dtype *dt);
/* Nonzero when the dtype's bytes are not in this machine's order. */
int elem_swapped(const ba_dtype *dt);
/* Load the element at p. Records (ELEM_VOID) only get their class. */
void elem_get(const ba_dtype *dt, const void *p, struct elem_val *v);

/* Convert n elements at p (stride in bytes) of a real dtype (bool, int, uint,
 * float) to doubles. */
void elem_run_to_double(const ba_dtype *dt, const unsigned char *p, int64_t stride, int64_t n,
                        double *out);

double elem_half_to_double(uint16_t h);
uint16_t elem_double_to_half(double d);

/* Parse text as a value of the dtype into out (itemsize bytes, in the dtype's byte
 * order). Integers must be in range; floats accept nan and inf; complex "1+2j",
 * "(1-2j)", "3j" or a real; bools true/false/1/0; records hex bytes "0x0a0b..."
 * (exactly itemsize bytes) or "0". Returns 0 or -1 with a message in err. */
int elem_parse(const ba_dtype *dt, const char *text, void *out, char *err, size_t errlen);

#endif /* BA_ELEM_H */
