/*
 * override/exec.c - the exec family, interposed by the shared (preload)
 * library only so that a traced process's calls before exec reach its
 * trace: the calling thread's buffer, its end record and the memory map
 * are written first (trace.c), then the call goes on to libc.  The new
 * program continues the same file.  Nothing else happens here.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#include "../process.h"

#define EXPORT __attribute__((visibility("default")))

/* -DDH_OV_RENAMED (tests only, the detheap_ov_renamed library): each
 * function below is defined as dhov_NAME (see override/pthread.c). */
#ifdef DH_OV_RENAMED
#define execve(...) dhov_execve(__VA_ARGS__)
#define execv(...) dhov_execv(__VA_ARGS__)
#define execvpe(...) dhov_execvpe(__VA_ARGS__)
#define execvp(...) dhov_execvp(__VA_ARGS__)
#define fexecve(...) dhov_fexecve(__VA_ARGS__)
#define execveat(...) dhov_execveat(__VA_ARGS__)
#define execl(...) dhov_execl(__VA_ARGS__)
#define execlp(...) dhov_execlp(__VA_ARGS__)
#define execle(...) dhov_execle(__VA_ARGS__)
#endif

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execvpe_fn)(const char *, char *const[], char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);
typedef int (*execveat_fn)(int, const char *, char *const[], char *const[],
                           int);

/* libc's function of that name, after the trace is written out; NULL
 * (errno ENOSYS) if libc has none. */
static void *next(const char *name) {
    if (dh_observe && dh_proc_options()->trace) dh_trace_before_exec();
    void *f = dlsym(RTLD_NEXT, name);
    if (f == NULL) errno = ENOSYS;
    return f;
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[]) {
    execve_fn f = (execve_fn)next("execve");
    return f ? f(path, argv, envp) : -1;
}

EXPORT int execv(const char *path, char *const argv[]) {
    execve_fn f = (execve_fn)next("execve");
    return f ? f(path, argv, environ) : -1;
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) {
    execvpe_fn f = (execvpe_fn)next("execvpe");
    return f ? f(file, argv, envp) : -1;
}

EXPORT int execvp(const char *file, char *const argv[]) {
    execvpe_fn f = (execvpe_fn)next("execvpe");
    return f ? f(file, argv, environ) : -1;
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[]) {
    fexecve_fn f = (fexecve_fn)next("fexecve");
    return f ? f(fd, argv, envp) : -1;
}

EXPORT int execveat(int dirfd, const char *path, char *const argv[],
                    char *const envp[], int flags) {
    execveat_fn f = (execveat_fn)next("execveat");
    return f ? f(dirfd, path, argv, envp, flags) : -1;
}

/* The list forms: the arguments gathered on the stack (no allocation).
 * count_args counts those after the first, up to the NULL. */
static size_t count_args(va_list ap) {
    size_t n = 0;
    while (va_arg(ap, const char *) != NULL) n++;
    return n;
}

/* argv[0] = first, then n more from ap, then the NULL (read from ap too). */
static void fill_args(char **argv, const char *first, size_t n, va_list ap) {
    argv[0] = (char *)first;
    for (size_t i = 1; i <= n + 1; i++) argv[i] = va_arg(ap, char *);
}

/* In a variadic function whose last named parameter is arg: argv, a
 * local array of arg and the arguments after it up to the NULL, and ap
 * still open after them (a macro: a va_list cannot be started over in a
 * callee). */
#define ARGV_FROM(argv, arg)                                              \
    va_list ap;                                                           \
    va_start(ap, arg);                                                    \
    size_t argc_ = count_args(ap);                                        \
    va_end(ap);                                                           \
    char *argv[argc_ + 2];                                                \
    va_start(ap, arg);                                                    \
    fill_args(argv, arg, argc_, ap)

EXPORT int execl(const char *path, const char *arg, ...) {
    ARGV_FROM(argv, arg);
    va_end(ap);
    return execv(path, argv);
}

EXPORT int execlp(const char *file, const char *arg, ...) {
    ARGV_FROM(argv, arg);
    va_end(ap);
    return execvp(file, argv);
}

EXPORT int execle(const char *path, const char *arg, ...) {
    ARGV_FROM(argv, arg);
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    return execve(path, argv, envp);
}
