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
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ba_common.h"
#include "bigarray.h"
#include "check_lib.h"
#include "rel_util.h"

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

/* Found by rel_crash under TSan: ba_db_compact() opened the copy with the source's map
 * size and no fallback, so where the address space is restricted (sanitizers, ulimit
 * -v) the default map's database could be opened but not compacted (-ENOMEM). Run in a
 * child whose address space is limited to 16 GiB: the database falls back to a map
 * that fits once, and the copy must fit beside it. */
static int compact_in_limited_address_space(const char *dir)
{
    struct rlimit rl = {16ull << 30, 16ull << 30};
    if (setrlimit(RLIMIT_AS, &rl))
        return 10;
    char *path = tu_path(dir, "db"), *out = tu_path(dir, "copy");
    ba_db_options o;
    ba_db_options_init(&o);
    o.flags = BA_DB_CREATE | BA_DB_NOSYNC;
    o.pager = BA_PAGER_SIGSEGV;
    o.ram_limit = 16u << 20;
    o.spill_dir = dir;
    ba_db *db;
    if (ba_db_open(path, &o, &db))
        return 11;
    ba_session *s;
    ba_array *a;
    ba_array_spec sp;
    ba_array_spec_init(&sp);
    ba_dtype_parse("u1", &sp.dtype);
    sp.ndim = 1;
    sp.shape[0] = 1 << 20;
    if (ba_session_begin(db, &s) || ba_array_create(s, "a", &sp, &a))
        return 12;
    ba_view v;
    if (ba_array_view(a, NULL, 0, 0, &v))
        return 13;
    memset(v.data, 3, 1 << 20);
    ba_view_release(&v);
    if (ba_session_commit(s))
        return 14;
    ba_array_close(a);
    ba_session_end(s);
    int rc = ba_db_compact(db, out);
    if (rc) {
        fprintf(stderr, "compact: %s\n", ba_errmsg());
        return 15;
    }
    ba_db_close(db);
    free(path);
    free(out);
    return 0;
}

START_TEST(test_compact_works_where_address_space_is_limited)
{
    if (rel_sanitized()) { /* their shadow memory needs far more than 16 GiB of addresses */
        printf("test_compact_works_where_address_space_is_limited: not under a sanitizer "
               "(RLIMIT_AS and shadow memory do not mix); the plain build runs it\n");
        return;
    }
    char *dir = tu_mkdtemp("rg-compact");
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(compact_in_limited_address_space(dir));
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the child ended with status 0x%x (exit 15: compact failed)", status);
    tu_rmtree(dir);
}
END_TEST

static Suite *regressions_suite(void)
{
    Suite *s = suite_create("reliability_regressions");
    TCase *tc = tcase_create("store");
    tcase_add_loop_test(tc, test_shrink_cutting_many_stored_blocks_keeps_keys_intact, 0,
                        TL_NBACKENDS);
    tcase_add_test(tc, test_compact_works_where_address_space_is_limited);
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
