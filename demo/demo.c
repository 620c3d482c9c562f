/* SPDX-License-Identifier: MIT */
/*
 * The bigarray demo, in the spirit of wendelin.core's demo_zbigarray: an array four
 * times bigger than the RAM budget this program gives itself is filled through
 * views, committed, reopened, and averaged twice, once with a plain C loop and once
 * with BLAS (cblas_ddot against a vector of ones), as if it were in RAM. Then it
 * appends rows, shrinks and regrows the array, and shows that an abort discards.
 * Every step prints what it does; the exit status is 0 only if every check passed.
 *
 *   usage: demo [database-directory]        (default ./demo.db)
 *
 * It uses nothing but the public header, bigarray.h.
 */
#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bigarray.h"

#define RAM_BUDGET (64ull << 20) /* what the pager may keep in RAM */
#define COLS       1024          /* float64 columns: 8 KiB per row */
#define ROWS       (4 * 8192)    /* 32768 rows x 8 KiB = 256 MiB = 4x the budget */
#define CHUNK_ROWS 1024          /* rows filled (and averaged) per view: 8 MiB */
#define APPEND     1000          /* rows appended later */

static int failures;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* Report a failed call with bigarray's own explanation and stop. */
static void die(const char *what, int rc)
{
    fprintf(stderr, "demo: %s failed: %s (%s)\n", what, ba_strerror(rc), ba_errmsg());
    exit(1);
}

#define CALL(expr)                                                                                 \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_)                                                                                   \
            die(#expr, rc_);                                                                       \
    } while (0)

static void check(int ok, const char *what)
{
    say("  %s %s", ok ? "ok:  " : "FAIL:", what);
    failures += !ok;
}

/* The value the demo stores at (row, col): easy to average by hand. */
static double value(int64_t row, int64_t col)
{
    return (double)(row % 1000) + (double)col / COLS;
}

/* Mean of value() over rows [0, nrows). */
static double expected_mean(int64_t nrows)
{
    double sum = 0;
    for (int64_t r = 0; r < nrows; r++)
        sum += (double)(r % 1000) * COLS + (COLS - 1) / 2.0;
    return sum / ((double)nrows * COLS);
}

static ba_view view_rows(ba_array *a, int64_t first, int64_t last)
{
    ba_slice sl = {BA_SLICE_RANGE, first, last, BA_SLICE_NONE};
    ba_view v;
    CALL(ba_array_view(a, &sl, 1, 0, &v));
    return v;
}

/* Fill rows [first, last) chunk by chunk: each chunk is a fresh view of CHUNK_ROWS rows,
 * written as an ordinary 2-D C array. */
static void fill(ba_array *a, int64_t first, int64_t last)
{
    double t0 = now();
    for (int64_t r0 = first; r0 < last; r0 += CHUNK_ROWS) {
        int64_t r1 = r0 + CHUNK_ROWS < last ? r0 + CHUNK_ROWS : last;
        ba_view v = view_rows(a, r0, r1);
        double(*rows)[COLS] = v.data;
        for (int64_t r = r0; r < r1; r++)
            for (int64_t c = 0; c < COLS; c++)
                rows[r - r0][c] = value(r, c);
        ba_view_release(&v);
        if ((r1 - first) % (8 * CHUNK_ROWS) == 0 || r1 == last)
            say("  filled rows %6lld..%6lld  (%3.0f%%, %.0f MiB/s)", (long long)first,
                (long long)r1, 100.0 * (double)(r1 - first) / (double)(last - first),
                (double)(r1 - first) * COLS * 8 / (1 << 20) / (now() - t0));
    }
}

/* The mean with a plain C loop over one view of the whole array. */
static double mean_loop(ba_array *a, int64_t nrows)
{
    ba_view v = view_rows(a, 0, nrows);
    const double *p = v.data;
    double sum = 0;
    for (int64_t i = 0; i < nrows * COLS; i++)
        sum += p[i];
    ba_view_release(&v);
    return sum / ((double)nrows * COLS);
}

/* The mean with BLAS: dot product of each chunk with a vector of ones. */
static double mean_blas(ba_array *a, int64_t nrows)
{
    static double ones[CHUNK_ROWS * COLS];
    for (size_t i = 0; i < sizeof ones / sizeof ones[0]; i++)
        ones[i] = 1.0;
    ba_view v = view_rows(a, 0, nrows);
    const double *p = v.data;
    double sum = 0;
    for (int64_t i = 0; i < nrows * COLS; i += CHUNK_ROWS * COLS) {
        int64_t n = nrows * COLS - i < CHUNK_ROWS * COLS ? nrows * COLS - i : CHUNK_ROWS * COLS;
        sum += cblas_ddot((int)n, p + i, 1, ones, 1);
    }
    ba_view_release(&v);
    return sum / ((double)nrows * COLS);
}

static void print_pager(ba_db *db)
{
    ba_pager_stat st;
    st.size = sizeof st;
    CALL(ba_db_pager_stat(db, &st));
    say("  pager: %llu blocks loaded, %llu evicted, %llu spilled, RAM in use %.1f of %.0f MiB",
        (unsigned long long)st.loads, (unsigned long long)st.evictions,
        (unsigned long long)st.spills, (double)st.ram_used / (1 << 20),
        (double)st.ram_limit / (1 << 20));
}

static int drop_if_exists(const char *name, void *ctx)
{
    if (!strcmp(name, "demo"))
        CALL(ba_array_drop(ctx, name));
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "./demo.db";
    double t;
    say("bigarray %s demo", ba_version(NULL, NULL, NULL));

    /* 1. Open (or create) the database with a RAM budget of our own. */
    ba_db_options opts;
    ba_db_options_init(&opts);
    opts.flags = BA_DB_CREATE;
    opts.ram_limit = RAM_BUDGET;
    ba_db *db;
    CALL(ba_db_open(path, &opts, &db));
    say("1. opened %s: RAM budget %llu MiB, %s pager", path, (unsigned long long)(RAM_BUDGET >> 20),
        ba_db_pager(db) == BA_PAGER_UFFD ? "userfaultfd" : "SIGSEGV");

    /* 2. Create a float64 array four times the budget (dropping a previous run's). */
    ba_session *s;
    CALL(ba_session_begin(db, &s));
    CALL(ba_array_list(s, drop_if_exists, s));
    ba_array_spec spec;
    ba_array_spec_init(&spec);
    CALL(ba_dtype_parse("float64", &spec.dtype));
    spec.ndim = 2;
    spec.shape[0] = ROWS;
    spec.shape[1] = COLS;
    ba_array *a;
    CALL(ba_array_create(s, "demo", &spec, &a));
    say("2. created array 'demo' of shape (%d, %d) float64: %d MiB, %dx the RAM budget", ROWS, COLS,
        ROWS * COLS * 8 >> 20, (int)((uint64_t)ROWS * COLS * 8 / RAM_BUDGET));

    /* 3. Fill it through views, chunk by chunk, and commit. */
    say("3. filling it through views of %d rows (%d MiB) each", CHUNK_ROWS,
        CHUNK_ROWS * COLS * 8 >> 20);
    fill(a, 0, ROWS);
    print_pager(db);
    t = now();
    CALL(ba_session_commit(s));
    say("  committed as snapshot %llu in %.2f s", (unsigned long long)ba_session_snapshot(s),
        now() - t);
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);

    /* 4. Reopen, and average it twice. */
    CALL(ba_db_open(path, &opts, &db));
    CALL(ba_session_begin(db, &s));
    CALL(ba_array_open(s, "demo", &a));
    ba_array_info info;
    info.size = sizeof info;
    CALL(ba_array_info_get(a, &info));
    say("4. reopened: 'demo' has shape (%lld, %lld), %.0f MiB stored in %llu blocks",
        (long long)info.shape[0], (long long)info.shape[1], (double)info.stored_bytes / (1 << 20),
        (unsigned long long)info.stored_blocks);
    double want = expected_mean(ROWS);
    t = now();
    double m1 = mean_loop(a, ROWS);
    double dt = now() - t;
    say("  mean with a C loop:  %.9f  (%.2f s, %.0f MiB/s)", m1, dt,
        (double)info.nbytes / (1 << 20) / dt);
    t = now();
    double m2 = mean_blas(a, ROWS);
    dt = now() - t;
    say("  mean with cblas_ddot: %.9f  (%.2f s, %.0f MiB/s)", m2, dt,
        (double)info.nbytes / (1 << 20) / dt);
    check(fabs(m1 - want) < 1e-9 * want, "the C loop's mean is the expected one");
    check(fabs(m2 - want) < 1e-9 * want, "the BLAS mean is the expected one");
    print_pager(db);

    /* 5. Append rows: only the new bytes are written. */
    size_t nbytes = (size_t)APPEND * COLS * sizeof(double);
    double *rows = malloc(nbytes);
    for (int64_t r = 0; r < APPEND; r++)
        for (int64_t c = 0; c < COLS; c++)
            rows[r * COLS + c] = value(ROWS + r, c);
    int64_t ashape[2] = {APPEND, COLS};
    t = now();
    CALL(ba_array_append(a, rows, 2, ashape, NULL));
    CALL(ba_session_commit(s));
    free(rows);
    CALL(ba_array_info_get(a, &info));
    say("5. appended %d rows and committed in %.2f s: shape (%lld, %lld)", APPEND, now() - t,
        (long long)info.shape[0], (long long)info.shape[1]);
    check(info.shape[0] == ROWS + APPEND, "the array grew by the appended rows");
    double m3 = mean_loop(a, ROWS + APPEND);
    check(fabs(m3 - expected_mean(ROWS + APPEND)) < 1e-9 * m3, "the mean includes them");

    /* 6. Resize: shrink to half, commit, grow back: the regrown rows are zeros. */
    int64_t half[2] = {ROWS / 2, COLS}, full[2] = {ROWS, COLS};
    CALL(ba_array_resize(a, 2, half));
    CALL(ba_session_commit(s));
    CALL(ba_array_resize(a, 2, full));
    CALL(ba_session_commit(s));
    ba_view v = view_rows(a, ROWS / 2 - 1, ROWS / 2 + 1);
    const double(*two)[COLS] = v.data;
    say("6. shrank to %d rows, committed, grew back to %d: row %d starts %.3f, row %d starts %.3f",
        ROWS / 2, ROWS, ROWS / 2 - 1, two[0][0], ROWS / 2, two[1][0]);
    check(two[0][0] == value(ROWS / 2 - 1, 0) && two[1][0] == 0 && two[1][COLS - 1] == 0,
          "rows past the old end came back as zeros, not old data");
    ba_view_release(&v);

    /* 7. Abort discards: change a value, see it, abort, see the committed one again. */
    v = view_rows(a, 0, 1);
    double *first = v.data;
    double before = first[5];
    first[5] = 12345.0;
    say("7. wrote 12345 at [0, 5] (was %.4f); the session sees %.1f", before, first[5]);
    CALL(ba_session_abort(s));
    say("  after abort it sees %.4f again", first[5]);
    check(first[5] == before, "abort discarded the uncommitted change");
    ba_view_release(&v);

    print_pager(db);
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    if (failures) {
        say("demo: %d check(s) FAILED", failures);
        return 1;
    }
    say("demo: every check passed");
    return 0;
}
