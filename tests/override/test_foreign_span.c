/*
 * test_foreign_span.c - a class span made from another thread's memory.
 * Thread A allocates a large block and hands it to thread B, which frees
 * it: the block joins B's free large blocks although it lies in A's range.
 * B's next new class then takes its span from that block, and malloc's
 * fast path carves blocks from it.  Their state bytes live in A's range:
 * freeing them (which validates each one) must work, and their contents
 * must stay intact.  Run with libdetheap.so preloaded; any misuse report
 * aborts the test (DETHEAP_ON_ERROR defaults to abort).
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

enum { LARGE = 200000, SMALL = 2000, COUNT = 60 };

static void *handed;
static _Atomic int produced;

static void *producer(void *arg) {
    (void)arg;
    handed = malloc(LARGE); /* in the producer's range */
    memset(handed, 0x5a, LARGE);
    produced = 1;
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    free(handed); /* now a free large block of this thread's heap */
    /* a class this thread has not used yet: its span comes from that block */
    unsigned char *p[COUNT];
    for (int i = 0; i < COUNT; i++) {
        p[i] = malloc(SMALL);
        if (p[i] == NULL) return (void *)1;
        memset(p[i], i, SMALL);
    }
    for (int i = 0; i < COUNT; i++) {
        for (int k = 0; k < SMALL; k++)
            if (p[i][k] != (unsigned char)i) return (void *)2;
        free(p[i]);
    }
    return NULL;
}

static void test_span_in_another_range(void **state) {
    (void)state;
    pthread_t a, b;
    assert_int_equal(pthread_create(&a, NULL, producer, NULL), 0);
    while (!produced) sched_yield();
    assert_non_null(handed);
    /* created before the producer is joined, so it does not inherit the
     * producer's heap: it gets a heap of its own, in another range */
    void *rc = (void *)-1;
    assert_int_equal(pthread_create(&b, NULL, consumer, NULL), 0);
    assert_int_equal(pthread_join(b, &rc), 0);
    assert_int_equal(pthread_join(a, NULL), 0);
    assert_null(rc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_span_in_another_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
