/*
 * tool_util.h - what the subcommands of the detheap tool share: finding
 * the preload libraries, running a program with a modified environment,
 * scratch directories.
 */
#ifndef DH_TOOLS_TOOL_UTIL_H
#define DH_TOOLS_TOOL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Exit codes of the tool (docs/detheap.1). */
#define DH_EXIT_OK 0
#define DH_EXIT_FAIL 1       /* also: check found the runs differ */
#define DH_EXIT_USAGE 2
#define DH_EXIT_INCOMPLETE 3 /* check: some process left no usable trace */
#define DH_EXIT_CRASH 4      /* check: every run crashed the same way */

/* Where to find a library shipped with the tool (libdetheap.so,
 * libdetheap_stack.so): next to the executable (build tree), in ../lib
 * relative to it (installed), else the bare name, which the dynamic
 * linker resolves through its search path.  Writes into out. */
void dh_tool_find_lib(const char *name, char *out, size_t cap);

/* "lib1:lib2:<existing LD_PRELOAD>", malloc'd.  libs is NULL-terminated.
 * keep_existing = false drops the caller's LD_PRELOAD. */
char *dh_tool_preload(const char *const *libs, bool keep_existing);

/* How to start a program. */
typedef struct dh_spawn {
    const char *const *env;  /* "NAME=VALUE" to set, NULL-terminated; a
                                "NAME" without '=' unsets NAME */
    const char *stdin_path;  /* NULL: inherit */
    const char *output_path; /* NULL: inherit; else stdout+stderr go here */
    bool ignore_signals;     /* parent ignores SIGINT/SIGQUIT meanwhile */
    bool aslr_off;           /* personality(ADDR_NO_RANDOMIZE) in the child
                                (it exits 126 if that is refused) */
    int *wait_status;        /* NULL, or where the raw wait status goes */
} dh_spawn_t;

/* Whether a child can run with ASLR off; if not, why into why. */
bool dh_tool_aslr_off_works(char *why, size_t cap);

/* "exited with status 3", "died of SIGSEGV" for a raw wait status. */
void dh_tool_describe_status(int wait_status, char *out, size_t cap);

/* Run argv (PATH lookup) and wait for it.  Returns its exit status, 128 +
 * signal if it was killed, 127 if it could not be executed (the child says
 * why on stderr), or -1 if fork failed. */
int dh_tool_spawn(char *const *argv, const dh_spawn_t *s);

/* A fresh private directory under $TMPDIR (or /tmp); 0 or -1. */
int dh_tool_mkdtemp(char *out, size_t cap);

/* Remove a directory made by dh_tool_mkdtemp and everything in it. */
void dh_tool_rmtree(const char *dir);

/* The names (not paths) of the files in dir starting with prefix, sorted;
 * returns the count (names is a malloc'd array of malloc'd strings), or
 * -1. */
int dh_tool_list(const char *dir, const char *prefix, char ***names);
void dh_tool_list_free(char **names, int n);

/* Read a whole file into a malloc'd NUL-terminated buffer, or NULL. */
char *dh_tool_slurp(const char *path, size_t *len);

/* Whether a is -h or --help. */
bool dh_tool_is_help(const char *a);

#endif
