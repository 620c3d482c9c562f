/* SPDX-License-Identifier: MIT */
/*
 * A progress bar on stderr for long operations: percentage, bytes done and total,
 * rate and ETA, redrawn at most ten times a second. Shown only when stderr is a
 * terminal and --quiet was not given, and only once an operation has run for half a
 * second, so short commands never draw it.
 */
#ifndef BA_PROGRESS_H
#define BA_PROGRESS_H

#include <stdint.h>

struct progress {
    int enabled;
    int drawn;
    const char *label;
    uint64_t total;
    double start, last;
};

void progress_begin(struct progress *p, const char *label, uint64_t total, int quiet);
void progress_update(struct progress *p, uint64_t done);
/* Erase the bar (if drawn). */
void progress_end(struct progress *p);

#endif /* BA_PROGRESS_H */
