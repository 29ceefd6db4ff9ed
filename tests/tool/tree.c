/*
 * tree.c - main starts 20 threads, each of which starts one child; all 40
 * meet at a barrier before any ends, so each has a heap of its own, and
 * every thread makes a few heap calls.  The grandchildren's heap slots
 * are numbered above 4096 (the slot map's second level), and the 41
 * threads are more than `detheap check` lists by name.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHILDREN 20

static pthread_barrier_t all_up;

static void work(size_t n) {
    for (int i = 0; i < 4; i++) {
        char *volatile p = malloc(n + (size_t)i * 16);
        memset(p, i, n);
        free(p);
    }
}

static void *grandchild(void *arg) {
    work((size_t)(uintptr_t)arg + 8);
    pthread_barrier_wait(&all_up);
    return NULL;
}

static void *child(void *arg) {
    work((size_t)(uintptr_t)arg);
    pthread_t t;
    if (pthread_create(&t, NULL, grandchild, arg) != 0) abort();
    pthread_barrier_wait(&all_up);
    pthread_join(t, NULL);
    return NULL;
}

int main(void) {
    pthread_t t[CHILDREN];
    pthread_barrier_init(&all_up, NULL, 2 * CHILDREN);
    for (uintptr_t i = 0; i < CHILDREN; i++)
        if (pthread_create(&t[i], NULL, child, (void *)(i * 32 + 16)) != 0)
            abort();
    for (int i = 0; i < CHILDREN; i++) pthread_join(t[i], NULL);
    work(100);
    return 0;
}
