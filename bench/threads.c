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
 *   threads larson-chain GENERATIONS
 *                         Larson and Krishnan's server benchmark as
 *                         mimalloc-bench runs it ("larson-sized 5 8 1000 5000
 *                         100 4141 THREADS"), for 2 threads and a fixed
 *                         amount of work instead of 5 seconds: 2 chains, each
 *                         with 5000 live blocks of 8..1000 bytes that the
 *                         main thread allocates before the clock starts.  A
 *                         thread of a chain replaces a random block (free,
 *                         then malloc of a random size) 100 x 5000 times,
 *                         then creates its successor (detached), hands it
 *                         the array of live blocks and exits; the successor
 *                         goes on freeing and replacing blocks that threads
 *                         now ended allocated.  GENERATIONS threads per
 *                         chain; the last one frees its blocks.
 *   threads xmalloc BLOCKS
 *                         like xmalloc-test (Lever and Boreham; mimalloc-bench
 *                         runs it with 64-byte objects): one thread allocates
 *                         BLOCKS 64-byte blocks, 512 to a batch record that
 *                         it mallocs too, and hands each full batch to the
 *                         other thread, which frees the blocks and the
 *                         record; at most 8 batches wait in the queue
 *   threads mstress STEPS like mimalloc-bench's mstress: 20 phases; each
 *                         creates 2 threads and joins them, and splits
 *                         STEPS / 20 steps between them 60/40 (the busier
 *                         one alternates).  A thread works on an array of
 *                         2000 slots: a step allocates a block of 16..256
 *                         bytes (1 in 32 up to 4 KiB, 1 in 1024 a large one
 *                         of 64 KiB..1 MiB) into a random slot, freeing the
 *                         block there (80%), frees a slot (10%), or swaps a
 *                         slot with one of 1000 transfer slots shared by
 *                         all threads of all phases (10%).  At the end of a
 *                         phase a thread frees 3/4 of its slots and leaves
 *                         the rest to the other thread of the next phase.
 *                         Blocks are filled and carry a cookie, checked
 *                         before every free; what is left at the end is
 *                         freed by the main thread, inside the clock.
 *
 * Prints "NAME OPS_PER_SECOND PEAK_RSS_KB": malloc+free pairs per second of
 * wall time over both threads (xmalloc counts the batch records too,
 * mstress the allocations it makes), and the process's peak resident set.
 * The work is fixed, not the time, so every allocator does the same.
 * Blocks travel through single-producer single-consumer rings, which need
 * no lock and so add no allocator-independent contention.  A failure
 * (malloc returning NULL, a thread that cannot be created, a corrupted
 * block) ends the program with a message and status 1.
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

/* larson-chain: mimalloc-bench's "8 1000 5000 100 4141". */
#define LC_MIN 8u
#define LC_MAX 1000u
#define LC_BLOCKS 5000u /* live blocks per chain */
#define LC_ROUNDS 100u  /* a thread replaces LC_ROUNDS * LC_BLOCKS blocks */
#define LC_SEED 4141u

/* xmalloc */
#define XM_SIZE 64u
#define XM_BATCH 512u
#define XM_QUEUED 8u /* batches waiting in the queue, at most */

/* mstress */
#define MS_PHASES 20u
#define MS_SLOTS 2000u
#define MS_TRANSFER 1000u
#define MS_LARGE_MIN (64u << 10)
#define MS_LARGE_MAX (1u << 20)
#define MS_COOKIE 0x6d73747265737321ull

static void die(const char *what) {
    fprintf(stderr, "threads: %s\n", what);
    exit(1);
}

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

/* Entries waiting; exact for the producer, which alone moves the tail. */
static size_t ring_count(ring_t *r) {
    return atomic_load_explicit(&r->tail, memory_order_relaxed) -
           atomic_load_explicit(&r->head, memory_order_acquire);
}

static ring_t g_ring[2];      /* g_ring[i]: blocks handed to thread i */
static atomic_int g_go;       /* start line, so both threads start together */
static atomic_int g_ready;    /* threads done with their set-up */
static atomic_int g_done[2];  /* thread i has made its last hand-over */
static size_t g_ops;

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (p == NULL) die("out of memory");
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

/* ---- larson ------------------------------------------------------------ */

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
    if (slot == NULL) die("out of memory");
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
        if (slot[s] == NULL) die("out of memory");
        memset(slot[s], (int)i, 8);
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

/* ---- prodcons ---------------------------------------------------------- */

static size_t g_pc_sizes[TABLE_SIZE];

static void *producer_thread(void *arg) {
    (void)arg;
    wait_go();
    for (size_t i = 0; i < g_ops; i++) {
        void *p = malloc(g_pc_sizes[i & TABLE_MASK]);
        if (p == NULL) die("out of memory");
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

/* ---- larson-chain -------------------------------------------------------- */

typedef struct {
    _Alignas(64) void **block; /* LC_BLOCKS live blocks, passed down the chain */
    bench_rng_t rng;           /* continues down the chain too */
    size_t left;               /* threads still to run, this one included */
} chain_t;

static chain_t g_chain[2];
static pthread_mutex_t g_lc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_lc_cond = PTHREAD_COND_INITIALIZER;
static int g_lc_finished; /* chains whose last thread is done */

static void start_detached(void *(*fn)(void *), void *arg) {
    pthread_attr_t attr;
    pthread_t th;
    if (pthread_attr_init(&attr) != 0 ||
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) != 0)
        die("pthread_attr failed");
    if (pthread_create(&th, &attr, fn, arg) != 0) die("pthread_create failed");
    pthread_attr_destroy(&attr);
}

static void *chain_thread(void *arg) {
    chain_t *c = arg;
    void **block = c->block;
    bench_rng_t rng = c->rng;
    for (size_t i = 0; i < (size_t)LC_ROUNDS * LC_BLOCKS; i++) {
        uint64_t r = bench_next(&rng);
        size_t s = (size_t)(r % LC_BLOCKS);
        size_t n = LC_MIN + (size_t)((r >> 32) % (LC_MAX - LC_MIN + 1));
        free(block[s]);
        block[s] = xmalloc(n);
    }
    c->rng = rng;
    if (--c->left > 0) {
        /* pthread_create orders this thread's writes before the successor's
         * reads: the array and the RNG need no other synchronisation. */
        start_detached(chain_thread, c);
        return NULL;
    }
    for (size_t s = 0; s < LC_BLOCKS; s++) free(c->block[s]);
    pthread_mutex_lock(&g_lc_lock);
    g_lc_finished++;
    pthread_cond_signal(&g_lc_cond);
    pthread_mutex_unlock(&g_lc_lock);
    return NULL;
}

/* ---- xmalloc ------------------------------------------------------------- */

typedef struct {
    size_t n;
    void *block[XM_BATCH];
} xm_batch_t;

static void *xm_producer(void *arg) {
    (void)arg;
    wait_go();
    for (size_t made = 0; made < g_ops;) {
        xm_batch_t *b = xmalloc(sizeof *b);
        size_t n = g_ops - made < XM_BATCH ? g_ops - made : XM_BATCH;
        for (size_t i = 0; i < n; i++) b->block[i] = xmalloc(XM_SIZE);
        b->n = n;
        while (ring_count(&g_ring[1]) >= XM_QUEUED || !ring_push(&g_ring[1], b))
            sched_yield();
        made += n;
    }
    return NULL;
}

static void *xm_consumer(void *arg) {
    (void)arg;
    wait_go();
    for (size_t got = 0; got < g_ops;) {
        xm_batch_t *b = ring_pop(&g_ring[1]);
        if (b == NULL) {
            sched_yield();
            continue;
        }
        for (size_t i = 0; i < b->n; i++) free(b->block[i]);
        got += b->n;
        free(b);
    }
    return NULL;
}

/* ---- mstress ------------------------------------------------------------- */

static void *g_ms_slots[2][MS_SLOTS]; /* survive from phase to phase */
static _Atomic(void *) g_ms_transfer[MS_TRANSFER];

typedef struct {
    _Alignas(64) void **slot;
    size_t steps;
    uint64_t seed;
    size_t mallocs; /* written once, at the end */
} ms_thread_t;

/* The block's size, in its first word, and its last byte, both checked
 * before it is freed (n >= 16, so they do not overlap): an allocator that
 * handed out overlapping blocks is caught here. */
static void *ms_alloc(size_t n) {
    unsigned char *p = malloc(n);
    if (p == NULL) die("out of memory");
    memset(p, (int)(n & 0xff), n);
    uint64_t w = (uint64_t)n ^ MS_COOKIE;
    memcpy(p, &w, sizeof w);
    p[n - 1] = (unsigned char)(n * 31);
    return p;
}

static void ms_free(void *v) {
    if (v == NULL) return;
    unsigned char *p = v;
    uint64_t w;
    memcpy(&w, p, sizeof w);
    uint64_t n = w ^ MS_COOKIE;
    if (n < 16 || n > MS_LARGE_MAX || p[n - 1] != (unsigned char)(n * 31))
        die("mstress: a block was overwritten");
    free(p);
}

static size_t ms_size(bench_rng_t *rng, uint64_t r) {
    size_t n = 16 + 8 * (size_t)((r >> 32) % 31); /* 16..256 */
    if (((r >> 40) & 31) == 0) n *= 16;              /* up to 4 KiB */
    if (((r >> 45) & 1023) == 0) n = bench_range(rng, MS_LARGE_MIN, MS_LARGE_MAX);
    return n;
}

static void *ms_thread(void *arg) {
    ms_thread_t *t = arg;
    void **slot = t->slot;
    bench_rng_t rng = {t->seed};
    size_t mallocs = 0;
    for (size_t i = 0; i < t->steps; i++) {
        uint64_t r = bench_next(&rng);
        unsigned a = (unsigned)(r % 100);
        size_t s = (size_t)((r >> 8) % MS_SLOTS);
        if (a < 10) {
            ms_free(slot[s]);
            slot[s] = NULL;
        } else if (a < 20) {
            size_t x = (size_t)((r >> 20) % MS_TRANSFER);
            slot[s] = atomic_exchange_explicit(&g_ms_transfer[x], slot[s],
                                               memory_order_acq_rel);
        } else {
            ms_free(slot[s]);
            slot[s] = ms_alloc(ms_size(&rng, r));
            mallocs++;
        }
    }
    for (size_t s = 0; s < MS_SLOTS; s++)
        if (s % 4 != 0) {
            ms_free(slot[s]);
            slot[s] = NULL;
        }
    t->mallocs = mallocs;
    return NULL;
}

/* ---- drivers ------------------------------------------------------------- */

/* Runs f0 and f1 as threads 0 and 1 from a common start line: the seconds
 * from the start to both joins. */
static double run_two(void *(*f0)(void *), void *(*f1)(void *)) {
    void *(*fn[2])(void *) = {f0, f1};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&th[i], NULL, fn[i], (void *)(intptr_t)i) != 0)
            die("pthread_create failed");
    /* Both threads finish their set-up before the clock starts. */
    while (atomic_load_explicit(&g_ready, memory_order_acquire) < 2)
        sched_yield();
    double t0 = bench_now();
    atomic_store_explicit(&g_go, 1, memory_order_release);
    for (int i = 0; i < 2; i++)
        if (pthread_join(th[i], NULL) != 0) die("pthread_join failed");
    return bench_now() - t0;
}

static double run_larson(size_t work, double *pairs) {
    g_ops = work;
    *pairs = 2.0 * (double)work;
    return run_two(larson_thread, larson_thread);
}

static double run_prodcons(size_t work, double *pairs) {
    bench_rng_t rng = {42};
    for (size_t i = 0; i < TABLE_SIZE; i++)
        g_pc_sizes[i] = bench_range(&rng, 16, 1024);
    g_ops = work;
    *pairs = (double)work;
    return run_two(producer_thread, consumer_thread);
}

static double run_larson_chain(size_t work, double *pairs) {
    if (work == 0) die("larson-chain needs at least one generation");
    for (int c = 0; c < 2; c++) {
        chain_t *ch = &g_chain[c];
        ch->rng.s = LC_SEED + (uint64_t)c * 0x9E3779B97F4A7C15ull;
        ch->left = work;
        ch->block = malloc(LC_BLOCKS * sizeof *ch->block);
        if (ch->block == NULL) die("out of memory");
        for (size_t s = 0; s < LC_BLOCKS; s++)
            ch->block[s] = xmalloc(bench_range(&ch->rng, LC_MIN, LC_MAX));
    }
    *pairs = 2.0 * (double)work * LC_ROUNDS * LC_BLOCKS;
    double t0 = bench_now();
    for (int c = 0; c < 2; c++) start_detached(chain_thread, &g_chain[c]);
    pthread_mutex_lock(&g_lc_lock);
    while (g_lc_finished < 2) pthread_cond_wait(&g_lc_cond, &g_lc_lock);
    pthread_mutex_unlock(&g_lc_lock);
    double t = bench_now() - t0;
    for (int c = 0; c < 2; c++) free(g_chain[c].block);
    return t;
}

static double run_xmalloc(size_t work, double *pairs) {
    g_ops = work;
    *pairs = (double)work + (double)((work + XM_BATCH - 1) / XM_BATCH);
    return run_two(xm_producer, xm_consumer);
}

static double run_mstress(size_t work, double *pairs) {
    size_t per_phase = work / MS_PHASES;
    size_t mallocs = 0;
    double t0 = bench_now();
    for (unsigned p = 0; p < MS_PHASES; p++) {
        ms_thread_t t[2];
        pthread_t th[2];
        for (unsigned i = 0; i < 2; i++) {
            /* Thread i works on the slots the other thread left last phase;
             * the busier thread alternates from phase to phase. */
            t[i].slot = g_ms_slots[(i + p) % 2];
            size_t busy = per_phase * 6 / 10;
            t[i].steps = i == p % 2 ? busy : per_phase - busy;
            t[i].seed = 0x5eed0000ull + p * 2 + i;
            t[i].mallocs = 0;
            if (pthread_create(&th[i], NULL, ms_thread, &t[i]) != 0)
                die("pthread_create failed");
        }
        for (unsigned i = 0; i < 2; i++) {
            if (pthread_join(th[i], NULL) != 0) die("pthread_join failed");
            mallocs += t[i].mallocs;
        }
    }
    for (unsigned i = 0; i < 2; i++)
        for (size_t s = 0; s < MS_SLOTS; s++) ms_free(g_ms_slots[i][s]);
    for (size_t x = 0; x < MS_TRANSFER; x++)
        ms_free(atomic_load_explicit(&g_ms_transfer[x], memory_order_relaxed));
    double t = bench_now() - t0;
    *pairs = (double)mallocs;
    return t;
}

static const struct {
    const char *name;
    double (*run)(size_t work, double *pairs);
} benches[] = {
    {"larson", run_larson},
    {"prodcons", run_prodcons},
    {"larson-chain", run_larson_chain},
    {"xmalloc", run_xmalloc},
    {"mstress", run_mstress},
};

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: threads larson|prodcons|larson-chain|xmalloc|"
                        "mstress WORK\n");
        return 2;
    }
    size_t work = strtoull(argv[2], NULL, 10);
    for (size_t b = 0; b < sizeof benches / sizeof benches[0]; b++) {
        if (strcmp(argv[1], benches[b].name) != 0) continue;
        double pairs;
        double t = benches[b].run(work, &pairs);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("%s %.0f %ld\n", argv[1], pairs / t, ru.ru_maxrss);
        return 0;
    }
    fprintf(stderr, "threads: unknown benchmark '%s'\n", argv[1]);
    return 2;
}
