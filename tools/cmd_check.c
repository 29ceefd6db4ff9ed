/*
 * cmd_check.c - `detheap check`: run a program N times in an identical
 * environment on detheap, with every call traced (and its stack recorded),
 * and say whether the runs made the same heap calls, got the same
 * addresses and ended the same way - or where they first part, why, and
 * from which stack.  It never says "deterministic" about what it could
 * not see: a process whose trace is missing makes the verdict incomplete.
 *
 * Comparison.  Records of one heap slot are in call order (docs/TRACE.md),
 * while records of different slots interleave by buffer, so each slot's
 * sequence of calls is compared on its own and the earliest difference
 * (smallest call index, then lowest slot) is reported.  Program images
 * (one per process, and one more per exec, tracedb.h) are paired in order
 * of start.  Until the first difference both runs got the same addresses,
 * so a call that differs only in its result is detheap's fault - unless
 * DETHEAP_REMOTE_FREE=owner was in force, whose addresses depend on timing
 * by design; a different operation, size or pointer argument is the
 * program's, and the runs are then repeated with ASLR off to see whether
 * the program's calls depend on non-heap addresses.
 *
 * Missing traces.  Every traced process says on a descriptor inherited
 * from the tool (DETHEAP_TRACE_LOG) whether it could open and write its
 * trace; the programs' output is searched for the same messages, for a
 * process that closed the descriptor.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands.h"
#include "sites.h"
#include "symbolize.h"
#include "tool_util.h"
#include "tracedb.h"

static const char check_usage[] =
    "usage: detheap check [-n N] [--stdin FILE] [--depth D] [--aslr=off]\n"
    "                     [--keep] [--] CMD [ARGS...]\n"
    "\n"
    "Run CMD N times (default 2) on detheap in an identical environment\n"
    "(same environment, same directory, stdin from /dev/null unless\n"
    "--stdin), recording a trace with call stacks, and compare the runs:\n"
    "their heap calls, the addresses they got and how they ended.\n"
    "\n"
    "  deterministic: ...        exit 0: identical calls and addresses, same\n"
    "                            exit status\n"
    "  nondeterministic: ...     exit 1: where the runs first part, whose\n"
    "                            fault it is, each run's call stack; or the\n"
    "                            runs ended differently\n"
    "  incomplete: ...           exit 3: some process's trace is missing or\n"
    "                            could not be written (it is named)\n"
    "  deterministic crash: ...  exit 4: every run died of the same signal\n"
    "                            after the same calls\n"
    "\n"
    "When the program itself made different calls, the runs are repeated\n"
    "with ASLR off, to say whether the calls depend on stack, library or\n"
    "mmap addresses.  The program's output goes to the scratch directory.\n"
    "\n"
    "  -n N           number of runs, 2..100\n"
    "  --stdin FILE   the programs' standard input\n"
    "  --depth D      frames recorded and shown per stack (default 32)\n"
    "  --aslr=off     run every run with ASLR off (personality\n"
    "                 ADDR_NO_RANDOMIZE), as setarch -R does\n"
    "  --keep         keep the scratch directory (traces, outputs); its\n"
    "                 name is printed\n";

typedef struct {
    dh_tdb_t *dbs;            /* one per trace file */
    int ndb;
    dh_tdb_image_t **procs;   /* every program image, in order of start */
    int n;
    int status;               /* raw wait status */
    char **problems;          /* processes whose trace is not usable */
    int nproblems;
    char dir[4300];
} run_t;

typedef struct {
    char **cmd;
    int nruns;
    const char *in;
    unsigned depth;
    bool aslr_off;
    const char *tmp;
    int log_fd;               /* DETHEAP_TRACE_LOG, one file for all runs */
    char e_log[96];
} check_t;

static uint64_t root_pid;
static int cmp_start(const void *a, const void *b) {
    const dh_tdb_image_t *x = *(dh_tdb_image_t *const *)a;
    const dh_tdb_image_t *y = *(dh_tdb_image_t *const *)b;
    /* pids grow with start time, modulo wrap-around at pid_max (<= 2^22) */
    uint64_t px = (x->pid - root_pid) & ((1u << 22) - 1);
    uint64_t py = (y->pid - root_pid) & ((1u << 22) - 1);
    if (px != py) return (px > py) - (px < py);
    return (x->exec_no > y->exec_no) - (x->exec_no < y->exec_no);
}

static void add_problem(run_t *run, const char *fmt, const char *a,
                        const char *b) {
    char line[8600];
    snprintf(line, sizeof line, fmt, a, b);
    for (int i = 0; i < run->nproblems; i++)
        if (strcmp(run->problems[i], line) == 0) return;
    char **v = realloc(run->problems, (size_t)(run->nproblems + 1) *
                                          sizeof *v);
    if (v == NULL) return;
    run->problems = v;
    v[run->nproblems++] = strdup(line);
}

static bool traced(const run_t *run, uint64_t pid) {
    for (int i = 0; i < run->n; i++)
        if (run->procs[i]->pid == pid) return true;
    return false;
}

/* The log lines the run's processes wrote ("open|exec|fail|writefail PID
 * PPID ERRNO COMM NAME"), from offset `from` of the log. */
static void read_log(run_t *run, const char *log, long from) {
    char *text = dh_tool_slurp(log, NULL);
    if (text == NULL) return;
    char *save = NULL;
    for (char *line = strtok_r(text + from, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char what[16], comm[64];
        unsigned long long pid, ppid;
        int err, at = 0;
        if (sscanf(line, "%15s %llu %llu %d %63s %n", what, &pid, &ppid, &err,
                   comm, &at) < 5 || at == 0)
            continue;
        char who[200], why[4400];
        snprintf(who, sizeof who, "process %llu (%s, child of %llu)", pid,
                 comm, ppid);
        if (strcmp(what, "fail") == 0) {
            snprintf(why, sizeof why, "could not open its trace %s: %s",
                     line + at, strerror(err));
            add_problem(run, "%s %s", who, why);
        } else if (strcmp(what, "writefail") == 0) {
            snprintf(why, sizeof why, "could not write all of its trace %s: "
                     "%s", line + at, strerror(err));
            add_problem(run, "%s %s", who, why);
        } else if (!traced(run, pid)) {
            snprintf(why, sizeof why, "opened its trace %s, which is missing "
                     "or empty", line + at);
            add_problem(run, "%s %s", who, why);
        }
    }
    free(text);
}

/* The same failures as the processes printed them, for a process that had
 * closed the log descriptor. */
static void scan_output(run_t *run, const char *output) {
    char *text = dh_tool_slurp(output, NULL);
    if (text == NULL) return;
    const char *pat = "detheap: process ";
    for (char *p = strstr(text, pat); p; p = strstr(p + 1, pat)) {
        unsigned long long pid;
        int at = 0;
        if (sscanf(p, "detheap: process %llu: cannot open the DETHEAP_TRACE "
                   "file %n", &pid, &at) != 1 || at == 0)
            continue;
        char *end = strstr(p + at, "; not tracing");
        if (end == NULL) continue;
        char who[64], why[4400];
        snprintf(who, sizeof who, "process %llu", pid);
        snprintf(why, sizeof why, "could not open its trace %.*s",
                 (int)(end - (p + at)), p + at);
        /* already known from the log? */
        bool known = false;
        for (int i = 0; i < run->nproblems; i++)
            known |= strncmp(run->problems[i], who, strlen(who)) == 0 &&
                     run->problems[i][strlen(who)] == ' ';
        if (!known) add_problem(run, "%s %s", who, why);
    }
    if (strstr(text, "detheap: writing the DETHEAP_TRACE file failed") &&
        run->nproblems == 0)
        add_problem(run, "%s%s", "a process could not write all of its trace",
                    "");
    free(text);
}

/* A traced program image that wrote no end record (exit, _exit and exec
 * write one) was killed or left some other way: its last calls may never
 * have reached its trace.  Not a problem for the program the run started,
 * when the run died of a signal: that is the crash the verdict reports. */
static void no_end_problems(run_t *run) {
    for (int i = 0; i < run->n; i++) {
        const dh_tdb_image_t *im = run->procs[i];
        if (im->have_end) continue;
        if (im->pid == root_pid && WIFSIGNALED(run->status)) continue;
        char who[64];
        snprintf(who, sizeof who, "process %llu", (unsigned long long)im->pid);
        add_problem(run, "%s %s", who,
                    "wrote no end record: it was killed, or left without "
                    "exit, _exit or exec, so its last heap calls may be "
                    "missing from its trace");
    }
}

/* Load every trace of a run's directory; -1 after an error message. */
static int load_run(run_t *run) {
    char **names;
    int n = dh_tool_list(run->dir, "trace.", &names);
    if (n < 0) return -1;
    run->dbs = calloc((size_t)n + 1, sizeof *run->dbs);
    if (run->dbs == NULL) return -1;
    for (int i = 0; i < n; i++) {
        char path[8700], err[512];
        snprintf(path, sizeof path, "%s/%s", run->dir, names[i]);
        int rc = dh_tdb_load(path, &run->dbs[run->ndb], err, sizeof err);
        if (rc == -1 && strstr(err, "truncated header")) {
            add_problem(run, "%s: %s", names[i], "empty or cut short");
            continue;
        }
        if (rc != 0) {
            fprintf(stderr, "detheap check: %s: %s\n", path,
                    rc == -1 ? err : "out of memory");
            dh_tool_list_free(names, n);
            return -1;
        }
        run->ndb++;
    }
    dh_tool_list_free(names, n);
    int total = 0;
    for (int i = 0; i < run->ndb; i++) total += run->dbs[i].n;
    run->procs = calloc((size_t)total + 1, sizeof *run->procs);
    if (run->procs == NULL) return -1;
    for (int i = 0; i < run->ndb; i++)
        for (int k = 0; k < run->dbs[i].n; k++)
            run->procs[run->n++] = run->dbs[i].images[k];
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

static void free_run(run_t *run) {
    for (int i = 0; i < run->ndb; i++) dh_tdb_free(&run->dbs[i]);
    free(run->dbs);
    free(run->procs);
    for (int i = 0; i < run->nproblems; i++) free(run->problems[i]);
    free(run->problems);
    memset(run, 0, sizeof *run);
}

static void describe_call(const dh_tdb_call_t *c, char *out, size_t cap) {
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

static void print_stack(const char *title, const dh_tdb_image_t *p,
                        const dh_tdb_call_t *c, unsigned depth) {
    printf("%s:\n", title);
    unsigned nf = 0;
    const uint64_t *all = c ? dh_tdb_frames(p, c, &nf) : NULL;
    if (all == NULL) {
        printf("  (no stack recorded)\n");
        return;
    }
    dh_sites_t s;
    dh_sites_init(&s, p, depth);
    const uint64_t *f;
    unsigned n = dh_sites_program_frames(&s, all, nf, &f);
    dh_symbolizer_t *sym = dh_sym_open(p->maps, p->maps ? p->maps_len : 0);
    dh_sites_print_stack(stdout, sym, f, n, "  ");
    if (p->maps == NULL)
        printf("  (no memory map in the trace: the process did not exit "
               "normally; addresses only)\n");
    dh_sym_close(sym);
    dh_sites_free(&s);
}

static bool same_call(const dh_tdb_call_t *x, const dh_tdb_call_t *y) {
    return x->op == y->op && x->flags == y->flags && x->a == y->a &&
           x->b == y->b && x->c == y->c;
}

static bool same_args(const dh_tdb_call_t *x, const dh_tdb_call_t *y) {
    return x && y && x->op == y->op && x->a == y->a && x->b == y->b;
}

/* Earliest difference between two images: slot and index, or false. */
static bool first_difference(const dh_tdb_image_t *x,
                             const dh_tdb_image_t *y, unsigned *slot,
                             size_t *index) {
    bool found = false;
    unsigned ns = x->nslots > y->nslots ? x->nslots : y->nslots;
    for (unsigned s = 0; s < ns; s++) {
        const dh_tdb_slot_t *a = &x->slots[s], *b = &y->slots[s];
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

/* Whether some slot's first difference is in results only. */
static bool some_result_differs(const dh_tdb_image_t *x,
                                const dh_tdb_image_t *y) {
    unsigned ns = x->nslots < y->nslots ? x->nslots : y->nslots;
    for (unsigned s = 0; s < ns; s++) {
        const dh_tdb_slot_t *a = &x->slots[s], *b = &y->slots[s];
        size_t n = a->n < b->n ? a->n : b->n, k = 0;
        while (k < n && same_call(&a->v[k], &b->v[k])) k++;
        if (k < n && same_args(&a->v[k], &b->v[k])) return true;
    }
    return false;
}

/* Where two runs first part, or -1 if their images all match (then
 * *image is how many matched). */
typedef struct {
    int image;       /* index of the images that differ; -1: none */
    unsigned slot;
    size_t index;
    bool count;      /* the runs have different numbers of images */
} diff_t;

static diff_t compare_runs(const run_t *r1, const run_t *rj) {
    diff_t d = {-1, 0, 0, false};
    int n = r1->n < rj->n ? r1->n : rj->n;
    for (int i = 0; i < n; i++)
        if (first_difference(r1->procs[i], rj->procs[i], &d.slot, &d.index)) {
            d.image = i;
            return d;
        }
    d.count = r1->n != rj->n;
    return d;
}

static void thread_note(const dh_tdb_image_t *x, const dh_tdb_image_t *y,
                        unsigned slot) {
    const dh_tdb_slot_t *a = &x->slots[slot], *b = &y->slots[slot];
    if (a->tid == 0 && b->tid == 0) return;
    const char *name = a->name[0] ? a->name : b->name;
    printf("  heap slot %u is thread %s%s%s(tid %" PRIu64 " in run 1, %"
           PRIu64 " in the other)\n", slot, name[0] ? "'" : "", name,
           name[0] ? "' " : "", a->tid, b->tid);
}

/* Print where runs 1 and j part; returns whether the program's own calls
 * differ (as opposed to the results). */
static bool report_difference(int j, const run_t *r1, const run_t *rj,
                              const diff_t *d, unsigned depth) {
    if (d->image < 0) {
        printf("nondeterministic: run 1 traced %d program images, run %d "
               "traced %d; the first %d made identical calls\n", r1->n, j,
               rj->n, r1->n < rj->n ? r1->n : rj->n);
        printf("cause: the program itself made different calls (it started "
               "a different number of processes or ran exec a different "
               "number of times)\n");
        return true;
    }
    const dh_tdb_image_t *x = r1->procs[d->image], *y = rj->procs[d->image];
    const dh_tdb_slot_t *a = &x->slots[d->slot], *b = &y->slots[d->slot];
    size_t k = d->index;
    const dh_tdb_call_t *ca = k < a->n ? &a->v[k] : NULL;
    const dh_tdb_call_t *cb = k < b->n ? &b->v[k] : NULL;
    printf("nondeterministic: runs 1 and %d first part at call %zu of heap "
           "slot %u", j, k + 1, d->slot);
    if (r1->n > 1)
        printf(" in program %d of %d (pids %" PRIu64 " and %" PRIu64 "%s)",
               d->image + 1, r1->n, x->pid, y->pid,
               x->exec_no ? ", after exec" : "");
    printf("\n");
    const dh_tdb_call_t *cs[2] = {ca, cb};
    const dh_tdb_slot_t *ss[2] = {a, b};
    int no[2] = {1, j};
    for (int i = 0; i < 2; i++) {
        char desc[256];
        if (cs[i]) describe_call(cs[i], desc, sizeof desc);
        else snprintf(desc, sizeof desc, "no such call (the heap made %zu "
                      "calls)", ss[i]->n);
        printf("  run %d: %s\n", no[i], desc);
    }
    thread_note(x, y, d->slot);
    bool program = !same_args(ca, cb);
    bool owner = (x->flags | y->flags) & DH_TRACE_FLAG_OWNER;
    if (owner && (!program || some_result_differs(x, y)))
        printf("cause: DETHEAP_REMOTE_FREE=owner is in force: a block freed "
               "by another thread goes back to the heap it came from when "
               "that heap's thread next allocates, so that heap's addresses "
               "depend on timing (docs/OPTIONS.md); with the default, keep, "
               "they do not.  Not a detheap defect.\n");
    else if (program)
        printf("cause: the program itself made different calls (a "
               "different operation, size or pointer, with identical "
               "results up to here)\n");
    else
        printf("cause: the same call got different addresses: detheap gave "
               "different addresses: a detheap defect\n");
    char title[64];
    snprintf(title, sizeof title, "call stack in run 1");
    print_stack(title, x, ca, depth);
    snprintf(title, sizeof title, "call stack in run %d", j);
    print_stack(title, y, cb, depth);
    return program && !owner;
}

/* One run of the program into tmp/NAME. */
static int do_run(const check_t *ck, const char *name, bool aslr_off,
                  run_t *run) {
    char lib[4096], stack[4096];
    dh_tool_find_lib("libdetheap.so", lib, sizeof lib);
    dh_tool_find_lib("libdetheap_stack.so", stack, sizeof stack);
    const char *libs[] = {lib, stack, NULL};
    char *preload = dh_tool_preload(libs, true);
    char e_pre[8300], e_trace[4300], e_stacks[64], cur[4200], out[4300];
    snprintf(e_pre, sizeof e_pre, "LD_PRELOAD=%s", preload);
    free(preload);
    /* every run uses the same names, so the environments are identical */
    snprintf(cur, sizeof cur, "%s/cur", ck->tmp);
    snprintf(e_trace, sizeof e_trace, "DETHEAP_TRACE=%s/trace.%%p", cur);
    snprintf(e_stacks, sizeof e_stacks, "DETHEAP_STACKS=%u", ck->depth);
    snprintf(out, sizeof out, "%s/output", cur);
    const char *env[] = {e_pre, e_trace, e_stacks, ck->e_log, NULL};
    if (mkdir(cur, 0700) != 0) return -1;
    char log[4300];
    snprintf(log, sizeof log, "%s/log", ck->tmp);
    struct stat st;
    long from = stat(log, &st) == 0 ? (long)st.st_size : 0;
    dh_spawn_t s = {env, ck->in, out, true, aslr_off, &run->status};
    if (dh_tool_spawn(ck->cmd, &s) < 0) return -1;
    snprintf(run->dir, sizeof run->dir, "%s/%s", ck->tmp, name);
    if (rename(cur, run->dir) != 0 || load_run(run) != 0) return -1;
    read_log(run, log, from);
    char moved[4400];
    snprintf(moved, sizeof moved, "%s/output", run->dir);
    scan_output(run, moved);
    no_end_problems(run);
    if (run->n == 0 && run->nproblems == 0) {
        char how[64];
        dh_tool_describe_status(run->status, how, sizeof how);
        fprintf(stderr, "detheap check: %s wrote no trace (it %s; is %s a "
                "dynamically linked program?)\n", name, how, ck->cmd[0]);
        return -1;
    }
    return 0;
}

/* Repeat two runs with ASLR off and say what that shows. */
/* The runs differ in the program's own calls: three more runs with ASLR
 * off say whether addresses are the cause.  A threaded program's runs may
 * also agree by chance (thread timing is not fixed by ASLR): said. */
#define ASLR_RUNS 3
static void try_without_aslr(const check_t *ck, bool threaded) {
    char why[200];
    if (!dh_tool_aslr_off_works(why, sizeof why)) {
        printf("ASLR off: not tried: %s\n", why);
        return;
    }
    run_t r[ASLR_RUNS];
    memset(r, 0, sizeof r);
    int done = 0;
    diff_t d = {-1, 0, 0, false};
    while (done < ASLR_RUNS) {
        char name[32];
        snprintf(name, sizeof name, "aslr-off%d", done + 1);
        if (do_run(ck, name, true, &r[done]) != 0) break;
        if (++done > 1) {
            d = compare_runs(&r[0], &r[done - 1]);
            if (d.image >= 0 || d.count) break;
        }
    }
    if (done == ASLR_RUNS && d.image < 0 && !d.count) {
        printf("with ASLR off (personality ADDR_NO_RANDOMIZE) three more "
               "runs made identical calls and got identical addresses: "
               "the program's calls depend on non-heap addresses (stack, "
               "libraries, mmap), which detheap does not fix.  Check it "
               "with --aslr=off (or run it under setarch -R).\n");
        if (threaded)
            printf("  (its threads' calls can also agree by chance: their "
                   "order may depend on timing, which ASLR does not fix; "
                   "--aslr=off -n 10 tells)\n");
    } else if (done > 1 && d.image < 0) {
        printf("with ASLR off the runs still differ (in the number of "
               "processes): the cause is not only addresses\n");
    } else if (done > 1) {
        printf("with ASLR off the runs still part, at call %zu of heap "
               "slot %u: the cause is not (only) addresses - time, the "
               "pid, random numbers, input or thread timing\n",
               d.index + 1, d.slot);
    }
    for (int i = 0; i < done; i++) free_run(&r[i]);
}

/* Whether the first program image made calls on more than one heap. */
static bool threaded(const run_t *run) {
    if (run->n == 0) return false;
    const dh_tdb_image_t *im = run->procs[0];
    unsigned used = 0;
    for (uint32_t s = 0; s < im->nslots && used < 2; s++)
        used += im->slots[s].n > 0;
    return used > 1;
}

static void print_problems(const char *lead, int run_no, const run_t *run) {
    for (int i = 0; i < run->nproblems; i++)
        printf("%s run %d: %s\n", lead, run_no, run->problems[i]);
}

static size_t calls_of(const run_t *run) {
    size_t n = 0;
    for (int k = 0; k < run->n; k++) n += dh_tdb_calls(run->procs[k]);
    return n;
}

/* Every run made the same calls: say how they ended. */
static int verdict_same(const check_t *ck, run_t *runs) {
    int st = runs[0].status;
    for (int j = 1; j < ck->nruns; j++)
        if (runs[j].status != st) {
            char a[64], b[64];
            dh_tool_describe_status(st, a, sizeof a);
            dh_tool_describe_status(runs[j].status, b, sizeof b);
            printf("nondeterministic: the runs made identical heap calls "
                   "but ended differently: run 1 %s, run %d %s\n", a, j + 1,
                   b);
            printf("cause: not the heap - the program's behaviour outside "
                   "its heap calls depends on something that changes from "
                   "run to run (time, pid, thread timing, input)\n");
            return DH_EXIT_FAIL;
        }
    const dh_tdb_image_t *first = runs[0].procs[0];
    const dh_tdb_image_t *last = runs[0].procs[runs[0].n - 1];
    size_t calls = calls_of(&runs[0]);
    char how[64];
    dh_tool_describe_status(st, how, sizeof how);
    if (WIFSIGNALED(st)) {
        printf("deterministic crash: every run %s after %zu heap calls, "
               "identical calls and addresses up to there\n", how, calls);
        /* the last call recorded of the last program image */
        const dh_tdb_call_t *lc = NULL;
        unsigned ls = 0;
        for (unsigned s = 0; s < last->nslots; s++)
            if (last->slots[s].n && (lc == NULL || s == 0)) {
                lc = &last->slots[s].v[last->slots[s].n - 1];
                ls = s;
            }
        if (lc) {
            char d[256];
            describe_call(lc, d, sizeof d);
            printf("  last heap call recorded (slot %u): %s\n", ls, d);
            print_stack("its call stack", last, lc, ck->depth);
        }
        return DH_EXIT_CRASH;
    }
    if (first->have_end)
        printf("deterministic: %d runs, fingerprint %016" PRIx64 "\n",
               ck->nruns, first->fingerprint);
    else
        printf("deterministic: %d runs, fingerprint unknown (the first "
               "process wrote no end record: it ran exec or _exit)\n",
               ck->nruns);
    printf("  %d program image%s, %zu heap calls per run, identical calls "
           "and addresses%s\n", runs[0].n, runs[0].n == 1 ? "" : "s", calls,
           runs[0].n > 1 ? " (fingerprint of the first process)" : "");
    if (st != 0) printf("  every run %s\n", how);
    if (first->nslots > 1) {
        /* the first few by slot; a program of thousands of threads gets
         * a count, not a screenful */
        enum { SHOWN = 16 };
        unsigned shown = 0, all = 0;
        printf("  threads:");
        for (uint32_t s = 0; s < first->nslots; s++) {
            const dh_tdb_slot_t *sl = &first->slots[s];
            if (sl->n == 0 && !sl->have_thread) continue;
            if (all++ >= SHOWN) continue;
            printf("%s slot %" PRIu32 " '%s'", shown++ ? "," : "", s,
                   sl->name[0] ? sl->name : "?");
        }
        if (all > shown) printf(", ... (%u in all)", all);
        printf("\n");
    }
    return DH_EXIT_OK;
}

/* Misuse recorded in run 1 (the same in every run, or the runs differ
 * anyway), with stacks. */
static void print_run_misuse(const run_t *run, unsigned depth) {
    for (int i = 0; i < run->n; i++) {
        const dh_tdb_image_t *im = run->procs[i];
        if (im->nmisuse == 0) continue;
        dh_sites_t s;
        dh_sites_init(&s, im, depth);
        dh_symbolizer_t *sym =
            dh_sym_open(im->maps, im->maps ? im->maps_len : 0);
        printf("in run 1, process %" PRIu64 ":\n", im->pid);
        dh_sites_print_misuse(stdout, im, sym, &s, "  ");
        dh_sym_close(sym);
        dh_sites_free(&s);
    }
}

static int check_runs(check_t *ck, run_t *runs, bool incomplete);

static int check_all(check_t *ck, run_t *runs) {
    for (int i = 0; i < ck->nruns; i++) {
        char name[16];
        snprintf(name, sizeof name, "run%d", i + 1);
        if (do_run(ck, name, ck->aslr_off, &runs[i]) != 0) return DH_EXIT_FAIL;
    }
    bool incomplete = false;
    for (int i = 0; i < ck->nruns; i++) incomplete |= runs[i].nproblems > 0;
    int rc = check_runs(ck, runs, incomplete);
    print_run_misuse(&runs[0], ck->depth);
    return rc;
}

static int check_runs(check_t *ck, run_t *runs, bool incomplete) {
    for (int j = 1; j < ck->nruns; j++) {
        diff_t d = compare_runs(&runs[0], &runs[j]);
        if (d.image < 0 && !d.count) continue;
        bool program = report_difference(j + 1, &runs[0], &runs[j], &d,
                                         ck->depth);
        if (program && !ck->aslr_off)
            try_without_aslr(ck, threaded(&runs[0]));
        for (int i = 0; i < ck->nruns; i++)
            print_problems("also incomplete:", i + 1, &runs[i]);
        return DH_EXIT_FAIL;
    }
    if (incomplete) {
        char counts[512] = "";
        size_t n = 0;
        for (int i = 0; i < ck->nruns && n + 40 < sizeof counts; i++)
            n += (size_t)snprintf(counts + n, sizeof counts - n, "%s%d in run "
                                  "%d", i ? ", " : "", runs[i].nproblems,
                                  i + 1);
        printf("incomplete: processes left no usable trace (%s), so the runs "
               "cannot be called deterministic; the %d program image%s "
               "traced in each run made identical calls\n", counts,
               runs[0].n, runs[0].n == 1 ? "" : "s");
        for (int i = 0; i < ck->nruns; i++) print_problems(" ", i + 1, &runs[i]);
        return DH_EXIT_INCOMPLETE;
    }
    return verdict_same(ck, runs);
}

/* The log every traced process reports to: open, not close-on-exec, and
 * named to the library by descriptor, device and inode. */
static int open_log(check_t *ck) {
    char log[4300];
    snprintf(log, sizeof log, "%s/log", ck->tmp);
    ck->log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0666);
    struct stat st;
    if (ck->log_fd < 0 || fstat(ck->log_fd, &st) != 0) return -1;
    /* a process running as another user may still write to it */
    fchmod(ck->log_fd, 0666);
    snprintf(ck->e_log, sizeof ck->e_log, "DETHEAP_TRACE_LOG=%d:%llu:%llu",
             ck->log_fd, (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    return 0;
}

int dh_cmd_check(int argc, char **argv) {
    check_t ck = {NULL, 2, "/dev/null", 32, false, NULL, -1, ""};
    bool keep = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (dh_tool_is_help(argv[i])) {
            fputs(check_usage, stdout);
            return DH_EXIT_OK;
        } else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            long n = dh_tool_count_arg(argv[++i], 100);
            if (n < 2) {
                fprintf(stderr, "detheap check: -n wants 2..100\n");
                return DH_EXIT_USAGE;
            }
            ck.nruns = (int)n;
        } else if (strcmp(argv[i], "--depth") == 0 && i + 1 < argc) {
            long n = dh_tool_count_arg(argv[++i], 240);
            if (n < 0) {
                fprintf(stderr, "detheap check: --depth wants 1..240\n");
                return DH_EXIT_USAGE;
            }
            ck.depth = (unsigned)n;
        } else if (strcmp(argv[i], "--aslr=off") == 0) {
            ck.aslr_off = true;
        } else if (strcmp(argv[i], "--stdin") == 0 && i + 1 < argc) {
            ck.in = argv[++i];
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
    ck.cmd = argv + i;
    char why[200];
    if (ck.aslr_off && !dh_tool_aslr_off_works(why, sizeof why) &&
        strstr(why, "already") == NULL) {
        fprintf(stderr, "detheap check: --aslr=off: %s\n", why);
        return DH_EXIT_FAIL;
    }
    char tmp[4096];
    if (dh_tool_mkdtemp(tmp, sizeof tmp) != 0) {
        perror("detheap check: temporary directory");
        return DH_EXIT_FAIL;
    }
    ck.tmp = tmp;
    int rc = DH_EXIT_FAIL;
    run_t *runs = calloc((size_t)ck.nruns, sizeof *runs);
    if (runs && open_log(&ck) == 0) rc = check_all(&ck, runs);
    if (ck.log_fd >= 0) close(ck.log_fd);
    for (int j = 0; runs && j < ck.nruns; j++) free_run(&runs[j]);
    free(runs);
    if (keep)
        printf("traces and outputs kept in %s\n", tmp);
    else
        dh_tool_rmtree(tmp);
    return rc;
}
