/*
 * image_test.h - what the image tests share: fixed bases, scratch files,
 * running this test binary again as a fresh process, and checking that a
 * range is wholly unmapped.  Include after <cmocka.h>.
 */
#ifndef DH_TESTS_IMAGE_TEST_H
#define DH_TESTS_IMAGE_TEST_H

#include "detheap.h"
#include "test_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Fixed bases of the image tests: far from the process heap's slots
 * (0x200000000000 up), from the other tests' (0x300000000000,
 * 0x500000000000) and from ASan's shadow (below 0x10007fff8000). */
#define IMG_BASE_TREE ((uintptr_t)0x540000000000ull)
#define IMG_BASE_SMALL ((uintptr_t)0x541000000000ull)
#define IMG_BASE_SHARED ((uintptr_t)0x542000000000ull)
#define IMG_BASE_SNAP ((uintptr_t)0x543000000000ull)
#define IMG_BASE_OTHER ((uintptr_t)0x544000000000ull)
#define IMG_RESERVE ((uint64_t)4 << 30)

/* A heap of IMG_RESERVE bytes at base; the test fails if there is none. */
static inline dh_heap_t *img_heap_at(uintptr_t base) {
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.base = base;
    cfg.reserve = IMG_RESERVE;
    dh_heap_t *h = dh_heap_create(&cfg);
    if (h == NULL) fail_msg("heap at %#lx: errno %d", (unsigned long)base, errno);
    return h;
}

/* A scratch directory for the test's files, made once. */
static inline const char *img_dir(void) {
    static char dir[256];
    if (dir[0] == 0) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/dh-image-XXXXXX", t && *t ? t : "/tmp");
        assert_non_null(mkdtemp(dir));
    }
    return dir;
}

static inline void img_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", img_dir(), name);
}

/* Nothing of [base, base + len) is mapped: a probe mapping with
 * MAP_FIXED_NOREPLACE takes it all. */
static inline bool img_range_free(uintptr_t base, size_t len) {
    void *p = mmap((void *)base, len, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                       MAP_FIXED_NOREPLACE,
                   -1, 0);
    if (p == MAP_FAILED) return false;
    munmap(p, len);
    return p == (void *)base;
}

/* Run this test binary again (a fresh process, its own address-space
 * layout) with args; its standard output goes into out (NUL-terminated).
 * Returns its exit status (-1 if it did not exit). */
static inline int img_run_self(char *const args[], char *out, size_t cap) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        char *argv[16] = {(char *)"/proc/self/exe"};
        for (int i = 0; args[i] != NULL && i < 14; i++) argv[i + 1] = args[i];
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(fds[1]);
    int status = test_collect_child(pid, fds[0], out, cap);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Run body(arg) in a forked child (this process's mappings, as they are);
 * returns its exit status, -1 if it did not exit. */
static inline int img_run_fork(int (*body)(void *), void *arg) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(body(arg));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A hash of the heap's statistics. */
static inline uint64_t img_stats_hash(const dh_heap_t *h) {
    dh_stats_t s;
    memset(&s, 0, sizeof s);
    assert_true(dh_heap_stats(h, &s, sizeof s));
    const unsigned char *p = (const unsigned char *)&s;
    uint64_t x = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < sizeof s; i++) x = (x ^ p[i]) * 0x100000001b3ull;
    return x;
}

static inline uint64_t img_mix(uint64_t x, uint64_t v) {
    return (x ^ v) * 0x100000001b3ull + (v >> 29);
}

/* The whole file as a malloc'd buffer (*len bytes). */
static inline unsigned char *img_slurp(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    assert_non_null(buf);
    size_t n = 0;
    while (n < (size_t)st.st_size) {
        ssize_t r = pread(fd, buf + n, (size_t)st.st_size - n, (off_t)n);
        assert_true(r > 0);
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return buf;
}

static inline void img_spit(const char *path, const unsigned char *buf,
                            size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    size_t n = 0;
    while (n < len) {
        ssize_t r = pwrite(fd, buf + n, len - n, (off_t)n);
        assert_true(r > 0);
        n += (size_t)r;
    }
    close(fd);
}

#endif /* DH_TESTS_IMAGE_TEST_H */
