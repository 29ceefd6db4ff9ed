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
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wp_compat.h"

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

/* ---- image files ---------------------------------------------------------- */

int DH_OS_FN(file_open)(const char *path, bool write, bool create) {
    int flags = O_CLOEXEC | (write ? O_RDWR : O_RDONLY);
    if (create) flags |= O_CREAT | O_TRUNC;
    int fd;
    do fd = open(path, flags, 0644);
    while (fd < 0 && errno == EINTR);
    return fd;
}

bool DH_OS_FN(file_lock)(int fd, bool exclusive) {
    int saved = errno, r;
    do r = flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
    while (r != 0 && errno == EINTR);
    if (r != 0) {
        if (errno == EWOULDBLOCK) errno = EBUSY;
        return false;
    }
    errno = saved;
    return true;
}

bool DH_OS_FN(file_size)(int fd, uint64_t *size) {
    int saved = errno;
    struct stat st;
    if (fstat(fd, &st) != 0) return false;
    *size = (uint64_t)st.st_size;
    errno = saved;
    return true;
}

bool DH_OS_FN(pread_all)(int fd, void *buf, size_t len, uint64_t off) {
    int saved = errno;
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        if (n == 0) {
            errno = EINVAL; /* the file ends first */
            return false;
        }
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    errno = saved;
    return true;
}

bool DH_OS_FN(pwrite_all)(int fd, const void *buf, size_t len, uint64_t off) {
    int saved = errno;
    const char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO;
            return false;
        }
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    errno = saved;
    return true;
}

bool DH_OS_FN(file_reserve)(int fd, uint64_t off, uint64_t len) {
    int saved = errno, r;
    do r = fallocate(fd, 0, (off_t)off, (off_t)len);
    while (r != 0 && errno == EINTR);
    if (r != 0 && (errno == EOPNOTSUPP || errno == ENOSYS)) {
        /* no allocation on this file system: at least the length */
        struct stat st;
        if (fstat(fd, &st) != 0) return false;
        r = (uint64_t)st.st_size >= off + len ? 0
                                               : ftruncate(fd, (off_t)(off + len));
    }
    if (r != 0) return false;
    errno = saved;
    return true;
}

bool DH_OS_FN(file_truncate)(int fd, uint64_t size) {
    int saved = errno;
    if (ftruncate(fd, (off_t)size) != 0) return false;
    errno = saved;
    return true;
}

bool DH_OS_FN(file_sync)(int fd) {
    int saved = errno;
    if (fdatasync(fd) != 0) return false;
    errno = saved;
    return true;
}

bool DH_OS_FN(file_rename)(const char *from, const char *to) {
    int saved = errno;
    if (rename(from, to) != 0) return false;
    errno = saved;
    return true;
}

void DH_OS_FN(file_unlink)(const char *path) {
    int saved = errno;
    unlink(path);
    errno = saved;
}

bool DH_OS_FN(map_file)(uintptr_t at, size_t size, int fd, uint64_t off,
                        bool shared) {
    int saved = errno;
    int flags = MAP_FIXED | (shared ? MAP_SHARED : MAP_PRIVATE | MAP_NORESERVE);
    void *p = mmap((void *)at, size, PROT_READ | PROT_WRITE, flags, fd,
                   (off_t)off);
    if (p == MAP_FAILED) {
        if (errno != EACCES && errno != ENODEV) errno = ENOMEM;
        return false;
    }
    errno = saved;
    return true;
}

/* ---- write tracking ---------------------------------------------------------- */

/* A userfaultfd with the features `want`, or -1 (errno ENOSYS if the
 * kernel lacks one of them). */
static int uffd_open(__u64 want) {
    long uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (uffd < 0 && errno == EPERM) /* unprivileged: user faults only */
        uffd = syscall(SYS_userfaultfd,
                       O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (uffd < 0) return -1;
    struct uffdio_api api = {.api = UFFD_API, .features = want};
    if (ioctl((int)uffd, UFFDIO_API, &api) != 0 ||
        (api.features & want) != want) {
        close((int)uffd);
        errno = ENOSYS;
        return -1;
    }
    return (int)uffd;
}

bool DH_OS_FN(wp_open)(int fds[2]) {
    int saved = errno;
    int uffd = uffd_open(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED);
    if (uffd < 0) return false;
    int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pagemap < 0) {
        close(uffd);
        return false;
    }
    fds[0] = uffd;
    fds[1] = pagemap;
    errno = saved;
    return true;
}

/* ---- page moving --------------------------------------------------------------- */

/* Renumber fd to three quarters of the descriptor limit or above, where a
 * program's own descriptors (each the lowest free number) seldom reach:
 * a descriptor the library opens at a moment that depends on other
 * threads must not change the numbers the program's open() calls get. */
static int fd_out_of_the_way(int fd) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur < 16)
        return fd;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, (int)(rl.rlim_cur / 4 * 3));
    if (high < 0) return fd;
    close(fd);
    return high;
}

int DH_OS_FN(move_open)(void) {
    int saved = errno;
    int fd = uffd_open(UFFD_FEATURE_MOVE);
    if (fd < 0) return -1;
    errno = saved;
    return fd_out_of_the_way(fd);
}

bool DH_OS_FN(move_allow)(int fd, uintptr_t p, size_t size) {
    int saved = errno;
    /* write-protect mode, with nothing ever protected: a missing page is
     * filled by the kernel as before, and no fault reaches fd */
    struct uffdio_register reg = {.range = {p, size},
                                  .mode = UFFDIO_REGISTER_MODE_WP};
    if (ioctl(fd, UFFDIO_REGISTER, &reg) != 0) return false;
    errno = saved;
    return true;
}

size_t DH_OS_FN(move_pages)(int fd, uintptr_t dst, uintptr_t src, size_t len) {
    struct uffdio_move mv = {.dst = dst, .src = src, .len = len,
                             .mode = UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES};
    if (ioctl(fd, UFFDIO_MOVE, &mv) == 0) return len;
    return mv.move > 0 ? (size_t)mv.move : 0;
}

void DH_OS_FN(wp_close)(const int fds[2]) {
    int saved = errno;
    close(fds[0]);
    close(fds[1]);
    errno = saved;
}

bool DH_OS_FN(wp_track)(const int fds[2], uintptr_t p, size_t size) {
    int saved = errno;
    struct uffdio_register reg = {.range = {p, size},
                                  .mode = UFFDIO_REGISTER_MODE_WP};
    if (ioctl(fds[0], UFFDIO_REGISTER, &reg) != 0) return false;
    struct uffdio_writeprotect wp = {.range = {p, size},
                                     .mode = UFFDIO_WRITEPROTECT_MODE_WP};
    if (ioctl(fds[0], UFFDIO_WRITEPROTECT, &wp) != 0) {
        struct uffdio_range r = {p, size};
        ioctl(fds[0], UFFDIO_UNREGISTER, &r);
        return false;
    }
    errno = saved;
    return true;
}

long DH_OS_FN(wp_scan)(const int fds[2], uintptr_t start, uintptr_t end,
                       bool protect, dh_os_run_t *out, size_t cap,
                       uintptr_t *next) {
    int saved = errno;
    struct page_region vec[128];
    struct pm_scan_arg arg = {
        .size = sizeof arg,
        .flags = PM_SCAN_CHECK_WPASYNC | (protect ? PM_SCAN_WP_MATCHING : 0),
        .start = start,
        .end = end,
        .vec = (uintptr_t)vec,
        .vec_len = cap < 128 ? cap : 128,
        .category_mask = PAGE_IS_WRITTEN,
        .return_mask = PAGE_IS_WRITTEN,
    };
    long n = ioctl(fds[1], PAGEMAP_SCAN, &arg);
    if (n < 0) return -1;
    for (long i = 0; i < n; i++) {
        out[i].start = (uintptr_t)vec[i].start;
        out[i].end = (uintptr_t)vec[i].end;
    }
    *next = (uintptr_t)arg.walk_end;
    errno = saved;
    return n;
}

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
