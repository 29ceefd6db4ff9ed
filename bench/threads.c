/*
 * threads.c - two-thread allocator benchmarks, through the C library's
 * malloc/free (swap the allocator with LD_PRELOAD).
 *
 *   threads larson OPS    each thread keeps 1000 live blocks of 16..1024
 *                         bytes and replaces a random one OPS times; one
 *                         replacement in 16 hands the old block to the other
 *                         thread, which frees it (cross-thread frees)
 *   threads prodcons OPS  one thread allocates OPS blocks and passes them
 *                         through a queue; the other frees them
 *
 * Prints "NAME OPS_PER_SECOND PEAK_RSS_KB": malloc+free pairs per second of
 * wall time over both threads, and the process's peak resident set.  The
 * work is fixed (OPS), not the time, so every allocator does the same.
 * Blocks travel through single-producer single-consumer rings, which need
 * no lock and so add no allocator-independent contention.
 */
#include "bench_common.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#define RING_SIZE 4096u /* power of two */
#define LARSON_SLOTS 1000u
#define HANDOVER_EVERY 16u
#define TABLE_SIZE 65536u
#define TABLE_MASK (TABLE_SIZE - 1)

/* head and tail on separate cache lines: each is written by one thread. */
typedef struct {
    _Alignas(64) atomic_size_t head; /* next slot to pop (consumer) */
    _Alignas(64) atomic_size_t tail; /* next slot to fill (producer) */
    _Alignas(64) void *slot[RING_SIZE];
} ring_t;

static bool ring_push(ring_t *r, void *p) {
    size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    size_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    if (t - h == RING_SIZE) return false;
    r->slot[t & (RING_SIZE - 1)] = p;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return true;
}

static void *ring_pop(ring_t *r) {
    size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (h == t) return NULL;
    void *p = r->slot[h & (RING_SIZE - 1)];
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return p;
}

static ring_t g_ring[2];      /* g_ring[i]: blocks handed to thread i */
static atomic_int g_go;       /* start line, so both threads start together */
static atomic_int g_ready;    /* threads done with their set-up */
static atomic_int g_done[2];  /* thread i has made its last hand-over */
static size_t g_ops;

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (p == NULL) {
        fprintf(stderr, "threads: out of memory\n");
        exit(1);
    }
    memset(p, 0x5a, 8);
    return p;
}

static void wait_go(void) {
    atomic_fetch_add_explicit(&g_ready, 1, memory_order_release);
    while (!atomic_load_explicit(&g_go, memory_order_acquire)) sched_yield();
}

static size_t drain(ring_t *r) {
    size_t n = 0;
    void *p;
    while ((p = ring_pop(r)) != NULL) {
        free(p);
        n++;
    }
    return n;
}

static void *larson_thread(void *arg) {
    int me = (int)(intptr_t)arg, other = 1 - me;
    bench_rng_t rng = {0x1234567ull + (uint64_t)me * 0x9E3779B97F4A7C15ull};
    static size_t sizes[2][TABLE_SIZE];
    static uint32_t slots[2][TABLE_SIZE];
    for (size_t i = 0; i < TABLE_SIZE; i++) {
        sizes[me][i] = bench_range(&rng, 16, 1024);
        slots[me][i] = (uint32_t)bench_range(&rng, 0, LARSON_SLOTS - 1);
    }
    void **slot = malloc(LARSON_SLOTS * sizeof *slot);
    if (slot == NULL) return NULL;
    for (size_t s = 0; s < LARSON_SLOTS; s++) slot[s] = xmalloc(sizes[me][s]);
    wait_go();
    for (size_t i = 0; i < g_ops; i++) {
        uint32_t s = slots[me][i & TABLE_MASK];
        if (i % HANDOVER_EVERY == 0 && ring_push(&g_ring[other], slot[s])) {
            /* handed over: the other thread frees it */
        } else {
            free(slot[s]);
        }
        slot[s] = malloc(sizes[me][i & TABLE_MASK]);
        if (slot[s] != NULL) memset(slot[s], (int)i, 8);
        if (i % 64 == 0) drain(&g_ring[me]);
    }
    atomic_store_explicit(&g_done[me], 1, memory_order_release);
    while (!atomic_load_explicit(&g_done[other], memory_order_acquire)) {
        if (drain(&g_ring[me]) == 0) sched_yield();
    }
    drain(&g_ring[me]);
    for (size_t s = 0; s < LARSON_SLOTS; s++) free(slot[s]);
    free(slot);
    return NULL;
}

static size_t g_pc_sizes[TABLE_SIZE];

static void *producer_thread(void *arg) {
    (void)arg;
    wait_go();
    for (size_t i = 0; i < g_ops; i++) {
        void *p = malloc(g_pc_sizes[i & TABLE_MASK]);
        if (p == NULL) {
            fprintf(stderr, "threads: out of memory\n");
            exit(1);
        }
        memcpy(p, &i, sizeof i);
        while (!ring_push(&g_ring[1], p)) sched_yield();
    }
    return NULL;
}

static void *consumer_thread(void *arg) {
    (void)arg;
    wait_go();
    size_t sum = 0;
    for (size_t got = 0; got < g_ops;) {
        void *p = ring_pop(&g_ring[1]);
        if (p == NULL) {
            sched_yield();
            continue;
        }
        size_t v;
        memcpy(&v, p, sizeof v);
        sum += v;
        free(p);
        got++;
    }
    bench_sink = (void *)(uintptr_t)sum;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: threads larson|prodcons OPS\n");
        return 2;
    }
    g_ops = strtoull(argv[2], NULL, 10);
    void *(*fn[2])(void *);
    size_t pairs;
    if (strcmp(argv[1], "larson") == 0) {
        fn[0] = fn[1] = larson_thread;
        pairs = 2 * g_ops;
    } else if (strcmp(argv[1], "prodcons") == 0) {
        bench_rng_t rng = {42};
        for (size_t i = 0; i < TABLE_SIZE; i++)
            g_pc_sizes[i] = bench_range(&rng, 16, 1024);
        fn[0] = producer_thread;
        fn[1] = consumer_thread;
        pairs = g_ops;
    } else {
        fprintf(stderr, "threads: unknown benchmark '%s'\n", argv[1]);
        return 2;
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&th[i], NULL, fn[i], (void *)(intptr_t)i) != 0) {
            fprintf(stderr, "threads: pthread_create failed\n");
            return 1;
        }
    /* Both threads finish their set-up before the clock starts. */
    while (atomic_load_explicit(&g_ready, memory_order_acquire) < 2)
        sched_yield();
    double t0 = bench_now();
    atomic_store_explicit(&g_go, 1, memory_order_release);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    double t = bench_now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%s %.0f %ld\n", argv[1], (double)pairs / t, ru.ru_maxrss);
    return 0;
}
