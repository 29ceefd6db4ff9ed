/*
 * os.h - the contract between detheap and the operating system.  These are
 * the only functions that make system calls; one backend per file
 * (os_posix.c), chosen by the build.  os_fault.c wraps a backend to inject
 * failures in tests.
 *
 * Every function preserves errno unless it says it sets it, and none is
 * called with a lock held.  None allocates memory.
 *
 * Backends define the functions under the names DH_OS_FN(name): dh_os_NAME,
 * or dh_os_real_NAME when compiled with DH_OS_WRAPPED for os_fault.c to
 * wrap.
 */
#ifndef DH_OS_H
#define DH_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef DH_OS_FN
#ifdef DH_OS_WRAPPED /* this backend is wrapped by os_fault.c */
#define DH_OS_FN(name) dh_os_real_##name
#else
#define DH_OS_FN(name) dh_os_##name
#endif
#endif

#define DH_HIDDEN __attribute__((visibility("hidden")))

/* Reserve size bytes of address space, inaccessible and uncommitted.
 * With fixed != 0 the range must start exactly there: if any of it is
 * already mapped, fail with errno EEXIST and change nothing.  Otherwise the
 * range starts at a multiple of align (a power of two >= the OS page).
 * Returns the start, or NULL with errno set (ENOMEM, EEXIST). */
DH_HIDDEN void *DH_OS_FN(reserve)(size_t size, size_t align, uintptr_t fixed);

/* Map [fixed, fixed+size) readable and writable at exactly that address,
 * if none of it is mapped yet (fresh pages read as zero): how a heap that
 * reserves its range as it grows (under an address-space limit) takes the
 * next part of it.  fixed and size are multiples of the OS page.  Returns
 * false with errno EEXIST if something is already mapped there, ENOMEM if
 * the OS refuses (the address-space limit), and maps nothing then. */
DH_HIDDEN bool DH_OS_FN(map_fixed)(uintptr_t fixed, size_t size);

/* The process's address-space limit (RLIMIT_AS, its soft value) in bytes,
 * or UINT64_MAX if there is none or it cannot be read. */
DH_HIDDEN uint64_t DH_OS_FN(as_limit)(void);

/* Give a whole reserved range back.  Precondition: p, size as reserved. */
DH_HIDDEN void DH_OS_FN(release)(void *p, size_t size);

/* Make [p, p+size) readable and writable; fresh pages read as zero.
 * p and size are multiples of the OS page.  Returns false with errno
 * ENOMEM if the OS refuses. */
DH_HIDDEN bool DH_OS_FN(commit)(void *p, size_t size);

/* Give the physical memory of [p, p+size) back: the range stays committed
 * (readable and writable) and reads as zero from then on.  p and size are
 * multiples of the OS page.  Returns false if the OS refused; the memory
 * then keeps its contents, which the caller may ignore. */
DH_HIDDEN bool DH_OS_FN(decommit)(void *p, size_t size);
/* Page moving (userfaultfd's UFFDIO_MOVE, Linux 6.8 on), for retired
 * pages that become another part of the same range (process.c):
 * move_open: a descriptor for moving pages in this process, or -1 (errno
 * ENOSYS, EPERM, EINVAL: the kernel cannot, or forbids it).  Kept open for
 * the process's life (close-on-exec), numbered at three quarters of the
 * descriptor limit or above, so that the program's own descriptors keep
 * the numbers they would have had.
 * move_allow: let pages be moved into [p, p + size), anonymous private
 * memory of this process; false if the kernel refuses.  Nothing else
 * about the range changes (no fault is ever sent to the descriptor).
 * move_pages: move the pages of [src, src + len) to [dst, dst + len), in
 * one range of move_allow, and return how many bytes it got through: len,
 * or less (errno set) at the first destination page that is present, or
 * where the kernel refused (a page shared with a forked child, say).  The
 * source reads as zero afterwards, like decommitted memory; a source page
 * never touched leaves its destination page untouched too.  All multiples
 * of the OS page. */
DH_HIDDEN int DH_OS_FN(move_open)(void);
DH_HIDDEN bool DH_OS_FN(move_allow)(int fd, uintptr_t p, size_t size);
DH_HIDDEN size_t DH_OS_FN(move_pages)(int fd, uintptr_t dst, uintptr_t src,
                                      size_t len);

/* Advice on how to back [p, p+size) with physical memory: huge pages
 * (huge) or base pages only (!huge).  The range may be committed or only
 * reserved; the advice holds for the pages committed there later too.  It
 * never changes what the memory holds or where anything is.  p is a
 * multiple of the OS page.  Returns false if the OS refused (no such
 * feature, say), which the caller may ignore: nothing else changes. */
DH_HIDDEN bool DH_OS_FN(advise_huge)(void *p, size_t size, bool huge);

/* The OS page size (a power of two, at most 64 KiB). */
DH_HIDDEN size_t DH_OS_FN(page_size)(void);

/* Write len bytes to standard error, retrying on EINTR; errors ignored. */
DH_HIDDEN void DH_OS_FN(write_stderr)(const char *s, size_t len);

/* Files, for the trace (trace.c).  open_write creates or truncates path
 * for appending; open_read opens for reading; both return a descriptor or
 * -1 (errno set).  write_all retries short writes and EINTR; false on
 * error.  read returns bytes read, 0 at the end, -1 on error. */
DH_HIDDEN int DH_OS_FN(open_write)(const char *path);
/* open_append opens an existing path for appending, without truncating it
 * (a trace continued after exec); -1 (errno set) if it cannot. */
DH_HIDDEN int DH_OS_FN(open_append)(const char *path);
/* Whether fd is open on the file with that device and inode numbers: a
 * descriptor inherited from the tool, not one the program reused. */
DH_HIDDEN bool DH_OS_FN(fd_is)(int fd, uint64_t dev, uint64_t ino);
DH_HIDDEN int DH_OS_FN(open_read)(const char *path);
DH_HIDDEN bool DH_OS_FN(write_all)(int fd, const void *buf, size_t len);
DH_HIDDEN long DH_OS_FN(read)(int fd, void *buf, size_t len);
DH_HIDDEN void DH_OS_FN(close)(int fd);

/* The calling thread's kernel id, and its name (up to 15 bytes and a NUL
 * into out[16]; "" if it has none or it cannot be read). */
DH_HIDDEN uint64_t DH_OS_FN(tid)(void);
DH_HIDDEN void DH_OS_FN(thread_name)(char out[16]);
/* This process's id and its parent's. */
DH_HIDDEN uint64_t DH_OS_FN(pid)(void);
DH_HIDDEN uint64_t DH_OS_FN(ppid)(void);

/* Image files (image.c).  Each returns false (or -1) with errno set, and
 * preserves errno on success.
 * file_open: open path read-only, or read-write (write), creating or
 * truncating it with mode 0644 (create); close-on-exec.  Returns the
 * descriptor or -1.
 * file_lock: a non-blocking advisory lock on the whole file (flock),
 * exclusive or shared, held until the descriptor is closed; EBUSY if
 * another open file holds a conflicting one.
 * file_size: its length.  pread_all / pwrite_all: exactly len bytes at
 * off, retrying short transfers and EINTR; pread_all fails with EINVAL at
 * the end of the file.  file_reserve: make [off, off + len) of the file
 * allocated on disk (ENOSPC now rather than SIGBUS later), extending it
 * if needed.  file_truncate: set its length.  file_sync: fdatasync.
 * file_rename / file_unlink: rename(2), unlink(2) (unlink ignores
 * errors). */
DH_HIDDEN int DH_OS_FN(file_open)(const char *path, bool write, bool create);
DH_HIDDEN bool DH_OS_FN(file_lock)(int fd, bool exclusive);
DH_HIDDEN bool DH_OS_FN(file_size)(int fd, uint64_t *size);
DH_HIDDEN bool DH_OS_FN(pread_all)(int fd, void *buf, size_t len,
                                   uint64_t off);
DH_HIDDEN bool DH_OS_FN(pwrite_all)(int fd, const void *buf, size_t len,
                                    uint64_t off);
DH_HIDDEN bool DH_OS_FN(file_reserve)(int fd, uint64_t off, uint64_t len);
DH_HIDDEN bool DH_OS_FN(file_truncate)(int fd, uint64_t size);
DH_HIDDEN bool DH_OS_FN(file_sync)(int fd);
DH_HIDDEN bool DH_OS_FN(file_rename)(const char *from, const char *to);
DH_HIDDEN void DH_OS_FN(file_unlink)(const char *path);

/* Map [at, at + size) of a range this process reserved to the file's
 * bytes [off, off + size), readable and writable, replacing what was
 * there: copy-on-write (!shared) or shared with the file.  at, size and
 * off are multiples of the OS page.  false (errno ENOMEM, or the OS's)
 * leaves the range as it was or unmapped; the caller releases it. */
DH_HIDDEN bool DH_OS_FN(map_file)(uintptr_t at, size_t size, int fd,
                                  uint64_t off, bool shared);

/* Write tracking (snapshot.c): the kernel's asynchronous write
 * protection (userfaultfd with UFFD_FEATURE_WP_ASYNC and
 * WP_UNPOPULATED, read back with the PAGEMAP_SCAN ioctl, Linux 6.7 on):
 * a write to a protected page is let through at once, the page is marked
 * written, and a scan lists the written pages and can protect them again.
 * No handler thread, no signal.
 * wp_open: fds[0] the tracker, fds[1] the scanner; false (errno ENOSYS,
 * EPERM, EINVAL: the kernel has no such feature, or forbids it) if
 * writes cannot be tracked.  wp_close closes both.
 * wp_track: protect [p, p + size) (anonymous or private memory of this
 * process) and track writes to it from now on.
 * wp_scan: the runs of written pages in [start, end), at most cap of them,
 * into out (as [start, end) pairs), protecting them again if `protect`;
 * returns how many, and in *next where the scan stopped (end, unless out
 * filled up); -1 with errno on failure. */
typedef struct dh_os_run {
    uintptr_t start, end;
} dh_os_run_t;
DH_HIDDEN bool DH_OS_FN(wp_open)(int fds[2]);
DH_HIDDEN void DH_OS_FN(wp_close)(const int fds[2]);
DH_HIDDEN bool DH_OS_FN(wp_track)(const int fds[2], uintptr_t p, size_t size);
DH_HIDDEN long DH_OS_FN(wp_scan)(const int fds[2], uintptr_t start,
                                 uintptr_t end, bool protect,
                                 dh_os_run_t *out, size_t cap,
                                 uintptr_t *next);

/* For SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT whose disposition is
 * still the default: run fn(sig) on such a signal, then die of it as by
 * default (the handler is reset first).  A signal the program handles
 * itself is left alone.  For the trace, so that a crashing thread's last
 * records are written (trace.c). */
DH_HIDDEN void DH_OS_FN(on_fatal_signal)(void (*fn)(int));

/* Terminate the process abnormally (SIGABRT), never returning. */
DH_HIDDEN _Noreturn void DH_OS_FN(abort)(void);

#endif /* DH_OS_H */
