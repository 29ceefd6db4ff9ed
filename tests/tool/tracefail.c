/*
 * tracefail.c - a program whose child cannot write its trace: the parent
 * runs itself again with DETHEAP_TRACE pointing under /dev/null, which is
 * not a directory (ENOTDIR even for root, whom permission bits do not
 * stop).  `detheap check` must say "incomplete" and name the child.
 * With the argument "closefds" the parent closes every descriptor above 2
 * first (the tool's log with them): the child must be found from its
 * message.  With "full" the child's trace is /dev/full, which opens but
 * refuses every write.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* volatile: the compiler must keep each malloc and free */
static void *volatile sink;

static int child(void) {
    for (int i = 0; i < 10; i++) {
        sink = malloc(64);
        free(sink);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0) return child();
    void *p = malloc(100); /* the parent is traced as usual */
    /* the child's environment: ours, with DETHEAP_TRACE replaced */
    size_t n = 0;
    while (environ[n]) n++;
    char **env = calloc(n + 2, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "DETHEAP_TRACE=", 14) != 0)
            env[k++] = environ[i];
    bool full = argc > 1 && strcmp(argv[1], "full") == 0;
    env[k++] = full ? "DETHEAP_TRACE=/dev/full"
                    : "DETHEAP_TRACE=/dev/null/no-such-dir/trace.%p";
    env[k] = NULL;
    if (argc > 1 && strcmp(argv[1], "closefds") == 0)
        for (int fd = 3; fd < 1024; fd++) close(fd);
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {argv[0], "child", NULL};
        execve(argv[0], args, env);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    free(env);
    free(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
