/* SPDX-License-Identifier: MIT */
/*
 * Printing values the way numpy's str() does: nested brackets, columns of equal
 * width, floats with the fewest digits (up to 8 after the point) that identify each
 * value, scientific notation when magnitudes span too much, lines wrapped at 75
 * columns, and arrays of more than 1000 elements summarised with "..." (3 items at
 * each end of every long axis). A 0-d selection prints as a scalar. The JSON form
 * nests lists the same way and keeps every digit.
 */
#ifndef BA_PRINT_H
#define BA_PRINT_H

#include <stdio.h>

#include "bigarray.h"
#include "json.h"

/* Print the view numpy-style, followed by a newline. full: never summarise.
 * Every element shown is read once before anything is allocated or written, so a
 * SIGBUS from a block that cannot be loaded arrives in that first pass. Returns 0,
 * or -1 when the selection is too large to print (message in err). */
int print_view(FILE *f, const ba_view *v, int full, char *err, size_t errlen);

/* The view's values as nested JSON lists (a bare value for 0-d). */
void print_view_json(struct json *j, const ba_view *v);

/* One value as text on its own, as numpy prints a scalar ("0.1", "(1+2j)", "True").
 * Returns buf. */
char *print_scalar(const ba_dtype *dt, const void *p, char *buf, size_t len);

#endif /* BA_PRINT_H */
