/*
 * cmd_report.c - `detheap report`: a picture of a traced heap.  Top left:
 * live bytes by size class over the run (x = call index), stacked; top
 * right: live bytes by allocation site, the largest N sites (by their
 * peak) and the rest; bottom: how many allocations each size class
 * served.  The time axis runs from the first call to the last.  The tool
 * writes the data and a gnuplot script into a scratch directory and runs
 * gnuplot there.
 *
 * The calls are taken in causal order (tracedb.h), so a block freed by
 * another thread never stays live in the picture.  A long trace is
 * sampled: at most MAX_POINTS rows, each the state after a call, evenly
 * spaced in call index.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "heapmodel.h"
#include "ptrmap.h"
#include "sites.h"
#include "tool_util.h"

#define MAX_POINTS 2000
#define MAX_SITES 12

/* One distinct colour per class, the same in both plots. */
static const char *const colours[DH_MODEL_CLASSES] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#fdd0a2",
    "#74c476", "#202020"};
static const char *const site_colours[MAX_SITES + 1] = {
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
    "#a6761d", "#666666", "#8dd3c7", "#bebada", "#fb8072", "#80b1d3",
    "#d9d9d9"};

/* Legend label of a class. */
static const char *label(int c) {
    static const char *const names[DH_MODEL_CLASSES] = {
        "16 B", "32 B", "48 B", "64 B", "128 B", "256 B", "512 B", "1 KiB",
        "2 KiB", "4 KiB", "8 KiB", "16 KiB", "64 KiB", "large"};
    return names[c];
}

static const char report_usage[] =
    "usage: detheap report TRACE -o OUT.svg|OUT.png [--sites N] [--keep DIR]\n"
    "\n"
    "Draw the heap of a recorded trace (DETHEAP_TRACE, detheap run --trace)\n"
    "with gnuplot: live bytes by size class and by allocation site over the\n"
    "run (x = call index, up to the last call) and the number of\n"
    "allocations per size class.  Sites need a trace with stacks (detheap\n"
    "run --trace FILE --stacks).\n"
    "\n"
    "  --sites N    allocation sites drawn (default 8, at most 12); the\n"
    "               others are summed as one band\n"
    "  --keep DIR   also copy the plot's data and gnuplot script into DIR\n";

typedef struct {
    const dh_tdb_image_t *im;
    const dh_tdb_call_t **order;
    size_t ncalls;
    dh_model_t m;
    dh_sites_t sites;
    long *call_site;        /* site of each allocation in order, or -1 */
    uint64_t *site_live, *site_peak;
    int top[MAX_SITES];     /* the sites drawn, by peak live bytes */
    int ntop;
    bool used[DH_MODEL_CLASSES];
} report_t;

/* The call as a trace record, for the heap model. */
static dh_trace_rec_t as_rec(const dh_tdb_call_t *c) {
    dh_trace_rec_t r;
    memset(&r, 0, sizeof r);
    r.op = c->op;
    r.flags = c->flags;
    r.a = c->a;
    r.b = c->b;
    r.c = c->c;
    return r;
}

/* Apply call i to the models (class and site); false when out of memory. */
static bool step(report_t *r, dh_ptrmap_t *live, size_t i) {
    const dh_tdb_call_t *c = r->order[i];
    dh_trace_rec_t rec = as_rec(c);
    if (!dh_model_apply(&r->m, &rec)) return false;
    bool failed = c->flags & 1;
    uint64_t site, bytes;
    if ((c->op == DH_TR_FREE ||
         (c->op == DH_TR_REALLOC && !(failed && c->a != 0))) &&
        c->b && dh_ptrmap_take(live, c->b, &site, &bytes))
        r->site_live[site] -= bytes;
    if (r->call_site[i] >= 0 && dh_sites_is_alloc(c, &bytes)) {
        site = (uint64_t)r->call_site[i];
        if (!dh_ptrmap_put(live, c->c, site, bytes)) return false;
        r->site_live[site] += bytes;
        if (r->site_live[site] > r->site_peak[site])
            r->site_peak[site] = r->site_live[site];
    }
    return true;
}

static void sample(report_t *r, FILE *cls, FILE *sites, size_t i) {
    fprintf(cls, "%zu", i);
    double sum = 0;
    for (int c = 0; c < DH_MODEL_CLASSES; c++) {
        if (!r->used[c]) continue;
        sum += (double)r->m.cls[c].live_bytes / 1024.0;
        fprintf(cls, " %.3f", sum);
    }
    fputc('\n', cls);
    fprintf(sites, "%zu", i);
    double shown = 0, all = 0;
    for (size_t s = 0; s < r->sites.n; s++) all += (double)r->site_live[s];
    for (int k = 0; k < r->ntop; k++) {
        shown += (double)r->site_live[r->top[k]];
        fprintf(sites, " %.3f", shown / 1024.0);
    }
    fprintf(sites, " %.3f\n", all / 1024.0);
}

/* Pass 1: sites of every allocation, the classes used, each site's peak;
 * then the sites to draw. */
static int first_pass(report_t *r, int nsites) {
    r->call_site = malloc((r->ncalls + 1) * sizeof *r->call_site);
    if (r->call_site == NULL) return -1;
    for (size_t i = 0; i < r->ncalls; i++) {
        uint64_t bytes;
        r->call_site[i] = dh_sites_is_alloc(r->order[i], &bytes)
                              ? dh_sites_of(&r->sites, r->im, r->order[i])
                              : -1;
    }
    r->site_live = calloc(r->sites.n + 1, sizeof *r->site_live);
    r->site_peak = calloc(r->sites.n + 1, sizeof *r->site_peak);
    if (!r->site_live || !r->site_peak) return -1;
    dh_ptrmap_t live = {0};
    for (size_t i = 0; i < r->ncalls; i++)
        if (!step(r, &live, i)) return -1;
    dh_ptrmap_free(&live);
    for (int c = 0; c < DH_MODEL_CLASSES; c++) r->used[c] = r->m.cls[c].allocs;
    /* the nsites largest peaks, of sites that have a stack */
    for (int k = 0; k < nsites; k++) {
        int best = -1;
        for (size_t s = 0; s < r->sites.n; s++) {
            bool taken = r->sites.v[s].n == 0 || r->site_peak[s] == 0;
            for (int j = 0; j < k && !taken; j++) taken = r->top[j] == (int)s;
            if (!taken && (best < 0 || r->site_peak[s] > r->site_peak[best]))
                best = (int)s;
        }
        if (best < 0) break;
        r->top[r->ntop++] = best;
    }
    dh_model_free(&r->m);
    memset(r->site_live, 0, (r->sites.n + 1) * sizeof *r->site_live);
    return 0;
}

/* One frame, short: "fn (file.c:12)" or "module+0x1f". */
static void short_frame(dh_symbolizer_t *sym, uint64_t ra, char *out,
                        size_t cap) {
    char line[1024];
    bool own;
    dh_sym_describe(sym, ra, line, sizeof line, &own);
    /* "fn+0x1f (file.c:12) [module]" -> "fn (file.c:12)" */
    char *plus = strstr(line, "+0x"), *paren = strstr(line, " (");
    char *bracket = strstr(line, " [");
    if (bracket) *bracket = 0;
    if (plus && paren && plus < paren) memmove(plus, paren, strlen(paren) + 1);
    /* the script quotes it in '...' (the terminal is noenhanced) */
    size_t n = 0;
    for (const char *p = line; *p && n + 2 < cap; p++)
        out[n++] = *p == '\'' || *p == '"' || *p == '\\' ? ' ' : *p;
    out[n] = 0;
}

/* The legend of drawn site k: its innermost frame and, when other drawn
 * sites share that frame (an allocator wrapper), the first frame that
 * tells it apart from them. */
static void site_label(dh_symbolizer_t *sym, const report_t *r, int k,
                       char *out, size_t cap) {
    const dh_site_t *s = &r->sites.v[r->top[k]];
    short_frame(sym, s->frames[0], out, cap);
    unsigned depth = 0;
    for (int j = 0; j < r->ntop; j++) {
        const dh_site_t *o = &r->sites.v[r->top[j]];
        if (j == k) continue;
        unsigned d = 0;
        while (d < s->n && d < o->n && s->frames[d] == o->frames[d]) d++;
        if (d > depth) depth = d;
    }
    if (depth == 0 || depth >= s->n) return;
    size_t n = strlen(out);
    int k2 = snprintf(out + n, cap - n, " < #%u ", depth);
    if (k2 > 0 && n + (size_t)k2 < cap)
        short_frame(sym, s->frames[depth], out + n + (size_t)k2,
                    cap - n - (size_t)k2);
}

static void write_script(FILE *g, const report_t *r, const char *dir,
                         const char *name, bool svg) {
    if (svg)
        fprintf(g, "set terminal svg size 1500,900 dynamic font 'sans,12'\n");
    else
        fprintf(g, "set terminal pngcairo size 1500,900 font 'sans,11'\n");
    fprintf(g, "set output '%s/out'\nset termoption noenhanced\n", dir);
    /* the heaps and their threads, under the title */
    char threads[1024] = "";
    size_t tn = 0;
    for (uint32_t k = 0; k < r->im->nslots && tn + 64 < sizeof threads; k++) {
        const dh_tdb_slot_t *sl = &r->im->slots[k];
        if (sl->n == 0) continue;
        char nm[17];
        snprintf(nm, sizeof nm, "%s", sl->name[0] ? sl->name : "?");
        for (char *p = nm; *p; p++)
            if (*p == '\'' || *p == '"' || *p == '\\') *p = ' ';
        tn += (size_t)snprintf(threads + tn, sizeof threads - tn,
                               "%sslot %" PRIu32 ": thread %" PRIu64 " %s",
                               tn ? ", " : "", k, sl->tid, nm);
    }
    fprintf(g, "set multiplot title \"detheap: %s (pid %" PRIu64 ", %zu "
            "calls, peak %.1f KiB live)\\n%s\" font ',14'\n", name,
            r->im->pid, r->ncalls, (double)r->m.peak_bytes / 1024.0,
            threads);
    /* top left: by class */
    fprintf(g, "set origin 0,0.42\nset size 0.5,0.53\n");
    fprintf(g, "set title 'Live bytes by size class'\n"
               "set xlabel 'call index'\nset ylabel 'live KiB'\n"
               "set key outside right top title 'class'\n"
               "set grid ytics\nset style fill solid 0.85 noborder\n"
               "set yrange [0:*]\nset xrange [0:%zu]\n", r->ncalls);
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
    /* top right: by allocation site */
    fprintf(g, "set origin 0.5,0.42\nset size 0.5,0.53\n");
    fprintf(g, "set title 'Live bytes by allocation site (top %d)'\n"
               "set key inside left top title 'site' font ',8' opaque\n",
            r->ntop);
    dh_symbolizer_t *sym =
        dh_sym_open(r->im->maps, r->im->maps ? r->im->maps_len : 0);
    fprintf(g, "plot '%s/sites.dat' using 1:%d with filledcurves x1 lc rgb "
            "'%s' title 'other sites'", dir, r->ntop + 2,
            site_colours[MAX_SITES]);
    for (int s = r->ntop - 1; s >= 0; s--) {
        char lab[256];
        site_label(sym, r, s, lab, sizeof lab);
        if (strlen(lab) > 60) strcpy(lab + 57, "...");
        fprintf(g, ", \\\n     '%s/sites.dat' using 1:%d with filledcurves "
                "x1 lc rgb '%s' title '%s'", dir, s + 2, site_colours[s], lab);
    }
    if (r->ntop == 0)
        fprintf(g, "\nset label 1 'no stacks in this trace' at graph 0.5,0.5 "
                "center");
    fprintf(g, "\n");
    dh_sym_close(sym);
    /* bottom: allocations per class */
    fprintf(g, "unset label 1\nset origin 0,0\nset size 1,0.42\n");
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

/* Pass 2: the sampled data files. */
static int write_data(report_t *r, const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/live.dat", dir);
    FILE *cls = fopen(path, "w");
    snprintf(path, sizeof path, "%s/sites.dat", dir);
    FILE *sites = fopen(path, "w");
    int rc = cls && sites ? 0 : -1;
    size_t stride = r->ncalls / MAX_POINTS + 1;
    dh_ptrmap_t live = {0};
    if (rc == 0) sample(r, cls, sites, 0);
    for (size_t i = 0; i < r->ncalls && rc == 0; i++) {
        if (!step(r, &live, i)) rc = -1;
        else if ((i + 1) % stride == 0 || i + 1 == r->ncalls)
            sample(r, cls, sites, i + 1);
    }
    dh_ptrmap_free(&live);
    if (cls) fclose(cls);
    if (sites) fclose(sites);
    snprintf(path, sizeof path, "%s/hist.dat", dir);
    FILE *h = fopen(path, "w");
    if (h == NULL) return -1;
    for (int c = 0; c < DH_MODEL_CLASSES; c++)
        fprintf(h, "%s %" PRIu64 " 0x%s\n", dh_model_class_name(c),
                r->m.cls[c].allocs, colours[c] + 1);
    fclose(h);
    return rc;
}

static int plot(report_t *r, const char *trace, const char *out, bool svg,
                const char *keep) {
    char dir[4096], path[4200];
    if (dh_tool_mkdtemp(dir, sizeof dir) != 0) return DH_EXIT_FAIL;
    int rc = DH_EXIT_FAIL;
    if (strchr(dir, '\'') || write_data(r, dir) != 0) goto out;
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
    if (keep) {
        const char *files[] = {"plot.gp", "live.dat", "sites.dat", "hist.dat"};
        char cmd_dir[4200];
        snprintf(cmd_dir, sizeof cmd_dir, "%s", keep);
        if (mkdir(cmd_dir, 0755) != 0 && errno != EEXIST) perror(keep);
        for (int i = 0; i < 4; i++) {
            char from[4300], to[4300];
            snprintf(from, sizeof from, "%s/%s", dir, files[i]);
            snprintf(to, sizeof to, "%s/%s", keep, files[i]);
            if (copy_file(from, to) != 0) perror(to);
        }
    }
    char *argv[] = {"gnuplot", path, NULL};
    dh_spawn_t s = {.env = NULL};
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
    const char *trace = NULL, *out = NULL, *keep = NULL;
    long nsites = 8;
    for (int i = 1; i < argc; i++) {
        if (dh_tool_is_help(argv[i])) {
            fputs(report_usage, stdout);
            return DH_EXIT_OK;
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--keep") == 0 && i + 1 < argc) {
            keep = argv[++i];
        } else if (strcmp(argv[i], "--sites") == 0 && i + 1 < argc &&
                   (nsites = dh_tool_count_arg(argv[i + 1], MAX_SITES)) > 0) {
            i++;
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
    dh_tdb_t db;
    char err[512];
    int lrc = dh_tdb_load(trace, &db, err, sizeof err);
    if (lrc != 0) {
        fprintf(stderr, "detheap: %s: %s\n", trace,
                lrc == -1 ? err : "out of memory");
        return lrc == -1 ? DH_EXIT_USAGE : DH_EXIT_FAIL;
    }
    report_t r;
    memset(&r, 0, sizeof r);
    /* the program image with the most calls (a trace holds several after
     * exec) */
    for (int i = 0; i < db.n; i++)
        if (r.im == NULL || dh_tdb_calls(db.images[i]) > dh_tdb_calls(r.im))
            r.im = db.images[i];
    int rc = DH_EXIT_FAIL;
    if (r.im) {
        r.m.set = r.im->flags & DH_TRACE_FLAG_FINE ? DH_CLASSES_FINE
                                                   : DH_CLASSES_SPEC;
        dh_sites_init(&r.sites, r.im, 32);
        r.order = dh_tdb_order(r.im, &r.ncalls);
        if (r.order && first_pass(&r, (int)nsites) == 0)
            rc = plot(&r, trace, out, svg, keep);
        else
            fprintf(stderr, "detheap report: out of memory\n");
    }
    dh_model_free(&r.m);
    dh_sites_free(&r.sites);
    free(r.order);
    free(r.call_site);
    free(r.site_live);
    free(r.site_peak);
    dh_tdb_free(&db);
    return rc;
}
