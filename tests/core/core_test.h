/*
 * core_test.h - helpers shared by the core heap's unit tests: a seeded
 * PRNG, a statistics snapshot, and the "validate after every step" check.
 * Header-only so that each test stays one self-contained executable.
 */
#ifndef DH_TESTS_CORE_TEST_H
#define DH_TESTS_CORE_TEST_H

#include "detheap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* splitmix64: every test's randomness is fixed by its seed. */
typedef struct {
    uint64_t s;
} core_rng_t;

static inline uint64_t core_rng_next(core_rng_t *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static inline uint64_t core_rng_range(core_rng_t *r, uint64_t lo, uint64_t hi) {
    return lo + core_rng_next(r) % (hi - lo + 1);
}

static inline dh_stats_t core_stats(const dh_heap_t *h) {
    dh_stats_t s;
    memset(&s, 0, sizeof s);
    assert_true(dh_heap_stats(h, &s, sizeof s));
    return s;
}

/* A heap with the default configuration; the test fails if none. */
static inline dh_heap_t *core_heap(void) {
    dh_heap_t *h = dh_heap_create(NULL);
    assert_non_null(h);
    return h;
}

/* The full validator must find every invariant intact. */
#define CORE_CHECK(h) assert_int_equal(dh_heap_check(h), DH_CHECK_OK)

#endif
