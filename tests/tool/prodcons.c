/*
 * prodcons.c - a producer and a consumer thread: the producer allocates
 * BATCH blocks of 6000 B (the 8 KiB class, used by nothing else here),
 * hands them to the consumer, which frees them, and waits until all are
 * freed before the next batch; at the end it keeps LEFT blocks.  So the
 * 8 KiB class makes exactly ROUNDS * BATCH + LEFT allocations, frees all
 * but LEFT, and never has more than BATCH live.  The program prints the
 * counts it kept itself; the test compares them with the statistics, which
 * must stay right although every free is made by another thread.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 50
#define ROUNDS 20
#define LEFT 3

static void *queue[BATCH];
static int queued, live, peak, allocs, frees;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static void *volatile kept[LEFT]; /* volatile: never elided */

static void *producer(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "producer");
    for (int r = 0; r < ROUNDS; r++) {
        pthread_mutex_lock(&lock);
        for (int i = 0; i < BATCH; i++) {
            queue[i] = malloc(6000);
            memset(queue[i], r, 64);
            allocs++;
            if (++live > peak) peak = live;
        }
        queued = BATCH;
        pthread_cond_broadcast(&cond);
        while (queued > 0) pthread_cond_wait(&cond, &lock);
        pthread_mutex_unlock(&lock);
    }
    for (int i = 0; i < LEFT; i++) {
        kept[i] = malloc(6000);
        allocs++;
        if (++live > peak) peak = live;
    }
    pthread_mutex_lock(&lock);
    queued = -1; /* done */
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "consumer");
    pthread_mutex_lock(&lock);
    for (;;) {
        while (queued == 0) pthread_cond_wait(&cond, &lock);
        if (queued < 0) break;
        for (int i = 0; i < queued; i++) {
            free(queue[i]);
            frees++;
            live--;
        }
        queued = 0;
        pthread_cond_broadcast(&cond);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(void) {
    pthread_t p, c;
    pthread_create(&c, NULL, consumer, NULL);
    pthread_create(&p, NULL, producer, NULL);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    printf("allocs=%d frees=%d live=%d peak=%d\n", allocs, frees, live, peak);
    return 0;
}
