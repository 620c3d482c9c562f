/* SPDX-License-Identifier: MIT */
/*
 * Regression tests for bugs the reliability programs found (docs/reliability.md lists
 * each with the program that found it). One Check test per bug, through the public
 * API, each small and fast, so the bug stays fixed even when the long programs are
 * not run.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static Suite *regressions_suite(void)
{
    Suite *s = suite_create("reliability_regressions");
    TCase *tc = tcase_create("store");
    tcase_add_loop_test(tc, test_shrink_cutting_many_stored_blocks_keeps_keys_intact, 0,
                        TL_NBACKENDS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(regressions_suite());
}
