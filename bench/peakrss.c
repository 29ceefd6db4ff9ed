/*
 * peakrss.c - run a program once and report its peak resident set.
 *
 *   peakrss OUTFILE PROGRAM [ARGS...]
 *
 * Runs PROGRAM with its standard output sent to OUTFILE (so the benchmark
 * script can check that every allocator gives the same output) and prints
 * "PEAK_RSS_KB EXIT_STATUS SECONDS".  The figure comes from wait4(), so it
 * covers the program itself whatever allocator it was preloaded with, and
 * needs no tool beyond this one.  EXIT_STATUS is 128+N for a signal N.
 */
#include "bench_common.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: peakrss OUTFILE PROGRAM [ARGS...]\n");
        return 2;
    }
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror("peakrss: OUTFILE");
        return 2;
    }
    double t0 = bench_now();
    pid_t pid = fork();
    if (pid < 0) {
        perror("peakrss: fork");
        return 2;
    }
    if (pid == 0) {
        dup2(fd, 1);
        close(fd);
        execvp(argv[2], argv + 2);
        perror("peakrss: exec");
        _exit(127);
    }
    close(fd);
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("peakrss: wait4");
        return 2;
    }
    double t = bench_now() - t0;
    int code = WIFEXITED(status) ? WEXITSTATUS(status)
                                 : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    printf("%ld %d %.3f\n", ru.ru_maxrss, code, t);
    return 0;
}
