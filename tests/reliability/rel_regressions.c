/* SPDX-License-Identifier: MIT */
/*
 * Regression tests for bugs the reliability programs found (docs/reliability.md lists
 * each with the program that found it). One Check test per bug, through the public
 * API, each small and fast, so the bug stays fixed even when the long programs are
 * not run.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ba_common.h"
#include "bigarray.h"
#include "check_lib.h"

struct probs {
    unsigned n;
    char text[2048];
};

static void prob_cb(const ba_problem *p, void *ctx)
{
    struct probs *pr = ctx;
    size_t l = strlen(pr->text);
    pr->n++;
    snprintf(pr->text + l, sizeof pr->text - l, "[%s]", p->what);
}

static void expect_verify_clean(ba_db *db)
{
    struct probs pr = {0, ""};
    uint64_t np = 1;
    TL_OK(ba_db_verify(db, prob_cb, &pr, &np));
    ck_assert_msg(np == 0, "verify: %llu problems: %s", (unsigned long long)np, pr.text);
}

/* Found by rel_crash: a shrink that cut several stored blocks of one leaf page wrote
 * tombstones under garbage keys (store_txn_blocks_cut passed LMDB a key pointing into
 * the page it was rewriting), so verify found blocks of arrays that do not exist and
 * compact failed with MDB_KEYEXIST. */
START_TEST(test_shrink_cutting_many_stored_blocks_keeps_keys_intact)
{
    struct tl_db t;
    tl_db_open(&t, "rg-cut", _i, 0);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    int64_t n = 40 * 4096;
    ba_array *a = tl_create(s, "a", "u1", 'C', 4096, 1, &n);
    ba_view v = tl_view(a, "");
    memset(v.data, 7, (size_t)n);
    ba_view_release(&v);
    TL_OK(ba_session_commit(s));
    int64_t small = 3 * 4096 + 100;
    TL_OK(ba_array_resize(a, 1, &small));
    TL_OK(ba_session_commit(s));
    expect_verify_clean(t.db);
    TL_OK(ba_array_resize(a, 1, &n));
    TL_OK(ba_session_commit(s));
    v = tl_view(a, "");
    const uint8_t *b = v.data;
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(b[i] == (i < small ? 7 : 0), "byte %lld is %u", (long long)i, b[i]);
    ba_view_release(&v);
    char *out = tu_path(t.dir, "copy");
    TL_OK(ba_db_compact(t.db, out));
    free(out);
    ba_array_close(a);
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

/* Found by rel_inject (commit, ENOMEM at the allocation in the pruning of the session's
 * arrays after a durable commit): pager_file_close() collected the file's blocks into a
 * malloc'd array; when that allocation failed it freed the file with its blocks still
 * in the pool, and the next reclaim touched the freed file (an assertion in debug
 * builds, a segfault in release builds). */
START_TEST(test_array_closed_while_allocations_fail_leaves_no_blocks_behind)
{
    struct tl_db t;
    tl_db_open(&t, "rg-close", _i, 1u << 20);
    ba_session *s;
    TL_OK(ba_session_begin(t.db, &s));
    int64_t n = 64 * 4096;
    ba_array *a = tl_create(s, "a", "u1", 'C', 4096, 1, &n);
    ba_view v = tl_view(a, "");
    memset(v.data, 5, (size_t)n);
    ba_view_release(&v);
    TL_OK(ba_session_commit(s));
    v = tl_view(a, ""); /* cached blocks */
    ck_assert_int_eq(((volatile uint8_t *)v.data)[n - 1], 5);
    ba_view_release(&v);
    ba_inject_arm(BA_INJ_ALLOC, -ENOMEM, 0, 0);
    ba_array_close(a);
    ba_session_end(s); /* closes the array's pager file */
    ba_inject_clear();
    /* Another session cycles 4 MiB through the 1 MiB budget: reclaim visits every frame. */
    TL_OK(ba_session_begin(t.db, &s));
    int64_t m = 1024 * 4096;
    ba_array *b = tl_create(s, "b", "u1", 'C', 4096, 1, &m);
    v = tl_view(b, "");
    memset(v.data, 6, (size_t)m);
    ba_view_release(&v);
    TL_OK(ba_session_commit(s));
    ba_array_close(b);
    ba_session_end(s);
    tl_db_close(&t);
}
END_TEST

static Suite *regressions_suite(void)
{
    Suite *s = suite_create("reliability_regressions");
    TCase *tc = tcase_create("store");
    tcase_add_loop_test(tc, test_shrink_cutting_many_stored_blocks_keeps_keys_intact, 0,
                        TL_NBACKENDS);
    suite_add_tcase(s, tc);
    tc = tcase_create("pager");
    tcase_add_loop_test(tc, test_array_closed_while_allocations_fail_leaves_no_blocks_behind, 0,
                        TL_NBACKENDS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(regressions_suite());
}
