/*
 * uaf.c - a deliberately broken program for tests/verify: a use after free
 * on the line marked USE-AFTER-FREE and a write past the end of a block on
 * the line marked OVERFLOW.  Under valgrind, with the valgrind-aware build
 * of libdetheap.so preloaded, memcheck must report both, naming the lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    char *p = malloc(48);
    strcpy(p, "hello");
    free(p);
    volatile char c = p[2]; /* USE-AFTER-FREE */
    char *q = malloc(40);
    q[48] = 1; /* OVERFLOW */
    printf("%d\n", c);
    return 0;
}
