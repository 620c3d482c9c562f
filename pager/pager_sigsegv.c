/* SPDX-License-Identifier: MIT */
/*
 * The SIGSEGV backend: holes are PROT_NONE, clean blocks are mapped read-only, dirty
 * blocks read-write; an access that the protection forbids raises SIGSEGV in the
 * faulting thread, whose handler resolves the fault right there (no other thread is
 * woken: on the target VM a cross-CPU wake-up costs 65-130 us).
 *
 * The handler is installed once per process (SA_SIGINFO, on the thread's own stack,
 * SIGBUS blocked while it runs) and serves the mappings of every pager, including
 * userfaultfd ones (whose transient protections during a remap raise SIGSEGV too: the
 * handler resolves those faults the same way). Anything that is not an access-permission fault inside a
 * registered mapping, and any write through a PAGER_MAP_READONLY mapping, goes to the
 * previous handler; with none, the default action is restored and the access repeats,
 * so a real segfault still dies with a core at the faulting instruction.
 *
 * In the handler: errno is saved and restored; a thread-local guard turns a fault
 * while resolving one (for example ops.load touching a pager mapping) into the default
 * action instead of a recursion; nothing allocates, formats or uses stdio. Read or
 * write comes from the x86-64 page-fault error code in the ucontext (bit 1 of
 * REG_ERR); elsewhere it is inferred: a fault where the block is already mapped
 * read-only must be a write.
 *
 * A failed load queues SIGBUS (si_code BUS_ADRERR, si_addr = the fault address) to the
 * faulting thread with rt_tgsigqueueinfo (allowed for a process's own threads) and
 * returns; the signal is delivered as the handler returns, at the faulting
 * instruction. If the thread blocks or ignores SIGBUS, the default action is restored
 * and SIGBUS unblocked in the interrupted context, as the kernel does for a real bus
 * error, so the process dies instead of looping.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "pager_internal.h"

/* The handler to chain to. Two slots: sigsegv_install() writes the one not in use
 * and then publishes its index, so a handler running meanwhile reads a whole struct. */
static struct sigaction prev_slots[2];
static int prev_idx;
static pthread_mutex_t install_mu = PTHREAD_MUTEX_INITIALIZER;
static int installed;
/* initial-exec: the first access to a dynamic-model TLS variable of a dlopen'ed
 * library (libbigarray under Python) may allocate the thread's TLS block with malloc,
 * which must not happen inside this signal handler. */
static _Thread_local int tls_in_fault __attribute__((tls_model("initial-exec")));

int sigsegv_in_fault(void)
{
    return tls_in_fault;
}

/* 1 write, 0 read, -1 unknown. */
static int fault_is_write(const void *uc)
{
#if defined(__x86_64__)
    const ucontext_t *u = uc;
    return (u->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#else
    (void)uc;
    return -1;
#endif
}

static void restore_default(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void chain(int sig, siginfo_t *si, void *uc)
{
    const struct sigaction *prev = &prev_slots[__atomic_load_n(&prev_idx, __ATOMIC_ACQUIRE)];
    if (prev->sa_flags & SA_SIGINFO) {
        prev->sa_sigaction(sig, si, uc);
        return;
    }
    if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
        return;
    }
    /* Default action: restore it and let the access repeat (or re-raise a signal that
     * was sent rather than caused by an access). */
    restore_default(sig);
    if (si->si_code <= 0)
        raise(sig);
}

void sigsegv_send_sigbus(pid_t tid, void *addr)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGBUS;
    si.si_code = BUS_ADRERR;
    si.si_addr = addr;
    syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, SIGBUS, &si);
}

/* Make sure a queued SIGBUS will be delivered when the handler returns. */
static void sigbus_deliverable(void *uc)
{
    ucontext_t *u = uc;
    struct sigaction cur;
    if (sigaction(SIGBUS, NULL, &cur) == 0 && cur.sa_handler == SIG_IGN &&
        !(cur.sa_flags & SA_SIGINFO))
        restore_default(SIGBUS);
    if (sigismember(&u->uc_sigmask, SIGBUS)) {
        restore_default(SIGBUS);
        sigdelset(&u->uc_sigmask, SIGBUS);
    }
}

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
    int saved_errno = errno;
    if (tls_in_fault) {
        /* A fault while resolving a fault: fatal, with a core at this access. */
        restore_default(sig);
        errno = saved_errno;
        return;
    }
    struct pager_mapping *m = NULL;
    if (si->si_code == SEGV_ACCERR)
        m = registry_get(si->si_addr);
    if (!m) {
        chain(sig, si, uc);
        errno = saved_errno;
        return;
    }
    uint64_t t0 = ba_now_ns();
    int write = fault_is_write(uc);
    int r = PAGER_FAULT_CHAIN;
    if (!(write > 0 && (m->flags & PAGER_MAP_READONLY))) {
        uint64_t at = (uint64_t)((char *)si->si_addr - m->addr), bs = m->file->bs;
        tls_in_fault = 1;
        r = pager_fault_resolve(m, at / bs, (size_t)(at % bs), write, PAGER_CTX_SIGNAL, t0);
        tls_in_fault = 0;
    }
    registry_put(m);
    if (r == PAGER_FAULT_CHAIN) {
        chain(sig, si, uc);
    } else if (r < 0) {
        sigbus_deliverable(uc);
        sigsegv_send_sigbus((pid_t)syscall(SYS_gettid), si->si_addr);
    }
    errno = saved_errno;
}

/* Install the handler, or reinstall it when someone replaced it since (Python's
 * faulthandler.enable() after a database was opened, say): the replacement becomes the
 * handler chained to, so it still sees every fault that is not ours. Under
 * install_mu. */
static int install_locked(void)
{
    struct sigaction cur;
    if (installed) {
        if (sigaction(SIGSEGV, NULL, &cur))
            return -errno;
        if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == segv_handler)
            return 0;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    /* No SA_ONSTACK: ops.load runs in this handler (LMDB, zstd) and would overflow a
     * small alternate stack (Python's faulthandler installs a 16 KiB one). The cost: a
     * stack overflow kills the process without reaching a previous handler's report. */
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGBUS);
    int next = !__atomic_load_n(&prev_idx, __ATOMIC_RELAXED);
    if (sigaction(SIGSEGV, &sa, &prev_slots[next]))
        return -errno;
    __atomic_store_n(&prev_idx, next, __ATOMIC_RELEASE);
    installed = 1;
    return 0;
}

int sigsegv_install(void)
{
    pthread_mutex_lock(&install_mu);
    int rc = install_locked();
    pthread_mutex_unlock(&install_mu);
    return rc;
}

/* ---- backend operations ----------------------------------------------------------------- */

static int segv_hole_reserve(struct pager *pg, struct pager_mapping *m, char *addr, size_t len)
{
    (void)pg;
    (void)m;
    if (pager_mmap_view(addr, len, PROT_NONE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
                        0) == MAP_FAILED)
        return -errno;
    madvise(addr, len, MADV_DONTFORK); /* same flags as its neighbours: the VMAs merge */
    return 0;
}

static int protect(char *addr, size_t len, int prot)
{
    return mprotect(addr, len, prot) ? -errno : 0;
}

static int segv_map_done(struct pager *pg, struct pager_mapping *m, char *addr, size_t len,
                         int writable)
{
    (void)pg;
    (void)m;
    return writable ? protect(addr, len, PROT_READ | PROT_WRITE) : 0;
}

static int segv_make_writable(struct pager *pg, struct pager_mapping *m, char *addr, size_t len)
{
    (void)pg;
    (void)m;
    return protect(addr, len, PROT_READ | PROT_WRITE);
}

static int segv_make_readonly(struct pager *pg, struct pager_mapping *m, char *addr, size_t len)
{
    (void)pg;
    (void)m;
    return protect(addr, len, PROT_READ);
}

static int segv_before_home(struct pager *pg, struct pager_mapping *m, char *addr, size_t len,
                            int writable)
{
    (void)pg;
    (void)m;
    return writable ? protect(addr, len, PROT_READ) : 0;
}

static void segv_wake(struct pager *pg, char *addr, size_t len)
{
    (void)pg;
    (void)addr;
    (void)len;
}

const struct pager_backend_ops pager_sigsegv_ops = {
    .name = "sigsegv",
    .hole_reserve = segv_hole_reserve,
    .map_done = segv_map_done,
    .make_writable = segv_make_writable,
    .make_readonly = segv_make_readonly,
    .before_home = segv_before_home,
    .wake = segv_wake,
    .unpoison = NULL,
};
