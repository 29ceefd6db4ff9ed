/*
 * test_threads.c - two threads hammering the process heap through the
 * dh_malloc family (dh_malloc, dh_calloc, dh_realloc, dh_free), with blocks
 * passed between them through a shared array under a mutex, so that many
 * frees happen on another thread than the allocating one.  Built against
 * the static library; run normally and under ThreadSanitizer (label
 * `threads`), which is why it uses the dh_ names: TSan owns malloc.
 *
 * Each block carries a signature (its owner's tag and its size) written by
 * the allocating thread and checked by whoever frees it, so a block handed
 * to two owners at once, or overwritten by the allocator, is caught.
 *
 * Also, step by step, what a cross-thread free does with the default
 * DETHEAP_REMOTE_FREE=keep: the block joins the freeing thread's foreign
 * list, which that thread's allocations of the class take, newest first,
 * before carving anything, and the block keeps its contents but its link.
 */
#include "detheap.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define SHARED 256
#define ROUNDS 200000

typedef struct header {
    uint64_t tag;
    uint64_t size;
} header_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *shared[SHARED];
static int failures;

static void stamp(void *p, uint64_t tag, size_t n) {
    header_t h = {tag, n};
    memcpy(p, &h, sizeof h);
    memset((char *)p + sizeof h, (int)(tag & 0xff), n - sizeof h);
}

static bool intact(const void *p) {
    header_t h;
    memcpy(&h, p, sizeof h);
    if (h.size < sizeof h || h.size > (1u << 20)) return false;
    const unsigned char *b = (const unsigned char *)p + sizeof h;
    for (size_t i = 0; i < h.size - sizeof h; i += 61)
        if (b[i] != (unsigned char)(h.tag & 0xff)) return false;
    return true;
}

static void *worker(void *arg) {
    uint64_t tag = (uint64_t)(uintptr_t)arg;
    uint32_t x = (uint32_t)tag * 2654435761u + 1;
    void *mine[32] = {0};
    int bad = 0;
    for (int r = 0; r < ROUNDS; r++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        size_t n = sizeof(header_t) + x % 3000 + ((x >> 20) % 97 == 0 ? 100000 : 0);
        unsigned i = (x >> 8) % 32;
        if (mine[i] != NULL && !intact(mine[i])) bad++;
        switch ((x >> 16) % 4) {
        case 0: /* free and allocate */
            dh_free(mine[i]);
            mine[i] = (x & 1) ? dh_malloc(n) : dh_calloc(1, n);
            break;
        case 1: /* resize, keeping the signature's place */
            mine[i] = dh_realloc(mine[i], n);
            break;
        default: { /* swap with the shared array: cross-thread frees */
            void *p = dh_malloc(n);
            if (p) stamp(p, tag, n);
            pthread_mutex_lock(&lock);
            void *old = shared[(x >> 4) % SHARED];
            shared[(x >> 4) % SHARED] = p;
            pthread_mutex_unlock(&lock);
            if (old != NULL && !intact(old)) bad++;
            dh_free(old);
            continue;
        }
        }
        if (mine[i] == NULL) bad++;
        else stamp(mine[i], tag, n);
    }
    for (int i = 0; i < 32; i++) dh_free(mine[i]);
    pthread_mutex_lock(&lock);
    failures += bad;
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void test_two_threads(void **state) {
    (void)state;
    dh_stats_t before, after;
    assert_true(dh_process_stats(&before, sizeof before));
    pthread_t t[2];
    for (uintptr_t i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)(i + 1)),
                         0);
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(failures, 0);
    for (int i = 0; i < SHARED; i++) {
        if (shared[i]) assert_true(intact(shared[i]));
        dh_free(shared[i]);
        shared[i] = NULL;
    }
    assert_true(dh_process_stats(&after, sizeof after));
    /* every block the threads made is gone again, none rejected */
    assert_int_equal(after.live_count, before.live_count);
    assert_int_equal(after.rejected_frees, 0);
    assert_true(after.alloc_count >= before.alloc_count + ROUNDS);
}

/* Runs first, so both heaps are fresh: the main thread's holds no other
 * heap's blocks, and the taker gets a heap of its own. */
enum { HANDED = 64, SIZE = 6000 };
static void *handed[HANDED];

/* cmocka's asserts belong to the main thread: the taker records the line of
 * its first failed check instead. */
static int taker_failed_at;
#define CHECK(c)                                               \
    do {                                                       \
        if (!(c) && taker_failed_at == 0) taker_failed_at = __LINE__; \
    } while (0)

/* Frees the main thread's blocks, takes them back by allocating, and
 * checks each step. */
static void *taker(void *arg) {
    (void)arg;
    dh_heap_t *other = dh_heap_of(handed[0]);
    void *own = dh_malloc(8); /* this thread's heap */
    dh_heap_t *mine = dh_heap_of(own);
    CHECK(mine != other);
    dh_stats_t s0, s1;
    CHECK(dh_heap_stats(mine, &s0, sizeof s0));
    for (int i = 0; i < HANDED; i++) dh_free(handed[i]);
    CHECK(dh_heap_stats(mine, &s1, sizeof s1));
    CHECK((s1.free_count - s0.free_count) == (HANDED)); /* counted here */
    for (int i = HANDED - 1; i >= 0; i--) { /* LIFO, before any carving */
        unsigned char *p = dh_malloc(SIZE);
        CHECK((void *)(p) == (void *)(handed[i]));
        uint64_t link;
        memcpy(&link, p, sizeof link);
        CHECK((link) == (0)); /* the free-list link is not left */
        for (int k = 8; k < SIZE; k += 7)
            CHECK((p[k]) == ((unsigned char)i));
    }
    void *fresh = dh_malloc(SIZE); /* the foreign list is empty now */
    CHECK((void *)(dh_heap_of(fresh)) == (void *)(mine));
    CHECK((dh_heap_check(mine)) == (DH_CHECK_OK));
    for (int i = 0; i < HANDED; i++) dh_free(handed[i]); /* foreign again */
    dh_free(fresh); /* an own block: the main list, taken first */
    CHECK((void *)(dh_malloc(SIZE)) == fresh);
    for (int i = HANDED - 1; i >= 0; i--)
        CHECK((void *)(dh_malloc(SIZE)) == (void *)(handed[i]));
    dh_free(fresh);
    dh_free(own);
    return NULL;
}

static void test_cross_thread_free_keeps_lifo(void **state) {
    (void)state;
    for (int i = 0; i < HANDED; i++) {
        handed[i] = dh_malloc(SIZE);
        assert_non_null(handed[i]);
        memset(handed[i], i, SIZE);
    }
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, taker, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(taker_failed_at, 0);
    /* the taker holds them again; give them back to where they came from */
    for (int i = 0; i < HANDED; i++) dh_free(handed[i]);
    assert_int_equal(dh_heap_check(dh_heap_of(handed[0])), DH_CHECK_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        /* first: on heaps that no earlier thread has used */
        cmocka_unit_test(test_cross_thread_free_keeps_lifo),
        cmocka_unit_test(test_two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
