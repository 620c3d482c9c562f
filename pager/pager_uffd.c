/* SPDX-License-Identifier: MIT */
/*
 * The userfaultfd backend: holes are anonymous memory registered for missing faults,
 * clean blocks are mapped writable but write-protected with uffd-wp (MODE_WP on
 * shmem), dirty blocks writable and unregistered. The kernel stops the faulting thread
 * (user or kernel mode: read(2) into a view waits instead of failing with EFAULT) and
 * queues a message; service threads read the messages, resolve each with
 * pager_fault_resolve() (different blocks in different threads, so loads run in
 * parallel) and wake the range.
 *
 * Features are detected at run time (the installed headers may be older than the
 * kernel; missing constants are defined below). Needed: UFFD_FEATURE_WP_HUGETLBFS_SHMEM
 * (write-protect on the memfd frames). Used when present: UFFD_FEATURE_POISON (6.6) to
 * fail a load with SIGBUS from the kernel; UFFD_FEATURE_THREAD_ID for the fallback,
 * a SIGBUS queued to the faulting thread. Not used: UFFD_FEATURE_EVENT_REMAP (an
 * mremap would block until its event is read, and the service threads mremap
 * themselves), and WP_ASYNC with PAGEMAP_SCAN (measured here: after write-protection
 * the kernel leaves every page's entry read-only, so the first write to each page costs
 * an in-kernel fault, ~350 us per 2 MiB, more than one synchronous round trip plus the
 * unprotect below). When userfaultfd() is refused (EPERM with
 * vm.unprivileged_userfaultfd=0 and no CAP_SYS_PTRACE, seccomp, ENOSYS) /dev/userfaultfd
 * is tried, then pager_create() falls back to the SIGSEGV backend silently.
 *
 * Sequences (each under the pager lock; the windows between the calls are covered by
 * the SIGSEGV handler, which resolves any fault inside a pager mapping whatever the
 * backend):
 *   hole        mmap PROT_NONE anon, MADV_DONTFORK, UFFDIO_REGISTER(MISSING), mprotect RW.
 *               Registering while PROT_NONE means no access can ever fault in an
 *               anonymous zero page that the registration would then miss.
 *   map clean   the frame arrives read-only from home; UFFDIO_REGISTER(WP),
 *               UFFDIO_WRITEPROTECT, mprotect RW. Until the last call, a write raises
 *               SIGSEGV (resolved by the handler), never an untracked store.
 *   map dirty   mprotect RW.
 *   upgrade     UFFDIO_UNREGISTER (clears the uffd-wp bits; does not wake WP waiters,
 *               so UFFDIO_WAKE), then mprotect RO and RW: a plain unprotect leaves the
 *               entries read-only and costs one fault per page.
 *   downgrade   UFFDIO_REGISTER(WP) + UFFDIO_WRITEPROTECT (writeout).
 *   home        UFFDIO_UNREGISTER (a registered VMA would not merge back into home:
 *               mremap drops the context only after placing it), mprotect RO (home is
 *               read-only), then the common move.
 *   error       UFFDIO_POISON on the block's range (a poisoned hole), or SIGBUS to the
 *               thread id; unpoison re-creates the hole.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/userfaultfd.h>

#include "pager_internal.h"

/* Newer than the 6.1 headers of the build machine. */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif
#ifndef _UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
struct uffdio_poison {
    struct uffdio_range range;
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
    __u64 mode;
    __s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC     0xAA
#define USERFAULTFD_IOC_NEW _IO(USERFAULTFD_IOC, 0x00)
#endif
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif

struct pager_uffd {
    int fd;
    int stopfd;
    int has_poison;
    unsigned nthreads;
    pthread_t threads[PAGER_UFFD_THREADS];
};

/* ThreadSanitizer cannot see the kernel's ordering around a userfaultfd fault: the
 * faulting thread's earlier work happens before the service thread reads the message,
 * and everything the service thread does (including the remaps, which TSan's mmap
 * interceptor records as writes of the range) happens before the woken thread's
 * access. The service thread acquires this object after reading a message and releases
 * it before each wake; code that accesses pager mappings (the Check suite) releases and
 * acquires it around its accesses. Nothing in normal builds. */
#ifdef PAGER_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
char pager_tsan_uffd_sync;
#define TSAN_ACQUIRE() __tsan_acquire(&pager_tsan_uffd_sync)
#define TSAN_RELEASE() __tsan_release(&pager_tsan_uffd_sync)
#else
#define TSAN_ACQUIRE() ((void)0)
#define TSAN_RELEASE() ((void)0)
#endif

static int uffd_open(void)
{
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0)
        return fd;
    int e = errno;
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev >= 0) {
        fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
        e = errno;
        close(dev);
        if (fd >= 0)
            return fd;
    }
    return -e;
}

/* ---- the service threads --------------------------------------------------------------------- */

static void uffd_wake_range(int fd, char *addr, size_t len)
{
    struct uffdio_range r = {(uintptr_t)addr, len};
    ioctl(fd, UFFDIO_WAKE, &r);
}

static void uffd_fault(struct pager *pg, const struct uffd_msg *msg)
{
    struct pager_uffd *u = pg->uffd;
    uint64_t t0 = ba_now_ns();
    char *addr = (char *)(uintptr_t)msg->arg.pagefault.address;
    pid_t tid = (pid_t)msg->arg.pagefault.feat.ptid;
    TSAN_ACQUIRE();
    if (tid && pager_thread_is_own(pg, tid)) {
        /* ops.load in a pager thread touched a pager mapping: that thread would wait for
         * itself. Kill it like the SIGSEGV handler's recursion guard would. */
        syscall(SYS_tgkill, getpid(), tid, SIGSEGV);
        return;
    }
    struct pager_mapping *m = registry_get(addr);
    if (!m) { /* unmapped meanwhile: let the access repeat (and crash) */
        uffd_wake_range(u->fd, (char *)((uintptr_t)addr & ~(uintptr_t)4095), 4096);
        return;
    }
    uint32_t bs = m->file->bs;
    uint64_t idx = (uint64_t)(addr - m->addr) / bs;
    char *blk = m->addr + idx * bs;
    int write = (msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE) != 0;
    int r = pager_fault_resolve(m, idx, (size_t)(addr - blk), write, PAGER_CTX_UFFD, t0);
    TSAN_RELEASE();
    if (r < 0 && r != PAGER_FAULT_CHAIN) {
        int sent = 0;
        if (u->has_poison) {
            struct uffdio_poison po = {{(uintptr_t)blk, bs}, 0, 0};
            sent = ioctl(u->fd, UFFDIO_POISON, &po) == 0;
        }
        if (!sent)
            sigsegv_send_sigbus((pid_t)msg->arg.pagefault.feat.ptid, addr);
    }
    uffd_wake_range(u->fd, blk, bs);
    registry_put(m);
}

static void *uffd_main(void *arg)
{
    struct pager *pg = arg;
    struct pager_uffd *u = pg->uffd;
    pager_thread_register(pg);
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        struct pollfd p[2] = {{u->fd, POLLIN, 0}, {u->stopfd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        /* One message per read: the other threads take the next ones, so a slow load
         * holds up only its own fault. */
        struct uffd_msg msg;
        ssize_t n = read(u->fd, &msg, sizeof msg);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            break;
        }
        if (n == sizeof msg && msg.event == UFFD_EVENT_PAGEFAULT)
            uffd_fault(pg, &msg);
    }
    return NULL;
}

int uffd_start(struct pager *pg)
{
    int fd = uffd_open();
    if (fd < 0)
        return fd;
    /* The API handshake may be done once per descriptor: probe first, then ask for what
     * exists. */
    struct uffdio_api api = {.api = UFFD_API, .features = 0};
    if (ioctl(fd, UFFDIO_API, &api)) {
        int e = -errno;
        close(fd);
        return e;
    }
    uint64_t have = api.features;
    close(fd);
    /* Write-protect on shmem is the dirty tracking; a load error needs POISON or the
     * faulting thread's id to deliver SIGBUS. */
    if (!(have & UFFD_FEATURE_WP_HUGETLBFS_SHMEM) || !(have & UFFD_FEATURE_PAGEFAULT_FLAG_WP) ||
        !(have & (UFFD_FEATURE_POISON | UFFD_FEATURE_THREAD_ID)))
        return -EOPNOTSUPP;
    uint64_t want = UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_PAGEFAULT_FLAG_WP |
                    (have & (UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_POISON));
    if ((fd = uffd_open()) < 0)
        return fd;
    api = (struct uffdio_api){.api = UFFD_API, .features = want};
    if (ioctl(fd, UFFDIO_API, &api)) {
        int e = -errno;
        close(fd);
        return e;
    }
    struct pager_uffd *u = ba_calloc(1, sizeof *u);
    if (!u) {
        close(fd);
        return -ENOMEM;
    }
    u->fd = fd;
    u->has_poison = (want & UFFD_FEATURE_POISON) != 0;
    u->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (u->stopfd < 0) {
        int e = -errno;
        close(fd);
        free(u);
        return e;
    }
    pg->uffd = u;
    for (unsigned i = 0; i < PAGER_UFFD_THREADS; i++) {
        if (pthread_create(&u->threads[i], NULL, uffd_main, pg))
            break;
        u->nthreads++;
    }
    if (!u->nthreads) {
        uffd_stop(pg);
        return -EAGAIN;
    }
    return 0;
}

void uffd_stop(struct pager *pg)
{
    struct pager_uffd *u = pg->uffd;
    if (!u)
        return;
    uint64_t one = 1;
    if (write(u->stopfd, &one, sizeof one) < 0) {
        /* cannot happen with a fresh eventfd; the join below would then hang */
    }
    for (unsigned i = 0; i < u->nthreads; i++)
        pthread_join(u->threads[i], NULL);
    close(u->stopfd);
    close(u->fd);
    free(u);
    pg->uffd = NULL;
}

/* ---- backend operations ----------------------------------------------------------------- */

static int uffd_register(struct pager *pg, char *addr, size_t len, __u64 mode)
{
    struct uffdio_register reg = {.range = {(uintptr_t)addr, len}, .mode = mode};
    return ioctl(pg->uffd->fd, UFFDIO_REGISTER, &reg) ? -errno : 0;
}

static int uffd_wp(struct pager *pg, char *addr, size_t len, int on)
{
    struct uffdio_writeprotect wp = {.range = {(uintptr_t)addr, len},
                                     .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0};
    return ioctl(pg->uffd->fd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
}

static int protect(char *addr, size_t len, int prot)
{
    return mprotect(addr, len, prot) ? -errno : 0;
}

static int mapping_prot(const struct pager_mapping *m)
{
    return (m->flags & PAGER_MAP_READONLY) ? PROT_READ : PROT_READ | PROT_WRITE;
}

static int uffd_hole_reserve(struct pager *pg, struct pager_mapping *m, char *addr, size_t len)
{
    if (pager_mmap_view(addr, len, PROT_NONE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
                        0) == MAP_FAILED)
        return -errno;
    madvise(addr, len, MADV_DONTFORK);
    int r = uffd_register(pg, addr, len, UFFDIO_REGISTER_MODE_MISSING);
    if (!r)
        r = protect(addr, len, mapping_prot(m));
    return r;
}

static int uffd_map_done(struct pager *pg, struct pager_mapping *m, char *addr, size_t len,
                         int writable)
{
    if (m->flags & PAGER_MAP_READONLY)
        return 0; /* read-only VMA: a write is a real segfault */
    if (writable)
        return protect(addr, len, PROT_READ | PROT_WRITE);
    int r = uffd_register(pg, addr, len, UFFDIO_REGISTER_MODE_WP);
    if (!r)
        r = uffd_wp(pg, addr, len, 1);
    if (!r)
        r = protect(addr, len, PROT_READ | PROT_WRITE);
    return r;
}

static int uffd_make_writable(struct pager *pg, struct pager_mapping *m, char *addr, size_t len)
{
    (void)m;
    struct uffdio_range range = {(uintptr_t)addr, len};
    int r = ioctl(pg->uffd->fd, UFFDIO_UNREGISTER, &range) ? -errno : 0;
    uffd_wake_range(pg->uffd->fd, addr, len);
    if (!r)
        r = protect(addr, len, PROT_READ);
    if (!r)
        r = protect(addr, len, PROT_READ | PROT_WRITE);
    return r;
}

static int uffd_make_readonly(struct pager *pg, struct pager_mapping *m, char *addr, size_t len)
{
    (void)m;
    int r = uffd_register(pg, addr, len, UFFDIO_REGISTER_MODE_WP);
    if (!r)
        r = uffd_wp(pg, addr, len, 1);
    return r;
}

static int uffd_before_home(struct pager *pg, struct pager_mapping *m, char *addr, size_t len,
                            int writable)
{
    (void)writable;
    /* Unregister first: mremap drops the uffd context only after placing the VMA, so a
     * registered VMA would not merge into home and every return would split it. */
    struct uffdio_range range = {(uintptr_t)addr, len};
    ioctl(pg->uffd->fd, UFFDIO_UNREGISTER, &range);
    if (m->flags & PAGER_MAP_READONLY)
        return 0;
    return protect(addr, len, PROT_READ);
}

static void uffd_wake(struct pager *pg, char *addr, size_t len)
{
    TSAN_RELEASE();
    uffd_wake_range(pg->uffd->fd, addr, len);
}

const struct pager_backend_ops pager_uffd_ops = {
    .name = "uffd",
    .hole_reserve = uffd_hole_reserve,
    .map_done = uffd_map_done,
    .make_writable = uffd_make_writable,
    .make_readonly = uffd_make_readonly,
    .before_home = uffd_before_home,
    .wake = uffd_wake,
    .unpoison = uffd_hole_reserve,
};
