/*
 * process_check.c - dh_process_check() on a process whose threads free
 * each other's blocks.  Run with libdetheap.so preloaded (run_preloaded.sh).
 *
 * WORKERS threads each allocate blocks of several classes (16 B .. 40 KiB)
 * and a few large ones (> 64 KiB); after a barrier each frees its
 * neighbour's blocks and allocates new ones (in keep mode, partly from the
 * blocks it just freed), then frees its next-but-one neighbour's new
 * blocks; then every worker parks on a condition variable, and main, with
 * the others parked, calls dh_process_check(): every thread heap of the
 * process must be valid (DH_CHECK_OK).  Then the workers free the rest
 * crosswise once more and end; after the joins the check must pass again.
 *
 * dh_process_check is found with dlsym(RTLD_DEFAULT, ...), so that this
 * builds whatever the header has; a library without it fails the test.
 */
#include "thread_common.h"

#include <dlfcn.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define WORKERS 6
#define PER 64 /* blocks per worker per round */

typedef int (*process_check_fn)(void);

static const uint32_t sizes[] = {16,   24,   48,    64,    100,   256,
                                 500,  1000, 2048,  3000,  8192,  10000,
                                 16384, 40000, 65536, 70000, 200000, 1u << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static th_blk_t blocks[WORKERS][PER]; /* worker w's current blocks */
static pthread_barrier_t barrier;     /* the workers, and main */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t parked_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t resume_cond = PTHREAD_COND_INITIALIZER;
static int parked, resume;
static int bad[WORKERS];

static void fill(int w, th_rng_t *rng) {
    for (int i = 0; i < PER; i++) {
        th_blk_t *b = &blocks[w][i];
        b->n = sizes[(i + (int)(th_next(rng) % 3)) % NSIZES];
        b->p = malloc(b->n);
        if (b->p == NULL) {
            bad[w]++;
            continue;
        }
        th_mark(b, (unsigned char)th_next(rng));
    }
}

static void empty(int w, int of) {
    for (int i = 0; i < PER; i++) {
        th_blk_t *b = &blocks[of][i];
        if (b->p == NULL) continue;
        if (!th_marked(b)) bad[w]++;
        free(b->p);
        b->p = NULL;
    }
}

static void park(void) {
    pthread_mutex_lock(&lock);
    parked++;
    pthread_cond_signal(&parked_cond);
    while (!resume) pthread_cond_wait(&resume_cond, &lock);
    pthread_mutex_unlock(&lock);
}

static void *worker(void *arg) {
    int w = (int)(intptr_t)arg;
    th_rng_t rng = th_rng(77 + (uint64_t)w);
    fill(w, &rng);
    pthread_barrier_wait(&barrier);                /* 1: all filled */
    empty(w, (w + 1) % WORKERS);                   /* the neighbour's */
    pthread_barrier_wait(&barrier);                /* 2: all emptied */
    fill(w, &rng);                                 /* reuses what it freed */
    pthread_barrier_wait(&barrier);                /* 3: all refilled */
    empty(w, (w + 2) % WORKERS);                   /* the next-but-one's */
    pthread_barrier_wait(&barrier);                /* 4 */
    fill(w, &rng);                                 /* and once more */
    park();                                        /* main checks now */
    pthread_barrier_wait(&barrier);                /* 5: all resumed */
    empty(w, (w + 3) % WORKERS);
    return NULL;
}

static void test_process_check_cross_frees(void **state) {
    (void)state;
    process_check_fn check =
        (process_check_fn)dlsym(RTLD_DEFAULT, "dh_process_check");
    if (dlsym(RTLD_DEFAULT, "dh_heap_of") == NULL)
        fail_msg("libdetheap.so is not preloaded (no dh_heap_of in the process)");
    if (check == NULL)
        fail_msg("dh_process_check is missing from the preloaded library "
                 "(dlsym(RTLD_DEFAULT, \"dh_process_check\") found nothing)");

    assert_int_equal(check(), 0); /* DH_CHECK_OK, before any thread */
    assert_int_equal(pthread_barrier_init(&barrier, NULL, WORKERS + 1), 0);
    pthread_t tid[WORKERS];
    for (int w = 0; w < WORKERS; w++)
        assert_int_equal(th_create(&tid[w], NULL, worker, (void *)(intptr_t)w,
                                   "worker", w), 0);
    for (int round = 0; round < 4; round++) pthread_barrier_wait(&barrier);

    pthread_mutex_lock(&lock);
    while (parked < WORKERS) pthread_cond_wait(&parked_cond, &lock);
    pthread_mutex_unlock(&lock);
    int alive = check(); /* every worker parked, holding blocks */
    pthread_mutex_lock(&lock);
    resume = 1;
    pthread_cond_broadcast(&resume_cond);
    pthread_mutex_unlock(&lock);
    pthread_barrier_wait(&barrier);
    for (int w = 0; w < WORKERS; w++) assert_int_equal(pthread_join(tid[w], NULL), 0);
    int after = check(); /* all joined, every block freed */
    pthread_barrier_destroy(&barrier);

    int lost = 0;
    for (int w = 0; w < WORKERS; w++) lost += bad[w];
    if (alive != 0)
        fail_msg("dh_process_check() = %d (invariant I%d broken) with %d "
                 "threads alive and parked", alive, alive, WORKERS);
    if (after != 0)
        fail_msg("dh_process_check() = %d (invariant I%d broken) after the "
                 "threads were joined", after, after);
    assert_int_equal(lost, 0);
}

int main(void) {
    printf("allocator: %s\n", th_allocator());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_process_check_cross_frees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
