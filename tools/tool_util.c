/*
 * tool_util.c - shared helpers of the detheap tool (see tool_util.h).
 */
#include "tool_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

bool dh_tool_is_help(const char *a) {
    return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

void dh_tool_find_lib(const char *name, char *out, size_t cap) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        const char *dir = dirname(exe);
        const char *const fmts[] = {"%s/%s", "%s/../lib/%s"};
        for (int i = 0; i < 2; i++) {
            snprintf(out, cap, fmts[i], dir, name);
            if (access(out, R_OK) == 0) return;
        }
    }
    snprintf(out, cap, "%s", name);
}

char *dh_tool_preload(const char *const *libs, bool keep_existing) {
    const char *old = keep_existing ? getenv("LD_PRELOAD") : NULL;
    size_t len = old ? strlen(old) + 1 : 1;
    for (int i = 0; libs[i]; i++) len += strlen(libs[i]) + 1;
    char *v = malloc(len);
    if (v == NULL) return NULL;
    v[0] = 0;
    for (int i = 0; libs[i]; i++) {
        if (i) strcat(v, ":");
        strcat(v, libs[i]);
    }
    if (old && *old) {
        if (v[0]) strcat(v, ":");
        strcat(v, old);
    }
    return v;
}

/* The personality with address-space randomisation off, or -1. */
static int aslr_off(void) {
    int cur = personality(0xffffffff);
    if (cur == -1) return -1;
    if (personality((unsigned long)cur | ADDR_NO_RANDOMIZE) == -1) return -1;
    cur = personality(0xffffffff);
    return cur != -1 && (cur & ADDR_NO_RANDOMIZE) ? 0 : -1;
}

bool dh_tool_aslr_off_works(char *why, size_t cap) {
    char *v = dh_tool_slurp("/proc/sys/kernel/randomize_va_space", NULL);
    bool off_already = v && v[0] == '0';
    free(v);
    if (off_already) {
        snprintf(why, cap, "ASLR is off on this machine already "
                 "(/proc/sys/kernel/randomize_va_space is 0)");
        return false;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) _exit(aslr_off() == 0 ? 0 : 1);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
        WEXITSTATUS(st) != 0) {
        snprintf(why, cap, "personality(ADDR_NO_RANDOMIZE) is refused here");
        return false;
    }
    return true;
}

void dh_tool_describe_status(int st, char *out, size_t cap) {
    if (WIFSIGNALED(st)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(st));
        if (abbrev)
            snprintf(out, cap, "died of SIG%s", abbrev);
        else
            snprintf(out, cap, "died of signal %d", WTERMSIG(st));
    } else if (WIFEXITED(st)) {
        snprintf(out, cap, "exited with status %d", WEXITSTATUS(st));
    } else {
        snprintf(out, cap, "ended with wait status 0x%x", st);
    }
}

static void child_setup(const dh_spawn_t *s) {
    if (s->aslr_off && aslr_off() != 0) {
        fprintf(stderr, "detheap: cannot turn ASLR off: %s\n",
                strerror(errno));
        _exit(126);
    }
    for (int i = 0; s->env && s->env[i]; i++) {
        const char *eq = strchr(s->env[i], '=');
        if (eq == NULL) {
            unsetenv(s->env[i]);
            continue;
        }
        char name[256];
        size_t k = (size_t)(eq - s->env[i]);
        if (k >= sizeof name) continue;
        memcpy(name, s->env[i], k);
        name[k] = 0;
        setenv(name, eq + 1, 1);
    }
    if (s->stdin_path) {
        int fd = open(s->stdin_path, O_RDONLY);
        if (fd < 0) {
            fprintf(stderr, "detheap: %s: %s\n", s->stdin_path,
                    strerror(errno));
            _exit(127);
        }
        dup2(fd, 0);
        close(fd);
    }
    if (s->output_path) {
        int fd = open(s->output_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0) _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
}

int dh_tool_spawn(char *const *argv, const dh_spawn_t *s) {
    fflush(NULL);
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_quit;
    if (s->ignore_signals) {
        sigaction(SIGINT, &ign, &old_int);
        sigaction(SIGQUIT, &ign, &old_quit);
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (s->ignore_signals) {
            signal(SIGINT, SIG_DFL);
            signal(SIGQUIT, SIG_DFL);
        }
        child_setup(s);
        execvp(argv[0], argv);
        fprintf(stderr, "detheap: %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status = 0, rc = -1;
    if (pid > 0) {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        if (s->wait_status) *s->wait_status = status;
        rc = WIFEXITED(status) ? WEXITSTATUS(status)
                               : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                                     : 1;
    }
    if (s->ignore_signals) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
    }
    return rc;
}

int dh_tool_mkdtemp(char *out, size_t cap) {
    const char *t = getenv("TMPDIR");
    snprintf(out, cap, "%s/detheap.XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(out) ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void dh_tool_rmtree(const char *dir) {
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int dh_tool_list(const char *dir, const char *prefix, char ***names) {
    DIR *d = opendir(dir);
    if (d == NULL) return -1;
    int n = 0, cap = 0;
    char **v = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            char **w = realloc(v, (size_t)cap * sizeof *w);
            if (w == NULL) break;
            v = w;
        }
        v[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(v, (size_t)n, sizeof *v, cmp_names);
    *names = v;
    return n;
}

void dh_tool_list_free(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

char *dh_tool_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            char *b = realloc(buf, 2 * cap + 1);
            if (b == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[n] = 0;
    if (len) *len = n;
    return buf;
}
