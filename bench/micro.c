/*
 * micro.c - single-thread allocator microbenchmarks.  The program calls the
 * C library's malloc/free/calloc/realloc, so running it under LD_PRELOAD
 * measures whichever allocator the preload supplies.
 *
 *   micro NAME ITERS [REPS [WARMUP]]
 *
 * runs benchmark NAME for WARMUP untimed and REPS timed repetitions of ITERS
 * operations each and prints "NAME BEST_NS MEDIAN_NS": nanoseconds per
 * operation (a malloc+free pair, or one realloc call).  `micro list` prints
 * the names.  All sizes and slots come from tables filled by a fixed-seed
 * PRNG before the clock starts, so the timed loop holds only allocator
 * calls and every allocator sees the same sequence.
 *
 * With REPS=1 WARMUP=0 the program performs exactly ITERS operations, which
 * is what the instruction count (callgrind, ITERS=N minus ITERS=0) needs.
 */
#include "bench_common.h"

#include <stdio.h>
#include <string.h>

#define TABLE_SIZE 65536u /* power of two: index with & (TABLE_SIZE-1) */
#define TABLE_MASK (TABLE_SIZE - 1)
#define WS_SLOTS 10000u
#define LIFO_BATCH 100u
#define PAIR_SIZE 64u

static size_t g_sizes[TABLE_SIZE];
static uint32_t g_slots[TABLE_SIZE];

static void fill_sizes(size_t lo, size_t hi, uint64_t seed) {
    bench_rng_t r = {seed};
    for (size_t i = 0; i < TABLE_SIZE; i++) g_sizes[i] = bench_range(&r, lo, hi);
    for (size_t i = 0; i < TABLE_SIZE; i++)
        g_slots[i] = (uint32_t)bench_range(&r, 0, WS_SLOTS - 1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (p == NULL) {
        fprintf(stderr, "micro: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* Each benchmark runs `iters` operations and returns the seconds they took
 * (set-up and tear-down outside the clock). */

static double bench_pair(size_t iters) {
    double t0 = bench_now();
    for (size_t i = 0; i < iters; i++) {
        void *p = malloc(PAIR_SIZE);
        bench_sink = p;
        free(p);
    }
    return bench_now() - t0;
}

/* One block stays live, so the allocator cannot hand its page back or merge
 * the freed block into an empty arena: the steady state of a real program. */
static double bench_pair_live(size_t iters) {
    void *live = xmalloc(PAIR_SIZE);
    bench_sink = live;
    double t = bench_pair(iters);
    free(live);
    return t;
}

static double bench_lifo(size_t iters) {
    void *batch[LIFO_BATCH];
    size_t k = 0;
    double t0 = bench_now();
    for (size_t done = 0; done < iters; done += LIFO_BATCH) {
        for (size_t j = 0; j < LIFO_BATCH; j++) {
            batch[j] = malloc(g_sizes[k++ & TABLE_MASK]);
            bench_sink = batch[j];
        }
        for (size_t j = LIFO_BATCH; j-- > 0;) free(batch[j]);
    }
    return bench_now() - t0;
}

/* Random replacement in a working set of WS_SLOTS live blocks; each new
 * block is written to, as a program would. */
static double bench_ws(size_t iters) {
    static void *slot[WS_SLOTS];
    for (size_t s = 0; s < WS_SLOTS; s++) {
        slot[s] = xmalloc(g_sizes[(s * 7919u) & TABLE_MASK]);
        memset(slot[s], 1, 8);
    }
    double t0 = bench_now();
    for (size_t i = 0; i < iters; i++) {
        uint32_t s = g_slots[i & TABLE_MASK];
        free(slot[s]);
        void *p = malloc(g_sizes[i & TABLE_MASK]);
        if (p != NULL) memset(p, (int)i, 8);
        slot[s] = p;
    }
    double t = bench_now() - t0;
    for (size_t s = 0; s < WS_SLOTS; s++) free(slot[s]);
    return t;
}

/* Grow a buffer by 1/8 + 16 bytes per call up to 64 KiB, touching its end,
 * then start over: the pattern of a growing string or vector. */
static double bench_realloc(size_t iters) {
    char *p = xmalloc(16);
    size_t size = 16;
    double t0 = bench_now();
    for (size_t i = 0; i < iters; i++) {
        if (size >= 65536) {
            free(p);
            size = 16;
            p = xmalloc(size);
        }
        size += size / 8 + 16;
        char *q = realloc(p, size);
        if (q == NULL) {
            fprintf(stderr, "micro: realloc failed\n");
            exit(1);
        }
        q[size - 1] = (char)i;
        p = q;
    }
    double t = bench_now() - t0;
    free(p);
    return t;
}

static double bench_calloc(size_t iters) {
    double t0 = bench_now();
    for (size_t i = 0; i < iters; i++) {
        void *p = calloc(1, g_sizes[i & TABLE_MASK]);
        bench_sink = p;
        free(p);
    }
    return bench_now() - t0;
}

typedef struct {
    const char *name;
    double (*run)(size_t iters);
    size_t lo, hi; /* size range of the tables, 0 when unused */
} micro_t;

static const micro_t g_micro[] = {
    {"pair", bench_pair, 0, 0},
    {"pair_live", bench_pair_live, 0, 0},
    {"lifo", bench_lifo, 16, 1024},
    {"ws4k", bench_ws, 16, 4096},
    {"ws64k", bench_ws, 16, 65536},
    {"realloc", bench_realloc, 0, 0},
    {"calloc", bench_calloc, 16, 4096},
};
#define N_MICRO (sizeof g_micro / sizeof g_micro[0])

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "list") == 0) {
        for (size_t i = 0; i < N_MICRO; i++) puts(g_micro[i].name);
        return 0;
    }
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: micro NAME ITERS [REPS [WARMUP]] | micro list\n");
        return 2;
    }
    const micro_t *m = NULL;
    for (size_t i = 0; i < N_MICRO; i++)
        if (strcmp(argv[1], g_micro[i].name) == 0) m = &g_micro[i];
    if (m == NULL) {
        fprintf(stderr, "micro: unknown benchmark '%s'\n", argv[1]);
        return 2;
    }
    size_t iters = strtoull(argv[2], NULL, 10);
    size_t reps = argc > 3 ? strtoull(argv[3], NULL, 10) : 5;
    size_t warmup = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
    if (reps == 0 || reps > 1000) {
        fprintf(stderr, "micro: REPS must be 1..1000\n");
        return 2;
    }
    if (m->hi != 0) fill_sizes(m->lo, m->hi, 0x9E3779B97F4A7C15ull);

    double ns[1000];
    for (size_t i = 0; i < warmup; i++) m->run(iters);
    for (size_t i = 0; i < reps; i++) {
        double t = m->run(iters);
        ns[i] = iters ? t * 1e9 / (double)iters : 0.0;
    }
    double median = bench_median(ns, reps);
    printf("%s %.3f %.3f\n", m->name, ns[0], median);
    return 0;
}
