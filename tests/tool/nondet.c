/*
 * nondet.c - a deliberately nondeterministic program for the tool tests:
 * the size of one allocation depends on the process id, so two runs make
 * different heap calls and `detheap check` must name that call and show
 * allocate_from_pid on its stack.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* noinline: the test looks for this name on the recorded stack */
__attribute__((noinline)) static void *allocate_from_pid(void) {
    size_t n = 32 + (size_t)(getpid() % 7) * 16;
    void *p = malloc(n);
    if (p) memset(p, 1, n);
    return p;
}

int main(void) {
    void *before[8];
    for (int i = 0; i < 8; i++) before[i] = malloc(24); /* same in all runs */
    void *p = allocate_from_pid();
    printf("%p\n", p);
    free(p);
    for (int i = 0; i < 8; i++) free(before[i]);
    return 0;
}
