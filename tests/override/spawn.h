/*
 * spawn.h - run a program with a chosen environment and capture what it
 * does: its exit status (or signal), its stdout and its stderr.  The tests
 * of the drop-in library need this because what they check happens in
 * another process: a preloaded program that aborts, prints a diagnostic,
 * or forks.  The child gets its own process group so that a hung run (a
 * deadlock after fork, say) is killed as a whole when the time limit
 * passes.
 */
#ifndef OV_SPAWN_H
#define OV_SPAWN_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OV_OUT_MAX (1 << 20)

typedef struct ov_result {
    bool timed_out;
    bool exited;      /* exited normally, with `code` */
    int code;
    int signal;       /* killed by this signal (when !exited) */
    char out[OV_OUT_MAX]; /* stdout, NUL-terminated, truncated if longer */
    char err[OV_OUT_MAX]; /* stderr, likewise */
} ov_result_t;

static inline double ov_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Append what fd has to buf; returns false at end of file. */
static inline bool ov_drain(int fd, char *buf, size_t *len) {
    char tmp[4096];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) return false;
    size_t room = OV_OUT_MAX - 1 - *len;
    size_t take = (size_t)n < room ? (size_t)n : room;
    memcpy(buf + *len, tmp, take);
    *len += take;
    buf[*len] = 0;
    return true;
}

/* Run argv[0] (a path) with the environment envp, for at most limit
 * seconds, with an address-space limit (RLIMIT_AS, its soft value) of
 * as_bytes if that is not 0.  envp is the child's whole environment, but
 * for DETHEAP_CLASSES, which is passed on from this process's when envp
 * does not name it (ctest runs each driver once per class set).  Returns
 * false only if the process could not be started. */
static inline bool ov_run_as(char *const argv[], char *const envp[],
                             double limit, unsigned long long as_bytes,
                             ov_result_t *r) {
    memset(r, 0, sizeof *r);
    int po[2], pe[2];
    if (pipe(po) != 0 || pipe(pe) != 0) return false;
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        setpgid(0, 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        close(po[1]);
        close(pe[1]);
        struct rlimit rl;
        if (as_bytes != 0 && getrlimit(RLIMIT_AS, &rl) == 0) {
            rl.rlim_cur = (rlim_t)as_bytes;
            if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(126);
        }
        char *env[64];
        size_t k = 0;
        bool named = false;
        for (; envp[k] != NULL && k < 62; k++) {
            env[k] = envp[k];
            named |= strncmp(envp[k], "DETHEAP_CLASSES=", 16) == 0;
        }
        const char *classes = getenv("DETHEAP_CLASSES");
        static char pass[64];
        if (!named && classes != NULL &&
            (size_t)snprintf(pass, sizeof pass, "DETHEAP_CLASSES=%s",
                             classes) < sizeof pass)
            env[k++] = pass;
        env[k] = NULL;
        execve(argv[0], argv, env);
        _exit(127);
    }
    setpgid(pid, pid);
    close(po[1]);
    close(pe[1]);
    size_t lo = 0, le = 0;
    bool open_o = true, open_e = true;
    double end = ov_now() + limit;
    while (open_o || open_e) {
        struct pollfd fds[2] = {{open_o ? po[0] : -1, POLLIN, 0},
                                {open_e ? pe[0] : -1, POLLIN, 0}};
        int left = (int)((end - ov_now()) * 1000);
        if (left <= 0) {
            r->timed_out = true;
            kill(-pid, SIGKILL);
            break;
        }
        if (poll(fds, 2, left) < 0 && errno != EINTR) break;
        if (open_o && (fds[0].revents & (POLLIN | POLLHUP)))
            open_o = ov_drain(po[0], r->out, &lo);
        if (open_e && (fds[1].revents & (POLLIN | POLLHUP)))
            open_e = ov_drain(pe[0], r->err, &le);
    }
    close(po[0]);
    close(pe[0]);
    int st = 0;
    /* the pipes may close before the process ends (it closed them) */
    while (waitpid(pid, &st, r->timed_out ? 0 : WNOHANG) == 0) {
        if (ov_now() > end) {
            r->timed_out = true;
            kill(-pid, SIGKILL);
        }
        usleep(1000);
    }
    r->exited = WIFEXITED(st);
    r->code = r->exited ? WEXITSTATUS(st) : -1;
    r->signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    return true;
}

/* The same without an address-space limit. */
static inline bool ov_run(char *const argv[], char *const envp[],
                          double limit, ov_result_t *r) {
    return ov_run_as(argv, envp, limit, 0, r);
}

#endif /* OV_SPAWN_H */
