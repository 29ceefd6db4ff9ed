/*
 * os_fault.c - a fault-injecting OS backend for tests.  It forwards to the
 * real backend (compiled with DH_OS_FN(name) = dh_os_real_name) and makes
 * chosen calls to commit or reserve fail with ENOMEM, as if the OS refused,
 * and logs (and can refuse) huge-page advice.
 *
 * Tests steer it through dh_fault_set(): "fail the k-th commit from now" or
 * "fail every commit".  Only the test build links this file.
 */
#include "os_fault.h"
#include "os.h"

#include <errno.h>

#define REAL(name) dh_os_real_##name
void *REAL(reserve)(size_t size, size_t align, uintptr_t fixed);
void REAL(release)(void *p, size_t size);
bool REAL(commit)(void *p, size_t size);
bool REAL(advise_huge)(void *p, size_t size, bool huge);
size_t REAL(page_size)(void);
void REAL(write_stderr)(const char *s, size_t len);
_Noreturn void REAL(abort)(void);

static long commit_countdown = -1;  /* fail when it reaches 0; -1 = never */
static bool commit_always_fails;
static long reserve_countdown = -1;
static unsigned long commits_seen;
static bool advice_refused;
static dh_fault_advice_t advice_log[DH_FAULT_ADVICE_LOG];
static unsigned long advice_seen;

void dh_fault_set(long fail_commit_in, bool fail_all_commits,
                  long fail_reserve_in) {
    commit_countdown = fail_commit_in;
    commit_always_fails = fail_all_commits;
    reserve_countdown = fail_reserve_in;
}

unsigned long dh_fault_commits_seen(void) { return commits_seen; }

static bool due(long *countdown) {
    if (*countdown < 0) return false;
    return (*countdown)-- == 0;
}

void *dh_os_reserve(size_t size, size_t align, uintptr_t fixed) {
    if (due(&reserve_countdown)) {
        errno = ENOMEM;
        return NULL;
    }
    return REAL(reserve)(size, align, fixed);
}

void dh_os_release(void *p, size_t size) { REAL(release)(p, size); }

bool REAL(map_fixed)(uintptr_t fixed, size_t size);
uint64_t REAL(as_limit)(void);
bool dh_os_map_fixed(uintptr_t fixed, size_t size) {
    commits_seen++;
    if (commit_always_fails || due(&commit_countdown)) {
        errno = ENOMEM;
        return false;
    }
    return REAL(map_fixed)(fixed, size);
}
uint64_t dh_os_as_limit(void) { return REAL(as_limit)(); }

bool dh_os_commit(void *p, size_t size) {
    commits_seen++;
    if (commit_always_fails || due(&commit_countdown)) {
        errno = ENOMEM;
        return false;
    }
    return REAL(commit)(p, size);
}

void dh_fault_refuse_advice(bool refuse) { advice_refused = refuse; }

unsigned long dh_fault_advice(dh_fault_advice_t *out, unsigned long cap) {
    unsigned long n = advice_seen < DH_FAULT_ADVICE_LOG ? advice_seen
                                                        : DH_FAULT_ADVICE_LOG;
    for (unsigned long i = 0; i < n && i < cap; i++) out[i] = advice_log[i];
    return advice_seen;
}

void dh_fault_advice_clear(void) { advice_seen = 0; }

bool dh_os_advise_huge(void *p, size_t size, bool huge) {
    if (advice_seen < DH_FAULT_ADVICE_LOG)
        advice_log[advice_seen] = (dh_fault_advice_t){(uintptr_t)p, size, huge};
    advice_seen++;
    if (advice_refused) return false; /* as without the feature */
    return REAL(advise_huge)(p, size, huge);
}

size_t dh_os_page_size(void) { return REAL(page_size)(); }

void dh_os_write_stderr(const char *s, size_t len) {
    REAL(write_stderr)(s, len);
}

_Noreturn void dh_os_abort(void) { REAL(abort)(); }

void REAL(on_fatal_signal)(void (*fn)(int));
void dh_os_on_fatal_signal(void (*fn)(int)) { REAL(on_fatal_signal)(fn); }

int REAL(open_write)(const char *path);
int REAL(open_read)(const char *path);
int REAL(open_append)(const char *path);
bool REAL(fd_is)(int fd, uint64_t dev, uint64_t ino);
bool REAL(write_all)(int fd, const void *buf, size_t len);
long REAL(read)(int fd, void *buf, size_t len);
void REAL(close)(int fd);
uint64_t REAL(pid)(void);
uint64_t REAL(tid)(void);
void REAL(thread_name)(char out[16]);
bool REAL(decommit)(void *p, size_t size);
bool dh_os_decommit(void *p, size_t size) { return REAL(decommit)(p, size); }
uint64_t dh_os_tid(void) { return REAL(tid)(); }
void dh_os_thread_name(char out[16]) { REAL(thread_name)(out); }
uint64_t REAL(ppid)(void);
int dh_os_open_write(const char *path) { return REAL(open_write)(path); }
int dh_os_open_read(const char *path) { return REAL(open_read)(path); }
int dh_os_open_append(const char *path) { return REAL(open_append)(path); }
bool dh_os_fd_is(int fd, uint64_t dev, uint64_t ino) {
    return REAL(fd_is)(fd, dev, ino);
}
bool dh_os_write_all(int fd, const void *buf, size_t len) {
    return REAL(write_all)(fd, buf, len);
}
long dh_os_read(int fd, void *buf, size_t len) {
    return REAL(read)(fd, buf, len);
}
void dh_os_close(int fd) { REAL(close)(fd); }
uint64_t dh_os_pid(void) { return REAL(pid)(); }
uint64_t dh_os_ppid(void) { return REAL(ppid)(); }

/* Image files and write tracking: forwarded as they are. */
int REAL(file_open)(const char *path, bool write, bool create);
bool REAL(file_lock)(int fd, bool exclusive);
bool REAL(file_size)(int fd, uint64_t *size);
bool REAL(pread_all)(int fd, void *buf, size_t len, uint64_t off);
bool REAL(pwrite_all)(int fd, const void *buf, size_t len, uint64_t off);
bool REAL(file_reserve)(int fd, uint64_t off, uint64_t len);
bool REAL(file_truncate)(int fd, uint64_t size);
bool REAL(file_sync)(int fd);
bool REAL(file_rename)(const char *from, const char *to);
void REAL(file_unlink)(const char *path);
bool REAL(map_file)(uintptr_t at, size_t size, int fd, uint64_t off,
                    bool shared);
bool REAL(wp_open)(int fds[2]);
void REAL(wp_close)(const int fds[2]);
bool REAL(wp_track)(const int fds[2], uintptr_t p, size_t size);
long REAL(wp_scan)(const int fds[2], uintptr_t start, uintptr_t end,
                   bool protect, dh_os_run_t *out, size_t cap,
                   uintptr_t *next);
int dh_os_file_open(const char *path, bool write, bool create) {
    return REAL(file_open)(path, write, create);
}
bool dh_os_file_lock(int fd, bool exclusive) {
    return REAL(file_lock)(fd, exclusive);
}
bool dh_os_file_size(int fd, uint64_t *size) { return REAL(file_size)(fd, size); }
bool dh_os_pread_all(int fd, void *buf, size_t len, uint64_t off) {
    return REAL(pread_all)(fd, buf, len, off);
}
bool dh_os_pwrite_all(int fd, const void *buf, size_t len, uint64_t off) {
    return REAL(pwrite_all)(fd, buf, len, off);
}
bool dh_os_file_reserve(int fd, uint64_t off, uint64_t len) {
    return REAL(file_reserve)(fd, off, len);
}
bool dh_os_file_truncate(int fd, uint64_t size) {
    return REAL(file_truncate)(fd, size);
}
bool dh_os_file_sync(int fd) { return REAL(file_sync)(fd); }
bool dh_os_file_rename(const char *from, const char *to) {
    return REAL(file_rename)(from, to);
}
void dh_os_file_unlink(const char *path) { REAL(file_unlink)(path); }
bool dh_os_map_file(uintptr_t at, size_t size, int fd, uint64_t off,
                    bool shared) {
    return REAL(map_file)(at, size, fd, off, shared);
}
int REAL(move_open)(void);
bool REAL(move_allow)(int fd, uintptr_t p, size_t size);
size_t REAL(move_pages)(int fd, uintptr_t dst, uintptr_t src, size_t len);
int dh_os_move_open(void) { return REAL(move_open)(); }
bool dh_os_move_allow(int fd, uintptr_t p, size_t size) {
    return REAL(move_allow)(fd, p, size);
}
size_t dh_os_move_pages(int fd, uintptr_t dst, uintptr_t src, size_t len) {
    return REAL(move_pages)(fd, dst, src, len);
}
static bool wp_refused;
void dh_fault_refuse_wp(bool refuse) { wp_refused = refuse; }
bool dh_os_wp_open(int fds[2]) {
    if (wp_refused) { /* as on a kernel without the feature */
        errno = ENOSYS;
        return false;
    }
    return REAL(wp_open)(fds);
}
void dh_os_wp_close(const int fds[2]) { REAL(wp_close)(fds); }
bool dh_os_wp_track(const int fds[2], uintptr_t p, size_t size) {
    return REAL(wp_track)(fds, p, size);
}
long dh_os_wp_scan(const int fds[2], uintptr_t start, uintptr_t end,
                   bool protect, dh_os_run_t *out, size_t cap,
                   uintptr_t *next) {
    return REAL(wp_scan)(fds, start, end, protect, out, cap, next);
}
