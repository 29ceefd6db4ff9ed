/*
 * leaks.c - three blocks never freed, allocated at known lines (the test
 * finds them by the LEAK markers), among blocks that are freed, one of
 * them by another thread.  `detheap run --leaks` must list exactly the
 * three, each at its file:line.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void *handed;
static void *volatile sink; /* keeps the compiler from eliding calls */

static void *freer(void *arg) {
    (void)arg;
    free(handed); /* freed by another thread: not a leak */
    return NULL;
}

__attribute__((noinline)) static void *leak_one(void) {
    return malloc(111); /* LEAK 1 */
}

__attribute__((noinline)) static void *leak_two(void) {
    return calloc(2, 111); /* LEAK 2 */
}

__attribute__((noinline)) static void *leak_three(void *p) {
    return realloc(p, 333); /* LEAK 3 */
}

int main(void) {
    for (int i = 0; i < 20; i++) {
        sink = malloc(50);
        free(sink);
    }
    handed = malloc(4444);
    pthread_t t;
    pthread_create(&t, NULL, freer, NULL);
    pthread_join(t, NULL);
    void *a = leak_one(), *b = leak_two();
    void *c = leak_three(malloc(10));
    memset(a, 1, 111);
    memset(b, 2, 222);
    memset(c, 3, 333);
    return 0;
}
