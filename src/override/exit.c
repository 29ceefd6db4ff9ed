/*
 * override/exit.c - _exit and _Exit, interposed by the shared (preload)
 * library only, so that a process leaving without exit() (a forked child
 * that calls _exit, as many do) still finishes its trace and prints its
 * statistics, as exit would (process.c, dh_proc_exit_work: once, and
 * nothing in a vfork child, which shares its parent's memory).  Then the
 * call goes on to libc.  Nothing else happens here.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include "../process.h"

#define EXPORT __attribute__((visibility("default")))

/* -DDH_OV_RENAMED (tests only): each function below is dhov_NAME (see
 * override/pthread.c). */
#ifdef DH_OV_RENAMED
#define _exit(...) dhov__exit(__VA_ARGS__)
#define _Exit(...) dhov__Exit(__VA_ARGS__)
#endif

typedef void (*exit_fn)(int);

static _Noreturn void leave(const char *name, int status) {
    dh_proc_exit_work();
    exit_fn f = (exit_fn)dlsym(RTLD_NEXT, name);
    if (f != NULL) f(status);
    abort(); /* libc without _exit: cannot happen with glibc or musl */
}

EXPORT void _exit(int status) { leave("_exit", status); }
EXPORT void _Exit(int status) { leave("_Exit", status); }
