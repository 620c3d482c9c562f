/* SPDX-License-Identifier: MIT */
/* Threads. Pattern 1: one session per thread, each committing on its own (conflicts
 * only where their blocks overlap). Pattern 2: threads share one session's views and
 * write disjoint parts; one thread commits after the others have stopped. */
#include <bigarray.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define NT   4  /* threads */
#define ROWS 64 /* rows per thread: 64 rows of 512 float64 = 4 blocks of 64 KiB */
#define COLS 512

static ba_db *db;

static void check(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", what, ba_strerror(rc), ba_errmsg());
        exit(1);
    }
}

/* Fill rows [first, first + ROWS) of v (a view of the whole array) with value. */
static void fill(const ba_view *v, int first, double value)
{
    double(*rows)[COLS] = v->data;
    for (int r = first; r < first + ROWS; r++)
        for (int c = 0; c < COLS; c++)
            rows[r][c] = value;
}

/* Pattern 1: a session of its own; retry on conflict (see retry.c). */
static void *own_session(void *arg)
{
    int id = (int)(intptr_t)arg;
    ba_session *s;
    ba_array *a;
    check(ba_session_begin(db, &s), "begin");
    check(ba_array_open(s, "m", &a), "open");
    for (int attempt = 0;; attempt++) {
        ba_view v;
        check(ba_array_view(a, NULL, 0, 0, &v), "view");
        fill(&v, id * ROWS, id + 1);
        ba_view_release(&v);
        int rc = ba_session_commit(s);
        if (rc != BA_ECONFLICT || attempt == 10) {
            check(rc, "commit");
            break;
        }
        check(ba_session_abort(s), "abort");
    }
    ba_array_close(a);
    ba_session_end(s);
    return NULL;
}

/* Pattern 2: a view of a shared session; no commit here. */
static void *shared_view(void *arg)
{
    const ba_view *v = arg;
    static int next;
    int id = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
    fill(v, id * ROWS, 10 * (id + 1));
    return NULL;
}

/* Sum of the array as a fresh session of this process sees it. */
static double sum_all(void)
{
    ba_session *s;
    ba_array *a;
    ba_view v;
    check(ba_session_begin(db, &s), "begin");
    check(ba_array_open(s, "m", &a), "open");
    check(ba_array_view(a, NULL, 0, BA_VIEW_READONLY, &v), "view");
    double sum = 0;
    for (uint64_t i = 0; i < ba_view_size(&v); i++)
        sum += ((const double *)v.data)[i];
    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    return sum;
}

int main(void)
{
    ba_db_options opts;
    ba_db_options_init(&opts);
    opts.flags = BA_DB_CREATE;
    check(ba_db_open("data.db", &opts, &db), "open"); /* one handle for every thread */
    ba_session *s;
    ba_array *a;
    check(ba_session_begin(db, &s), "begin");
    ba_array_spec spec;
    ba_array_spec_init(&spec);
    spec.ndim = 2;
    spec.shape[0] = NT * ROWS;
    spec.shape[1] = COLS;
    spec.block_size = 64 << 10;
    check(ba_array_create(s, "m", &spec, &a), "create");
    check(ba_session_commit(s), "commit");

    pthread_t th[NT];
    for (int i = 0; i < NT; i++)
        pthread_create(&th[i], NULL, own_session, (void *)(intptr_t)i);
    for (int i = 0; i < NT; i++)
        pthread_join(th[i], NULL);
    double sum1 = sum_all();
    printf("own sessions:   sum %.0f\n", sum1);

    check(ba_session_abort(s), "abort"); /* move s to the newest snapshot */
    ba_view v;
    check(ba_array_view(a, NULL, 0, 0, &v), "view");
    for (int i = 0; i < NT; i++)
        pthread_create(&th[i], NULL, shared_view, &v);
    for (int i = 0; i < NT; i++)
        pthread_join(th[i], NULL);
    check(ba_session_commit(s), "commit"); /* no other thread is using s now */
    ba_view_release(&v);
    double sum2 = sum_all();
    printf("shared session: sum %.0f\n", sum2);

    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    double per = (double)ROWS * COLS;
    return sum1 == per * (1 + 2 + 3 + 4) && sum2 == per * (10 + 20 + 30 + 40) ? 0 : 1;
}
