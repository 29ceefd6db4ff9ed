/*
 * tsan_heap.c - the process heap's threading patterns, for
 * ThreadSanitizer.  TSan replaces malloc, so the library cannot be
 * preloaded under it; this program calls the process heap through its dh_
 * names (dh_malloc, dh_calloc, dh_realloc, dh_aligned_alloc, dh_free) with
 * the static library linked in, so that the per-thread heaps, the
 * pthread_create/join wrappers and both cross-thread free modes
 * (DETHEAP_REMOTE_FREE, read from the environment) run under TSan's eye:
 *
 *   racing      8 threads released by a barrier, each churning its own
 *               blocks of 1..200000 bytes
 *   tree        2 threads that each create 3 children at the same moment
 *   handover    producer -> consumer through a mutex+condvar ring, blocks
 *               up to 200000 bytes (large ones > 64 KiB too), some resized
 *               by the consumer before it frees them; the consumer also
 *               allocates its own, and the producer keeps allocating, so
 *               blocks returned to its heap (owner mode) are reused
 *   rounds      create 4, join them, create 4 more on the joined heaps
 *
 * Every block carries a tag in its first and last bytes, checked by
 * whoever frees it; a block handed to two threads at once, or written by
 * the allocator while live, is caught.  Each test ends with every block
 * freed, and checks that the process statistics agree (live count back to
 * where it was).  Addresses are not compared: within one process, a second
 * repetition runs on heaps the first one left in another state.
 */
#include "detheap.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define RACERS 8
#define LIVE 64
#define RING 32
#define HANDOVERS 20000

#include "tsan_common.h"

typedef struct worker {
    uint64_t rng;
    long ops;
    int bad;
} worker_t;

static uint64_t rnd(worker_t *w) { return rnd_next(&w->rng); }

static size_t pick_size(worker_t *w) {
    uint64_t r = rnd(w) % 100;
    if (r < 60) return 1 + rnd(w) % 256;
    if (r < 85) return 257 + rnd(w) % 8000;
    if (r < 95) return 8257 + rnd(w) % 57000;
    return 65537 + rnd(w) % 134464; /* up to 200000 */
}

static void *alloc_any(worker_t *w, size_t n) {
    unsigned char *p;
    switch (rnd(w) % 4) {
    case 0:
        p = dh_malloc(n);
        break;
    case 1:
        p = dh_calloc(1, n);
        if (p != NULL && (p[0] != 0 || p[n - 1] != 0)) w->bad++;
        break;
    case 2: {
        size_t align = (size_t)16 << (rnd(w) % 9);
        p = dh_aligned_alloc(align, n);
        if (((uintptr_t)p & (align - 1)) != 0) w->bad++;
        break;
    }
    default:
        p = dh_realloc(NULL, n);
    }
    if (p == NULL) w->bad++;
    return p;
}

static void give_back(worker_t *w, blk_t *b) {
    if (!marked(b)) w->bad++;
    dh_free(b->p);
    b->p = NULL;
}

static void churn(worker_t *w, long ops) {
    blk_t live[LIVE] = {{0}};
    for (long i = 0; i < ops; i++) {
        blk_t *b = &live[rnd(w) % LIVE];
        if (b->p == NULL) {
            b->n = pick_size(w);
            b->p = alloc_any(w, b->n);
            if (b->p == NULL) return;
            mark(b, (unsigned char)rnd(w));
        } else if (rnd(w) % 2) {
            give_back(w, b);
        } else {
            size_t n = pick_size(w), kept = b->n < n ? b->n : n;
            if (!marked(b)) w->bad++;
            unsigned char *q = dh_realloc(b->p, n);
            if (q == NULL) {
                w->bad++;
                continue;
            }
            for (size_t k = 0; k < (kept < 16 ? kept : 16); k++)
                if (q[k] != b->tag) {
                    w->bad++;
                    break;
                }
            b->p = q;
            b->n = n;
            mark(b, (unsigned char)rnd(w));
        }
    }
    for (int i = 0; i < LIVE; i++)
        if (live[i].p != NULL) give_back(w, &live[i]);
}

static uint64_t live_blocks(void) {
    dh_stats_t st;
    assert_true(dh_process_stats(&st, sizeof st));
    return st.live_count;
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg) {
    assert_int_equal(pthread_create(t, NULL, fn, arg), 0);
}

/* ---- racing ------------------------------------------------------------- */

static pthread_barrier_t race_barrier;

static void *racer(void *arg) {
    worker_t *w = arg;
    pthread_barrier_wait(&race_barrier);
    churn(w, 4000);
    return NULL;
}

static void test_racing(void **state) {
    (void)state;
    uint64_t before = live_blocks();
    worker_t w[RACERS];
    pthread_t t[RACERS];
    pthread_barrier_init(&race_barrier, NULL, RACERS);
    for (int i = 0; i < RACERS; i++) {
        w[i] = (worker_t){.rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1)};
        start(&t[i], racer, &w[i]);
    }
    for (int i = 0; i < RACERS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].bad, 0);
    }
    pthread_barrier_destroy(&race_barrier);
    assert_int_equal(live_blocks(), before);
}

/* ---- threads creating threads at the same time ------------------------- */

static pthread_barrier_t tree_barrier;

typedef struct tree_arg {
    worker_t self;
    worker_t kids[3];
} tree_arg_t;

static void *tree_child(void *arg) {
    churn(arg, 1500);
    return NULL;
}

static void *tree(void *arg) {
    tree_arg_t *a = arg;
    pthread_t t[3];
    churn(&a->self, 300);
    pthread_barrier_wait(&tree_barrier);
    for (int i = 0; i < 3; i++)
        if (pthread_create(&t[i], NULL, tree_child, &a->kids[i]) != 0) {
            a->self.bad++;
            return NULL;
        }
    churn(&a->self, 300);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    churn(&a->self, 300);
    return NULL;
}

static void test_tree(void **state) {
    (void)state;
    uint64_t before = live_blocks();
    tree_arg_t a[2];
    pthread_t t[2];
    pthread_barrier_init(&tree_barrier, NULL, 2);
    for (int i = 0; i < 2; i++) {
        a[i].self = (worker_t){.rng = 77u + (uint64_t)i};
        for (int k = 0; k < 3; k++)
            a[i].kids[k] = (worker_t){.rng = 1000u + (uint64_t)(i * 3 + k)};
        start(&t[i], tree, &a[i]);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(a[i].self.bad, 0);
        for (int k = 0; k < 3; k++) assert_int_equal(a[i].kids[k].bad, 0);
    }
    pthread_barrier_destroy(&tree_barrier);
    assert_int_equal(live_blocks(), before);
}

/* ---- handover: producer -> consumer --------------------------------------- */

static void *producer(void *arg) {
    worker_t *w = arg;
    blk_t own[8] = {{0}};
    for (long i = 0; i < HANDOVERS; i++) {
        /* one in 20 above 64 KiB: large blocks freed by the consumer */
        blk_t b = {.n = i % 20 == 19 ? 65537 + rnd(w) % 134464
                                     : 1 + rnd(w) % 2000};
        b.p = alloc_any(w, b.n);
        if (b.p == NULL) break;
        mark(&b, (unsigned char)rnd(w));
        put(b);
        blk_t *o = &own[rnd(w) % 8];
        if (o->p != NULL) {
            give_back(w, o);
        } else {
            o->n = pick_size(w);
            o->p = alloc_any(w, o->n);
            if (o->p != NULL) mark(o, (unsigned char)rnd(w));
        }
    }
    put((blk_t){0});
    for (int i = 0; i < 8; i++)
        if (own[i].p != NULL) give_back(w, &own[i]);
    return NULL;
}

static void *consumer(void *arg) {
    worker_t *w = arg;
    blk_t own[8] = {{0}};
    for (;;) {
        blk_t b = take();
        if (b.p == NULL) break;
        if (!marked(&b)) w->bad++;
        if (rnd(w) % 8 == 0) { /* resize another heap's block, then free */
            size_t n = 1 + rnd(w) % 100000, kept = b.n < n ? b.n : n;
            unsigned char *q = dh_realloc(b.p, n);
            if (q == NULL) {
                w->bad++;
                continue;
            }
            for (size_t k = 0; k < (kept < 16 ? kept : 16); k++)
                if (q[k] != b.tag) { /* the prefix moved with the block */
                    w->bad++;
                    break;
                }
            b.p = q;
            b.n = n;
            mark(&b, b.tag);
        }
        give_back(w, &b);
        blk_t *o = &own[rnd(w) % 8];
        if (o->p != NULL) {
            give_back(w, o);
        } else {
            o->n = 1 + rnd(w) % 2000;
            o->p = alloc_any(w, o->n);
            if (o->p != NULL) mark(o, (unsigned char)rnd(w));
        }
    }
    for (int i = 0; i < 8; i++)
        if (own[i].p != NULL) give_back(w, &own[i]);
    return NULL;
}

static void test_handover(void **state) {
    (void)state;
    uint64_t before = live_blocks();
    worker_t p = {.rng = 5}, c = {.rng = 6};
    pthread_t pt, ct;
    start(&ct, consumer, &c);
    start(&pt, producer, &p);
    assert_int_equal(pthread_join(pt, NULL), 0);
    assert_int_equal(pthread_join(ct, NULL), 0);
    assert_int_equal(p.bad, 0);
    assert_int_equal(c.bad, 0);
    assert_int_equal(live_blocks(), before);
}

/* ---- rounds: joined heaps handed to new threads ------------------------ */

static void *round_worker(void *arg) {
    churn(arg, 1000);
    return NULL;
}

static void test_rounds(void **state) {
    (void)state;
    uint64_t before = live_blocks();
    for (int r = 0; r < 5; r++) {
        worker_t w[4];
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
            w[i] = (worker_t){.rng = 31u * (uint64_t)(r * 4 + i) + 7u};
            start(&t[i], round_worker, &w[i]);
        }
        for (int i = 0; i < 4; i++) {
            assert_int_equal(pthread_join(t[i], NULL), 0);
            assert_int_equal(w[i].bad, 0);
        }
    }
    assert_int_equal(live_blocks(), before);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_racing),
        cmocka_unit_test(test_tree),
        cmocka_unit_test(test_handover),
        cmocka_unit_test(test_rounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
