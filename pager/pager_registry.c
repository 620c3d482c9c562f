/* SPDX-License-Identifier: MIT */
/*
 * The process-wide registry the fault handlers consult: which address ranges are
 * pager mappings (a sorted array searched by bisection), and which pagers exist (for
 * the fork child handler). These and the installed SIGSEGV handler are the pager's
 * only globals.
 *
 * Concurrency: a pthread rwlock. Fault contexts take it for reading for one lookup and
 * raise the found mapping's `active` count before releasing it; pager_map() and
 * pager_unmap() take it for writing only to insert or remove an entry. pager_unmap()
 * removes the entry first, then waits (on the pager's condition) until `active` drops
 * to zero before it tears the mapping down, so a fault never uses a freed mapping. The
 * lock is a leaf: nothing else is held with it. Being synchronous, a fault never
 * interrupts a thread inside this file.
 *
 * fork(): the child handler marks every existing pager forked, empties the registry
 * and re-initialises its lock (another thread of the parent may have held it).
 *
 * The fork guard: a new mapping of a block exists for a moment before
 * madvise(MADV_DONTFORK) marks it, and a fork in that moment would hand the child a
 * copy (for a zero-copy block, a private mapping of data.mdb that no snapshot of the
 * child pins). The zero-copy path maps and marks inside the guard (any number of
 * threads at once); fork() waits until none is inside and keeps new ones out: the
 * prepare handler locks the guard's mutex and waits for the count of threads inside to
 * drop to zero, the parent and child handlers unlock it. (A mutex, not an rwlock: the
 * forking thread unlocks it in the child, where its thread id is new; glibc's rwlock
 * would take a writer's unlock by a new thread id for a reader's.)
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pager_internal.h"

struct reg_entry {
    uintptr_t start, end;
    struct pager_mapping *m;
};

static pthread_rwlock_t reg_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct reg_entry *reg;
static size_t reg_n, reg_cap;
static struct pager *reg_pagers;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned inside;  /* threads between enter and exit */
    unsigned forking; /* a fork waits for them: enter waits */
} fork_guard = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

void pager_fork_guard_enter(void)
{
    pthread_mutex_lock(&fork_guard.mu);
    while (fork_guard.forking)
        pthread_cond_wait(&fork_guard.cv, &fork_guard.mu);
    fork_guard.inside++;
    pthread_mutex_unlock(&fork_guard.mu);
}

void pager_fork_guard_exit(void)
{
    pthread_mutex_lock(&fork_guard.mu);
    if (!--fork_guard.inside)
        pthread_cond_broadcast(&fork_guard.cv);
    pthread_mutex_unlock(&fork_guard.mu);
}

/* Held from here to the parent or child handler: no thread is inside the guard. */
static void registry_atfork_prepare(void)
{
    pthread_mutex_lock(&fork_guard.mu);
    fork_guard.forking = 1;
    while (fork_guard.inside)
        pthread_cond_wait(&fork_guard.cv, &fork_guard.mu);
}

static void registry_atfork_parent(void)
{
    fork_guard.forking = 0;
    pthread_cond_broadcast(&fork_guard.cv);
    pthread_mutex_unlock(&fork_guard.mu);
}

/* In the child: the parent's pagers are dead (their memory is not inherited), their
 * mappings are no longer ours, and the lock may have been held by a parent thread
 * that does not exist here. Pagers the child creates later work normally. */
static void registry_atfork_child(void)
{
    for (struct pager *pg = reg_pagers; pg; pg = pg->gnext)
        __atomic_store_n(&pg->forked, 1, __ATOMIC_RELEASE);
    reg_pagers = NULL;
    reg_n = 0;
    pthread_rwlock_init(&reg_lock, NULL);
    /* The parent's waiters on the condition do not exist here: start it afresh. */
    fork_guard.forking = 0;
    pthread_cond_init(&fork_guard.cv, NULL);
    pthread_mutex_unlock(&fork_guard.mu);
}

static void registry_init(void)
{
    pthread_atfork(registry_atfork_prepare, registry_atfork_parent, registry_atfork_child);
}

/* First entry whose end is above addr. */
static size_t reg_search(uintptr_t addr)
{
    size_t lo = 0, hi = reg_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (reg[mid].end <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int registry_add(struct pager_mapping *m)
{
    uintptr_t start = (uintptr_t)m->addr, end = start + m->len;
    pthread_rwlock_wrlock(&reg_lock);
    if (reg_n == reg_cap) {
        size_t ncap = reg_cap ? reg_cap * 2 : 64;
        struct reg_entry *n = realloc(reg, ncap * sizeof *n);
        if (!n) {
            pthread_rwlock_unlock(&reg_lock);
            return -ENOMEM;
        }
        reg = n;
        reg_cap = ncap;
    }
    size_t i = reg_search(start);
    memmove(&reg[i + 1], &reg[i], (reg_n - i) * sizeof *reg);
    reg[i] = (struct reg_entry){start, end, m};
    reg_n++;
    pthread_rwlock_unlock(&reg_lock);
    return 0;
}

void registry_del(struct pager_mapping *m)
{
    pthread_rwlock_wrlock(&reg_lock);
    size_t i = reg_search((uintptr_t)m->addr);
    if (i < reg_n && reg[i].m == m) {
        memmove(&reg[i], &reg[i + 1], (reg_n - i - 1) * sizeof *reg);
        reg_n--;
    }
    pthread_rwlock_unlock(&reg_lock);
}

struct pager_mapping *registry_get(const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    struct pager_mapping *m = NULL;
    pthread_rwlock_rdlock(&reg_lock);
    size_t i = reg_search(a);
    if (i < reg_n && reg[i].start <= a) {
        m = reg[i].m;
        __atomic_fetch_add(&m->active, 1, __ATOMIC_ACQ_REL);
    }
    pthread_rwlock_unlock(&reg_lock);
    return m;
}

void registry_put(struct pager_mapping *m)
{
    struct pager *pg = m->file->pg;
    pthread_mutex_lock(&pg->lock);
    if (__atomic_sub_fetch(&m->active, 1, __ATOMIC_ACQ_REL) == 0 && m->dead)
        pthread_cond_broadcast(&pg->cv);
    pthread_mutex_unlock(&pg->lock);
}

void pager_process_init(void)
{
    pthread_once(&reg_once, registry_init);
}

int registry_pager_add(struct pager *pg)
{
    pager_process_init();
    pthread_rwlock_wrlock(&reg_lock);
    pg->gnext = reg_pagers;
    reg_pagers = pg;
    pthread_rwlock_unlock(&reg_lock);
    return 0;
}

void registry_pager_del(struct pager *pg)
{
    pthread_rwlock_wrlock(&reg_lock);
    struct pager **pp = &reg_pagers;
    while (*pp && *pp != pg)
        pp = &(*pp)->gnext;
    if (*pp)
        *pp = pg->gnext;
    pthread_rwlock_unlock(&reg_lock);
}
