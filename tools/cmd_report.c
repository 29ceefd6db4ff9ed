/*
 * cmd_report.c - `detheap report`: a picture of a traced heap.  Top: live
 * bytes by size class over the run (x = call index), stacked.  Bottom:
 * how many allocations each size class served.  The tool writes the data
 * and a gnuplot script into a scratch directory and runs gnuplot there.
 *
 * A long trace is sampled: at most MAX_POINTS rows, each the state after
 * a call, evenly spaced in call index.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "heapmodel.h"
#include "tool_util.h"

#define MAX_POINTS 2000

/* One distinct colour per class, the same in both plots. */
static const char *const colours[DH_MODEL_CLASSES] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#fdd0a2",
    "#74c476", "#202020"};

/* Legend label of a class. */
static const char *label(int c) {
    static const char *const names[DH_MODEL_CLASSES] = {
        "16 B", "32 B", "48 B", "64 B", "128 B", "256 B", "512 B", "1 KiB",
        "2 KiB", "4 KiB", "8 KiB", "16 KiB", "64 KiB", "large"};
    return names[c];
}

static const char report_usage[] =
    "usage: detheap report TRACE -o OUT.svg|OUT.png\n"
    "\n"
    "Draw the heap of a recorded trace (DETHEAP_TRACE, detheap run --trace)\n"
    "with gnuplot: live bytes by size class over the run (x = call index)\n"
    "and the number of allocations per size class.\n";

typedef struct {
    dh_model_t m;
    uint64_t step;   /* sample every step calls */
    uint64_t total;  /* call records in the trace (first pass) */
    uint64_t pid;
    FILE *live;      /* NULL in the first pass */
    bool used[DH_MODEL_CLASSES];
} report_t;

static int on_header(const dh_trace_header_t *h, void *user) {
    ((report_t *)user)->pid = h->pid;
    return 0;
}

static void sample(report_t *r) {
    fprintf(r->live, "%" PRIu64, r->m.calls);
    double sum = 0;
    for (int c = 0; c < DH_MODEL_CLASSES; c++) {
        if (!r->used[c]) continue;
        sum += (double)r->m.cls[c].live_bytes / 1024.0;
        fprintf(r->live, " %.3f", sum);
    }
    fputc('\n', r->live);
}

static int on_record(const dh_trace_rec_t *rec, void *user) {
    report_t *r = user;
    if (!dh_trace_is_call(rec->op)) return 0;
    if (!dh_model_apply(&r->m, rec)) return 1;
    if (r->live && (r->m.calls % r->step == 0 || r->m.calls == r->total))
        sample(r);
    return 0;
}

static int parse_pass(const dh_trace_file_t *f, const char *path,
                      report_t *r) {
    char err[512];
    dh_trace_visitor_t v = {on_header, on_record, r};
    int rc = dh_trace_parse(f->data, f->len, &v, err, sizeof err);
    if (rc == -1) fprintf(stderr, "detheap: %s: %s\n", path, err);
    if (rc > 0) fprintf(stderr, "detheap report: out of memory\n");
    return rc;
}

static void write_script(FILE *g, const report_t *r, const char *dir,
                         const char *name, bool svg) {
    if (svg)
        fprintf(g, "set terminal svg size 1200,900 dynamic font 'sans,12'\n");
    else
        fprintf(g, "set terminal pngcairo size 1200,900 font 'sans,11'\n");
    fprintf(g, "set output '%s/out'\n", dir);
    fprintf(g, "set multiplot layout 2,1 title \"detheap: %s (pid %" PRIu64
            ", %" PRIu64 " calls, peak %.1f KiB live)\" font ',14'\n", name,
            r->pid, r->m.calls, (double)r->m.peak_bytes / 1024.0);
    fprintf(g, "set title 'Live bytes by size class'\n"
               "set xlabel 'call index'\nset ylabel 'live KiB'\n"
               "set key outside right top title 'class'\n"
               "set grid ytics\nset style fill solid 0.85 noborder\n"
               "set yrange [0:*]\nset xrange [0:*]\n");
    int ncol = 0;
    for (int c = 0; c < DH_MODEL_CLASSES; c++) ncol += r->used[c];
    /* draw the tallest (cumulative) curve first so each class shows as
     * the band between its curve and the one below */
    fprintf(g, "plot ");
    int k = ncol, first = 1;
    for (int c = DH_MODEL_CLASSES - 1; c >= 0; c--) {
        if (!r->used[c]) continue;
        fprintf(g, "%s'%s/live.dat' using 1:%d with filledcurves x1 "
                "lc rgb '%s' title '%s'", first ? "" : ", \\\n     ", dir,
                k + 1, colours[c], label(c));
        first = 0;
        k--;
    }
    if (first) fprintf(g, "0 notitle");
    fprintf(g, "\n");
    fprintf(g, "set title 'Allocations per size class'\n"
               "set xlabel 'size class (bytes)'\nset ylabel 'allocations'\n"
               "unset key\nset xrange [-0.6:%d.6]\nset yrange [0:*]\n"
               "set offsets 0, 0, graph 0.08, 0\n"
               "set boxwidth 0.7\nset style fill solid 0.8 border -1\n",
            DH_MODEL_CLASSES - 1);
    fprintf(g, "plot '%s/hist.dat' using 0:2:3:xtic(1) with boxes "
               "lc rgb variable, '' using 0:2:2 with labels offset 0,0.8\n",
            dir);
    fprintf(g, "unset multiplot\n");
}

static int copy_file(const char *from, const char *to) {
    size_t len;
    char *data = dh_tool_slurp(from, &len);
    if (data == NULL) return -1;
    FILE *f = fopen(to, "wb");
    int rc = f && fwrite(data, 1, len, f) == len ? 0 : -1;
    if (f && fclose(f) != 0) rc = -1;
    free(data);
    return rc;
}

static int plot(report_t *r, const dh_trace_file_t *f, const char *trace,
                const char *out, bool svg) {
    char dir[4096], path[4200];
    if (dh_tool_mkdtemp(dir, sizeof dir) != 0) return DH_EXIT_FAIL;
    if (strchr(dir, '\'')) return DH_EXIT_FAIL;
    snprintf(path, sizeof path, "%s/live.dat", dir);
    r->live = fopen(path, "w");
    int rc = DH_EXIT_FAIL;
    if (r->live == NULL) goto out;
    fprintf(r->live, "0");
    for (int c = 0; c < DH_MODEL_CLASSES; c++)
        if (r->used[c]) fprintf(r->live, " 0");
    fputc('\n', r->live);
    int prc = parse_pass(f, trace, r);
    fclose(r->live);
    if (prc != 0) goto out;
    snprintf(path, sizeof path, "%s/hist.dat", dir);
    FILE *h = fopen(path, "w");
    if (h == NULL) goto out;
    for (int c = 0; c < DH_MODEL_CLASSES; c++)
        fprintf(h, "%s %" PRIu64 " 0x%s\n", dh_model_class_name(c),
                r->m.cls[c].allocs, colours[c] + 1);
    fclose(h);
    snprintf(path, sizeof path, "%s/plot.gp", dir);
    FILE *g = fopen(path, "w");
    if (g == NULL) goto out;
    const char *name = strrchr(trace, '/') ? strrchr(trace, '/') + 1 : trace;
    char safe[256];
    snprintf(safe, sizeof safe, "%s", name);
    for (char *p = safe; *p; p++)
        if (*p == '\'' || *p == '"' || *p == '\\' || *p == '_') *p = '-';
    write_script(g, r, dir, safe, svg);
    fclose(g);
    char *argv[] = {"gnuplot", path, NULL};
    dh_spawn_t s = {NULL, NULL, NULL, false};
    int st = dh_tool_spawn(argv, &s);
    if (st == 127) {
        fprintf(stderr, "detheap report: could not run gnuplot; install it "
                "with: apt-get install gnuplot-nox\n");
    } else if (st != 0) {
        fprintf(stderr, "detheap report: gnuplot failed (status %d)\n", st);
    } else {
        snprintf(path, sizeof path, "%s/out", dir);
        if (copy_file(path, out) != 0)
            perror(out);
        else
            rc = DH_EXIT_OK;
    }
out:
    dh_tool_rmtree(dir);
    return rc;
}

int dh_cmd_report(int argc, char **argv) {
    const char *trace = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (dh_tool_is_help(argv[i])) {
            fputs(report_usage, stdout);
            return DH_EXIT_OK;
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (argv[i][0] != '-' && trace == NULL) {
            trace = argv[i];
        } else {
            fprintf(stderr, "detheap report: unexpected '%s'\n\n%s", argv[i],
                    report_usage);
            return DH_EXIT_USAGE;
        }
    }
    size_t ol = out ? strlen(out) : 0;
    bool svg = ol > 4 && strcmp(out + ol - 4, ".svg") == 0;
    bool png = ol > 4 && strcmp(out + ol - 4, ".png") == 0;
    if (trace == NULL || (!svg && !png)) {
        fprintf(stderr, "detheap report: need a TRACE and -o FILE ending in "
                ".svg or .png\n\n%s", report_usage);
        return DH_EXIT_USAGE;
    }
    dh_trace_file_t f;
    char err[512];
    if (dh_trace_map(trace, &f, err, sizeof err) != 0) {
        fprintf(stderr, "detheap report: %s\n", err);
        return DH_EXIT_USAGE;
    }
    report_t r = {0};
    int rc = parse_pass(&f, trace, &r); /* count calls, find used classes */
    if (rc == 0) {
        for (int c = 0; c < DH_MODEL_CLASSES; c++)
            r.used[c] = r.m.cls[c].allocs > 0;
        r.total = r.m.calls;
        r.step = r.total / MAX_POINTS + 1;
        dh_model_free(&r.m);
        rc = plot(&r, &f, trace, out, svg);
    } else {
        rc = rc == -1 ? DH_EXIT_USAGE : DH_EXIT_FAIL;
    }
    dh_model_free(&r.m);
    dh_trace_unmap(&f);
    return rc;
}
