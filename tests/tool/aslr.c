/*
 * aslr.c - a program whose allocation sizes hash the address of a local
 * variable: with ASLR the stack moves and the calls differ from run to
 * run; with ASLR off (detheap check --aslr=off, setarch -R) they repeat.
 * `detheap check` must say that the calls depend on non-heap addresses.
 * With the argument "thread" a thread does the same after main, so that
 * the program has two heaps (check then adds that thread timing could
 * also make runs agree).
 */
#include <pthread.h>
#include <string.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* volatile: the compiler must keep each malloc and free */
static void *volatile sink;

__attribute__((noinline)) static void hash_stack_into_sizes(void) {
    int local = 0;
    uintptr_t a = (uintptr_t)&local;
    for (int i = 0; i < 9; i++) {
        sink = malloc(16 + ((a >> (4 + 3 * i)) & 7) * 16);
        free(sink);
    }
}

static void *in_thread(void *arg) {
    (void)arg;
    hash_stack_into_sizes();
    return NULL;
}

int main(int argc, char **argv) {
    hash_stack_into_sizes();
    if (argc > 1 && strcmp(argv[1], "thread") == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, in_thread, NULL) != 0) return 1;
        pthread_join(t, NULL);
    }
    return 0;
}
