/*
 * cmd_run.c - `detheap run`: run a program on detheap (LD_PRELOAD), pass its
 * exit status through, and optionally show the heap's statistics or its
 * profile at exit.
 *
 * The library writes its statistics (the very report DETHEAP_STATS prints,
 * text or JSON) into a scratch directory, one file per process
 * (DETHEAP_STATS_FILE with %p), so the program's own stderr is never mixed
 * with them; they are copied out in order of pid.  --top and --leaks record
 * a trace with stacks and print what `detheap top` prints of it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "tool_util.h"

static const char run_usage[] =
    "usage: detheap run [--stats] [--json] [--top] [--leaks] [-n N]\n"
    "                   [--depth D] [-o FILE] [--trace FILE [--stacks]]\n"
    "                   [--base ADDR]\n"
    "                   [--] CMD [ARGS...]\n"
    "\n"
    "Run CMD with libdetheap.so preloaded (existing LD_PRELOAD entries are\n"
    "kept) and exit with CMD's exit status (128 + N if killed by signal N).\n"
    "\n"
    "  --stats        at exit, print the statistics DETHEAP_STATS=1 prints:\n"
    "                 per size class allocations, frees, live blocks, peak,\n"
    "                 bytes, free blocks, rounding; large blocks, totals,\n"
    "                 committed bytes, peak RSS, rejected frees, the\n"
    "                 fingerprint and one line per heap (thread); one report\n"
    "                 per process\n"
    "  --json         the same statistics as JSON (DETHEAP_STATS=json,\n"
    "                 docs/stats.schema.json), one object per process and\n"
    "                 line\n"
    "  --top          at exit, the allocation sites by bytes and by calls,\n"
    "                 with stacks (as detheap top)\n"
    "  --leaks        at exit, the blocks still live, by allocation site\n"
    "  -n N, --depth D  sites shown, frames per stack (detheap top)\n"
    "  --stacks       record each call's stack in the --trace file (for\n"
    "                 detheap top and report)\n"
    "  -o FILE        write the statistics or profile to FILE instead of\n"
    "                 stderr\n"
    "  --trace FILE   also record a trace (docs/TRACE.md); %p in FILE is\n"
    "                 replaced by the process id\n"
    "  --base ADDR    heap base address (DETHEAP_BASE; 0 = anywhere)\n";

typedef struct {
    bool stats, json, top, leaks, stacks;
    dh_top_opts_t top_opts;
    const char *out, *trace, *base;
    char **cmd;
} run_opts_t;

static int parse(int argc, char **argv, run_opts_t *o) {
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        bool has_arg = i + 1 < argc;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else if (dh_tool_is_help(a)) {
            fputs(run_usage, stdout);
            exit(DH_EXIT_OK);
        } else if (strcmp(a, "--stats") == 0) {
            o->stats = true;
        } else if (strcmp(a, "--json") == 0) {
            o->json = o->stats = true;
        } else if (strcmp(a, "--stacks") == 0) {
            o->stacks = true;
        } else if (strcmp(a, "--top") == 0) {
            o->top = true;
        } else if (strcmp(a, "--leaks") == 0) {
            o->leaks = true;
        } else if ((strcmp(a, "-n") == 0 || strcmp(a, "--depth") == 0) &&
                   has_arg) {
            long v = dh_tool_count_arg(argv[++i], a[1] == 'n' ? 100000 : 240);
            if (v < 0) {
                fprintf(stderr, "detheap run: bad %s '%s'\n", a, argv[i]);
                return -1;
            }
            if (a[1] == 'n') o->top_opts.top = (size_t)v;
            else o->top_opts.depth = (unsigned)v;
        } else if (strcmp(a, "-o") == 0 && has_arg) {
            o->out = argv[++i];
        } else if (strcmp(a, "--trace") == 0 && has_arg) {
            o->trace = argv[++i];
        } else if (strcmp(a, "--base") == 0 && has_arg) {
            o->base = argv[++i];
            char *end;
            strtoull(o->base, &end, 0);
            if (*o->base == 0 || *end != 0) {
                fprintf(stderr, "detheap run: bad --base '%s'\n", o->base);
                return -1;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "detheap run: unknown or incomplete option "
                    "'%s'\n\n%s", a, run_usage);
            return -1;
        } else {
            break;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "detheap run: no command given\n\n%s", run_usage);
        return -1;
    }
    o->cmd = argv + i;
    return 0;
}

/* The trace file of process pid: the user's template or ours. */
static void trace_of(const run_opts_t *o, const char *dir, const char *pid,
                     char *out, size_t cap) {
    if (o->trace == NULL) {
        snprintf(out, cap, "%s/trace.%s", dir, pid);
        return;
    }
    size_t n = 0;
    for (const char *s = o->trace; *s && n + 24 < cap; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            n += (size_t)snprintf(out + n, cap - n, "%s", pid);
            s++;
        } else {
            out[n++] = *s;
        }
    }
    out[n] = 0;
}

static int cmp_pid(const void *a, const void *b) {
    long x = strtol(*(char *const *)a + 6, NULL, 10); /* "stats." */
    long y = strtol(*(char *const *)b + 6, NULL, 10);
    return (x > y) - (x < y);
}

static int cmp_pid_trace(const void *a, const void *b) {
    return cmp_pid(a, b); /* "trace." is as long as "stats." */
}

/* The statistics files, in order of pid, copied to out. */
static void show_stats(FILE *out, const run_opts_t *o, const char *dir) {
    char **names;
    int n = dh_tool_list(dir, "stats.", &names);
    if (n <= 0)
        fprintf(stderr, "detheap run: no statistics were written: %s made "
                "no heap calls, or is not dynamically linked\n", o->cmd[0]);
    if (n > 1) qsort(names, (size_t)n, sizeof *names, cmp_pid);
    for (int i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        char *text = dh_tool_slurp(path, NULL);
        if (text == NULL) continue;
        if (i && !o->json) fputc('\n', out);
        fputs(text, out);
        free(text);
    }
    dh_tool_list_free(names, n);
}

/* The profile of every traced process, in order of pid. */
static void show_top(FILE *out, const run_opts_t *o, const char *dir) {
    if (o->trace && strstr(o->trace, "%p")) {
        fprintf(stderr, "detheap run: the traces are in %s (one per process): "
                "run detheap top on each\n", o->trace);
        return;
    }
    if (o->trace) {
        dh_top_opts_t t = o->top_opts;
        for (int k = 0; k < 2; k++) {
            if (!(k == 0 ? o->top : o->leaks)) continue;
            t.leaks = k == 1;
            dh_top_print(out, o->trace, &t);
        }
        return;
    }
    char **names;
    int n = dh_tool_list(dir, "trace.", &names);
    if (n <= 0)
        fprintf(stderr, "detheap run: no trace was written: %s made no heap "
                "calls, or is not dynamically linked\n", o->cmd[0]);
    if (n > 1) qsort(names, (size_t)n, sizeof *names, cmp_pid_trace);
    dh_top_opts_t t = o->top_opts;
    for (int k = 0; k < 2; k++) {
        if (!(k == 0 ? o->top : o->leaks)) continue;
        t.leaks = k == 1;
        for (int i = 0; i < n; i++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            char pid[32];
            snprintf(pid, sizeof pid, "%ld", strtol(names[i] + 6, NULL, 10));
            char tpath[4200];
            trace_of(o, dir, pid, tpath, sizeof tpath);
            dh_top_print(out, tpath, &t);
        }
    }
    dh_tool_list_free(names, n);
}

int dh_cmd_run(int argc, char **argv) {
    run_opts_t o = {0};
    o.top_opts = (dh_top_opts_t){10, 32, false, false};
    if (parse(argc, argv, &o) != 0) return DH_EXIT_USAGE;
    bool profile = o.top || o.leaks;
    char lib[4096], stack[4096], dir[4096] = "";
    dh_tool_find_lib("libdetheap.so", lib, sizeof lib);
    dh_tool_find_lib("libdetheap_stack.so", stack, sizeof stack);
    bool stacks = profile || (o.stacks && o.trace);
    const char *libs[] = {lib, stacks ? stack : NULL, NULL};
    char *preload = dh_tool_preload(libs, true);
    char e_pre[8192], e_stats_file[4200], e_trace[4200], e_base[256],
        e_stacks[64];
    const char *env[8];
    int ne = 0;
    snprintf(e_pre, sizeof e_pre, "LD_PRELOAD=%s", preload);
    env[ne++] = e_pre;
    if ((o.stats || profile) && dh_tool_mkdtemp(dir, sizeof dir) != 0) {
        perror("detheap run: temporary directory");
        return DH_EXIT_FAIL;
    }
    if (o.stats) {
        env[ne++] = o.json ? "DETHEAP_STATS=json" : "DETHEAP_STATS=1";
        snprintf(e_stats_file, sizeof e_stats_file,
                 "DETHEAP_STATS_FILE=%s/stats.%%p", dir);
        env[ne++] = e_stats_file;
    }
    if (o.trace || profile) {
        if (o.trace)
            snprintf(e_trace, sizeof e_trace, "DETHEAP_TRACE=%s", o.trace);
        else
            snprintf(e_trace, sizeof e_trace, "DETHEAP_TRACE=%s/trace.%%p",
                     dir);
        env[ne++] = e_trace;
    }
    if (stacks) {
        snprintf(e_stacks, sizeof e_stacks, "DETHEAP_STACKS=%u",
                 o.top_opts.depth);
        env[ne++] = e_stacks;
    }
    if (o.base) {
        snprintf(e_base, sizeof e_base, "DETHEAP_BASE=%s", o.base);
        env[ne++] = e_base;
    }
    env[ne] = NULL;
    dh_spawn_t s = {.env = env, .ignore_signals = true};
    int status = dh_tool_spawn(o.cmd, &s);
    free(preload);
    FILE *out = stderr;
    if ((o.stats || profile) && o.out && (out = fopen(o.out, "w")) == NULL)
        perror(o.out);
    if (out && o.stats) show_stats(out, &o, dir);
    if (out && profile) {
        if (o.stats) fputc('\n', out);
        show_top(out, &o, dir);
    }
    if (out && out != stderr) fclose(out);
    /* --trace FILE --stacks: a misuse the library reported (one line, no
     * stack: it does not symbolize) is shown again with its stack */
    if (!profile && o.stacks && o.trace && !strstr(o.trace, "%p")) {
        dh_top_opts_t m = o.top_opts;
        m.misuse = true;
        dh_top_print(stderr, o.trace, &m);
    }
    if (dir[0]) dh_tool_rmtree(dir);
    return status < 0 ? DH_EXIT_FAIL : status;
}
