/* SPDX-License-Identifier: MIT */
/*
 * Shared by the fuzz harnesses (tests/fuzz/fuzz_<name>.c). Each harness defines
 * LLVMFuzzerTestOneInput(); under libFuzzer (BA_BUILD_FUZZ=ON, clang) that is the
 * whole program, and in the normal build fuzz_main.c supplies a main() that replays
 * every file of the harness' corpus and regression directories, so past findings
 * stay covered by ctest.
 *
 * A harness reports a broken invariant (a wrong result rather than a memory error)
 * with FUZZ_CHECK, which aborts: libFuzzer saves the input as a crash.
 */
#ifndef BA_FUZZ_H
#define BA_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif /* BA_FUZZ_H */
