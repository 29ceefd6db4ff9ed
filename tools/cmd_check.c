/*
 * cmd_check.c - `detheap check`: run a program N times in an identical
 * environment on detheap, with every call traced (and its stack recorded),
 * and say whether the runs made the same heap calls and got the same
 * addresses - or where they first part, why, and from which stack.
 *
 * Comparison.  Records of one heap slot are in call order (docs/TRACE.md),
 * while records of different slots interleave by buffer, so each slot's
 * sequence of calls is compared on its own and the earliest difference
 * (smallest call index, then lowest slot) is reported.  Processes (one
 * trace file each, DETHEAP_TRACE with %p) are paired in order of start.
 * Until the first difference both runs got the same addresses, so a call
 * that differs only in its result is detheap's fault; a different
 * operation, size or pointer argument is the program's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "symbolize.h"
#include "tool_util.h"
#include "trace_read.h"

static const char check_usage[] =
    "usage: detheap check [-n N] [--stdin FILE] [--keep] [--] CMD [ARGS...]\n"
    "\n"
    "Run CMD N times (default 2) on detheap in an identical environment\n"
    "(same environment, same directory, stdin from /dev/null unless\n"
    "--stdin), recording a trace with call stacks, and compare the runs.\n"
    "Prints 'deterministic: N runs, fingerprint X' (exit 0), or where the\n"
    "runs first part: the heap slot and index of the first differing call,\n"
    "what each run did there, whether the program made different calls or\n"
    "detheap gave different addresses, and each run's call stack (exit 1).\n"
    "The program's output goes to files in the scratch directory.\n"
    "\n"
    "  -n N           number of runs, 2..100\n"
    "  --stdin FILE   the programs' standard input\n"
    "  --keep         keep the scratch directory (traces, outputs); its\n"
    "                 name is printed\n";

typedef struct {
    uint8_t op, flags;
    uint16_t nframes;
    uint32_t frame_at; /* index into proc_t.frames */
    uint64_t a, b, c;
} call_t;

typedef struct {
    call_t *v;
    size_t n, cap;
} seq_t;

typedef struct {
    uint64_t pid, ppid;
    seq_t slots[DH_TRACE_MAX_SLOTS];
    uint64_t *frames;
    size_t nframes, frames_cap;
    const char *maps; /* inside the mapped file */
    size_t maps_len;
    bool have_end;
    uint64_t fingerprint;
    dh_trace_file_t file;
    char path[4200];
} proc_t;

typedef struct {
    proc_t **procs;
    int n;
    int status;
} run_t;

static int on_header(const dh_trace_header_t *h, void *user) {
    proc_t *p = user;
    p->pid = h->pid;
    p->ppid = h->ppid;
    return 0;
}

static int on_record(const dh_trace_rec_t *r, void *user) {
    proc_t *p = user;
    seq_t *s = &p->slots[r->slot];
    if (dh_trace_is_call(r->op)) {
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 256;
            call_t *v = realloc(s->v, cap * sizeof *v);
            if (v == NULL) return 1;
            s->v = v;
            s->cap = cap;
        }
        s->v[s->n++] = (call_t){r->op, r->flags, 0, 0, r->a, r->b, r->c};
    } else if (r->op == DH_TR_FRAMES && s->n > 0) {
        if (p->nframes + r->nframes > p->frames_cap) {
            size_t cap = (p->frames_cap + r->nframes) * 2;
            uint64_t *f = realloc(p->frames, cap * sizeof *f);
            if (f == NULL) return 1;
            p->frames = f;
            p->frames_cap = cap;
        }
        call_t *c = &s->v[s->n - 1];
        c->frame_at = (uint32_t)p->nframes;
        c->nframes = (uint16_t)r->nframes;
        memcpy(p->frames + p->nframes, r->frames, r->nframes * 8);
        p->nframes += r->nframes;
    } else if (r->op == DH_TR_MAPS) {
        p->maps = r->text;
        p->maps_len = r->text_len;
    } else if (r->op == DH_TR_END && r->slot == 0) {
        p->have_end = true;
        p->fingerprint = r->c;
    }
    return 0;
}

static void proc_free(proc_t *p) {
    for (unsigned s = 0; s < DH_TRACE_MAX_SLOTS; s++) free(p->slots[s].v);
    free(p->frames);
    dh_trace_unmap(&p->file);
    free(p);
}

static uint64_t root_pid;
static int cmp_start(const void *a, const void *b) {
    /* pids grow with start time, modulo wrap-around at pid_max (<= 2^22) */
    uint64_t x = ((*(proc_t *const *)a)->pid - root_pid) & ((1u << 22) - 1);
    uint64_t y = ((*(proc_t *const *)b)->pid - root_pid) & ((1u << 22) - 1);
    return (x > y) - (x < y);
}

/* Load every trace of a run's directory; -1 after an error message. */
static int load_run(const char *dir, run_t *run) {
    char **names;
    int n = dh_tool_list(dir, "trace.", &names);
    if (n < 0) return -1;
    run->procs = calloc((size_t)n + 1, sizeof *run->procs);
    run->n = 0;
    for (int i = 0; i < n; i++) {
        proc_t *p = calloc(1, sizeof *p);
        if (p == NULL) return -1;
        if ((size_t)snprintf(p->path, sizeof p->path, "%s/%s", dir,
                             names[i]) >= sizeof p->path) {
            fprintf(stderr, "detheap check: %s/%s: path too long\n", dir,
                    names[i]);
            return -1;
        }
        char err[512];
        dh_trace_visitor_t v = {on_header, on_record, p};
        int rc = dh_trace_map(p->path, &p->file, err, sizeof err);
        if (rc == 0) rc = dh_trace_parse(p->file.data, p->file.len, &v, err,
                                         sizeof err);
        if (rc != 0) {
            fprintf(stderr, "detheap check: %s: %s\n", p->path,
                    rc == -1 ? err : "out of memory");
            proc_free(p);
            dh_tool_list_free(names, n);
            return -1;
        }
        run->procs[run->n++] = p;
    }
    dh_tool_list_free(names, n);
    root_pid = 0;
    for (int i = 0; i < run->n; i++) {
        bool parent_traced = false;
        for (int j = 0; j < run->n; j++)
            parent_traced |= run->procs[j]->pid == run->procs[i]->ppid;
        if (!parent_traced && (root_pid == 0 || run->procs[i]->pid < root_pid))
            root_pid = run->procs[i]->pid;
    }
    qsort(run->procs, (size_t)run->n, sizeof *run->procs, cmp_start);
    return 0;
}

static void describe_call(const call_t *c, char *out, size_t cap) {
    char res[32];
    if (c->flags & 1)
        snprintf(res, sizeof res, "NULL");
    else
        snprintf(res, sizeof res, "0x%" PRIx64, c->c);
    switch (c->op) {
    case DH_TR_MALLOC:
        snprintf(out, cap, "malloc(%" PRIu64 ") -> %s", c->a, res);
        break;
    case DH_TR_CALLOC:
        snprintf(out, cap, "calloc(%" PRIu64 ", %" PRIu64 ") -> %s", c->a,
                 c->b, res);
        break;
    case DH_TR_REALLOC:
        snprintf(out, cap, "realloc(0x%" PRIx64 ", %" PRIu64 ") -> %s", c->b,
                 c->a, c->a == 0 ? "NULL (freed)" : res);
        break;
    case DH_TR_FREE:
        snprintf(out, cap, "free(0x%" PRIx64 ") [block of %" PRIu64 " B]",
                 c->b, c->a);
        break;
    default:
        snprintf(out, cap, "aligned_alloc(%" PRIu64 ", %" PRIu64 ") -> %s",
                 c->b, c->a, res);
    }
}

static void print_stack(int run_no, const proc_t *p, const call_t *c) {
    printf("call stack in run %d:\n", run_no);
    if (c == NULL || c->nframes == 0) {
        printf("  (no stack recorded)\n");
        return;
    }
    dh_symbolizer_t *sym = dh_sym_open(p->maps, p->maps ? p->maps_len : 0);
    int shown = 0;
    for (unsigned i = 0; i < c->nframes && shown < 16; i++) {
        char line[1024];
        bool own;
        dh_sym_describe(sym, p->frames[c->frame_at + i], line, sizeof line,
                        &own);
        if (own) continue; /* detheap's own frames say nothing */
        printf("  #%d %s\n", shown++, line);
    }
    if (p->maps == NULL) printf("  (no memory map in the trace: addresses "
                                "only)\n");
    dh_sym_close(sym);
}

static bool same_call(const call_t *x, const call_t *y) {
    return x->op == y->op && x->flags == y->flags && x->a == y->a &&
           x->b == y->b && x->c == y->c;
}

/* Earliest difference between two processes: slot and index, or false. */
static bool first_difference(const proc_t *x, const proc_t *y,
                             unsigned *slot, size_t *index) {
    bool found = false;
    for (unsigned s = 0; s < DH_TRACE_MAX_SLOTS; s++) {
        const seq_t *a = &x->slots[s], *b = &y->slots[s];
        size_t n = a->n < b->n ? a->n : b->n, k = 0;
        while (k < n && same_call(&a->v[k], &b->v[k])) k++;
        if (k == n && a->n == b->n) continue;
        if (!found || k < *index) {
            *slot = s;
            *index = k;
            found = true;
        }
    }
    return found;
}

static void report_difference(int j, const run_t *r1, const run_t *rj,
                              int pi, unsigned slot, size_t k) {
    const proc_t *x = r1->procs[pi], *y = rj->procs[pi];
    const seq_t *a = &x->slots[slot], *b = &y->slots[slot];
    const call_t *ca = k < a->n ? &a->v[k] : NULL;
    const call_t *cb = k < b->n ? &b->v[k] : NULL;
    printf("nondeterministic: runs 1 and %d first part at call %zu of heap "
           "slot %u", j, k + 1, slot);
    if (r1->n > 1)
        printf(" in process %d of %d (pids %" PRIu64 " and %" PRIu64 ")",
               pi + 1, r1->n, x->pid, y->pid);
    printf("\n");
    char d[256];
    const call_t *cs[2] = {ca, cb};
    const seq_t *ss[2] = {a, b};
    int no[2] = {1, j};
    for (int i = 0; i < 2; i++) {
        if (cs[i]) describe_call(cs[i], d, sizeof d);
        else snprintf(d, sizeof d, "no such call (the heap made %zu calls)",
                      ss[i]->n);
        printf("  run %d: %s\n", no[i], d);
    }
    bool program = ca == NULL || cb == NULL || ca->op != cb->op ||
                   ca->a != cb->a || ca->b != cb->b;
    if (program)
        printf("cause: the program itself made different calls (a "
               "different operation, size or pointer, with identical "
               "results up to here)\n");
    else
        printf("cause: the same call got different addresses: detheap gave "
               "different addresses: a detheap defect\n");
    print_stack(1, x, ca);
    print_stack(j, y, cb);
}

/* 0 when run j matches run 1; 1 after printing where they part. */
static int compare(int j, const run_t *r1, const run_t *rj) {
    int n = r1->n < rj->n ? r1->n : rj->n;
    for (int i = 0; i < n; i++) {
        unsigned slot = 0;
        size_t k = 0;
        if (first_difference(r1->procs[i], rj->procs[i], &slot, &k)) {
            report_difference(j, r1, rj, i, slot, k);
            return 1;
        }
    }
    if (r1->n != rj->n) {
        printf("nondeterministic: run 1 traced %d processes, run %d traced "
               "%d; the first %d made identical calls\n", r1->n, j, rj->n, n);
        printf("cause: the program itself made different calls (it started "
               "a different number of processes)\n");
        return 1;
    }
    return 0;
}

static int do_runs(char **cmd, int nruns, const char *in, const char *tmp,
                   run_t *runs) {
    char lib[4096], stack[4096];
    dh_tool_find_lib("libdetheap.so", lib, sizeof lib);
    dh_tool_find_lib("libdetheap_stack.so", stack, sizeof stack);
    const char *libs[] = {lib, stack, NULL};
    char *preload = dh_tool_preload(libs, true);
    char e_pre[8300], e_trace[4300], cur[4200], out[4300];
    snprintf(e_pre, sizeof e_pre, "LD_PRELOAD=%s", preload);
    free(preload);
    /* every run uses the same names, so the environments are identical */
    snprintf(cur, sizeof cur, "%s/cur", tmp);
    snprintf(e_trace, sizeof e_trace, "DETHEAP_TRACE=%s/trace.%%p", cur);
    snprintf(out, sizeof out, "%s/output", cur);
    const char *env[] = {e_pre, e_trace, "DETHEAP_STACKS=1", NULL};
    for (int i = 0; i < nruns; i++) {
        if (mkdir(cur, 0700) != 0) return -1;
        dh_spawn_t s = {env, in, out, true};
        runs[i].status = dh_tool_spawn(cmd, &s);
        char dir[4300];
        snprintf(dir, sizeof dir, "%s/run%d", tmp, i + 1);
        if (rename(cur, dir) != 0 || load_run(dir, &runs[i]) != 0) return -1;
        if (runs[i].n == 0) {
            fprintf(stderr, "detheap check: run %d wrote no trace (exit "
                    "status %d; is %s a dynamically linked program?)\n",
                    i + 1, runs[i].status, cmd[0]);
            return -1;
        }
    }
    return 0;
}

int dh_cmd_check(int argc, char **argv) {
    int nruns = 2, i = 1;
    const char *in = "/dev/null";
    bool keep = false;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (dh_tool_is_help(argv[i])) {
            fputs(check_usage, stdout);
            return DH_EXIT_OK;
        } else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 2 || n > 100) {
                fprintf(stderr, "detheap check: -n wants 2..100\n");
                return DH_EXIT_USAGE;
            }
            nruns = (int)n;
        } else if (strcmp(argv[i], "--stdin") == 0 && i + 1 < argc) {
            in = argv[++i];
        } else if (strcmp(argv[i], "--keep") == 0) {
            keep = true;
        } else {
            fprintf(stderr, "detheap check: unknown or incomplete option "
                    "'%s'\n\n%s", argv[i], check_usage);
            return DH_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "detheap check: no command given\n\n%s", check_usage);
        return DH_EXIT_USAGE;
    }
    char tmp[4096];
    if (dh_tool_mkdtemp(tmp, sizeof tmp) != 0) {
        perror("detheap check: temporary directory");
        return DH_EXIT_FAIL;
    }
    run_t *runs = calloc((size_t)nruns, sizeof *runs);
    int rc = DH_EXIT_FAIL;
    if (runs && do_runs(argv + i, nruns, in, tmp, runs) == 0) {
        rc = DH_EXIT_OK;
        for (int j = 1; j < nruns && rc == DH_EXIT_OK; j++)
            rc = compare(j + 1, &runs[0], &runs[j]);
        if (rc == DH_EXIT_OK) {
            const proc_t *p = runs[0].procs[0];
            if (p->have_end)
                printf("deterministic: %d runs, fingerprint %016" PRIx64 "\n",
                       nruns, p->fingerprint);
            else
                printf("deterministic: %d runs, fingerprint unknown (the "
                       "first process wrote no end record: it ran exec or "
                       "was killed)\n", nruns);
            size_t calls = 0;
            for (int k = 0; k < runs[0].n; k++)
                for (unsigned s = 0; s < DH_TRACE_MAX_SLOTS; s++)
                    calls += runs[0].procs[k]->slots[s].n;
            printf("  %d process%s, %zu heap calls per run, identical "
                   "calls and addresses%s\n", runs[0].n,
                   runs[0].n == 1 ? "" : "es", calls,
                   runs[0].n > 1 ? " (fingerprint of the first process)" : "");
        }
        for (int j = 1; j < nruns; j++)
            if (runs[j].status != runs[0].status)
                printf("note: exit status %d in run 1, %d in run %d\n",
                       runs[0].status, runs[j].status, j + 1);
    }
    for (int j = 0; runs && j < nruns; j++) {
        for (int k = 0; k < runs[j].n; k++) proc_free(runs[j].procs[k]);
        free(runs[j].procs);
    }
    free(runs);
    if (keep)
        printf("traces and outputs kept in %s\n", tmp);
    else
        dh_tool_rmtree(tmp);
    return rc;
}
