/* SPDX-License-Identifier: MIT */
/*
 * What the pager shows about itself: per-block state for the tests
 * (pager_block_info_get), the counters (pager_stat_get, pager_file_stat_get), and the
 * invariant checker that asserts, in debug builds, what the top of pager.c says holds
 * in each state (pager_check_block after each transition, pager_check_locked over the
 * whole pager at API boundaries).
 */
#include <assert.h>
#include <string.h>

#include "pager_internal.h"

/* ---- introspection ------------------------------------------------------------------------ */

void pager_block_info_get(struct pager_file *pf, uint64_t blkno, struct pager_block_info *out)
{
    struct pager *pg = pf->pg;
    memset(out, 0, sizeof *out);
    out->lru_rank = UINT64_MAX;
    if (pager_lock(pg))
        return;
    struct pager_block *b = index_get(pf, blkno);
    if (b) {
        static const int pub[] = {
            [BS_ABSENT] = PAGER_BLK_ABSENT,      [BS_LOADING] = PAGER_BLK_LOADING,
            [BS_CLEAN] = PAGER_BLK_CLEAN,        [BS_DIRTY] = PAGER_BLK_DIRTY,
            [BS_SPILLING] = PAGER_BLK_DIRTY,     [BS_SPILLED] = PAGER_BLK_SPILLED,
            [BS_UNSPILLING] = PAGER_BLK_SPILLED, [BS_LOCATING] = PAGER_BLK_LOADING,
            [BS_DIRECT] = PAGER_BLK_DIRECT};
        out->state = pub[b->state];
        out->nmapped = block_nmapped(b);
        for (struct pager_bmap *bm = b->maps; bm; bm = bm->next)
            out->writable |= bm->writable;
        out->referenced = (b->flags & BF_REFERENCED) != 0;
        out->lru_rank = block_lru_rank(pg, b);
        out->staged = b->state == BS_DIRECT && b->dslot != PAGER_NO_SLOT;
        out->pieces = b->state == BS_DIRECT && b->pshift ? b->pmask : 0;
    }
    pthread_mutex_unlock(&pg->lock);
}

static void stat_fill(ba_pager_stat *st, const struct pager_counters *c, uint64_t ram_used,
                      uint64_t ram_limit, uint64_t dirty, uint64_t direct)
{
    ba_pager_stat s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    s.faults_read = c->faults_read;
    s.faults_write = c->faults_write;
    s.faults_remap = c->faults_remap;
    s.loads = c->loads;
    s.load_bytes = c->load_bytes;
    s.load_errors = c->load_errors;
    s.readahead_loads = c->readahead_loads;
    s.readahead_hits = c->readahead_hits;
    s.evictions = c->evictions;
    s.spills = c->spills;
    s.unspills = c->unspills;
    s.invalidations = c->invalidations;
    s.ram_used = ram_used;
    s.ram_limit = ram_limit;
    s.dirty_bytes = dirty;
    s.fault_ns_total = c->fault_ns_total;
    s.direct_loads = c->direct_loads;
    s.direct_copies = c->direct_copies;
    s.direct_bytes = direct;
    s.direct_pieces = c->direct_pieces;
    memcpy(s.fault_hist, c->fault_hist, sizeof s.fault_hist);
    size_t n = (st->size && st->size < sizeof s) ? st->size : sizeof s;
    size_t keep = st->size ? st->size : sizeof s;
    memcpy(st, &s, n);
    st->size = keep;
}

void pager_stat_get(struct pager *pg, ba_pager_stat *st)
{
    if (pager_lock(pg))
        return;
    stat_fill(st, &pg->cnt, pg->ram_used, pg->ram_limit, pg->dirty_bytes, pg->direct_bytes);
    pthread_mutex_unlock(&pg->lock);
}

void pager_file_stat_get(struct pager_file *pf, ba_pager_stat *st)
{
    struct pager *pg = pf->pg;
    if (pager_lock(pg))
        return;
    uint64_t frames = 0;
    for (uint64_t i = 0; i < pf->nbuckets; i++)
        for (struct pager_block *b = pf->buckets[i]; b; b = b->hnext)
            frames += b->state == BS_LOADING || b->state == BS_CLEAN || b->state == BS_DIRTY ||
                      b->state == BS_SPILLING || b->state == BS_UNSPILLING;
    stat_fill(st, &pf->cnt, frames * pf->bs, pg->ram_limit, pf->ndirty * pf->bs,
              pf->ndirect * pf->bs);
    pthread_mutex_unlock(&pg->lock);
}

/* ---- invariants -------------------------------------------------------------------------- */

void pager_check_block(const struct pager_block *b)
{
#ifndef NDEBUG
    const struct pager_file *f = b->file;
    int has_frame = b->state == BS_LOADING || b->state == BS_CLEAN || b->state == BS_DIRTY ||
                    b->state == BS_SPILLING || b->state == BS_UNSPILLING;
    int direct = b->state == BS_DIRECT;
    int in_ring = b->cnext != NULL;
    assert(in_ring == (b->state == BS_CLEAN || b->state == BS_DIRTY || direct));
    assert(!b->maps || b->state == BS_CLEAN || b->state == BS_DIRTY || direct);
    if (has_frame)
        assert(b->frame < f->pool->hw);
    /* A LOCATING block holds a staging slot, unless it locates for pieces. */
    if (b->state == BS_LOCATING)
        assert(b->dslot == PAGER_NO_SLOT || (f->pool->stage && b->dslot < f->pool->nstage));
    /* Pieces: DIRECT, unstaged, some piece unchecked; shown as pieces everywhere. */
    if (b->pshift) {
        assert(direct && b->dslot == PAGER_NO_SLOT && b->pshift >= PAGER_MIN_SHIFT);
        assert((f->bs >> b->pshift) >= 2 && (f->bs >> b->pshift) <= 64);
        assert(b->pmask !=
               ((f->bs >> b->pshift) == 64 ? ~0ull : (1ull << (f->bs >> b->pshift)) - 1));
        assert((unsigned)__builtin_popcountll(b->pmask) <= (f->bs >> b->pshift) / 2);
        for (const struct pager_bmap *bm = b->maps; bm; bm = bm->next)
            assert(bm->partial);
    } else {
        assert(!b->pmask);
    }
    if (direct) {
        /* Clean, read-only everywhere, no frame, nothing a frame or a load would flag. */
        assert(b->dslot == PAGER_NO_SLOT || (f->pool->stage && b->dslot < f->pool->nstage));
        assert(b->dfd >= 0 && b->doff % (1u << PAGER_MIN_SHIFT) == 0);
        assert(!(b->flags & (BF_STALE | BF_WPROT | BF_POISON | BF_AWAY | BF_RA_LOAD)));
        assert(!b->pin);
    }
    unsigned nprimary = 0;
    for (const struct pager_bmap *bm = b->maps; bm; bm = bm->next) {
        nprimary += bm->primary;
        assert(bm->m->file == f);
        assert(b->blkno >= bm->m->first && b->blkno - bm->m->first < bm->m->n);
        assert(!direct || (!bm->writable && !bm->primary));
        assert(direct || !bm->partial);
        assert(bm->partial || !bm->runs);
        if (bm->writable) {
            assert(b->state == BS_DIRTY);
            assert(!(b->flags & BF_WPROT));
            assert(!(bm->m->flags & PAGER_MAP_READONLY));
        }
    }
    assert(nprimary == ((b->flags & BF_AWAY) ? 1u : 0u));
    assert(!b->pin || b->state == BS_DIRTY || b->state == BS_SPILLING);
    assert(!(b->flags & BF_POISON) || b->state == BS_ABSENT);
    assert(!(b->flags & BF_READAHEAD) || b->state == BS_CLEAN || b->state == BS_DIRTY || direct);
#else
    (void)b;
#endif
}

void pager_check_locked(struct pager *pg)
{
#ifndef NDEBUG
    for (int k = 0; k < 2; k++) {
        const struct pager_ring *r = k ? &pg->dring : &pg->ring;
        uint64_t ring = 0;
        if (r->hand) {
            const struct pager_block *b = r->hand;
            do {
                assert(b->cnext->cprev == b);
                assert(k ? b->state == BS_DIRECT : b->state == BS_CLEAN || b->state == BS_DIRTY);
                ring++;
                b = b->cnext;
            } while (b != r->hand && ring <= r->n);
        }
        assert(ring == r->n);
    }
    uint64_t bmaps = 0, piece_maps = 0, dirty_bytes = 0, used[PAGER_NPOOLS] = {0},
             spilled[PAGER_NPOOLS] = {0};
    uint64_t ndirect_all = 0, direct_bytes = 0, staged[PAGER_NPOOLS] = {0};
    for (const struct pager_file *f = pg->files; f; f = f->next) {
        uint64_t nblocks = 0, ndirty = 0, ndirect = 0;
        unsigned pi = (unsigned)__builtin_ctz(f->bs) - PAGER_MIN_SHIFT;
        assert(pg->pools[pi] == f->pool);
        for (uint64_t i = 0; i < f->nbuckets; i++)
            for (const struct pager_block *b = f->buckets[i]; b; b = b->hnext) {
                pager_check_block(b);
                nblocks++;
                bmaps += block_nmapped(b);
                for (const struct pager_bmap *bm = b->maps; bm; bm = bm->next)
                    piece_maps += bm->runs;
                ndirty += b->state == BS_DIRTY || b->state == BS_SPILLING ||
                          b->state == BS_SPILLED || b->state == BS_UNSPILLING;
                used[pi] += b->state == BS_LOADING || b->state == BS_CLEAN ||
                            b->state == BS_DIRTY || b->state == BS_SPILLING ||
                            b->state == BS_UNSPILLING;
                spilled[pi] +=
                    b->state == BS_SPILLING || b->state == BS_SPILLED || b->state == BS_UNSPILLING;
                ndirect += b->state == BS_DIRECT;
                staged[pi] +=
                    (b->state == BS_DIRECT || b->state == BS_LOCATING) && b->dslot != PAGER_NO_SLOT;
            }
        assert(nblocks == f->nblocks);
        assert(ndirty == f->ndirty);
        assert(ndirect == f->ndirect);
        dirty_bytes += ndirty * f->bs;
        ndirect_all += ndirect;
        direct_bytes += ndirect * f->bs;
        for (const struct pager_mapping *m = f->maps; m; m = m->fnext)
            assert(m->file == f);
    }
    assert(bmaps == pg->nbmaps);
    assert(piece_maps == pg->npiece_maps);
    assert(dirty_bytes == pg->dirty_bytes);
    assert(ndirect_all == pg->dring.n);
    assert(pg->dring.n <= pg->max_direct);
    assert(direct_bytes == pg->direct_bytes);
    unsigned nguards = 0;
    for (unsigned i = 0; i < PAGER_GUARDS; i++)
        nguards += pg->guards[i].f != NULL;
    assert(nguards == pg->nguards);
    uint64_t ram = 0;
    for (int i = 0; i < PAGER_NPOOLS; i++) {
        const struct pager_pool *p = pg->pools[i];
        if (!p)
            continue;
        assert(used[i] + p->free_pop.n + p->nfilling == p->npop);
        assert(p->nstocking <= p->nfilling);
        assert(p->npop + p->free_unpop.n == p->hw);
        assert(spilled[i] == p->nspilled);
        assert(staged[i] + p->stage_free.n == p->nstage);
        ram += (uint64_t)p->npop * p->bs;
    }
    assert(ram == pg->ram_used);
#else
    (void)pg;
#endif
}

void pager_check(struct pager *pg)
{
#ifndef NDEBUG
    if (pager_lock(pg))
        return;
    pager_check_locked(pg);
    pthread_mutex_unlock(&pg->lock);
#else
    (void)pg;
#endif
}
