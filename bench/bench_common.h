/*
 * bench_common.h - helpers shared by the benchmark programs: a monotonic
 * clock, a small deterministic PRNG (so every allocator sees the same
 * sequence of sizes and slots), a sink that keeps the compiler from
 * removing malloc/free pairs, and sorting for best/median figures.
 * Header-only: each program is a single translation unit.
 */
#ifndef DH_BENCH_COMMON_H
#define DH_BENCH_COMMON_H

/* clock_gettime under -std=c11; include this header first. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* Storing each block here makes its allocation observable: GCC and Clang
 * may otherwise delete a malloc whose result is freed unused. */
static void *volatile bench_sink;

static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64*: fixed seed, same stream on every run and every allocator. */
typedef struct {
    uint64_t s;
} bench_rng_t;

static inline uint64_t bench_next(bench_rng_t *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [lo, hi]; the modulo bias is irrelevant here. */
static inline size_t bench_range(bench_rng_t *r, size_t lo, size_t hi) {
    return lo + (size_t)(bench_next(r) % (uint64_t)(hi - lo + 1));
}

static int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v in place; returns the median (lower middle for even n). */
static inline double bench_median(double *v, size_t n) {
    qsort(v, n, sizeof *v, bench_cmp_double);
    return v[(n - 1) / 2];
}

#endif
