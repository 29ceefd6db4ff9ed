/*
 * test_common.h - helpers every unit test may use: a seeded PRNG (all the
 * tests' randomness is fixed by their seeds) and a statistics snapshot.
 * Include after <cmocka.h>.  Header-only, so each test stays one
 * self-contained executable.
 */
#ifndef DH_TESTS_COMMON_H
#define DH_TESTS_COMMON_H

#include "detheap.h"

#include <stdint.h>
#include <string.h>

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

/* The heap's statistics; the test fails if they cannot be read. */
static inline dh_stats_t test_stats(const dh_heap_t *h) {
    dh_stats_t s;
    memset(&s, 0, sizeof s);
    assert_true(dh_heap_stats(h, &s, sizeof s));
    return s;
}

#endif /* DH_TESTS_COMMON_H */
