/*
 * cmd_run.c - `detheap run`: run a program on detheap (LD_PRELOAD), pass its
 * exit status through, and optionally show the heap's statistics at exit.
 *
 * The library writes its statistics as JSON into a scratch directory (one
 * file per process, DETHEAP_STATS_FILE with %p), so the program's own
 * stderr is never mixed with them.  The text table adds what the library
 * does not count - per-class peaks and internal waste - from a trace of
 * the same run (heapmodel.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "heapmodel.h"
#include "tool_util.h"

static const char run_usage[] =
    "usage: detheap run [--stats] [--json] [-o FILE] [--trace FILE]\n"
    "                   [--base ADDR] [--] CMD [ARGS...]\n"
    "\n"
    "Run CMD with libdetheap.so preloaded (existing LD_PRELOAD entries are\n"
    "kept) and exit with CMD's exit status (128 + N if killed by signal N).\n"
    "\n"
    "  --stats        at exit, print a table per size class: allocations,\n"
    "                 frees, live blocks, peak, bytes, internal waste; large\n"
    "                 blocks, totals, rejected frees and the fingerprint\n"
    "                 (one table per process)\n"
    "  --json         the same statistics as JSON, one object per process\n"
    "                 and line\n"
    "  -o FILE        write the statistics to FILE instead of stderr\n"
    "  --trace FILE   also record a trace (docs/TRACE.md); %p in FILE is\n"
    "                 replaced by the process id\n"
    "  --base ADDR    heap base address (DETHEAP_BASE; 0 = anywhere)\n";

typedef struct {
    bool stats, json;
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

/* The number after "KEY": in s, searching from s up to end. */
static uint64_t jnum(const char *s, const char *end, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    size_t pl = strlen(pat);
    for (const char *p = s; p + pl <= end; p++)
        if (memcmp(p, pat, pl) == 0) return strtoull(p + pl, NULL, 10);
    return 0;
}

/* The string value of key in [s, end), copied into out (at most cap - 1
 * bytes), or "" if it is not there. */
static void jstr(const char *s, const char *end, const char *key, char *out,
                 size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": \"", key);
    size_t pl = strlen(pat), n = 0;
    out[0] = 0;
    for (const char *p = s; p + pl <= end; p++)
        if (memcmp(p, pat, pl) == 0) {
            for (p += pl; p < end && *p != '"' && n + 1 < cap; p++)
                out[n++] = *p;
            out[n] = 0;
            return;
        }
}

/* The "heaps" array of a report: one line per heap of the process, as
 * DETHEAP_STATS=1 prints them. */
static void print_heaps(FILE *out, const char *json) {
    const char *p = strstr(json, "\"heaps\": [");
    if (p == NULL) return;
    fprintf(out, "%-6s %-5s %-6s %-9s %-8s %-16s %12s %16s %s\n", "heap",
            "depth", "index", "kind", "tid", "thread", "calls", "fingerprint",
            "retired");
    while ((p = strchr(p, '{')) != NULL) {
        const char *e = strchr(p, '}');
        if (e == NULL) break;
        char kind[16], name[32], fp[24];
        jstr(p, e, "kind", kind, sizeof kind);
        jstr(p, e, "thread", name, sizeof name);
        jstr(p, e, "fingerprint", fp, sizeof fp);
        fprintf(out,
                "%-6" PRIu64 " %-5" PRIu64 " %-6" PRIu64 " %-9s %-8" PRIu64
                " %-16s %12" PRIu64 " %16s %" PRIu64 " B%s\n",
                jnum(p, e, "slot"), jnum(p, e, "depth"), jnum(p, e, "index"),
                kind, jnum(p, e, "tid"), name[0] ? name : "-",
                jnum(p, e, "calls"), fp, jnum(p, e, "retired_bytes"),
                strstr(p, "\"timing_dependent\": true") &&
                        strstr(p, "\"timing_dependent\": true") < e
                    ? " (timing-dependent: its range ran out)"
                    : "");
        p = e + 1;
    }
}

static int model_visit(const dh_trace_rec_t *r, void *user) {
    return dh_model_apply(user, r) ? 0 : 1;
}

/* Model of the process's trace, if one was recorded; false if none. */
static bool load_model(const char *path, dh_model_t *m) {
    dh_trace_file_t f;
    char err[256];
    if (dh_trace_map(path, &f, err, sizeof err) != 0) return false;
    dh_trace_visitor_t v = {NULL, model_visit, m};
    int rc = dh_trace_parse(f.data, f.len, &v, err, sizeof err);
    dh_trace_unmap(&f);
    if (rc == -1)
        fprintf(stderr, "detheap run: %s: %s (peaks not shown)\n", path, err);
    return rc == 0;
}

static void print_table(FILE *out, const char *json, const dh_model_t *m,
                        bool have_model) {
    const char *end = json + strlen(json);
    fprintf(out, "detheap: heap of process %" PRIu64 "\n",
            jnum(json, end, "pid"));
    fprintf(out, "%-6s %9s %9s %9s %9s %12s %12s %10s\n", "class", "allocs",
            "frees", "live", "peak", "live bytes", "peak bytes", "waste");
    const char *cls = strstr(json, "\"classes\": [");
    for (int c = 0; cls && c < DH_NUM_CLASSES; c++) {
        cls = strchr(cls + 1, '{');
        const char *ce = cls ? strchr(cls, '}') : NULL;
        if (ce == NULL) break;
        uint64_t allocs = jnum(cls, ce, "allocs");
        uint64_t live = jnum(cls, ce, "live");
        if (allocs == 0) continue;
        uint64_t size = jnum(cls, ce, "size");
        const dh_model_class_t *k = &m->cls[c];
        char peak[24] = "-", pbytes[24] = "-", waste[24] = "-";
        if (have_model) {
            snprintf(peak, sizeof peak, "%" PRIu64, k->peak);
            snprintf(pbytes, sizeof pbytes, "%" PRIu64, k->peak_bytes);
            snprintf(waste, sizeof waste, "%" PRIu64,
                     k->live_bytes - k->requested);
        }
        fprintf(out, "%-6s %9" PRIu64 " %9" PRIu64 " %9" PRIu64
                " %9s %12" PRIu64 " %12s %10s\n", dh_model_class_name(c),
                allocs, jnum(cls, ce, "frees"), live, peak, live * size,
                pbytes, waste);
    }
    const char *lg = strstr(json, "\"large\": {");
    const char *le = lg ? strchr(lg, '}') : NULL;
    if (lg && le)
        fprintf(out, "%-6s %9" PRIu64 " %9" PRIu64 " %9" PRIu64
                " %9s %12" PRIu64 "\n", "large", jnum(lg, le, "allocs"),
                jnum(lg, le, "frees"), jnum(lg, le, "live"),
                have_model ? "" : "-", jnum(lg, le, "live_bytes"));
    const char *top = le ? le : json; /* totals follow the large object */
    fprintf(out, "total: %" PRIu64 " allocations, %" PRIu64 " frees, %"
            PRIu64 " live blocks (%" PRIu64 " B), peak %" PRIu64 " B live\n",
            jnum(top, end, "alloc_count"), jnum(top, end, "free_count"),
            jnum(top, end, "live_count"), jnum(top, end, "live_bytes"),
            jnum(top, end, "peak_live_bytes"));
    fprintf(out, "memory: %" PRIu64 " B carved, %" PRIu64 " B committed, %"
            PRIu64 " failed allocations\n", jnum(top, end, "storage_bytes"),
            jnum(top, end, "committed_bytes"),
            jnum(top, end, "failed_allocs"));
    fprintf(out, "rejected frees: %" PRIu64, jnum(top, end, "rejected_frees"));
    static const char *const codes[] = {"double_free", "not_a_block",
                                        "foreign", "misaligned", "wrong_heap"};
    const char *rj = strstr(top, "\"rejected\": {");
    const char *re = rj ? strchr(rj, '}') : NULL;
    for (int i = 0; re && i < 5; i++) {
        uint64_t k = jnum(rj, re, codes[i]);
        if (k) fprintf(out, ", %s %" PRIu64, codes[i], k);
    }
    fputc('\n', out);
    const char *fp = strstr(json, "\"fingerprint\": \"");
    fprintf(out, "fingerprint: %.16s\n", fp ? fp + 16 : "?");
    if (!have_model)
        fprintf(out, "(peak and waste need the trace; not available)\n");
    print_heaps(out, json);
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

static int show_stats(const run_opts_t *o, const char *dir) {
    FILE *out = stderr;
    if (o->out && (out = fopen(o->out, "w")) == NULL) {
        perror(o->out);
        return -1;
    }
    char **names;
    int n = dh_tool_list(dir, "stats.", &names);
    if (n <= 0)
        fprintf(stderr, "detheap run: no statistics were written: %s made "
                "no heap calls, or is not dynamically linked\n", o->cmd[0]);
    if (n > 1) qsort(names, (size_t)n, sizeof *names, cmp_pid);
    for (int i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        char *json = dh_tool_slurp(path, NULL);
        if (json == NULL) continue;
        if (o->json) {
            fputs(json, out);
        } else {
            char pid[32];
            snprintf(pid, sizeof pid, "%ld", strtol(names[i] + 6, NULL, 10));
            char tpath[4200];
            trace_of(o, dir, pid, tpath, sizeof tpath);
            dh_model_t m = {0};
            bool have = load_model(tpath, &m);
            if (i) fputc('\n', out);
            print_table(out, json, &m, have);
            dh_model_free(&m);
        }
        free(json);
    }
    dh_tool_list_free(names, n);
    if (out != stderr) fclose(out);
    return 0;
}

int dh_cmd_run(int argc, char **argv) {
    run_opts_t o = {0};
    if (parse(argc, argv, &o) != 0) return DH_EXIT_USAGE;
    char lib[4096], dir[4096] = "";
    dh_tool_find_lib("libdetheap.so", lib, sizeof lib);
    const char *libs[] = {lib, NULL};
    char *preload = dh_tool_preload(libs, true);
    char e_pre[8192], e_stats_file[4200], e_trace[4200], e_base[256];
    const char *env[8];
    int ne = 0;
    snprintf(e_pre, sizeof e_pre, "LD_PRELOAD=%s", preload);
    env[ne++] = e_pre;
    if (o.stats) {
        if (dh_tool_mkdtemp(dir, sizeof dir) != 0) {
            perror("detheap run: temporary directory");
            return DH_EXIT_FAIL;
        }
        env[ne++] = "DETHEAP_STATS=json";
        snprintf(e_stats_file, sizeof e_stats_file,
                 "DETHEAP_STATS_FILE=%s/stats.%%p", dir);
        env[ne++] = e_stats_file;
    }
    if (o.trace || (o.stats && !o.json)) {
        if (o.trace)
            snprintf(e_trace, sizeof e_trace, "DETHEAP_TRACE=%s", o.trace);
        else
            snprintf(e_trace, sizeof e_trace, "DETHEAP_TRACE=%s/trace.%%p",
                     dir);
        env[ne++] = e_trace;
    }
    if (o.base) {
        snprintf(e_base, sizeof e_base, "DETHEAP_BASE=%s", o.base);
        env[ne++] = e_base;
    }
    env[ne] = NULL;
    dh_spawn_t s = {env, NULL, NULL, true};
    int status = dh_tool_spawn(o.cmd, &s);
    free(preload);
    if (o.stats) {
        show_stats(&o, dir);
        dh_tool_rmtree(dir);
    }
    return status < 0 ? DH_EXIT_FAIL : status;
}
