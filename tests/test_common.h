/*
 * test_common.h - helpers every unit test may use: a seeded PRNG (all the
 * tests' randomness is fixed by their seeds), a statistics snapshot, and
 * capture of standard error at the descriptor level (the library reports
 * misuse with a raw write to fd 2, not through stdio).
 * Include after <cmocka.h>.  Header-only, so each test stays one
 * self-contained executable.
 */
#ifndef DH_TESTS_COMMON_H
#define DH_TESTS_COMMON_H

#include "detheap.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

/* splitmix64: tiny, good enough, and fully determined by the seed. */
typedef struct {
    uint64_t s;
} test_rng_t;

static inline uint64_t test_rng_next(test_rng_t *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static inline uint64_t test_rng_range(test_rng_t *r, uint64_t lo, uint64_t hi) {
    return lo + test_rng_next(r) % (hi - lo + 1);
}

/* A request size: small_pct percent up to 1024 bytes (the lean classes),
 * then class_pct percent more up to 64 KiB (the other classes), the rest
 * large blocks up to 300,000 bytes.  Same rng, same sizes. */
static inline size_t test_random_size(test_rng_t *r, unsigned small_pct,
                                      unsigned class_pct) {
    uint64_t k = test_rng_next(r) % 100;
    if (k < small_pct) return (size_t)test_rng_range(r, 0, 1024);
    if (k < small_pct + class_pct) return (size_t)test_rng_range(r, 1025, 65536);
    return (size_t)test_rng_range(r, 65537, 300000);
}

/* The heap's statistics; the test fails if they cannot be read. */
static inline dh_stats_t test_stats(const dh_heap_t *h) {
    dh_stats_t s;
    memset(&s, 0, sizeof s);
    assert_true(dh_heap_stats(h, &s, sizeof s));
    return s;
}

/* Standard error redirected to a temporary file while a capture is open. */
typedef struct {
    int saved_fd;
    FILE *file;
} capture_t;

static inline void capture_begin(capture_t *c) {
    fflush(stderr);
    c->file = tmpfile();
    assert_non_null(c->file);
    c->saved_fd = dup(2);
    assert_true(c->saved_fd >= 0);
    assert_true(dup2(fileno(c->file), 2) == 2);
}

/* Restore fd 2 and copy what was written into buf (NUL-terminated). */
static inline size_t capture_end(capture_t *c, char *buf, size_t cap) {
    fflush(stderr);
    assert_true(dup2(c->saved_fd, 2) == 2);
    close(c->saved_fd);
    rewind(c->file);
    size_t n = fread(buf, 1, cap - 1, c->file);
    buf[n] = 0;
    fclose(c->file);
    return n;
}

/* The parent's side of a child started with a pipe: read fd (the pipe's
 * read end) to its end into buf (NUL-terminated, up to cap - 1 bytes),
 * close it and return the child's wait status. */
static inline int test_collect_child(pid_t pid, int fd, char *buf,
                                     size_t cap) {
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = 0;
    close(fd);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/* Run body(arg) in a child process whose stderr goes to buf
 * (NUL-terminated); returns its wait status.  The child writes no core
 * file and dies of SIGABRT if it aborts. */
static inline int run_child_status(void (*body)(void *), void *arg,
                                   char *buf, size_t cap) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        signal(SIGABRT, SIG_DFL);
        close(fds[0]);
        dup2(fds[1], 2);
        body(arg);
        _exit(0);
    }
    close(fds[1]);
    return test_collect_child(pid, fds[0], buf, cap);
}

/* Run body(arg) in a child process that must die of SIGABRT; what it
 * wrote on stderr goes to buf.  The test fails if the child ends any
 * other way. */
static inline void run_aborting(void (*body)(void *), void *arg, char *buf,
                                size_t cap) {
    int status = run_child_status(body, arg, buf, cap);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("child status %#x, not SIGABRT; stderr: %s", status, buf);
}

#endif /* DH_TESTS_COMMON_H */
