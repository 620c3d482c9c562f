/* SPDX-License-Identifier: MIT */
/*
 * Check suite for pager/'s memory: the RAM budget (spill beyond it and back, injected
 * spill and allocation failures, the VMA count under random faults, frames kept ready,
 * block sizes sharing one budget), readahead, and options and environment variables.
 * Every test runs on both backends, over the fake file of pager_fixture.h, as in
 * check_pager.c.
 */

#include "pager_fixture.h"

/* ---- RAM budget: spill, VMAs -------------------------------------------------------------- */

START_TEST(test_pager_spill_beyond_budget_and_back)
{
    struct pager *pg = mkpager(_i, 4 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    enum { N = 24 };
    struct pager_mapping *m = mkmap(f, 0, N, 0);
    for (uint64_t i = 0; i < N; i++) {
        char *p = blk_addr(m, i, BS);
        for (uint64_t k = 0; k < NWD; k += 512)
            wr(p + 8 * k, 7000 + i * 100000 + k);
    }
    ba_pager_stat st = stats(pg);
    ck_assert_uint_ge(st.spills, N - 4);
    ck_assert_uint_eq(st.dirty_bytes, (uint64_t)N * BS);
    ck_assert_uint_le(st.ram_used, 4 * BS);
    ck_assert_uint_eq(pager_file_dirty_count(f), N);
    ck_assert_int_eq(info(f, 0).state, PAGER_BLK_SPILLED);
    pager_check(pg);
    /* Read everything back through faults. */
    for (uint64_t i = 0; i < N; i++) {
        char *p = blk_addr(m, i, BS);
        for (uint64_t k = 0; k < NWD; k += 512)
            ck_assert_uint_eq(rd(p + 8 * k), 7000 + i * 100000 + k);
        ck_assert_uint_eq(rd(p + 8), pattern(1, i, 1));
    }
    ck_assert_uint_gt(stats(pg).unspills, 0);
    /* And through a writeout, in order, with the spilled ones read back. */
    struct pager_writeout *wo;
    uint64_t blk, expect = 0;
    const void *data;
    ck_assert_int_eq(pager_writeout_begin(f, &wo), 0);
    while (pager_writeout_next(wo, &blk, &data) == 1) {
        ck_assert_uint_eq(blk, expect++);
        ck_assert_uint_eq(rd((const char *)data + 8 * 512), 7000 + blk * 100000 + 512);
    }
    ck_assert_uint_eq(expect, N);
    pager_writeout_end(wo, 1);
    ck_assert_uint_eq(pager_file_dirty_count(f), 0);
    ck_assert_uint_eq(stats(pg).dirty_bytes, 0);
    ck_assert_uint_eq(ncalls(&fk), N);
    pager_check(pg);
    teardown(pg, f, m);
}
END_TEST

/* Injected spill failures lose nothing: a failed write keeps the block in RAM (over
 * the budget); a failed read back fails the writeout step, and a retry works. */
START_TEST(test_pager_spill_injected_failures_keep_data)
{
    struct pager *pg = mkpager(_i, 2 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    struct pager_mapping *m = mkmap(f, 0, 6, 0);
    ba_inject_arm(BA_INJ_SPILL_WRITE, -ENOSPC, 0, 0);
    for (uint64_t i = 0; i < 6; i++)
        wr(blk_addr(m, i, BS), 500 + i);
    ck_assert_uint_eq(stats(pg).spills, 0);
    ck_assert_uint_gt(stats(pg).ram_used, 2 * BS); /* over budget, nothing lost */
    for (uint64_t i = 0; i < 6; i++)
        ck_assert_uint_eq(rd(blk_addr(m, i, BS)), 500 + i);
    ba_inject_clear();
    /* Now spills work; make them happen, then fail the reads back. */
    struct pager_mapping *m2 = mkmap(f, 6, 6, 0);
    for (uint64_t i = 0; i < 6; i++)
        wr(blk_addr(m2, i, BS), 600 + i);
    ck_assert_uint_gt(stats(pg).spills, 0);
    ba_inject_arm(BA_INJ_SPILL_READ, -EIO, 0, 1);
    struct pager_writeout *wo;
    uint64_t blk;
    const void *data;
    ck_assert_int_eq(pager_writeout_begin(f, &wo), 0);
    int rc;
    uint64_t seen = 0;
    int failed = 0;
    while ((rc = pager_writeout_next(wo, &blk, &data)) != 0) {
        if (rc < 0) {
            ck_assert_int_eq(rc, -EIO);
            failed++;
            continue; /* retry: the injection fails once */
        }
        ck_assert_uint_eq(rd(data), (blk < 6 ? 500 : 594) + blk);
        seen++;
    }
    ck_assert_int_eq(failed, 1);
    ck_assert_uint_eq(seen, 12);
    pager_writeout_end(wo, 0); /* not committed: everything stays dirty */
    ck_assert_uint_eq(pager_file_dirty_count(f), 12);
    ba_inject_clear();
    for (uint64_t i = 0; i < 6; i++)
        ck_assert_uint_eq(rd(blk_addr(m2, i, BS)), 600 + i);
    pager_unmap(m2);
    pager_check(pg);
    teardown(pg, f, m);
}
END_TEST

START_TEST(test_pager_vma_count_random_faults)
{
    struct pager *pg = mkpager(_i, 64u << 20, 0);
    if (!pg)
        return;
    struct fake fk;
    enum { N = 200000 };
    struct pager_file *f = mkfile(pg, &fk, 4096);
    struct pager_mapping *m = mkmap(f, 0, N, 0);
    char *a = pager_mapping_addr(m);
    long base = tu_maps_count(NULL), peak = base;
    uint64_t seed = 12345;
    /* 100,000 random faults over the 200,000 blocks (the mapped-block cap is reached
     * after a few thousand; a uffd fault costs ~0.5 ms on a loaded 2-vCPU guest). */
#ifdef TEST_SANITIZED
    const int nfaults = N / 10; /* instrumented faults are several times slower */
#else
    const int nfaults = N / 2;
#endif
    for (int i = 0; i < nfaults; i++) {
        uint64_t blk = tu_rand(&seed) % N;
        if (i % 4 == 0)
            wr(a + blk * 4096 + 8, blk);
        else
            (void)rd(a + blk * 4096);
        if (i % 10000 == 0) {
            long v = tu_maps_count(NULL);
            peak = v > peak ? v : peak;
        }
    }
    long v = tu_maps_count(NULL);
    peak = v > peak ? v : peak;
    printf("%s: VMAs %ld before, peak %ld, after %ld (max_map_count 65530)\n", backend_name(_i),
           base, peak, v);
    fflush(stdout);
    ck_assert_int_lt(peak - base, 65530 / 6);
    pager_check(pg);
    pager_unmap(m);
#ifdef TEST_SANITIZED
    ck_assert_int_le(tu_maps_count(NULL), base + 400); /* the runtimes map shadow memory too */
#else
    ck_assert_int_le(tu_maps_count(NULL), base + 8);
#endif
    pager_file_discard(f, 0, UINT64_MAX);
    pager_file_close(f);
    pager_destroy(pg);
}
END_TEST

/* ---- readahead ---------------------------------------------------------------------------- */

static void ra_scan(struct pager_mapping *m, int64_t start, int64_t step, int count)
{
    char *a = pager_mapping_addr(m);
    for (int i = 0; i < count; i++) {
        (void)rd(a + (start + step * i) * BS);
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
}

static void ra_wait_idle(void)
{
    struct timespec ts = {0, 100000000};
    nanosleep(&ts, NULL);
}

START_TEST(test_pager_readahead_sequential_patterns)
{
    static const struct {
        int64_t start, step;
    } pat[] = {{0, 1}, {399, -1}, {5, 3}, {390, -7}};
    for (unsigned k = 0; k < sizeof pat / sizeof pat[0]; k++) {
        struct pager *pg = mkpager(_i, 256 * BS, 1);
        if (!pg)
            return;
        struct fake fk;
        struct pager_file *f = mkfile(pg, &fk, BS);
        struct pager_mapping *m = mkmap(f, 0, 400, 0);
        ra_scan(m, pat[k].start, pat[k].step, 50);
        ra_wait_idle();
        ba_pager_stat st = stats(pg);
        printf("%s: stride %lld: loads %llu readahead %llu hits %llu\n", backend_name(_i),
               (long long)pat[k].step, (unsigned long long)st.loads,
               (unsigned long long)st.readahead_loads, (unsigned long long)st.readahead_hits);
        fflush(stdout);
        ck_assert_uint_gt(st.readahead_loads, 0);
        ck_assert_uint_gt(st.readahead_hits, 20);
        /* Readahead stays along the stride. */
        int64_t next = pat[k].start + pat[k].step * 50, off = pat[k].start + pat[k].step * 50 + 1;
        if (next >= 0 && next < 400 && off >= 0 && off < 400 && pat[k].step != 1 &&
            pat[k].step != -1)
            ck_assert_int_ne(info(f, (uint64_t)off).state, PAGER_BLK_CLEAN);
        pager_check(pg);
        teardown(pg, f, m);
    }
}
END_TEST

START_TEST(test_pager_readahead_not_on_random_or_disabled)
{
    struct pager *pg = mkpager(_i, 256 * BS, 1);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    enum { N = 10000 };
    struct pager_mapping *m = mkmap(f, 0, N, 0);
    char *a = pager_mapping_addr(m);
    uint64_t seed = 99;
    for (int i = 0; i < 500; i++)
        (void)rd(a + (tu_rand(&seed) % N) * BS);
    ra_wait_idle();
    ck_assert_uint_eq(stats(pg).readahead_loads, 0);
    teardown(pg, f, m);

    pg = mkpager(_i, 256 * BS, 0); /* opts.readahead = 0 */
    f = mkfile(pg, &fk, BS);
    m = mkmap(f, 0, 100, 0);
    ra_scan(m, 0, 1, 50);
    ra_wait_idle();
    ck_assert_uint_eq(stats(pg).readahead_loads, 0);
    ck_assert_uint_eq(ncalls(&fk), 50);
    teardown(pg, f, m);
}
END_TEST

/* Prefill: once a fault had to populate a frame itself, an idle worker keeps
 * PAGER_PREFILL populated free frames ready within the budget's room, and the next
 * faults take them instead of populating (ram_used runs PAGER_PREFILL frames ahead of
 * the blocks in use, never past the budget). Without workers, nothing runs ahead. */
START_TEST(test_pager_prefill_keeps_frames_ready_within_budget)
{
    enum { PBS = 1u << 20 }; /* populated one frame at a time (smaller ones in chunks) */
    for (int ra = 1; ra >= 0; ra--) {
        struct pager *pg = mkpager(_i, 8 * PBS, ra);
        if (!pg)
            return;
        struct fake fk;
        struct pager_file *f = mkfile(pg, &fk, PBS);
        struct pager_mapping *m = mkmap(f, 0, 16, 0);
        char *a = pager_mapping_addr(m);
        ck_assert_uint_eq(rd(a), pattern(1, 0, 0)); /* populates a frame itself */
        uint64_t want = ra ? (1 + PAGER_PREFILL) * PBS : PBS;
        for (int t = 0; t < 400 && stats(pg).ram_used < want; t++)
            usleep(5000);
        usleep(20000); /* and no more than that */
        ck_assert_uint_eq(stats(pg).ram_used, want);
        /* Touching the stock away keeps the budget. Random blocks: no readahead. */
        static const int order[] = {9, 3, 14, 6, 11, 1, 13, 4, 15, 7, 2, 12};
        for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
            ck_assert_uint_eq(rd(a + (size_t)order[k] * PBS), pattern(1, (uint64_t)order[k], 0));
            ck_assert_uint_le(stats(pg).ram_used, 8 * PBS);
        }
        ra_wait_idle();
        ck_assert_uint_le(stats(pg).ram_used, 8 * PBS);
        teardown(pg, f, m);
    }
}
END_TEST

/* With every allocation failing: discard and invalidate (which cannot report an error)
 * still work, a writeout fails cleanly with the data kept dirty, and a retry works. */
/* Free populated frames in the pool beyond the blocks loaded (none are evicted here). */
static uint64_t stock_of(struct pager *pg, uint32_t bs)
{
    ba_pager_stat st = stats(pg);
    return st.ram_used / bs - (st.loads - st.evictions);
}

/* The stock grows: faults that find it empty after it had been full (a burst, here while
 * the only worker is held in a load ahead) each grow it by one, and the worker then keeps
 * that many frames ready, up to a sixteenth of the budget (and PAGER_STOCK_MAX). */
START_TEST(test_pager_stock_grows_after_a_burst)
{
    enum { PBS = 1u << 20, NBURST = 8 };
    struct pager_opts o;
    pager_opts_init(&o);
    o.ram_limit = 256ull * PBS; /* stock at most 16 */
    o.readahead = 1;
    o.readahead_workers = 1;
    struct pager *pg = mkpager_opts(_i, &o);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, PBS);
    struct pager_mapping *m = mkmap(f, 0, 512, 0);
    char *a = pager_mapping_addr(m);
    (void)rd(a); /* populates a frame itself: the stock starts */
    for (int t = 0; t < 400 && stock_of(pg, PBS) < PAGER_PREFILL; t++)
        usleep(5000);
    usleep(20000); /* stock_of() counts a frame still being filled: let it land */
    ck_assert_uint_eq(stock_of(pg, PBS), PAGER_PREFILL);
    /* Hold the worker: a forward run queues loads ahead, the first of which pauses. */
    fk.pause_blk = 103;
    for (int b = 100; b < 103; b++)
        (void)rd(a + (size_t)b * PBS);
    pthread_mutex_lock(&fk.mu);
    while (!fk.paused)
        pthread_cond_wait(&fk.cv, &fk.mu);
    pthread_mutex_unlock(&fk.mu);
    /* The burst: scattered blocks (no stream), more than the stock holds. */
    static const int burst[NBURST] = {300, 351, 322, 394, 309, 377, 336, 398};
    for (int k = 0; k < NBURST; k++)
        ck_assert_uint_eq(rd(a + (size_t)burst[k] * PBS), pattern(1, (uint64_t)burst[k], 0));
    pthread_mutex_lock(&fk.mu);
    fk.go = 1;
    pthread_cond_broadcast(&fk.cv);
    pthread_mutex_unlock(&fk.mu);
    /* At least NBURST - PAGER_PREFILL faults found the stock empty. */
    const uint64_t want = NBURST;
    for (int t = 0; t < 400 && stock_of(pg, PBS) < want; t++)
        usleep(5000);
    usleep(20000);
    uint64_t stock = stock_of(pg, PBS);
    printf("stock after a burst of %d faults: %llu frames\n", NBURST, (unsigned long long)stock);
    ck_assert_uint_ge(stock, want);
    ck_assert_uint_le(stock, 16);
    teardown(pg, f, m);
}
END_TEST

START_TEST(test_pager_allocation_failures_keep_data)
{
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    struct pager_mapping *m = mkmap(f, 0, 4, 0);
    wr(blk_addr(m, 0, BS), 10);
    wr(blk_addr(m, 1, BS), 11);
    ck_assert_uint_eq(rd(blk_addr(m, 2, BS)), pattern(1, 2, 0));
    ba_inject_arm(BA_INJ_ALLOC, -ENOMEM, 0, 0);
    struct pager_writeout *wo;
    ck_assert_int_eq(pager_writeout_begin(f, &wo), -ENOMEM);
    ck_assert_uint_eq(pager_file_dirty_count(f), 2);
    fk.version = 2;
    pager_file_invalidate(f, 0, UINT64_MAX);
    EXPECT_BLK(f, 2, PAGER_BLK_ABSENT, 0, 0);
    pager_file_discard(f, 1, 1);
    EXPECT_BLK(f, 1, PAGER_BLK_ABSENT, 0, 0);
    ck_assert_uint_eq(pager_file_dirty_count(f), 1);
    ba_inject_clear();
    ck_assert_uint_eq(rd(blk_addr(m, 1, BS)), pattern(2, 1, 0));
    ck_assert_uint_eq(rd(blk_addr(m, 2, BS)), pattern(2, 2, 0));
    ck_assert_int_eq(pager_writeout_begin(f, &wo), 0);
    uint64_t blk;
    const void *data;
    ck_assert_int_eq(pager_writeout_next(wo, &blk, &data), 1);
    ck_assert_uint_eq(blk, 0);
    ck_assert_uint_eq(rd(data), 10);
    ck_assert_int_eq(pager_writeout_next(wo, &blk, &data), 0);
    pager_writeout_end(wo, 1);
    ck_assert_uint_eq(pager_file_dirty_count(f), 0);
    pager_check(pg);
    teardown(pg, f, m);
}
END_TEST

/* ---- options, arguments, budgets ------------------------------------------------------ */

START_TEST(test_pager_options_and_environment)
{
    struct pager_opts o;
    struct pager *pg;
    pager_opts_init(&o);
    o.backend = _i ? PAGER_BACKEND_UFFD : PAGER_BACKEND_SIGSEGV;
    setenv("BIGARRAY_RAM_LIMIT", "512M", 1);
    ck_assert_int_eq(pager_create(&o, &pg), 0);
    ck_assert_uint_eq(pager_ram_limit(pg), 512ull << 20);
    pager_destroy(pg);
    o.ram_limit = 3 << 20; /* the option wins */
    ck_assert_int_eq(pager_create(&o, &pg), 0);
    ck_assert_uint_eq(pager_ram_limit(pg), 3 << 20);
    pager_destroy(pg);
    o.ram_limit = 0;
    setenv("BIGARRAY_RAM_LIMIT", "lots", 1);
    ck_assert_int_eq(pager_create(&o, &pg), BA_EINVAL);
    unsetenv("BIGARRAY_RAM_LIMIT");
    ck_assert_int_eq(pager_create(&o, &pg), 0); /* default: half of RAM or cgroup */
    long pages = sysconf(_SC_PHYS_PAGES);
    ck_assert_uint_gt(pager_ram_limit(pg), 0);
    ck_assert_uint_le(pager_ram_limit(pg), (uint64_t)pages * 4096 / 2);
    pager_destroy(pg);

    o.backend = PAGER_BACKEND_AUTO;
    setenv("BIGARRAY_PAGER", "sigsegv", 1);
    ck_assert_int_eq(pager_create(&o, &pg), 0);
    ck_assert_int_eq(pager_backend(pg), PAGER_BACKEND_SIGSEGV);
    pager_destroy(pg);
    setenv("BIGARRAY_PAGER", "uffd", 1);
    ck_assert_int_eq(pager_create(&o, &pg), 0);
    ck_assert(pager_backend(pg) == PAGER_BACKEND_UFFD ||
              pager_backend(pg) == PAGER_BACKEND_SIGSEGV);
    pager_destroy(pg);
    setenv("BIGARRAY_PAGER", "mmap", 1);
    ck_assert_int_eq(pager_create(&o, &pg), BA_EINVAL);
    unsetenv("BIGARRAY_PAGER");
    ck_assert_int_eq(pager_create(&o, &pg), 0);
    ck_assert_int_eq(pager_backend(pg), PAGER_BACKEND_SIGSEGV); /* the measured default */

    struct fake fk;
    struct pager_file *f;
    fake_init(&fk, BS);
    ck_assert_int_eq(pager_file_open(pg, 3000, &fake_ops, &fk, &f), BA_EINVAL);
    ck_assert_int_eq(pager_file_open(pg, 2048, &fake_ops, &fk, &f), BA_EINVAL);
    ck_assert_int_eq(pager_file_open(pg, BS, &fake_ops, &fk, &f), 0);
    ck_assert_uint_eq(pager_file_block_size(f), BS);
    struct pager_mapping *m;
    ck_assert_int_eq(pager_map(f, 0, 0, 0, &m), BA_EINVAL);
    ck_assert_int_eq(pager_map(f, UINT64_MAX, 2, 0, &m), BA_EINVAL);
    ck_assert_int_eq(pager_map(f, 0, 1ull << 40, 0, &m), BA_ETOOBIG);
    ck_assert_int_eq(pager_map(f, 0, 1, 0x80, &m), BA_EINVAL);
    ck_assert_int_eq(pager_map(f, 5, 1, PAGER_MAP_READONLY, &m), 0);
    ck_assert_int_eq(pager_prefault(m, 0, 1, PAGER_PREFAULT_WRITE), BA_EINVAL);
    ck_assert_int_eq(pager_prefault(m, BS, 1, 0), BA_ERANGE);
    ck_assert_int_eq(pager_prefault(m, 0, 0, 0), 0);
    teardown(pg, f, m);
}
END_TEST

/* Files of different block sizes share one budget: frames of one size are released to
 * make room for the other. */
START_TEST(test_pager_mixed_block_sizes_share_budget)
{
    struct pager *pg = mkpager(_i, 1 << 20, 0);
    if (!pg)
        return;
    struct fake fa, fb;
    struct pager_file *a = mkfile(pg, &fa, 64 << 10), *b = mkfile(pg, &fb, 256 << 10);
    struct pager_mapping *ma = mkmap(a, 0, 64, 0), *mb = mkmap(b, 0, 16, 0);
    for (int round = 0; round < 3; round++) {
        for (uint64_t i = 0; i < 64; i++) {
            ck_assert_uint_eq(rd(blk_addr(ma, i, 64 << 10) + 8), pattern(1, i, 1));
            ck_assert_uint_le(stats(pg).ram_used, 1 << 20);
        }
        for (uint64_t i = 0; i < 16; i++) {
            ck_assert_uint_eq(rd(blk_addr(mb, i, 256 << 10) + 16), pattern(1, i, 2));
            ck_assert_uint_le(stats(pg).ram_used, 1 << 20);
        }
    }
    ck_assert_uint_gt(stats(pg).evictions, 0);
    pager_check(pg);
    pager_unmap(mb);
    pager_file_close(b);
    teardown(pg, a, ma);
}
END_TEST

/* ---- suite -------------------------------------------------------------------------------- */

static Suite *pager_memory_suite(void)
{
    Suite *s = suite_create("pager_memory");
    struct {
        const char *name;
        const TTest *t;
    } cases[] = {
        {"spill", test_pager_spill_beyond_budget_and_back},
        {"spill_inject", test_pager_spill_injected_failures_keep_data},
        {"vma", test_pager_vma_count_random_faults},
        {"readahead", test_pager_readahead_sequential_patterns},
        {"readahead_random", test_pager_readahead_not_on_random_or_disabled},
        {"prefill", test_pager_prefill_keeps_frames_ready_within_budget},
        {"stock", test_pager_stock_grows_after_a_burst},
        {"options", test_pager_options_and_environment},
        {"alloc_fail", test_pager_allocation_failures_keep_data},
        {"mixed_sizes", test_pager_mixed_block_sizes_share_budget},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 240);
        tcase_add_loop_test(tc, cases[i].t, 0, 2);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    return tu_run(pager_memory_suite());
}
