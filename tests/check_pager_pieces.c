/* SPDX-License-Identifier: MIT */
/*
 * Check suite for pager/'s zero-copy reads by pieces (pager_direct.c, "Pieces"): with
 * ops.verify_piece, a read fault on a DIRECT block checks and maps only the pieces under
 * the bytes it touches, until more than half the block would be checked. The fake file
 * (pager_direct_fixture.h) offers piece sums with its own whole-file mapping, like
 * LMDB's. SIGSEGV backend, as check_pager_direct.c.
 */
#include "pager_direct_fixture.h"

#define PBS (1u << 20) /* block size of the piece tests: 16 pieces */
#define PS  (64u << 10)
#define PNB 8u /* blocks */

static uint64_t piece_word(struct pager_mapping *m, uint64_t blk, unsigned piece, uint64_t w)
{
    const uint64_t *p = (const uint64_t *)(void *)(blk_addr(m, blk, PBS) + (size_t)piece * PS);
    return rd(&p[w]);
}

static uint64_t piece_pattern(unsigned version, uint64_t blk, unsigned piece, uint64_t w)
{
    return pattern(version, blk, (uint64_t)piece * (PS / 8) + w);
}

static void expect_vma(const void *addr, const char *path, const char *perms_want, int file_want)
{
    char perms[5];
    int is_file;
    tu_maps_vma(addr, path, perms, &is_file);
    ck_assert_str_eq(perms, perms_want);
    ck_assert_int_eq(is_file, file_want);
}

/* A read fault on a block with pieces maps and checks the pieces under the 64 KiB from
 * the byte it touches (PAGER_PIECE_SPAN: two 64 KiB pieces, one when the byte starts a
 * piece, fewer at the block's end), nothing else: the block is DIRECT with those pieces
 * checked, its other pieces stay holes. Other faults likewise, until one would leave
 * more than half the pieces checked: it checks every piece left and maps the whole
 * block. No whole-block check, no load, no frame. */
START_TEST(test_pager_direct_pieces_check_what_is_touched)
{
    struct dfile d;
    dfile_init(&d, PBS, PNB, 0);
    dfile_pieces(&d, 16);
    struct pager *pg = mkpager(4 * PBS, 0);
    struct pager_file *f = mkfile(pg, &d);
    struct pager_mapping *m = mkmap(f, 0, PNB);
    char *b2 = blk_addr(m, 2, PBS);
    ck_assert_uint_eq(piece_word(m, 2, 5, 3), piece_pattern(1, 2, 5, 3));
    EXPECT_BLK(f, 2, PAGER_BLK_DIRECT, 1, 0);
    ck_assert_uint_eq(info(f, 2).pieces, 3u << 5);
    ck_assert_uint_eq(cnt(&d.pverifies), 2);
    ck_assert_uint_eq(cnt(&d.verifies), 0);
    ck_assert_uint_eq(cnt(&d.locates), 1);
    expect_vma(b2 + 5 * PS, d.path, "r--p", 1);
    expect_vma(b2 + 6 * PS + PS - 8, d.path, "r--p", 1);
    expect_vma(b2 + 4 * PS, d.path, "---p", 0);
    expect_vma(b2 + 7 * PS, d.path, "---p", 0);
    ck_assert_uint_eq(piece_word(m, 2, 6, PS / 8 - 1), piece_pattern(1, 2, 6, PS / 8 - 1));
    ck_assert_uint_eq(cnt(&d.pverifies), 2);
    ck_assert_uint_eq(stats(pg).faults_read, 1); /* the read ran on into piece 6 */
    pager_check(pg);
    ck_assert_uint_eq(piece_word(m, 2, 9, 1), piece_pattern(1, 2, 9, 1));
    ck_assert_uint_eq(info(f, 2).pieces, (3u << 5) | (3u << 9));
    ck_assert_uint_eq(cnt(&d.pverifies), 4);
    expect_vma(b2 + 8 * PS, d.path, "---p", 0);
    expect_vma(b2 + 11 * PS, d.path, "---p", 0);
    ck_assert_uint_eq(piece_word(m, 2, 12, 1), piece_pattern(1, 2, 12, 1));
    ck_assert_uint_eq(piece_word(m, 2, 0, 1), piece_pattern(1, 2, 0, 1));
    ck_assert_uint_eq(info(f, 2).pieces, (3u << 0) | (3u << 5) | (3u << 9) | (3u << 12));
    ck_assert_uint_eq(cnt(&d.pverifies), 8);
    pager_check(pg);
    /* Two more would make 10 of 16: the rest are checked, the block is mapped whole. */
    ck_assert_uint_eq(piece_word(m, 2, 3, 1), piece_pattern(1, 2, 3, 1));
    ck_assert_uint_eq(info(f, 2).pieces, 0);
    EXPECT_BLK(f, 2, PAGER_BLK_DIRECT, 1, 0);
    ck_assert_uint_eq(cnt(&d.pverifies), 16);
    expect_vma(b2 + 7 * PS, d.path, "r--p", 1);
    ck_assert(block_is(b2, PBS, 1, 2));
    ck_assert_uint_eq(cnt(&d.pverifies), 16);
    ck_assert_uint_eq(cnt(&d.verifies), 0);
    ba_pager_stat st = stats(pg);
    ck_assert_uint_eq(st.direct_pieces, 16);
    ck_assert_uint_eq(st.direct_loads, 1);
    ck_assert_uint_eq(st.loads, 0);
    ck_assert_uint_eq(st.ram_used, 0);
    ck_assert_uint_eq(cnt(&d.loads), 0);
    pager_check(pg);
    /* A touch at the first byte of a piece checks that piece alone (the 64 KiB from it);
     * one in the last piece checks only it. */
    ck_assert_uint_eq(piece_word(m, 3, 4, 0), piece_pattern(1, 3, 4, 0));
    ck_assert_uint_eq(info(f, 3).pieces, 1u << 4);
    ck_assert_uint_eq(piece_word(m, 3, 15, 1), piece_pattern(1, 3, 15, 1));
    ck_assert_uint_eq(info(f, 3).pieces, (1u << 4) | (1u << 15));
    ck_assert_uint_eq(cnt(&d.pverifies), 18);
    expect_vma(blk_addr(m, 3, PBS) + 5 * PS, d.path, "---p", 0);
    expect_vma(blk_addr(m, 3, PBS) + 14 * PS, d.path, "---p", 0);
    pager_check(pg);
    teardown(pg, f, m);
    dfile_destroy(&d);
}
END_TEST

/* A damaged byte in piece 3: piece 5 of the block reads fine (checked alone), piece 3
 * gives SIGBUS at the address (the block is loaded, which checks the whole block and
 * reports), prefault gives the code; repaired, it reads again. */
START_TEST(test_pager_direct_pieces_damage_is_caught_in_its_piece)
{
    struct dfile d;
    dfile_init(&d, PBS, PNB, 0);
    dfile_pieces(&d, 16);
    off_t bad = (off_t)region_off(&d, 1, 1) + 3 * PS + 100;
    unsigned char c;
    ck_assert_int_eq(pread(d.fd, &c, 1, bad), 1);
    c ^= 0x08;
    ck_assert_int_eq(pwrite(d.fd, &c, 1, bad), 1);
    struct pager *pg = mkpager(4 * PBS, 0);
    struct pager_file *f = mkfile(pg, &d);
    struct pager_mapping *m = mkmap(f, 0, PNB);
    ck_assert_uint_eq(piece_word(m, 1, 5, 7), piece_pattern(1, 1, 5, 7));
    ck_assert_uint_eq(info(f, 1).pieces, 3u << 5);
    char *p = blk_addr(m, 1, PBS) + 3 * PS + 16;
    void *fault_addr = NULL;
    ck_assert(tu_sigbus_reading(p, &fault_addr));
    ck_assert_ptr_eq(fault_addr, p);
    EXPECT_BLK(f, 1, PAGER_BLK_ABSENT, 0, 0);
    uint64_t blk;
    ck_assert_int_eq(pager_file_take_error(f, &blk), BA_ECORRUPT);
    ck_assert_uint_eq(blk, 1);
    ck_assert_int_eq(pager_prefault(m, 1 * PBS, 8, 0), BA_ECORRUPT);
    ck_assert(block_is(blk_addr(m, 2, PBS), PBS, 1, 2)); /* neighbours are fine */
    c ^= 0x08;
    ck_assert_int_eq(pwrite(d.fd, &c, 1, bad), 1);
    ck_assert_uint_eq(piece_word(m, 1, 3, 2), piece_pattern(1, 1, 3, 2));
    EXPECT_BLK(f, 1, PAGER_BLK_DIRECT, 1, 0);
    ck_assert(block_is(blk_addr(m, 1, PBS), PBS, 1, 1));
    pager_check(pg);
    teardown(pg, f, m);
    dfile_destroy(&d);
}
END_TEST

/* A write to a block checked by pieces copies it into a frame through ops.load (the
 * unchecked pieces are checked there), a block checked whole straight from the file;
 * both keep every other byte. */
START_TEST(test_pager_direct_pieces_write_loads_the_block)
{
    struct dfile d;
    dfile_init(&d, PBS, PNB, 0);
    dfile_pieces(&d, 16);
    struct pager *pg = mkpager(4 * PBS, 0);
    struct pager_file *f = mkfile(pg, &d);
    struct pager_mapping *m = mkmap(f, 0, PNB);
    ck_assert_uint_eq(piece_word(m, 0, 2, 0), piece_pattern(1, 0, 2, 0));
    uint64_t *w = (uint64_t *)(void *)(blk_addr(m, 0, PBS) + 7 * PS);
    wr(&w[1], 0xfeed);
    EXPECT_BLK(f, 0, PAGER_BLK_DIRTY, 1, 1);
    ck_assert_uint_eq(cnt(&d.loads), 1);
    ck_assert_uint_eq(rd(&w[1]), 0xfeed);
    ck_assert_uint_eq(rd(&w[0]), piece_pattern(1, 0, 7, 0));
    ck_assert_uint_eq(piece_word(m, 0, 15, PS / 8 - 1), piece_pattern(1, 0, 15, PS / 8 - 1));
    /* Block 1 checked whole (prefault), then written: copied from the file. */
    ck_assert_int_eq(pager_prefault(m, 1 * PBS, PBS, 0), 0);
    ck_assert_uint_eq(info(f, 1).pieces, 0);
    EXPECT_BLK(f, 1, PAGER_BLK_DIRECT, 1, 0);
    wr(blk_addr(m, 1, PBS) + 8, 0xbeef);
    ck_assert_uint_eq(cnt(&d.loads), 1);
    ck_assert_uint_eq(rd(blk_addr(m, 1, PBS) + 8), 0xbeef);
    ck_assert_uint_eq(piece_word(m, 1, 9, 5), piece_pattern(1, 1, 9, 5));
    ck_assert_uint_eq(stats(pg).direct_copies, 2);
    pager_check(pg);
    teardown(pg, f, m);
    dfile_destroy(&d);
}
END_TEST

/* Two mappings share the checked pieces (a piece is checked once, whichever mapping
 * touched it first); a prefault checks the rest, and a mapping still showing pieces
 * then shows the whole block at its next fault. An invalidated block shows the new
 * version's bytes, piece by piece again. */
START_TEST(test_pager_direct_pieces_two_mappings_prefault_invalidate)
{
    struct dfile d;
    dfile_init(&d, PBS, PNB, 0);
    dfile_pieces(&d, 16);
    struct pager *pg = mkpager(4 * PBS, 0);
    struct pager_file *f = mkfile(pg, &d);
    struct pager_mapping *m1 = mkmap(f, 0, PNB), *m2 = mkmap(f, 2, 4);
    ck_assert_uint_eq(piece_word(m1, 3, 1, 1), piece_pattern(1, 3, 1, 1));
    ck_assert_uint_eq(piece_word(m2, 1, 1, 9), piece_pattern(1, 3, 1, 9));
    EXPECT_BLK(f, 3, PAGER_BLK_DIRECT, 2, 0);
    ck_assert_uint_eq(cnt(&d.pverifies), 2);
    ck_assert_uint_eq(piece_word(m2, 1, 4, 1), piece_pattern(1, 3, 4, 1));
    ck_assert_uint_eq(piece_word(m1, 3, 4, 1), piece_pattern(1, 3, 4, 1));
    ck_assert_uint_eq(cnt(&d.pverifies), 4);
    pager_check(pg);
    ck_assert_int_eq(pager_prefault(m1, 3 * PBS + 10, 1, 0), 0);
    ck_assert_uint_eq(info(f, 3).pieces, 0);
    ck_assert_uint_eq(cnt(&d.pverifies), 16);
    ck_assert_uint_eq(piece_word(m2, 1, 8, 3), piece_pattern(1, 3, 8, 3));
    ck_assert(block_is(blk_addr(m2, 1, PBS), PBS, 1, 3));
    ck_assert(block_is(blk_addr(m1, 3, PBS), PBS, 1, 3));
    ck_assert_uint_eq(cnt(&d.pverifies), 16);
    pager_check(pg);
    /* Invalidation: the next version, piece by piece. */
    ck_assert_uint_eq(piece_word(m1, 4, 6, 0), piece_pattern(1, 4, 6, 0));
    __atomic_store_n(&d.version, 2, __ATOMIC_SEQ_CST);
    pager_file_invalidate(f, 3, 2);
    EXPECT_BLK(f, 4, PAGER_BLK_ABSENT, 0, 0);
    ck_assert_uint_eq(piece_word(m1, 4, 6, 0), piece_pattern(2, 4, 6, 0));
    ck_assert_uint_eq(piece_word(m2, 1, 2, 0), piece_pattern(2, 3, 2, 0));
    ck_assert_uint_eq(info(f, 4).pieces, 1u << 6);
    ck_assert(block_is(blk_addr(m1, 3, PBS), PBS, 2, 3));
    pager_check(pg);
    pager_unmap(m2);
    teardown(pg, f, m1);
    dfile_destroy(&d);
}
END_TEST

struct piece_reader {
    struct pager_mapping *m;
    uint64_t seed;
    int bad;
};

static void *piece_reader_main(void *arg)
{
    struct piece_reader *r = arg;
    for (int i = 0; i < 4000; i++) {
        uint64_t x = tu_rand(&r->seed);
        uint64_t blk = x % PNB, w = (x >> 8) % (PBS / 8);
        const uint64_t *p = (const uint64_t *)(void *)blk_addr(r->m, blk, PBS);
        r->bad += rd(&p[w]) != pattern(1, blk, w);
    }
    return NULL;
}

/* Threads reading random words of blocks with pieces all see the right bytes (pieces
 * checked by racing threads, blocks turning whole under them). */
START_TEST(test_pager_direct_pieces_threads)
{
    struct dfile d;
    dfile_init(&d, PBS, PNB, 0);
    dfile_pieces(&d, 16);
    struct pager *pg = mkpager(4 * PBS, 0);
    struct pager_file *f = mkfile(pg, &d);
    struct pager_mapping *m = mkmap(f, 0, PNB);
    enum { T = 4 };
    pthread_t th[T];
    struct piece_reader r[T];
    for (int i = 0; i < T; i++) {
        r[i] = (struct piece_reader){m, 1000 + (uint64_t)i, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, piece_reader_main, &r[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(r[i].bad, 0);
    }
    for (uint64_t b = 0; b < PNB; b++)
        ck_assert(block_is(blk_addr(m, b, PBS), PBS, 1, b));
    ck_assert_uint_eq(cnt(&d.loads), 0);
    ck_assert_uint_ge(cnt(&d.pverifies), PNB * 16);
    pager_check(pg);
    teardown(pg, f, m);
    dfile_destroy(&d);
}
END_TEST

/* Random reads of single pieces over many blocks (each block showing up to half its
 * pieces, between holes) keep the kernel's mapping count bounded: piece mappings count
 * against the cap like mapped blocks. */
START_TEST(test_pager_direct_pieces_vma_count)
{
    enum { N = 20000 };
    const uint32_t bs = 512u << 10;
    struct dfile d;
    dfile_init(&d, bs, N, 1);
    dfile_pieces(&d, 16);
    struct pager *pg = mkpager(64 * (uint64_t)bs, 0);
    struct pager_file *f = mkfile(pg, &d);
    struct pager_mapping *m = mkmap(f, 0, N);
    long base = tu_maps_count(NULL), peak = base;
    uint64_t seed = 7;
    for (int i = 0; i < 3 * N; i++) {
        uint64_t x = tu_rand(&seed), b = x % N, piece = (x >> 20) % 8;
        ck_assert_uint_eq(rd(blk_addr(m, b, bs) + piece * PS + 8 * ((x >> 24) % 512)), 0);
        if (i % 2000 == 0) {
            long v = tu_maps_count(NULL);
            peak = v > peak ? v : peak;
        }
    }
    ba_pager_stat st = stats(pg);
    printf("pieces VMA run: %d faults over %d blocks, VMAs %ld -> peak %ld, pieces %llu\n", 3 * N,
           N, base, peak, (unsigned long long)st.direct_pieces);
    ck_assert_uint_gt(st.direct_pieces, N);
    ck_assert_int_lt(peak - base, 12000); /* max_map_count / 16 mappings, ~2 VMAs each */
    pager_check(pg);
    teardown(pg, f, m);
    dfile_destroy(&d);
}
END_TEST

static Suite *pager_pieces_suite(void)
{
    Suite *s = suite_create("pager_pieces");
    TCase *tc = tcase_create("pieces");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_pager_direct_pieces_check_what_is_touched);
    tcase_add_test(tc, test_pager_direct_pieces_damage_is_caught_in_its_piece);
    tcase_add_test(tc, test_pager_direct_pieces_write_loads_the_block);
    tcase_add_test(tc, test_pager_direct_pieces_two_mappings_prefault_invalidate);
    tcase_add_test(tc, test_pager_direct_pieces_threads);
    tcase_add_test(tc, test_pager_direct_pieces_vma_count);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(pager_pieces_suite());
}
