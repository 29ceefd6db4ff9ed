/*
 * crash.c - a program that dies of SIGSEGV after the same heap calls in
 * every run: `detheap check` must call that a deterministic crash (exit
 * 4), not "deterministic".  With the argument "chain" the program installs
 * its own SIGSEGV handler after its first allocation (when detheap's is in
 * place) and calls the one it replaced, as crash reporters do: the process
 * must still die of SIGSEGV, once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct sigaction previous;
static void *volatile sink; /* keeps the compiler from eliding calls */

static void chained(int sig) {
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN)
        previous.sa_handler(sig);
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv) {
    char *keep[16];
    sink = malloc(1); /* the trace is open from here on */
    free(sink);
    if (argc > 1 && strcmp(argv[1], "chain") == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = chained;
        sigaction(SIGSEGV, &sa, &previous);
    }
    for (int i = 0; i < 16; i++) {
        keep[i] = malloc(40 + (size_t)i * 8);
        memset(keep[i], i, 40);
    }
    free(keep[3]);
    fflush(stdout);
    raise(SIGSEGV); /* as a wild write would, without relying on one */
    return 0;
}
