/* SPDX-License-Identifier: MIT */
/*
 * Check suite for pager/: every test runs on both backends (a loop test, iteration 0
 * = SIGSEGV, 1 = userfaultfd; where userfaultfd is not available the uffd iteration
 * prints why and returns), over the fake file of pager_fixture.h.
 *
 * Levels: direct calls of the fault entry (pager_fault_direct) with the state table
 * asserted after each step (the port of wendelin.core's synthetic scenario, RAM of
 * three blocks); real faults through memory accesses and system calls; load errors;
 * must-crash cases (tcase_add_loop_test_raise_signal); fork. The RAM budget (spill,
 * VMAs, prefill, allocation failures), readahead and options are check_pager_memory.c.
 */

#include "pager_fixture.h"

/* ---- direct faults: the synthetic scenario (wendelin 3.2) ------------------------------------ */

START_TEST(test_pager_synthetic_ram3)
{
    struct pager *pg = mkpager(_i, 3 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    /* A window on blocks [100, 104): p0..p3. */
    struct pager_mapping *m = mkmap(f, 100, 4, 0);
    char *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = blk_addr(m, (uint64_t)i, BS);

    /* 1. Nothing loaded, every block a hole. */
    for (int i = 0; i < 4; i++) {
        EXPECT_BLK(f, 100u + (unsigned)i, PAGER_BLK_ABSENT, 0, 0);
        expect_prot(_i, p[i], "---p");
    }
    ck_assert_uint_eq(pager_file_dirty_count(f), 0);

    /* 2. Read fault on p0: loaded, mapped read-only, referenced, the only LRU entry. */
    ck_assert_int_eq(pager_fault_direct(m, 0, 0), 0);
    EXPECT_BLK(f, 100, PAGER_BLK_CLEAN, 1, 0);
    ck_assert(info(f, 100).referenced);
    ck_assert_uint_eq(info(f, 100).lru_rank, 0);
    expect_prot(_i, p[0], "r--s");
    ck_assert(block_is(p[0], BS, 1, 100));
    ck_assert_uint_eq(ncalls(&fk), 1);

    /* 3. Write fault on unloaded p2: loaded, dirty, mapped writable. */
    ck_assert_int_eq(pager_fault_direct(m, 2 * BS, 1), 0);
    EXPECT_BLK(f, 102, PAGER_BLK_DIRTY, 1, 1);
    expect_prot(_i, p[2], "rw-s");
    ck_assert(block_is(p[2], BS, 1, 102));
    wr(p[2] + 8, 0xd2);
    ck_assert_uint_eq(ncalls(&fk), 2);
    ck_assert_uint_eq(pager_file_dirty_count(f), 1);

    /* 4. Read p3. */
    ck_assert_int_eq(pager_fault_direct(m, 3 * BS + 5, 0), 0);
    EXPECT_BLK(f, 103, PAGER_BLK_CLEAN, 1, 0);

    /* 5. Write fault on loaded p0: dirty without a reload, content intact. */
    ck_assert_int_eq(pager_fault_direct(m, 100, 1), 0);
    EXPECT_BLK(f, 100, PAGER_BLK_DIRTY, 1, 1);
    ck_assert_uint_eq(ncalls(&fk), 3);
    ck_assert(block_is(p[0], BS, 1, 100));
    wr(p[0] + 16, 0xd0);
    ck_assert_uint_eq(pager_file_dirty_count(f), 2);
    pager_check(pg);

    /* 6. Read p1 with the three frames in use: the hand unmaps the referenced blocks on
     * its first turn and evicts the only clean one (p3) on the second; dirty blocks
     * stay in RAM, unmapped. */
    ck_assert_int_eq(pager_fault_direct(m, BS, 0), 0);
    EXPECT_BLK(f, 103, PAGER_BLK_ABSENT, 0, 0);
    expect_prot(_i, p[3], "---p");
    EXPECT_BLK(f, 100, PAGER_BLK_DIRTY, 0, 0);
    EXPECT_BLK(f, 102, PAGER_BLK_DIRTY, 0, 0);
    EXPECT_BLK(f, 101, PAGER_BLK_CLEAN, 1, 0);
    ck_assert(!info(f, 100).referenced && !info(f, 102).referenced && info(f, 101).referenced);
    ck_assert_uint_eq(info(f, 100).lru_rank, 0);
    ck_assert_uint_eq(info(f, 102).lru_rank, 1);
    ck_assert_uint_eq(info(f, 101).lru_rank, 2);
    ck_assert_uint_eq(stats(pg).evictions, 1);
    ck_assert_uint_le(stats(pg).ram_used, 3 * BS);
    pager_check(pg);

    /* 7. Explicit reclaim: only p1 is clean. */
    ck_assert_uint_eq(pager_reclaim(pg, 0), 1);
    EXPECT_BLK(f, 101, PAGER_BLK_ABSENT, 0, 0);
    EXPECT_BLK(f, 100, PAGER_BLK_DIRTY, 0, 0);
    EXPECT_BLK(f, 102, PAGER_BLK_DIRTY, 0, 0);
    ck_assert_uint_eq(stats(pg).ram_used, 2 * BS);

    /* 8. Unmap the window: the dirty blocks stay. */
    pager_unmap(m);
    EXPECT_BLK(f, 100, PAGER_BLK_DIRTY, 0, 0);
    EXPECT_BLK(f, 102, PAGER_BLK_DIRTY, 0, 0);
    ck_assert_uint_eq(pager_file_dirty_count(f), 2);
    pager_check(pg);

    /* 9. Map it again: nothing is mapped yet. */
    m = mkmap(f, 100, 4, 0);
    for (int i = 0; i < 4; i++) {
        p[i] = blk_addr(m, (uint64_t)i, BS);
        EXPECT_BLK(f, 100u + (unsigned)i, i % 2 ? PAGER_BLK_ABSENT : PAGER_BLK_DIRTY, 0, 0);
        expect_prot(_i, p[i], "---p");
    }

    /* 10. Read fault on the dirty, unmapped p2: mapped writable, no load, data kept. */
    ck_assert_int_eq(pager_fault_direct(m, 2 * BS, 0), 0);
    EXPECT_BLK(f, 102, PAGER_BLK_DIRTY, 1, 1);
    ck_assert_uint_eq(ncalls(&fk), 4);
    ck_assert_uint_eq(rd(p[2] + 8), 0xd2);

    /* 11. Discard: everything ABSENT, reads give the file's data again. */
    pager_file_discard(f, 0, UINT64_MAX);
    for (int i = 0; i < 4; i++) {
        EXPECT_BLK(f, 100u + (unsigned)i, PAGER_BLK_ABSENT, 0, 0);
        expect_prot(_i, p[i], "---p");
    }
    ck_assert_uint_eq(pager_file_dirty_count(f), 0);
    ck_assert_uint_eq(stats(pg).dirty_bytes, 0);
    ck_assert_int_eq(pager_fault_direct(m, 2 * BS, 0), 0);
    ck_assert(block_is(p[2], BS, 1, 102));
    pager_check(pg);
    teardown(pg, f, m);
}
END_TEST

/* Writeout order, write protection, mark-clean and re-dirtying (wendelin 3.2.12-14). */
START_TEST(test_pager_writeout_order_and_mark_clean)
{
    struct pager *pg = mkpager(_i, 3 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    struct pager_mapping *m = mkmap(f, 100, 4, 0);
    char *p0 = blk_addr(m, 0, BS), *p2 = blk_addr(m, 2, BS);

    /* p3 clean, p2 dirty (mapped), p0 dirty (unmapped); dirtied p2 first. */
    ck_assert_int_eq(pager_fault_direct(m, 3 * BS, 0), 0);
    ck_assert_int_eq(pager_fault_direct(m, 2 * BS, 1), 0);
    wr(p2, 22);
    ck_assert_int_eq(pager_fault_direct(m, 0, 1), 0);
    wr(p0, 20);
    struct pager_mapping *m2 = mkmap(f, 100, 1, 0); /* p0 also mapped elsewhere */
    ck_assert_int_eq(pager_fault_direct(m2, 0, 0), 0);
    EXPECT_BLK(f, 100, PAGER_BLK_DIRTY, 2, 1);
    pager_unmap(m2);
    EXPECT_BLK(f, 100, PAGER_BLK_DIRTY, 1, 1);

    /* An uncommitted writeout hands out 100, 102 in order and leaves them dirty. */
    struct pager_writeout *wo;
    uint64_t blk;
    const void *data;
    ck_assert_int_eq(pager_writeout_begin(f, &wo), 0);
    EXPECT_BLK(f, 102, PAGER_BLK_DIRTY, 1, 0); /* write-protected */
    expect_prot(_i, p2, "r--s");
    ck_assert_int_eq(pager_writeout_next(wo, &blk, &data), 1);
    ck_assert_uint_eq(blk, 100);
    ck_assert_uint_eq(rd(data), 20);
    ck_assert_int_eq(pager_writeout_next(wo, &blk, &data), 1);
    ck_assert_uint_eq(blk, 102);
    ck_assert_uint_eq(rd(data), 22);
    ck_assert_int_eq(pager_writeout_next(wo, &blk, &data), 0);
    pager_writeout_end(wo, 0);
    ck_assert_uint_eq(pager_file_dirty_count(f), 2);
    EXPECT_BLK(f, 100, PAGER_BLK_DIRTY, 1, 0);
    EXPECT_BLK(f, 102, PAGER_BLK_DIRTY, 1, 0);
    ck_assert_uint_eq(ncalls(&fk), 3);

    /* A committed writeout marks them clean; a block written after its hand-out
     * stays dirty. */
    ck_assert_int_eq(pager_writeout_begin(f, &wo), 0);
    ck_assert_int_eq(pager_writeout_next(wo, &blk, &data), 1);
    ck_assert_uint_eq(blk, 100);
    ck_assert_int_eq(pager_fault_direct(m, 0, 1), 0); /* written again */
    EXPECT_BLK(f, 100, PAGER_BLK_DIRTY, 1, 1);
    wr(p0, 21);
    ck_assert_int_eq(pager_writeout_next(wo, &blk, &data), 1);
    ck_assert_uint_eq(blk, 102);
    ck_assert_int_eq(pager_writeout_next(wo, &blk, &data), 0);
    pager_writeout_end(wo, 1);
    EXPECT_BLK(f, 100, PAGER_BLK_DIRTY, 1, 1);
    EXPECT_BLK(f, 102, PAGER_BLK_CLEAN, 1, 0);
    expect_prot(_i, p2, "r--s");
    ck_assert_uint_eq(rd(p2), 22); /* reads still work */
    ck_assert_uint_eq(pager_file_dirty_count(f), 1);

    /* Commit the rest; the clean blocks write-fault again. */
    ck_assert_int_eq(pager_writeout_begin(f, &wo), 0);
    ck_assert_int_eq(pager_writeout_next(wo, &blk, &data), 1);
    ck_assert_uint_eq(blk, 100);
    ck_assert_uint_eq(rd(data), 21);
    ck_assert_int_eq(pager_writeout_next(wo, &blk, &data), 0);
    pager_writeout_end(wo, 1);
    ck_assert_uint_eq(pager_file_dirty_count(f), 0);
    ck_assert_uint_eq(stats(pg).dirty_bytes, 0);
    ck_assert_int_eq(pager_fault_direct(m, 2 * BS, 1), 0);
    EXPECT_BLK(f, 102, PAGER_BLK_DIRTY, 1, 1);
    ck_assert_uint_eq(rd(p2), 22);
    pager_check(pg);
    teardown(pg, f, m);
}
END_TEST

/* Invalidation drops clean copies (mapped or not) and keeps dirty ones (wendelin 3.2.15,
 * with bigarray's rule that dirty blocks survive a snapshot move). */
START_TEST(test_pager_invalidate_clean_and_dirty)
{
    struct pager *pg = mkpager(_i, 8 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    struct pager_mapping *m = mkmap(f, 0, 4, 0);
    char *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = blk_addr(m, (uint64_t)i, BS);
    ck_assert_int_eq(pager_fault_direct(m, 0, 0), 0);      /* 0 clean mapped */
    ck_assert_int_eq(pager_fault_direct(m, BS, 1), 0);     /* 1 dirty mapped */
    ck_assert_int_eq(pager_fault_direct(m, 2 * BS, 0), 0); /* 2 clean, then unmapped */
    struct pager_mapping *m2 = mkmap(f, 0, 4, 0);
    ck_assert_int_eq(pager_fault_direct(m2, 3 * BS, 1), 0); /* 3 dirty, not in m */
    pager_unmap(m2);
    wr(p[1], 111);
    /* A block not cached: nothing changes. */
    pager_file_invalidate(f, 10, 5);
    EXPECT_BLK(f, 0, PAGER_BLK_CLEAN, 1, 0);

    fk.version = 2; /* the snapshot moved */
    pager_file_invalidate(f, 0, UINT64_MAX);
    EXPECT_BLK(f, 0, PAGER_BLK_ABSENT, 0, 0);
    expect_prot(_i, p[0], "---p");
    EXPECT_BLK(f, 1, PAGER_BLK_DIRTY, 1, 1);
    EXPECT_BLK(f, 2, PAGER_BLK_ABSENT, 0, 0);
    EXPECT_BLK(f, 3, PAGER_BLK_DIRTY, 0, 0);
    ck_assert_uint_eq(stats(pg).invalidations, 2);
    ck_assert_uint_eq(rd(p[1]), 111);
    /* Reads after the invalidation load the new snapshot. */
    ck_assert(block_is(p[0], BS, 2, 0)); /* a real fault */
    ck_assert_int_eq(pager_fault_direct(m, 2 * BS, 0), 0);
    ck_assert(block_is(p[2], BS, 2, 2));
    /* Discard the dirty ones, then they reload from the new snapshot too. */
    pager_file_discard(f, 1, 3);
    ck_assert_int_eq(pager_fault_direct(m, 3 * BS, 0), 0);
    ck_assert(block_is(p[3], BS, 2, 3));
    ck_assert_uint_eq(pager_file_dirty_count(f), 0);
    pager_check(pg);
    teardown(pg, f, m);
}
END_TEST

/* ---- real faults --------------------------------------------------------------------------- */

START_TEST(test_pager_read_write_faults)
{
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    struct pager_mapping *m = mkmap(f, 10, 8, 0);
    char *a = pager_mapping_addr(m);
    ck_assert_uint_eq(pager_mapping_len(m), 8 * BS);
    /* A read loads exactly the touched block. */
    ck_assert_uint_eq(rd(a + 3 * BS + 64), pattern(1, 13, 8));
    ck_assert_uint_eq(ncalls(&fk), 1);
    EXPECT_BLK(f, 13, PAGER_BLK_CLEAN, 1, 0);
    EXPECT_BLK(f, 12, PAGER_BLK_ABSENT, 0, 0);
    /* A write loads and dirties. */
    wr(a + 5 * BS + 8, 77);
    EXPECT_BLK(f, 15, PAGER_BLK_DIRTY, 1, 1);
    ck_assert_uint_eq(rd(a + 5 * BS), pattern(1, 15, 0));
    ck_assert_uint_eq(rd(a + 5 * BS + 8), 77);
    /* A write to a loaded clean block upgrades it without a reload. */
    wr(a + 3 * BS, 33);
    EXPECT_BLK(f, 13, PAGER_BLK_DIRTY, 1, 1);
    ck_assert_uint_eq(ncalls(&fk), 2);
    ba_pager_stat st = stats(pg);
    ck_assert_uint_eq(st.loads, 2);
    ck_assert_uint_eq(st.load_bytes, 2 * BS);
    ck_assert_uint_ge(st.faults_read, 1);
    ck_assert_uint_ge(st.faults_write, 2);
    ck_assert_uint_ge(st.faults_remap, 1);
    ck_assert_uint_eq(st.dirty_bytes, 2 * BS);
    uint64_t hist = 0;
    for (int i = 0; i < 16; i++)
        hist += st.fault_hist[i];
    ck_assert_uint_eq(hist, st.faults_read + st.faults_write);
    ck_assert_uint_gt(st.fault_ns_total, 0);
    ba_pager_stat fst;
    memset(&fst, 0, sizeof fst);
    fst.size = sizeof fst;
    pager_file_stat_get(f, &fst);
    ck_assert_uint_eq(fst.loads, 2);
    ck_assert_uint_eq(fst.ram_used, 2 * BS);
    teardown(pg, f, m);
}
END_TEST

/* wendelin 3.3.2: the load scribbles errno; the user's errno survives the fault. */
START_TEST(test_pager_fault_preserves_errno)
{
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    fk.set_errno = EIO;
    struct pager_mapping *m = mkmap(f, 0, 2, 0);
    errno = 1;
    uint64_t v = rd(blk_addr(m, 1, BS));
    int e = errno;
    ck_assert_int_eq(e, 1);
    ck_assert_uint_eq(v, pattern(1, 1, 0));
    ck_assert_uint_eq(ncalls(&fk), 1);
    errno = 1;
    wr(blk_addr(m, 1, BS), 5); /* upgrade fault */
    e = errno;
    ck_assert_int_eq(e, 1);
    teardown(pg, f, m);
}
END_TEST

START_TEST(test_pager_two_mappings_alias)
{
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    struct pager_mapping *m1 = mkmap(f, 0, 4, 0), *m2 = mkmap(f, 2, 2, 0);
    char *a = pager_mapping_addr(m1), *b = pager_mapping_addr(m2);
    wr(a + 2 * BS + 40, 4242); /* block 2 through m1 */
    ck_assert_uint_eq(rd(b + 40), 4242);
    ck_assert_uint_eq(rd(b + 48), pattern(1, 2, 6));
    EXPECT_BLK(f, 2, PAGER_BLK_DIRTY, 2, 1);
    wr(b + BS, 99); /* block 3 through m2, seen through m1 */
    ck_assert_uint_eq(rd(a + 3 * BS), 99);
    wr(b + 56, 17); /* m2 mapped block 2 read-only or writable: either way it lands */
    ck_assert_uint_eq(rd(a + 2 * BS + 56), 17);
    ck_assert_uint_eq(ncalls(&fk), 2);
    pager_unmap(m1);
    EXPECT_BLK(f, 2, PAGER_BLK_DIRTY, 1, 1);
    ck_assert_uint_eq(rd(b + 40), 4242);
    pager_check(pg);
    teardown(pg, f, m2);
}
END_TEST

/* Unmapping keeps dirty data; a new mapping shows it. */
START_TEST(test_pager_unmap_dirty_then_remap)
{
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    struct pager_mapping *m = mkmap(f, 0, 4, 0);
    for (uint64_t i = 0; i < 4; i++)
        wr(blk_addr(m, i, BS) + 8 * i, 1000 + i);
    pager_unmap(m);
    for (uint64_t i = 0; i < 4; i++)
        EXPECT_BLK(f, i, PAGER_BLK_DIRTY, 0, 0);
    m = mkmap(f, 0, 4, PAGER_MAP_READONLY);
    for (uint64_t i = 0; i < 4; i++) {
        ck_assert_uint_eq(rd(blk_addr(m, i, BS) + 8 * i), 1000 + i);
        EXPECT_BLK(f, i, PAGER_BLK_DIRTY, 1, 0); /* read-only mapping: never writable */
    }
    ck_assert_uint_eq(ncalls(&fk), 4);
    teardown(pg, f, m);
}
END_TEST

struct reader_arg {
    char *addr;
    uint64_t got;
};

static void *reader(void *arg)
{
    struct reader_arg *ra = arg;
    ra->got = rd(ra->addr);
    return NULL;
}

/* wendelin 3.9.2: threads faulting on one block while its load sleeps: one load. */
START_TEST(test_pager_threads_same_block_load_once)
{
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    fk.sleep_ms = 300;
    struct pager_mapping *m = mkmap(f, 0, 2, 0);
    pthread_t th[4];
    struct reader_arg ra[4];
    for (int i = 0; i < 4; i++) {
        ra[i].addr = blk_addr(m, 1, BS) + (size_t)i * 4096;
        pthread_create(&th[i], NULL, reader, &ra[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_uint_eq(ra[i].got, pattern(1, 1, (uint64_t)i * 512));
    }
    ck_assert_uint_eq(ncalls(&fk), 1);
    teardown(pg, f, m);
}
END_TEST

/* wendelin 3.9.3: two blocks load in parallel (each load waits for the other). */
START_TEST(test_pager_threads_different_blocks_parallel)
{
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    fk.rv_need = 2;
    struct pager_mapping *m = mkmap(f, 0, 4, 0);
    pthread_t th[2];
    struct reader_arg ra[2] = {{blk_addr(m, 1, BS), 0}, {blk_addr(m, 3, BS), 0}};
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, reader, &ra[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ck_assert_uint_eq(ncalls(&fk), 2);
    ck_assert_uint_eq(ra[0].got, pattern(1, 1, 0));
    ck_assert_uint_eq(ra[1].got, pattern(1, 3, 0));
    teardown(pg, f, m);
}
END_TEST

/* wendelin 3.9.4: T1 faults, its load pauses with old data; the snapshot moves and the
 * block is invalidated; the load finishes with the old bytes: they are dropped and the
 * load redone, so T1 sees the new data. */
START_TEST(test_pager_invalidate_racing_load)
{
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    fk.pause_blk = 0;
    struct pager_mapping *m = mkmap(f, 0, 1, 0);
    pthread_t th;
    struct reader_arg ra = {blk_addr(m, 0, BS), 0};
    pthread_create(&th, NULL, reader, &ra);
    pthread_mutex_lock(&fk.mu);
    while (!fk.paused)
        pthread_cond_wait(&fk.cv, &fk.mu);
    fk.pause_blk = -1; /* the redone load does not pause */
    pthread_mutex_unlock(&fk.mu);
    EXPECT_BLK(f, 0, PAGER_BLK_LOADING, 0, 0);
    __atomic_store_n(&fk.version, 2, __ATOMIC_SEQ_CST);
    pager_file_invalidate(f, 0, 1);
    pthread_mutex_lock(&fk.mu);
    fk.go = 1;
    pthread_cond_broadcast(&fk.cv);
    pthread_mutex_unlock(&fk.mu);
    pthread_join(th, NULL);
    ck_assert_uint_eq(ra.got, pattern(2, 0, 0));
    ck_assert_uint_eq(ncalls(&fk), 2);
    teardown(pg, f, m);
}
END_TEST

/* ---- errors and crashes ------------------------------------------------------------------- */

static sigjmp_buf bus_env;
static void *bus_addr;
static int bus_code;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    bus_addr = si->si_addr;
    bus_code = si->si_code;
    siglongjmp(bus_env, 1);
}

/* Read addr; 1 if it raised SIGBUS (caught), 0 if it read. */
static int read_catching_sigbus(const char *addr, uint64_t *out)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &old);
    int got = 0;
    bus_addr = NULL;
    if (sigsetjmp(bus_env, 1) == 0)
        *out = rd(addr);
    else
        got = 1;
    sigaction(SIGBUS, &old, NULL);
    return got;
}

START_TEST(test_pager_load_error_sigbus_and_prefault_code)
{
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    fk.fail_blk = 2;
    fk.fail_code = BA_ECORRUPT;
    struct pager_mapping *m = mkmap(f, 0, 4, 0);
    char *addr = blk_addr(m, 2, BS) + 4096 + 24;
    uint64_t v = 0;
    ck_assert_int_eq(read_catching_sigbus(addr, &v), 1);
    ck_assert_ptr_eq(bus_addr, addr);
    /* uffd: UFFDIO_POISON gives BUS_MCEERR_AR, or BUS_ADRERR on kernels without
     * CONFIG_MEMORY_FAILURE (and from the thread-signal fallback). */
    ck_assert(bus_code == BUS_ADRERR || (_i && bus_code == BUS_MCEERR_AR));
    ck_assert_uint_eq(stats(pg).load_errors, 1);
    /* Poisoned until the error is taken: SIGBUS again, without a reload. */
    unsigned calls = ncalls(&fk);
    ck_assert_int_eq(read_catching_sigbus(addr, &v), 1);
    ck_assert_uint_eq(ncalls(&fk), calls);
    uint64_t blk = 0;
    ck_assert_int_eq(pager_file_take_error(f, &blk), BA_ECORRUPT);
    ck_assert_uint_eq(blk, 2);
    ck_assert_int_eq(pager_file_take_error(f, &blk), 0);
    /* prefault returns the code (and names the block), no signal. */
    ck_assert_int_eq(pager_prefault(m, 0, 4 * BS, 0), BA_ECORRUPT);
    ck_assert_msg(strstr(ba_error_msg(), "block 2"), "message: %s", ba_error_msg());
    ck_assert_int_eq(pager_file_take_error(f, &blk), 0); /* prefault records nothing */
    /* Other blocks are fine; once the file heals, the access works. */
    ck_assert_uint_eq(rd(blk_addr(m, 3, BS)), pattern(1, 3, 0));
    __atomic_store_n(&fk.fail_blk, -1, __ATOMIC_SEQ_CST);
    ck_assert_int_eq(read_catching_sigbus(addr, &v), 0);
    ck_assert_uint_eq(v, pattern(1, 2, (4096 + 24) / 8));
    pager_check(pg);
    teardown(pg, f, m);
}
END_TEST

/* An error in a thread other than the main one goes to that thread. */
struct bus_thread_arg {
    char *addr;
    int got;
    void *fault_addr;
};

static void *bus_thread(void *arg)
{
    struct bus_thread_arg *a = arg;
    uint64_t v;
    a->got = read_catching_sigbus(a->addr, &v);
    a->fault_addr = bus_addr;
    return NULL;
}

START_TEST(test_pager_load_error_sigbus_in_faulting_thread)
{
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    fk.fail_blk = 1;
    fk.fail_code = -EIO;
    struct pager_mapping *m = mkmap(f, 0, 2, 0);
    struct bus_thread_arg a = {blk_addr(m, 1, BS) + 8, 0, NULL};
    pthread_t th;
    pthread_create(&th, NULL, bus_thread, &a);
    pthread_join(th, NULL);
    ck_assert_int_eq(a.got, 1);
    ck_assert_ptr_eq(a.fault_addr, a.addr);
    uint64_t blk;
    ck_assert_int_eq(pager_file_take_error(f, &blk), -EIO);
    ck_assert_uint_eq(blk, 1);
    teardown(pg, f, m);
}
END_TEST

/* A SIGSEGV handler installed before the pager's still gets the faults that are not
 * the pager's (with their siginfo); the pager's own faults never reach it. */
static sigjmp_buf segv_env;
static void *segv_addr;
static int segv_calls;

static void on_sigsegv(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    segv_addr = si->si_addr;
    segv_calls++;
    siglongjmp(segv_env, 1);
}

START_TEST(test_pager_foreign_fault_chains_to_previous_handler)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsegv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGSEGV, &sa, NULL), 0); /* before the first pager */
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    struct pager_mapping *m = mkmap(f, 0, 2, PAGER_MAP_READONLY);
    ck_assert_uint_eq(rd(blk_addr(m, 1, BS)), pattern(1, 1, 0));
    ck_assert_int_eq(segv_calls, 0);
    char *bad = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sigsetjmp(segv_env, 1) == 0)
        wr(bad + 8, 1); /* not the pager's */
    ck_assert_int_eq(segv_calls, 1);
    ck_assert_ptr_eq(segv_addr, bad + 8);
    if (sigsetjmp(segv_env, 1) == 0)
        wr(blk_addr(m, 1, BS) + 16, 1); /* the pager's, but a read-only mapping */
    ck_assert_int_eq(segv_calls, 2);
    ck_assert_ptr_eq(segv_addr, blk_addr(m, 1, BS) + 16);
    ck_assert_uint_eq(rd(blk_addr(m, 0, BS)), pattern(1, 0, 0)); /* still serving */
    ck_assert_int_eq(segv_calls, 2);
    munmap(bad, 4096);
    teardown(pg, f, m);
}
END_TEST

/* A SIGSEGV handler installed after the pager (as Python's faulthandler.enable() does)
 * does not break mappings made after it: pager_map() reinstalls the pager's handler
 * and chains to the newcomer, which still gets every fault that is not the pager's. */
START_TEST(test_pager_handler_installed_later_is_chained)
{
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        return;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsegv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGSEGV, &sa, &old), 0); /* after the pager's */
    segv_calls = 0;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    struct pager_mapping *m = mkmap(f, 0, 2, 0);
    static volatile uint64_t v; /* static: survives a siglongjmp */
    v = 0;
    if (sigsetjmp(segv_env, 1) == 0)
        v = rd(blk_addr(m, 1, BS)); /* served by the pager, not the newcomer */
    ck_assert_int_eq(segv_calls, 0);
    ck_assert_uint_eq(v, pattern(1, 1, 0));
    char *bad = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sigsetjmp(segv_env, 1) == 0)
        wr(bad + 8, 1); /* not the pager's: reaches the newcomer */
    ck_assert_int_eq(segv_calls, 1);
    ck_assert_ptr_eq(segv_addr, bad + 8);
    munmap(bad, 4096);
    teardown(pg, f, m);
}
END_TEST

/* Without a usable spill directory, dirty data beyond the budget stays in RAM: the
 * budget is exceeded, nothing is lost. */
START_TEST(test_pager_spill_dir_unusable_keeps_data)
{
    struct pager_opts o;
    pager_opts_init(&o);
    o.ram_limit = 2 * BS;
    o.backend = _i ? PAGER_BACKEND_UFFD : PAGER_BACKEND_SIGSEGV;
    o.readahead = 0;
    o.spill_dir = "/nonexistent/bigarray-spill";
    struct pager *pg;
    ck_assert_int_eq(pager_create(&o, &pg), 0);
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    struct pager_mapping *m = mkmap(f, 0, 8, 0);
    for (uint64_t i = 0; i < 8; i++)
        wr(blk_addr(m, i, BS) + 64, 900 + i);
    ck_assert_uint_eq(stats(pg).spills, 0);
    ck_assert_uint_ge(stats(pg).ram_used, 8 * BS);
    for (uint64_t i = 0; i < 8; i++)
        ck_assert_uint_eq(rd(blk_addr(m, i, BS) + 64), 900 + i);
    ck_assert_uint_eq(pager_file_dirty_count(f), 8);
    pager_check(pg);
    teardown(pg, f, m);
}
END_TEST

/* Must crash: an access to an address that is not the pager's. */
START_TEST(test_pager_unrelated_segv_still_crashes)
{
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        raise(SIGSEGV); /* uffd unavailable: keep the expectation */
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    struct pager_mapping *m = mkmap(f, 0, 2, 0);
    (void)rd(pager_mapping_addr(m));
    char *bad = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    (void)rd(bad); /* PROT_NONE, not ours */
    ck_abort_msg("survived an access to a PROT_NONE page");
}
END_TEST

START_TEST(test_pager_null_write_still_crashes)
{
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        raise(SIGSEGV);
    volatile uintptr_t bad = 16; /* opaque to the compiler's bounds checks */
    wr((void *)bad, 1);
    ck_abort_msg("survived a write to address 16");
}
END_TEST

/* Must crash: a write through a read-only mapping. */
START_TEST(test_pager_readonly_mapping_write_crashes)
{
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        raise(SIGSEGV);
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    struct pager_mapping *m = mkmap(f, 0, 2, PAGER_MAP_READONLY);
    ck_assert_uint_eq(rd(blk_addr(m, 1, BS)), pattern(1, 1, 0));
    wr(blk_addr(m, 1, BS), 1);
    ck_abort_msg("a write through a read-only mapping succeeded");
}
END_TEST

/* Must crash: ops.load touching a pager mapping is a fault inside fault handling
 * (wendelin 3.5.3): fatal, not recursive. */
START_TEST(test_pager_fault_inside_load_crashes)
{
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        raise(SIGSEGV);
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    struct pager_mapping *m = mkmap(f, 0, 2, 0);
    fk.touch = blk_addr(m, 1, BS);
    fk.touch_mapping = 1;
    if (_i) /* uffd: the service thread must not wait on itself: prove it crashes */
        alarm(20);
    (void)rd(blk_addr(m, 0, BS));
    ck_abort_msg("a load that touched a pager mapping did not crash");
}
END_TEST

/* ---- system calls ---------------------------------------------------------------------- */

/* An empty file in a temporary directory, for system calls on views. */
struct scratch {
    char *dir, *path;
    int fd;
};

static struct scratch scratch_open(const char *tag)
{
    struct scratch sc;
    sc.dir = tu_mkdtemp(tag);
    sc.path = tu_path(sc.dir, "data");
    sc.fd = open(sc.path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(sc.fd, 0);
    return sc;
}

static void scratch_close(struct scratch *sc)
{
    close(sc->fd);
    free(sc->path);
    tu_rmtree(sc->dir);
}

START_TEST(test_pager_syscalls_on_views)
{
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    struct pager_mapping *m = mkmap(f, 0, 4, 0);
    struct scratch sc = scratch_open("pager-io");
    int fd = sc.fd;
    char *a = pager_mapping_addr(m);

    /* write(2) from an unloaded block. */
    ssize_t n = write(fd, a + BS, BS);
    if (!_i) {
        ck_assert_int_eq(n, -1); /* the kernel does not raise SIGSEGV for itself */
        ck_assert_int_eq(errno, EFAULT);
        ck_assert_int_eq(pager_prefault(m, BS, BS, 0), 0);
        n = write(fd, a + BS, BS);
    }
    ck_assert_int_eq(n, BS);
    uint64_t w;
    ck_assert_int_eq(pread(fd, &w, 8, 8), 8);
    ck_assert_uint_eq(w, pattern(1, 1, 1));

    /* read(2) into an unloaded block: loads it and dirties it. */
    char *buf = malloc(BS);
    memset(buf, 0xab, BS);
    ck_assert_int_eq(pwrite(fd, buf, BS, 0), BS);
    if (!_i)
        ck_assert_int_eq(pager_prefault(m, 2 * BS, BS, PAGER_PREFAULT_WRITE), 0);
    ck_assert_int_eq(pread(fd, a + 2 * BS, BS, 0), BS);
    EXPECT_BLK(f, 2, PAGER_BLK_DIRTY, 1, 1);
    tsan_sync();
    ck_assert(!memcmp(a + 2 * BS, buf, BS));
    /* read(2) into a clean mapped block: the write is tracked. */
    ck_assert_uint_eq(rd(a + 3 * BS), pattern(1, 3, 0));
    EXPECT_BLK(f, 3, PAGER_BLK_CLEAN, 1, 0);
    if (!_i)
        ck_assert_int_eq(pager_prefault(m, 3 * BS, 4096, PAGER_PREFAULT_WRITE), 0);
    ck_assert_int_eq(pread(fd, a + 3 * BS, 4096, 0), 4096);
    EXPECT_BLK(f, 3, PAGER_BLK_DIRTY, 1, 1);
    ck_assert_uint_eq(rd(a + 3 * BS), 0xababababababababull);
    ck_assert_uint_eq(rd(a + 3 * BS + 4096), pattern(1, 3, 512));
    free(buf);
    scratch_close(&sc);
    teardown(pg, f, m);
}
END_TEST

/* A prefault with the budget full of recently used blocks: every block it loads stays
 * mapped until it returns (the CLOCK hand, clearing reference bits and evicting to make
 * room for the later blocks, skips the range being prefaulted), so one write(2) of the
 * whole range works with the SIGSEGV backend. It failed with EFAULT when the hand
 * unmapped the range's first blocks to load its last ones. */
START_TEST(test_pager_prefault_range_stays_mapped_under_full_budget)
{
    struct pager *pg = mkpager(_i, 6 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    struct pager_mapping *m = mkmap(f, 0, 16, 0);
    char *a = pager_mapping_addr(m);
    struct scratch sc = scratch_open("pager-pf");
    int fd = sc.fd;
    for (int round = 0; round < 3; round++) {
        /* Fill the budget with referenced blocks outside the range. */
        for (uint64_t i = 10; i < 16; i++)
            ck_assert_uint_eq(rd(a + i * BS), pattern(1, i, 0));
        int write_fl = round == 2 ? PAGER_PREFAULT_WRITE : 0;
        ck_assert_int_eq(pager_prefault(m, 2 * BS, 5 * BS, (unsigned)write_fl), 0);
        ssize_t n = pwrite(fd, a + 2 * BS, 5 * BS, 0);
        ck_assert_msg(n == (ssize_t)(5 * BS), "round %d: write(2) of a prefaulted range: %zd (%s)",
                      round, n, n < 0 ? strerror(errno) : "short");
        uint64_t w;
        ck_assert_int_eq(pread(fd, &w, 8, 4 * BS + 8), 8);
        ck_assert_uint_eq(w, pattern(1, 6, 1));
    }
    /* A range larger than the budget is still loaded block by block (no error) and
     * the budget holds: it cannot stay mapped whole. */
    ck_assert_int_eq(pager_prefault(m, 0, 16 * BS, 0), 0);
    ck_assert_uint_le(stats(pg).ram_used, 6 * BS);
    scratch_close(&sc);
    teardown(pg, f, m);
}
END_TEST

/* ---- fork --------------------------------------------------------------------------------- */

START_TEST(test_pager_fork_child)
{
    struct pager *pg = mkpager(_i, 16 * BS, 0);
    if (!pg)
        return;
    struct fake fk;
    struct pager_file *f = mkfile(pg, &fk, BS);
    struct pager_mapping *m = mkmap(f, 0, 2, 0);
    char *a = pager_mapping_addr(m);
    wr(a, 42);
    fflush(NULL);
    /* Child 1: the pager refuses work; its mappings are gone. */
    pid_t pid = fork();
    if (pid == 0) {
        struct pager_mapping *m2;
        int ok =
            pager_map(f, 0, 1, 0, &m2) == BA_EFAILED && pager_prefault(m, 0, 1, 0) == BA_EFAILED;
        char perms[5];
        tu_maps_vma(a, NULL, perms, NULL);
        ok = ok && !strcmp(perms, "none");
        _exit(ok ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child 1 status %#x", status);
    /* Child 2: touching a former view address is a plain crash. */
    pid = fork();
    if (pid == 0) {
        (void)rd(a); /* the pager's handler must pass it on */
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "child 2 status %#x", status);
    /* The parent is unaffected. */
    ck_assert_uint_eq(rd(a), 42);
    wr(a + BS, 43);
    ck_assert_uint_eq(pager_file_dirty_count(f), 2);
    teardown(pg, f, m);
}
END_TEST

/* ---- suite -------------------------------------------------------------------------------- */

static Suite *pager_suite(void)
{
    Suite *s = suite_create("pager");
    struct {
        const char *name;
        const TTest *t;
    } cases[] = {
        {"synthetic", test_pager_synthetic_ram3},
        {"writeout", test_pager_writeout_order_and_mark_clean},
        {"invalidate", test_pager_invalidate_clean_and_dirty},
        {"faults", test_pager_read_write_faults},
        {"errno", test_pager_fault_preserves_errno},
        {"alias", test_pager_two_mappings_alias},
        {"remap", test_pager_unmap_dirty_then_remap},
        {"threads_same", test_pager_threads_same_block_load_once},
        {"threads_parallel", test_pager_threads_different_blocks_parallel},
        {"invalidate_race", test_pager_invalidate_racing_load},
        {"load_error", test_pager_load_error_sigbus_and_prefault_code},
        {"prefault_budget", test_pager_prefault_range_stays_mapped_under_full_budget},
        {"load_error_thread", test_pager_load_error_sigbus_in_faulting_thread},
        {"syscalls", test_pager_syscalls_on_views},
        {"fork", test_pager_fork_child},
        {"chain", test_pager_foreign_fault_chains_to_previous_handler},
        {"chain_later", test_pager_handler_installed_later_is_chained},
        {"spill_nodir", test_pager_spill_dir_unusable_keeps_data},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 240);
        tcase_add_loop_test(tc, cases[i].t, 0, 2);
        suite_add_tcase(s, tc);
    }
    TCase *tc = tcase_create("crash");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test_raise_signal(tc, test_pager_unrelated_segv_still_crashes, SIGSEGV, 0, 2);
    tcase_add_loop_test_raise_signal(tc, test_pager_null_write_still_crashes, SIGSEGV, 0, 2);
    tcase_add_loop_test_raise_signal(tc, test_pager_readonly_mapping_write_crashes, SIGSEGV, 0, 2);
    tcase_add_loop_test_raise_signal(tc, test_pager_fault_inside_load_crashes, SIGSEGV, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(pager_suite());
}
