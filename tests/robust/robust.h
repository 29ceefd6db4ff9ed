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

#endif /* DH_TESTS_ROBUST_H */
