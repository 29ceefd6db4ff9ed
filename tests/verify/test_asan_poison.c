/*
 * test_asan_poison.c - in an ASan build, free blocks of a detheap heap are
 * poisoned: reading a freed block, or past a block into uncarved memory,
 * is reported by ASan.  Each misuse runs in a forked child; the parent
 * checks that the child died with ASan's report.
 */
#include <detheap.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_common.h"

typedef struct job {
    void (*fn)(void);
} job_t;

static void call(void *arg) { ((job_t *)arg)->fn(); }

/* Run fn in a child with stderr captured; return what it printed and
 * whether it did not exit 0. */
static bool run_child(void (*fn)(void), char *out, size_t cap) {
    job_t job = {fn};
    int status = run_child_status(call, &job, out, cap);
    return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void read_after_free(void) {
    dh_heap_t *h = dh_heap_create(NULL);
    volatile char *p = dh_heap_malloc(h, 64);
    p[0] = 1;
    dh_heap_free(h, (void *)p);
    printf("%d\n", p[10]);
}

static void read_past_block(void) {
    dh_heap_t *h = dh_heap_create(NULL);
    volatile char *p = dh_heap_malloc(h, 64);
    printf("%d\n", p[64]); /* the next block of the span: not carved */
}

static void write_freed_large(void) {
    dh_heap_t *h = dh_heap_create(NULL);
    volatile char *p = dh_heap_malloc(h, 200000);
    dh_heap_free(h, (void *)p);
    p[1000] = 1;
}

static void test_freed_block_poisoned(void **state) {
    (void)state;
    char out[8192];
    assert_true(run_child(read_after_free, out, sizeof out));
    assert_non_null(strstr(out, "use-after-poison"));
}

static void test_uncarved_memory_poisoned(void **state) {
    (void)state;
    char out[8192];
    assert_true(run_child(read_past_block, out, sizeof out));
    assert_non_null(strstr(out, "use-after-poison"));
}

static void test_freed_large_block_poisoned(void **state) {
    (void)state;
    char out[8192];
    assert_true(run_child(write_freed_large, out, sizeof out));
    assert_non_null(strstr(out, "use-after-poison"));
}

static void test_live_blocks_usable(void **state) {
    (void)state;
    dh_heap_t *h = dh_heap_create(NULL);
    char *a = dh_heap_malloc(h, 48), *b = dh_heap_malloc(h, 300000);
    memset(a, 1, 48);
    memset(b, 2, 300000);
    dh_heap_free(h, a);
    a = dh_heap_malloc(h, 48); /* reused: must be usable again */
    memset(a, 3, 48);
    b = dh_heap_realloc(h, b, 500000);
    memset(b, 4, 500000);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_heap_destroy(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_freed_block_poisoned),
        cmocka_unit_test(test_uncarved_memory_poisoned),
        cmocka_unit_test(test_freed_large_block_poisoned),
        cmocka_unit_test(test_live_blocks_usable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
