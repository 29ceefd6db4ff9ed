/*
 * os_posix.c - the OS backend for Linux (and other POSIX systems with
 * mmap/mprotect).  Reservation is an inaccessible private anonymous mapping
 * with MAP_NORESERVE; commit is mprotect to read/write, which the kernel
 * backs with zero pages on first touch; a range taken as it grows (under
 * an address-space limit) is mapped piece by piece with MAP_FIXED_NOREPLACE,
 * which never replaces another mapping.  Huge-page advice is madvise
 * (MADV_HUGEPAGE, MADV_NOHUGEPAGE) where the system has it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static void *map_none(void *hint, size_t size, int extra) {
    return mmap(hint, size, PROT_NONE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | extra, -1, 0);
}

static void *reserve_fixed(size_t size, uintptr_t fixed) {
    void *p = map_none((void *)fixed, size, MAP_FIXED_NOREPLACE);
    if (p == MAP_FAILED) {
        if (errno != EEXIST) errno = ENOMEM;
        return NULL;
    }
    if ((uintptr_t)p != fixed) { /* a kernel that took the flag as a hint */
        munmap(p, size);
        errno = EEXIST;
        return NULL;
    }
    return p;
}

void *DH_OS_FN(reserve)(size_t size, size_t align, uintptr_t fixed) {
    int saved = errno;
    if (fixed != 0) {
        void *p = reserve_fixed(size, fixed);
        if (p != NULL) errno = saved;
        return p;
    }
    /* Over-reserve, then trim to the aligned part. */
    size_t span = size + align;
    if (span < size) {
        errno = ENOMEM;
        return NULL;
    }
    char *raw = map_none(NULL, span, 0);
    if (raw == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
    size_t front = start - (uintptr_t)raw;
    if (front) munmap(raw, front);
    size_t back = span - front - size;
    if (back) munmap((char *)start + size, back);
    errno = saved;
    return (void *)start;
}

bool DH_OS_FN(map_fixed)(uintptr_t fixed, size_t size) {
    int saved = errno;
    void *p = mmap((void *)fixed, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                       MAP_FIXED_NOREPLACE,
                   -1, 0);
    if (p == MAP_FAILED) {
        if (errno != EEXIST) errno = ENOMEM;
        return false;
    }
    if ((uintptr_t)p != fixed) { /* a kernel that took the flag as a hint */
        munmap(p, size);
        errno = EEXIST;
        return false;
    }
    errno = saved;
    return true;
}

uint64_t DH_OS_FN(as_limit)(void) {
    int saved = errno;
    struct rlimit rl;
    uint64_t v = UINT64_MAX;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        v = (uint64_t)rl.rlim_cur;
    errno = saved;
    return v;
}

void DH_OS_FN(release)(void *p, size_t size) {
    int saved = errno;
    munmap(p, size);
    errno = saved;
}

bool DH_OS_FN(commit)(void *p, size_t size) {
    int saved = errno;
    if (mprotect(p, size, PROT_READ | PROT_WRITE) != 0) {
        errno = ENOMEM;
        return false;
    }
    errno = saved;
    return true;
}

bool DH_OS_FN(decommit)(void *p, size_t size) {
    int saved = errno;
    bool ok = madvise(p, size, MADV_DONTNEED) == 0;
    errno = saved;
    return ok;
}

bool DH_OS_FN(advise_huge)(void *p, size_t size, bool huge) {
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
    int saved = errno;
    bool ok = madvise(p, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) == 0;
    errno = saved;
    return ok;
#else
    (void)p;
    (void)size;
    (void)huge;
    return false;
#endif
}

size_t DH_OS_FN(page_size)(void) {
    static size_t cached;
    if (cached == 0) {
        int saved = errno;
        long v = sysconf(_SC_PAGESIZE);
        cached = v > 0 ? (size_t)v : 4096;
        errno = saved;
    }
    return cached;
}

void DH_OS_FN(write_stderr)(const char *s, size_t len) {
    int saved = errno;
    while (len > 0) {
        ssize_t n = write(2, s, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        s += n;
        len -= (size_t)n;
    }
    errno = saved;
}

int DH_OS_FN(open_write)(const char *path) {
    return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
                0644);
}

int DH_OS_FN(open_append)(const char *path) {
    return open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
}

bool DH_OS_FN(fd_is)(int fd, uint64_t dev, uint64_t ino) {
    int saved = errno;
    struct stat st;
    bool same = fstat(fd, &st) == 0 && (uint64_t)st.st_dev == dev &&
                (uint64_t)st.st_ino == ino;
    errno = saved;
    return same;
}

int DH_OS_FN(open_read)(const char *path) {
    return open(path, O_RDONLY | O_CLOEXEC);
}

bool DH_OS_FN(write_all)(int fd, const void *buf, size_t len) {
    int saved = errno;
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
    }
    errno = saved;
    return true;
}

long DH_OS_FN(read)(int fd, void *buf, size_t len) {
    ssize_t n;
    do n = read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return (long)n;
}

void DH_OS_FN(close)(int fd) {
    int saved = errno;
    close(fd);
    errno = saved;
}

uint64_t DH_OS_FN(pid)(void) { return (uint64_t)getpid(); }
uint64_t DH_OS_FN(tid)(void) { return (uint64_t)syscall(SYS_gettid); }

void DH_OS_FN(thread_name)(char out[16]) {
    int saved = errno;
    out[0] = 0;
    if (prctl(PR_GET_NAME, out, 0, 0, 0) != 0) out[0] = 0;
    out[15] = 0;
    errno = saved;
}
uint64_t DH_OS_FN(ppid)(void) { return (uint64_t)getppid(); }

static void (*fatal_fn)(int);

static void on_fatal(int sig) {
    static volatile sig_atomic_t ran;
    int saved = errno;
    if (!ran) {
        ran = 1;
        fatal_fn(sig);
    }
    errno = saved;
    /* the default again (SA_RESETHAND did that, unless a handler the
     * program installed later calls this one as its predecessor): a fault
     * repeats when the handler returns, a sent signal is sent again */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
}

void DH_OS_FN(on_fatal_signal)(void (*fn)(int)) {
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    fatal_fn = fn;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL ||
            (old.sa_flags & SA_SIGINFO))
            continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal;
        sa.sa_flags = SA_RESETHAND | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

_Noreturn void DH_OS_FN(abort)(void) {
    abort();
}
