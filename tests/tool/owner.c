/*
 * owner.c - a block freed by another thread, and the owner's next
 * allocation racing that free: in odd runs (a counter kept in the file
 * named by $DH_TEST_STATE) the other thread frees first, in even runs
 * only after the main thread's next allocation.  Under DETHEAP_REMOTE_FREE=owner the main thread's second
 * allocation then gets the freed block back or a fresh one, and `detheap
 * check` must blame the option; under the default (keep) the runs agree.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *block;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int freed, go;

static void *other(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!go) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    free(block);
    pthread_mutex_lock(&lock);
    freed = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

/* The run number, from the state file (incremented). */
static int run_number(void) {
    const char *path = getenv("DH_TEST_STATE");
    int n = 0;
    FILE *f = path ? fopen(path, "r") : NULL;
    if (f) {
        if (fscanf(f, "%d", &n) != 1) n = 0;
        fclose(f);
    }
    f = path ? fopen(path, "w") : NULL;
    if (f) {
        fprintf(f, "%d\n", n + 1);
        fclose(f);
    }
    return n + 1;
}

int main(void) {
    int odd = run_number() % 2;
    block = malloc(100);
    pthread_t t;
    pthread_create(&t, NULL, other, NULL);
    void *again = NULL;
    if (!odd) again = malloc(100); /* before the free: a fresh block */
    pthread_mutex_lock(&lock);
    go = 1;
    pthread_cond_broadcast(&cond);
    while (!freed) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    /* after the free: in owner mode, the freed block comes back */
    if (odd) again = malloc(100);
    pthread_join(t, NULL);
    free(again);
    return 0;
}
