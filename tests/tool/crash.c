/*
 * crash.c - a program that dies of SIGSEGV after the same heap calls in
 * every run: `detheap check` must call that a deterministic crash (exit
 * 4), not "deterministic".
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    char *keep[16];
    for (int i = 0; i < 16; i++) {
        keep[i] = malloc(40 + (size_t)i * 8);
        memset(keep[i], i, 40);
    }
    free(keep[3]);
    fflush(stdout);
    raise(SIGSEGV); /* as a wild write would, without relying on one */
    return 0;
}
