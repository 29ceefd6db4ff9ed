/*
 * aslr.c - a program whose allocation sizes hash the address of a local
 * variable: with ASLR the stack moves and the calls differ from run to
 * run; with ASLR off (detheap check --aslr=off, setarch -R) they repeat.
 * `detheap check` must say that the calls depend on non-heap addresses.
 */
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

int main(void) {
    hash_stack_into_sizes();
    return 0;
}
