/*
 * robust.h - small helpers shared by the robustness tests: a seeded PRNG,
 * statistics snapshots and comparisons, and capture of standard error
 * (the library reports misuse with a raw write to fd 2, so capture works at
 * the descriptor level, not through stdio).
 */
#ifndef DH_TESTS_ROBUST_H
#define DH_TESTS_ROBUST_H

#include "detheap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_common.h"

/* Equal in every field except the misuse counters and, if asked, the
 * failed-allocation counter. */
static inline void assert_stats_same(dh_stats_t a, dh_stats_t b,
                                     bool ignore_rejected, bool ignore_failed) {
    if (ignore_rejected) {
        a.rejected_frees = b.rejected_frees = 0;
        memset(a.rejected_by_code, 0, sizeof a.rejected_by_code);
        memset(b.rejected_by_code, 0, sizeof b.rejected_by_code);
    }
    if (ignore_failed) a.failed_allocs = b.failed_allocs = 0;
    assert_memory_equal(&a, &b, sizeof a);
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

#endif /* DH_TESTS_ROBUST_H */
