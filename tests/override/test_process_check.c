/*
 * test_process_check.c - dh_heap_check and dh_heap_stats on the heap behind
 * malloc, reached with dh_heap_of from a malloc'd pointer.  Run with the
 * library preloaded.  The public API promises that dh_heap_check validates
 * every invariant of any heap and that a clean program's heap passes; the
 * stats of the heap must agree with what a walk of it finds (I9) after any
 * mix of malloc and free.
 */
#include "detheap.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

typedef dh_heap_t *(*heap_of_fn)(const void *);
typedef dh_check_t (*check_fn)(const dh_heap_t *);
typedef bool (*stats_fn)(const dh_heap_t *, dh_stats_t *, size_t);

typedef struct live_sum {
    uint64_t bytes, count;
} live_sum_t;

static bool add_live(const dh_block_info_t *b, void *user) {
    live_sum_t *s = user;
    if (b->live) {
        s->bytes += b->size;
        s->count++;
    }
    return true;
}

static void test_clean_after_malloc_free(void **state) {
    (void)state;
    heap_of_fn heap_of = (heap_of_fn)dlsym(RTLD_DEFAULT, "dh_heap_of");
    check_fn check = (check_fn)dlsym(RTLD_DEFAULT, "dh_heap_check");
    stats_fn stats = (stats_fn)dlsym(RTLD_DEFAULT, "dh_heap_stats");
    size_t (*walk)(const dh_heap_t *, dh_visit_fn, void *) =
        (size_t(*)(const dh_heap_t *, dh_visit_fn, void *))dlsym(
            RTLD_DEFAULT, "dh_heap_walk");
    assert_non_null(heap_of);
    assert_non_null(check);
    assert_non_null(stats);
    assert_non_null(walk);
    void *keep = malloc(40);
    dh_heap_t *h = heap_of(keep);
    assert_non_null(h);
    for (int i = 0; i < 100; i++) {
        void *p = malloc((size_t)i * 10);
        memset(p, 1, (size_t)i * 10);
        free(p);
    }
    live_sum_t walked = {0, 0};
    walk(h, add_live, &walked);
    dh_stats_t s;
    assert_true(stats(h, &s, sizeof s));
    assert_int_equal(s.live_bytes, walked.bytes);
    assert_int_equal(s.live_count, walked.count);
    assert_int_equal(check(h), DH_CHECK_OK);
    free(keep);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_after_malloc_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
