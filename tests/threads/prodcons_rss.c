/*
 * prodcons_rss.c - the memory cost of cross-thread frees.  A producer
 * allocates 2M blocks of 64..464 bytes and hands each, in order, through a
 * 1024-slot ring (mutex+condvar) to a consumer that only frees them.  At
 * most ~1024 blocks are live at once, so an allocator that gives freed
 * blocks back to their heap stays small; one that keeps them with the
 * freeing thread (DETHEAP_REMOTE_FREE=keep) makes the producer carve new
 * memory for every block.  Prints "peak_rss_kb N" (getrusage ru_maxrss).
 *
 * Usage: prodcons_rss [BLOCKS]   (default 2000000)
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define RING 1024

static void *ring[RING];
static unsigned long head, tail; /* under lock */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t nonempty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t nonfull = PTHREAD_COND_INITIALIZER;
static long blocks = 2000000;
static int corrupt;

static void *producer(void *arg) {
    (void)arg;
    uint32_t x = 12345;
    for (long i = 0; i <= blocks; i++) {
        unsigned char *p = NULL;
        if (i < blocks) {
            x = x * 1103515245u + 12345u;
            size_t n = 64 + (x >> 8) % 401;
            p = malloc(n);
            if (p == NULL) abort();
            p[0] = (unsigned char)i;
            p[n - 1] = (unsigned char)i;
            memcpy(p + 8, &n, sizeof n);
        }
        pthread_mutex_lock(&lock);
        while (tail - head == RING) pthread_cond_wait(&nonfull, &lock);
        ring[tail++ % RING] = p;
        pthread_cond_signal(&nonempty);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    for (long i = 0;; i++) {
        pthread_mutex_lock(&lock);
        while (tail == head) pthread_cond_wait(&nonempty, &lock);
        unsigned char *p = ring[head++ % RING];
        pthread_cond_signal(&nonfull);
        pthread_mutex_unlock(&lock);
        if (p == NULL) break;
        size_t n;
        memcpy(&n, p + 8, sizeof n);
        if (p[0] != (unsigned char)i || p[n - 1] != (unsigned char)i)
            corrupt++;
        free(p);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) blocks = atol(argv[1]);
    pthread_t pt, ct;
    if (pthread_create(&ct, NULL, consumer, NULL) != 0 ||
        pthread_create(&pt, NULL, producer, NULL) != 0)
        return 2;
    pthread_join(pt, NULL);
    pthread_join(ct, NULL);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak_rss_kb %ld\n", ru.ru_maxrss);
    if (corrupt) fprintf(stderr, "prodcons_rss: %d corrupted blocks\n", corrupt);
    return corrupt ? 1 : 0;
}
