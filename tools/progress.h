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
/* Erase whatever bar or note is on the terminal (error reports call this first, so
 * a message never lands at the end of a bar). */
void progress_hide(void);
/* On a terminal, after an operation that drew a bar: one line saying what happens
 * now ("committing 1.00 GiB"), erased by the next progress_end(). */
void progress_note(struct progress *p, const char *what);

#endif /* BA_PROGRESS_H */
