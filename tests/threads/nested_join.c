/*
 * nested_join.c - 10,000 rounds of: main creates A, A creates and joins B
 * (both malloc and free a little, B also frees a block A made and A one
 * that B made), main joins A.  Every pthread_create must succeed; blocks
 * keep their tags.  run_preloaded.sh runs it with libdetheap.so preloaded
 * and checks that the library says nothing on stderr (a heap that ran out
 * of room would).
 *
 * Usage: nested_join [ROUNDS]   (default 10000)
 */
#include "thread_common.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

static long rounds = 10000;

typedef struct round {
    long index;
    th_blk_t from_a; /* made by A, freed by B */
    th_blk_t from_b; /* made by B, freed by A */
    int create_rc;   /* A's pthread_create of B */
    int bad;
} round_t;

/* n blocks of 8..2000 bytes, and, every 16th round, one of 100 KiB;
 * checked and freed by the same thread. */
static void churn(round_t *r, th_rng_t *rng, int n) {
    th_blk_t b[8];
    for (int i = 0; i < n; i++) {
        b[i].n = (uint32_t)th_range(rng, 8, 2000);
        if (i == 0 && r->index % 16 == 0) b[i].n = 100 * 1024;
        b[i].p = th_malloc(b[i].n);
        if (b[i].p == NULL) {
            r->bad++;
            return;
        }
        th_mark(&b[i], (unsigned char)th_next(rng));
    }
    for (int i = n - 1; i >= 0; i--) {
        if (!th_marked(&b[i])) r->bad++;
        th_free(b[i].p);
    }
}

static int make(th_blk_t *b, th_rng_t *rng) {
    b->n = (uint32_t)th_range(rng, 16, 600);
    b->p = th_malloc(b->n);
    if (b->p == NULL) return 0;
    th_mark(b, (unsigned char)th_next(rng));
    return 1;
}

static void drop(round_t *r, th_blk_t *b) {
    if (!th_marked(b)) r->bad++;
    th_free(b->p);
    b->p = NULL;
}

static void *thread_b(void *arg) {
    round_t *r = arg;
    th_rng_t rng = th_rng(2 * (uint64_t)r->index + 1);
    churn(r, &rng, 4);
    drop(r, &r->from_a);
    if (!make(&r->from_b, &rng)) r->bad++;
    return NULL;
}

static void *thread_a(void *arg) {
    round_t *r = arg;
    th_rng_t rng = th_rng(2 * (uint64_t)r->index);
    churn(r, &rng, 3);
    if (!make(&r->from_a, &rng)) {
        r->bad++;
        return NULL;
    }
    pthread_t b;
    r->create_rc = pthread_create(&b, NULL, thread_b, r);
    if (r->create_rc != 0) {
        drop(r, &r->from_a);
        return NULL;
    }
    if (pthread_join(b, NULL) != 0) r->bad++;
    if (r->from_b.p != NULL) drop(r, &r->from_b);
    churn(r, &rng, 2);
    return NULL;
}

static void test_nested_rounds(void **state) {
    (void)state;
    long bad = 0;
    for (long i = 0; i < rounds; i++) {
        round_t r = {.index = i};
        pthread_t a;
        int rc = pthread_create(&a, NULL, thread_a, &r);
        if (rc != 0)
            fail_msg("round %ld: main's pthread_create of A failed: %d (%s)",
                     i, rc, strerror(rc));
        assert_int_equal(pthread_join(a, NULL), 0);
        if (r.create_rc != 0)
            fail_msg("round %ld: A's pthread_create of B failed: %d (%s)", i,
                     r.create_rc, strerror(r.create_rc));
        bad += r.bad;
    }
    if (bad != 0) fail_msg("%ld blocks found corrupted or not allocated", bad);
    print_message("%ld rounds of main -> A -> B, every create succeeded\n",
                  rounds);
}

int main(int argc, char **argv) {
    if (argc > 1 && atol(argv[1]) > 0) rounds = atol(argv[1]);
    printf("allocator: %s\n", th_allocator());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_rounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
