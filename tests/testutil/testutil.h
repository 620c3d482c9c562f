/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the Check suites: per-test temporary directories, skipping
 * with a reason (exit code 77), running a suite, and deterministic data.
 */
#ifndef BA_TESTUTIL_H
#define BA_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* Create a fresh directory named after `tag` in the test program's own directory under
 * $TMPDIR (or /tmp), which the program's exit removes with anything a failed test left;
 * returns a malloc'd path. Aborts the test on failure. */
char *tu_mkdtemp(const char *tag);
/* Remove a directory tree (best effort) and free the path. */
void tu_rmtree(char *path);
/* Join dir and name into a malloc'd path. */
char *tu_path(const char *dir, const char *name);

/* The length of a file's leading data: up to its first hole (data.mdb of a database
 * opened with the writable map is a sparse file as long as the LMDB map). */
uint64_t tu_data_len(int fd);

/* Print "SKIP: reason" and exit 77 (ctest counts it as skipped, never passed). */
_Noreturn void tu_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run a suite with CK_ENV-driven settings; returns the process exit status. */
int tu_run(Suite *s);

/* splitmix64: deterministic pseudo-random numbers for test data. */
static inline uint64_t tu_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* Fill buf with n pseudo-random bytes. */
void tu_fill_random(void *buf, size_t n, uint64_t seed);

/* Read the byte at p with a SIGBUS handler installed for that read only: 1 if the read
 * raised SIGBUS (caught; *fault_addr, if not NULL, gets the signal's address), 0 if it
 * read. Per thread. */
int tu_sigbus_reading(const volatile void *p, void **fault_addr);

/* /proc/self/maps: the permissions of the mapping holding addr ("none" if nothing is
 * mapped there) and, with is_file, whether that mapping names `path`. */
void tu_maps_vma(const void *addr, const char *path, char perms[5], int *is_file);
/* The number of lines of /proc/self/maps (the process's VMAs), or with `needle` of
 * those naming it; -1 if it cannot be read (no Check assert: callable in a child). */
long tu_maps_count(const char *needle);

#endif
