/*
 * misuse.c - a double free: under `detheap run --top` the misuse must be
 * reported with the stack of the second free (the MISUSE marker's line).
 */
#include <stdlib.h>

/* volatile: the compiler must not see (and refuse) the second free */
static void *volatile again;

__attribute__((noinline)) static void release_twice(void *p) {
    again = p;
    free(p);
    free(again); /* MISUSE */
}

int main(void) {
    release_twice(malloc(48));
    return 0;
}
