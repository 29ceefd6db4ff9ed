/*
 * detached_churn.c - detached threads that end at once.  Main creates
 * THREADS threads with a detached attribute, one after the other, making
 * and freeing a block of its own between creates; each thread mallocs,
 * writes, checks and frees a few blocks and exits, often before main's
 * pthread_create has returned.  Main waits until every thread has counted
 * itself done.  Meant for valgrind's memcheck (check_detached_memcheck.sh):
 * neither the program nor the allocator may touch memory it has freed.
 *
 * Usage: detached_churn [THREADS]   (default 200)
 * Exit status: 0; 1 if a create failed or a block lost its contents.
 */
#include "thread_common.h"

static long threads = 200;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long done, bad;

static void *quick(void *arg) {
    long i = (long)(intptr_t)arg;
    th_rng_t rng = th_rng((uint64_t)i);
    int lost = 0;
    for (int k = 0; k < 4; k++) {
        th_blk_t b = {NULL, (uint32_t)th_range(&rng, 8, k == 3 ? 100000 : 900), 0};
        b.p = malloc(b.n);
        if (b.p == NULL) {
            lost++;
            continue;
        }
        th_mark(&b, (unsigned char)(i + k));
        lost += !th_marked(&b);
        free(b.p);
    }
    pthread_mutex_lock(&lock);
    done++;
    bad += lost;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1 && atol(argv[1]) > 0) threads = atol(argv[1]);
    printf("allocator: %s\n", th_allocator());
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (long i = 0; i < threads; i++) {
        pthread_t tid;
        if (th_create(&tid, &attr, quick, (void *)(intptr_t)i, "detached thread", i) != 0)
            return 1;
        char *p = malloc(32 + (size_t)i % 200); /* main keeps working */
        if (p == NULL) {
            fprintf(stderr, "FAIL: main's malloc after create #%ld failed\n", i);
            return 1;
        }
        memset(p, (int)i, 32);
        free(p);
    }
    pthread_mutex_lock(&lock);
    while (done < threads) pthread_cond_wait(&cond, &lock);
    long lost = bad;
    pthread_mutex_unlock(&lock);
    pthread_attr_destroy(&attr);
    if (lost) fprintf(stderr, "FAIL: %ld blocks lost their contents\n", lost);
    printf("detached_churn: %ld detached threads done\n", threads);
    return lost != 0;
}
