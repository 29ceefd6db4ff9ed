/*
 * exit.c - a forked child that leaves by _exit, exit or SIGKILL, for the
 * verdicts of `detheap check` on processes that skip exit() (the preload
 * library's _exit writes their trace out; a killed one's trace is
 * incomplete).  The parent allocates one block and waits.
 *
 *   tool_exit _      the child mallocs a pid-dependent size, then _exit(0)
 *   tool_exit same   the child mallocs 40 bytes, then _exit(0)
 *   tool_exit Exit   the same through _Exit(0)
 *   tool_exit kill   the child mallocs 40 bytes, then SIGKILLs itself
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "same";
    char *volatile keep = malloc(24);
    keep[0] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        size_t n = strcmp(mode, "_") == 0 ? 32 + (size_t)getpid() % 7 * 16 : 40;
        char *volatile p = malloc(n);
        p[0] = 1;
        if (strcmp(mode, "kill") == 0) kill(getpid(), SIGKILL);
        if (strcmp(mode, "Exit") == 0) _Exit(0);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    free(keep);
    return 0;
}
