/*
 * tsan_override.c - the drop-in malloc's own code under ThreadSanitizer.
 *
 * A TSan runtime intercepts malloc and pthread_create itself, so
 * libdetheap.so cannot be preloaded under it (CMakeLists.txt here says
 * what was tried).  This program links detheap_ov_renamed instead: the
 * library objects plus src/override/malloc.c and pthread.c compiled under
 * the names dhov_malloc ... dhov_pthread_create (tests/ov_renamed.h).  So
 * the lean fast paths of malloc, free, calloc and realloc, the general
 * paths under them (process.c), and the pthread_create/join/detach
 * interposers with the thread layer (thread.c) all run instrumented, and
 * every thread is created through dhov_pthread_create, which calls TSan's
 * pthread_create under it.  The blocks are tagged; whoever frees a block
 * checks its tag.  The tests, in this order:
 *
 *   remote      the cross-thread free mode of DETHEAP_REMOTE_FREE (keep or
 *               owner, from the environment): a 16 KiB block freed by a
 *               fresh consumer is reused by the consumer (keep) or by its
 *               producer (owner), as docs/DESIGN.md says
 *   cycles      main creates A, A creates B (joined by join, tryjoin or
 *               timedjoin), main joins A: from the second round on A and
 *               B run on the same two heaps every round
 *   prodcons    a producer and two consumers through a mutex+condvar ring;
 *               the consumers free, and sometimes resize, the producer's
 *               blocks, class and large, and allocate their own
 *   chain       larson-like: two chains of detached threads, each thread
 *               creating its successor and handing it its live blocks, far
 *               deeper than the ordered map (later generations are
 *               unordered and reuse ended threads' heaps); some links are
 *               created joinable and detached with dhov_pthread_detach
 *
 * That the code under test is detheap's: every block lies in a detheap
 * heap (dh_heap_of) with a usable size at least its request, threads get
 * heaps of their own as the interposer decides, and dh_process_stats
 * counts every allocation and ends each test with the live count it
 * started with.  Run with TSAN_OPTIONS=halt_on_error=1:exitcode=66, so a
 * report fails the test.
 */
#include "detheap.h"
#include "ov_renamed.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define RING 64 /* the producer/consumer's ring */
#include "tsan_common.h"

typedef struct worker {
    uint64_t rng;
    long allocs; /* allocations made (for the statistics check) */
    int bad;     /* anything that went wrong, counted where it happened */
} worker_t;

static uint64_t rnd(worker_t *w) { return rnd_next(&w->rng); }

/* Mostly the lean classes (<= 1 KiB), some other classes, a few large. */
static size_t pick_size(worker_t *w) {
    uint64_t r = rnd(w) % 100;
    if (r < 70) return 1 + rnd(w) % 1024;
    if (r < 92) return 1025 + rnd(w) % 64511;
    return 65537 + rnd(w) % 200000;
}

/* p is a block of n bytes of the drop-in's heap, aligned to align. */
static bool ours(const void *p, size_t n, size_t align) {
    return p != NULL && dh_heap_of(p) != NULL &&
           ((uintptr_t)p & (align - 1)) == 0 &&
           dhov_malloc_usable_size((void *)p) >= n;
}

/* A new block of n bytes through one of the drop-in's entry points. */
static unsigned char *alloc_any(worker_t *w, size_t n) {
    unsigned char *p = NULL;
    size_t align = 16;
    switch (rnd(w) % 6) {
    case 0:
    case 1:
        p = dhov_malloc(n);
        break;
    case 2:
        p = dhov_calloc(1, n);
        if (p != NULL && (p[0] != 0 || p[n - 1] != 0)) w->bad++;
        break;
    case 3:
        p = dhov_realloc(NULL, n);
        break;
    case 4:
        align = (size_t)16 << (rnd(w) % 9);
        p = dhov_aligned_alloc(align, n);
        break;
    default: {
        void *q = NULL;
        align = (size_t)8 << (rnd(w) % 10);
        if (dhov_posix_memalign(&q, align, n) != 0) w->bad++;
        p = q;
    }
    }
    if (!ours(p, n, align)) w->bad++;
    w->allocs++;
    return p;
}

static void new_block(worker_t *w, blk_t *b, size_t n) {
    b->n = n;
    b->p = alloc_any(w, n);
    if (b->p != NULL) mark(b, (unsigned char)rnd(w));
}

static void give_back(worker_t *w, blk_t *b) {
    if (b->p == NULL) return;
    if (!marked(b)) w->bad++;
    dhov_free(b->p);
    b->p = NULL;
}

/* Resize b to n through dhov_realloc: the kept prefix must move along. */
static void resize(worker_t *w, blk_t *b, size_t n) {
    size_t kept = b->n < n ? b->n : n;
    if (!marked(b)) w->bad++;
    unsigned char *q = dhov_realloc(b->p, n);
    if (!ours(q, n, 16)) {
        w->bad++;
        return;
    }
    for (size_t k = 0; k < (kept < 16 ? kept : 16); k++)
        if (q[k] != b->tag) {
            w->bad++;
            break;
        }
    b->p = q;
    b->n = n;
    mark(b, b->tag);
}

/* ops random operations on a set of `live` own blocks, then all freed. */
static void churn(worker_t *w, blk_t *set, int live, long ops) {
    for (long i = 0; i < ops; i++) {
        blk_t *b = &set[rnd(w) % (uint64_t)live];
        if (b->p == NULL)
            new_block(w, b, pick_size(w));
        else if (rnd(w) % 3 != 0)
            give_back(w, b);
        else
            resize(w, b, pick_size(w));
    }
    for (int i = 0; i < live; i++) give_back(w, &set[i]);
}

static bool owner_mode; /* DETHEAP_REMOTE_FREE=owner */

typedef struct {
    uint64_t allocs, live;
} counts_t;

static counts_t counts(void) {
    dh_stats_t st;
    assert_true(dh_process_stats(&st, sizeof st));
    return (counts_t){st.alloc_count, st.live_count};
}

/* Every test: the live count is back where it was, and the heap counted
 * at least the allocations the test made (at least: a realloc that moves
 * a block counts one more). */
static void check_counts(counts_t before, long allocs) {
    counts_t after = counts();
    assert_int_equal(after.live, before.live);
    assert_true(after.allocs >= before.allocs + (uint64_t)allocs);
    /* in owner mode, blocks waiting in an inbox count as listed */
    assert_int_equal(dh_process_check(), DH_CHECK_OK);
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg) {
    assert_int_equal(dhov_pthread_create(t, NULL, fn, arg), 0);
}

static void finish(pthread_t t) { assert_int_equal(dhov_pthread_join(t, NULL), 0); }

/* ---- remote: the cross-thread free mode ---------------------------------- */

/* A 16 KiB-class block: no other test before this one uses the class in
 * the two fresh threads, so their 16 KiB lists are empty. */
#define PROBE 12000

static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t probe_cond = PTHREAD_COND_INITIALIZER;
static int probe_step;        /* under probe_lock */
static void *probe_block;     /* the producer's block, then the consumer's */
static void *probe_producer_next;

static void probe_wait(int step) {
    pthread_mutex_lock(&probe_lock);
    while (probe_step < step) pthread_cond_wait(&probe_cond, &probe_lock);
    pthread_mutex_unlock(&probe_lock);
}

static void probe_advance(void) {
    pthread_mutex_lock(&probe_lock);
    probe_step++;
    pthread_cond_broadcast(&probe_cond);
    pthread_mutex_unlock(&probe_lock);
}

static void *probe_producer(void *arg) {
    worker_t *w = arg;
    probe_block = dhov_malloc(PROBE);
    if (!ours(probe_block, PROBE, 16)) w->bad++;
    probe_advance(); /* 1: the consumer frees it, allocates its own */
    probe_wait(2);
    probe_producer_next = dhov_malloc(PROBE);
    if (!ours(probe_producer_next, PROBE, 16)) w->bad++;
    return NULL;
}

static void *probe_consumer(void *arg) {
    worker_t *w = arg;
    probe_wait(1);
    void *given = probe_block;
    dhov_free(given);
    probe_block = dhov_malloc(PROBE);
    if (!ours(probe_block, PROBE, 16)) w->bad++;
    probe_advance(); /* 2 */
    return given;
}

static void test_remote(void **state) {
    (void)state;
    counts_t before = counts();
    worker_t p = {.rng = 3}, c = {.rng = 4};
    pthread_t pt, ct;
    start(&pt, probe_producer, &p);
    start(&ct, probe_consumer, &c);
    void *given;
    finish(pt);
    assert_int_equal(dhov_pthread_join(ct, &given), 0);
    assert_int_equal(p.bad + c.bad, 0);
    /* two fresh threads, two heaps of their own, neither main's */
    void *mine = dhov_malloc(64);
    assert_true(ours(mine, 64, 16));
    assert_ptr_not_equal(dh_heap_of(given), dh_heap_of(mine));
    if (owner_mode) { /* back to the producer, which reuses it */
        assert_ptr_equal(probe_producer_next, given);
        assert_ptr_not_equal(probe_block, given);
    } else { /* kept by the consumer, which reuses it */
        assert_ptr_equal(probe_block, given);
        assert_ptr_not_equal(probe_producer_next, given);
    }
    dhov_free(mine);
    dhov_free(probe_block);
    dhov_free(probe_producer_next);
    check_counts(before, 4);
}

/* ---- prodcons: a producer, two consumers ------------------------------- */

#define HANDOVERS 20000
#define CONSUMERS 2

static void *producer(void *arg) {
    worker_t *w = arg;
    blk_t own[8] = {{0}};
    for (long i = 0; i < HANDOVERS; i++) {
        blk_t b;
        /* one in 16 large: freed (or returned) across threads too */
        new_block(w, &b, i % 16 == 15 ? 65537 + rnd(w) % 100000
                                      : 1 + rnd(w) % 1500);
        if (b.p == NULL) break;
        put(b);
        blk_t *o = &own[rnd(w) % 8];
        if (o->p != NULL)
            give_back(w, o);
        else
            new_block(w, o, pick_size(w));
    }
    for (int i = 0; i < CONSUMERS; i++) put((blk_t){0});
    for (int i = 0; i < 8; i++) give_back(w, &own[i]);
    return NULL;
}

static void *consumer(void *arg) {
    worker_t *w = arg;
    blk_t own[8] = {{0}};
    for (;;) {
        blk_t b = take();
        if (b.p == NULL) break;
        if (rnd(w) % 8 == 0) resize(w, &b, 1 + rnd(w) % 70000);
        give_back(w, &b);
        blk_t *o = &own[rnd(w) % 8];
        if (o->p != NULL)
            give_back(w, o);
        else
            new_block(w, o, 1 + rnd(w) % 1500);
    }
    for (int i = 0; i < 8; i++) give_back(w, &own[i]);
    return NULL;
}

static void test_prodcons(void **state) {
    (void)state;
    counts_t before = counts();
    worker_t p = {.rng = 5}, c[CONSUMERS];
    pthread_t pt, ct[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++) {
        c[i] = (worker_t){.rng = 6u + (uint64_t)i};
        start(&ct[i], consumer, &c[i]);
    }
    start(&pt, producer, &p);
    finish(pt);
    long allocs = p.allocs;
    for (int i = 0; i < CONSUMERS; i++) {
        finish(ct[i]);
        assert_int_equal(c[i].bad, 0);
        allocs += c[i].allocs;
    }
    assert_int_equal(p.bad, 0);
    check_counts(before, allocs);
}

/* ---- chain: larson-like, detached successors --------------------------- */

#define CHAINS 2
#define GENS 60 /* the ordered map's chains end at depth 27 */
#define CHAIN_LIVE 200
#define CHAIN_OPS 1000

typedef struct baton {
    int chain;
    long gen;
    blk_t *blocks; /* CHAIN_LIVE of them, allocated by earlier generations */
    worker_t w;
} baton_t;

static pthread_mutex_t chain_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t chain_cond = PTHREAD_COND_INITIALIZER;
static int chains_done;                /* under chain_lock */
static atomic_long chain_bad, chain_allocs;
static pthread_attr_t detached_attr;

/* The statistics may be read only once no chain thread runs detheap's code
 * any more, not even its exit path (which frees the thread's record in
 * the system heap).  So each thread counts itself gone in a key
 * destructor made after the thread layer's (keys' destructors run in the
 * order the keys were made), in the same round as the thread layer's:
 * the last one, or under TSan the first (src/thread.c says why). */
#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_BUILD 1
#endif
#endif

static pthread_key_t gone_key;
static int links_gone; /* under chain_lock */

static void on_link_gone(void *arg) {
#ifndef TSAN_BUILD
    uintptr_t round = (uintptr_t)arg;
    if (round < PTHREAD_DESTRUCTOR_ITERATIONS) {
        pthread_setspecific(gone_key, (void *)(round + 1));
        return;
    }
#else
    (void)arg;
#endif
    pthread_mutex_lock(&chain_lock);
    links_gone++;
    pthread_cond_signal(&chain_cond);
    pthread_mutex_unlock(&chain_lock);
}

static void *chain_link(void *arg) {
    baton_t *b = arg;
    worker_t *w = &b->w;
    pthread_setspecific(gone_key, (void *)1);
    if (b->blocks == NULL) { /* the first generation: fill the set */
        b->blocks = dhov_calloc(CHAIN_LIVE, sizeof *b->blocks);
        w->allocs++;
        if (b->blocks == NULL) {
            atomic_fetch_add(&chain_bad, 1);
            return NULL;
        }
        for (int i = 0; i < CHAIN_LIVE; i++)
            new_block(w, &b->blocks[i], 8 + rnd(w) % 1000);
    }
    for (int i = 0; i < CHAIN_OPS; i++) { /* replace: free a predecessor's */
        blk_t *k = &b->blocks[rnd(w) % CHAIN_LIVE];
        give_back(w, k);
        new_block(w, k, 8 + rnd(w) % (rnd(w) % 16 ? 1000 : 100000));
    }
    if (++b->gen < GENS) { /* hand everything to the successor, and go */
        pthread_t t;
        bool joinable = b->gen % 5 == 0; /* then detached by its creator */
        int rc = dhov_pthread_create(&t, joinable ? NULL : &detached_attr,
                                     chain_link, b);
        if (rc == 0 && joinable) rc = dhov_pthread_detach(t);
        if (rc == 0) return NULL; /* b is the successor's now */
        atomic_fetch_add(&chain_bad, 1);
    }
    for (int i = 0; i < CHAIN_LIVE; i++) give_back(w, &b->blocks[i]);
    dhov_free(b->blocks);
    atomic_fetch_add(&chain_bad, w->bad);
    atomic_fetch_add(&chain_allocs, w->allocs);
    pthread_mutex_lock(&chain_lock);
    chains_done++;
    pthread_cond_signal(&chain_cond);
    pthread_mutex_unlock(&chain_lock);
    return NULL;
}

static void test_chain(void **state) {
    (void)state;
    counts_t before = counts(); /* the thread layer's keys exist by now */
    assert_int_equal(pthread_key_create(&gone_key, on_link_gone), 0);
    baton_t batons[CHAINS];
    pthread_attr_init(&detached_attr);
    pthread_attr_setdetachstate(&detached_attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < CHAINS; i++) {
        batons[i] = (baton_t){.chain = i, .w = {.rng = 100u + (uint64_t)i}};
        pthread_t t;
        assert_int_equal(
            dhov_pthread_create(&t, &detached_attr, chain_link, &batons[i]), 0);
    }
    pthread_mutex_lock(&chain_lock);
    while (chains_done < CHAINS || links_gone < CHAINS * GENS)
        pthread_cond_wait(&chain_cond, &chain_lock);
    pthread_mutex_unlock(&chain_lock);
    pthread_key_delete(gone_key);
    pthread_attr_destroy(&detached_attr);
    assert_int_equal(atomic_load(&chain_bad), 0);
    check_counts(before, atomic_load(&chain_allocs));
}

/* ---- cycles: create/join, nested ------------------------------------------- */

#define ROUNDS 100

typedef struct cycle {
    worker_t w, inner_w;
    int round;
    dh_heap_t *heap, *inner_heap; /* where A and B allocated */
} cycle_t;

static void *cycle_inner(void *arg) {
    cycle_t *c = arg;
    blk_t set[16] = {{0}};
    void *first = dhov_malloc(32);
    c->inner_heap = dh_heap_of(first);
    dhov_free(first);
    churn(&c->inner_w, set, 16, 60);
    return c;
}

static void *cycle_outer(void *arg) {
    cycle_t *c = arg;
    blk_t set[16] = {{0}};
    void *first = dhov_malloc(32);
    c->heap = dh_heap_of(first);
    dhov_free(first);
    churn(&c->w, set, 16, 30);
    pthread_t t;
    if (dhov_pthread_create(&t, NULL, cycle_inner, c) != 0) {
        c->w.bad++;
        return NULL;
    }
    churn(&c->w, set, 16, 30);
    void *ret = NULL;
    int rc;
    switch (c->round % 3) {
    case 0:
        rc = dhov_pthread_join(t, &ret);
        break;
    case 1:
        while ((rc = dhov_pthread_tryjoin_np(t, &ret)) == EBUSY)
            sched_yield();
        break;
    default: {
        struct timespec at;
        do {
            clock_gettime(CLOCK_REALTIME, &at);
            at.tv_nsec += 1000000;
            if (at.tv_nsec >= 1000000000) {
                at.tv_sec++;
                at.tv_nsec -= 1000000000;
            }
        } while ((rc = dhov_pthread_timedjoin_np(t, &ret, &at)) == ETIMEDOUT);
    }
    }
    if (rc != 0 || ret != c) c->w.bad++;
    churn(&c->w, set, 16, 30);
    return NULL;
}

static void test_cycles(void **state) {
    (void)state;
    counts_t before = counts();
    long allocs = 0;
    dh_heap_t *heap = NULL, *inner_heap = NULL;
    for (int r = 0; r < ROUNDS; r++) {
        cycle_t c = {.w = {.rng = 7u + (uint64_t)r},
                     .inner_w = {.rng = 1000u + (uint64_t)r}, .round = r};
        pthread_t t;
        start(&t, cycle_outer, &c);
        finish(t);
        assert_int_equal(c.w.bad + c.inner_w.bad, 0);
        assert_non_null(c.heap);
        assert_non_null(c.inner_heap);
        assert_ptr_not_equal(c.heap, c.inner_heap);
        if (r > 0) { /* the joined heaps, handed on: the same two */
            assert_ptr_equal(c.heap, heap);
            assert_ptr_equal(c.inner_heap, inner_heap);
        }
        heap = c.heap;
        inner_heap = c.inner_heap;
        allocs += c.w.allocs + c.inner_w.allocs + 2;
    }
    check_counts(before, allocs);
}

int main(void) {
    const char *mode = getenv("DETHEAP_REMOTE_FREE");
    owner_mode = mode != NULL && strcmp(mode, "owner") == 0;
    const struct CMUnitTest tests[] = {
        /* first: its two threads must have fresh heaps */
        cmocka_unit_test(test_remote),
        /* before any thread holds another heap's blocks: its threads'
         * first malloc(32) then comes from their own heap */
        cmocka_unit_test(test_cycles),
        cmocka_unit_test(test_prodcons),
        cmocka_unit_test(test_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
