/*
 * cmd_top.c - `detheap top TRACE`: the heap profile of a traced run.  The
 * allocation sites (call stacks) ranked by bytes requested and by calls;
 * with --leaks, the blocks still live at exit grouped by the site that
 * allocated them, the largest first (as valgrind's leak summary and
 * heaptrack list them); and every misuse the trace recorded, with its
 * stack.  `detheap run --top / --leaks` run a program and print the same.
 *
 * Live at exit is decided in causal order (tracedb.h): a block freed by
 * another thread is freed, whatever order the threads' buffers reached the
 * file in.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "sites.h"
#include "tool_util.h"

static const char top_usage[] =
    "usage: detheap top TRACE [-n N] [--depth D] [--leaks]\n"
    "\n"
    "The heap profile of a trace recorded with stacks (detheap run --trace\n"
    "FILE --stacks, or DETHEAP_STACKS=1 with libdetheap_stack.so):\n"
    "allocation sites ranked by bytes requested and by calls, each with its\n"
    "call stack; misuse (double frees, bad pointers) with its stack.\n"
    "\n"
    "  -n N         sites shown per ranking (default 10)\n"
    "  --depth D    frames per stack, and frames that make a site (default\n"
    "               32)\n"
    "  --leaks      instead: the blocks still live at exit, grouped by the\n"
    "               site that allocated them, the most bytes first\n";

static void print_ranking(FILE *f, const dh_sites_t *s, dh_symbolizer_t *sym,
                          char key, size_t top, uint64_t all_bytes,
                          uint64_t all_calls) {
    size_t *order = dh_sites_sorted(s, key);
    if (order == NULL) return;
    fprintf(f, "by %s:\n", key == 'b' ? "bytes" : "calls");
    for (size_t i = 0; i < s->n && i < top; i++) {
        const dh_site_t *t = &s->v[order[i]];
        double share = key == 'b'
            ? (all_bytes ? 100.0 * (double)t->bytes / (double)all_bytes : 0)
            : (all_calls ? 100.0 * (double)t->calls / (double)all_calls : 0);
        fprintf(f, "  %zu. %" PRIu64 " B in %" PRIu64 " call%s (%.1f%%)",
                i + 1, t->bytes, t->calls, t->calls == 1 ? "" : "s", share);
        if (t->live_blocks)
            fprintf(f, "; %" PRIu64 " B in %" PRIu64 " block%s live at exit",
                    t->live_bytes, t->live_blocks,
                    t->live_blocks == 1 ? "" : "s");
        fputc('\n', f);
        dh_sites_print_stack(f, sym, t->frames, t->n, "      ");
    }
    free(order);
}

static void print_leaks(FILE *f, const dh_sites_t *s, dh_symbolizer_t *sym) {
    uint64_t blocks = 0, bytes = 0;
    size_t nsites = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].live_blocks) {
            nsites++;
            blocks += s->v[i].live_blocks;
            bytes += s->v[i].live_bytes;
        }
    fprintf(f, "live at exit: %" PRIu64 " B in %" PRIu64 " block%s from %zu "
            "allocation site%s\n", bytes, blocks, blocks == 1 ? "" : "s",
            nsites, nsites == 1 ? "" : "s");
    size_t *order = dh_sites_sorted(s, 'l');
    if (order == NULL) return;
    for (size_t i = 0; i < s->n; i++) {
        const dh_site_t *t = &s->v[order[i]];
        if (t->live_blocks == 0) break;
        fprintf(f, "  %" PRIu64 " B in %" PRIu64 " block%s (of %" PRIu64
                " allocated there) allocated at:\n", t->live_bytes,
                t->live_blocks, t->live_blocks == 1 ? "" : "s", t->calls);
        dh_sites_print_stack(f, sym, t->frames, t->n, "      ");
    }
    free(order);
}

static void print_image(FILE *f, const dh_tdb_image_t *im,
                        const dh_top_opts_t *o) {
    dh_sites_t s;
    dh_sites_init(&s, im, o->depth);
    if (dh_sites_replay(&s, im) != 0) {
        fprintf(stderr, "detheap top: out of memory\n");
        dh_sites_free(&s);
        return;
    }
    uint64_t bytes = 0, calls = 0;
    for (size_t i = 0; i < s.n; i++) {
        bytes += s.v[i].bytes;
        calls += s.v[i].calls;
    }
    fprintf(f, "process %" PRIu64, im->pid);
    if (im->exec_no) fprintf(f, " (after exec %d)", im->exec_no);
    size_t ncalls = dh_tdb_calls(im);
    fprintf(f, ": %zu heap call%s, %" PRIu64 " allocation%s, %" PRIu64
            " B requested, %zu allocation site%s\n", ncalls,
            ncalls == 1 ? "" : "s", calls, calls == 1 ? "" : "s", bytes, s.n,
            s.n == 1 ? "" : "s");
    for (uint32_t k = 0; k < im->nslots; k++) {
        const dh_tdb_slot_t *sl = &im->slots[k];
        if (sl->n == 0) continue;
        fprintf(f, "  heap slot %" PRIu32 ": thread %" PRIu64 " '%s', %zu "
                "call%s%s\n", k, sl->tid, sl->name[0] ? sl->name : "?", sl->n,
                sl->n == 1 ? "" : "s", sl->unordered ? " (unordered)" : "");
    }
    dh_symbolizer_t *sym = dh_sym_open(im->maps, im->maps ? im->maps_len : 0);
    if (!(im->flags & DH_TRACE_FLAG_STACKS))
        fprintf(f, "(no stacks in this trace: record one with detheap run "
                "--trace FILE --stacks)\n");
    else if (im->maps == NULL)
        fprintf(f, "(no memory map in the trace: the process did not exit "
                "normally; addresses only)\n");
    if (o->leaks) {
        print_leaks(f, &s, sym);
    } else {
        print_ranking(f, &s, sym, 'b', o->top, bytes, calls);
        print_ranking(f, &s, sym, 'c', o->top, bytes, calls);
    }
    dh_sites_print_misuse(f, im, sym, &s, "");
    dh_sym_close(sym);
    dh_sites_free(&s);
}

int dh_top_print(FILE *f, const char *trace, const dh_top_opts_t *o) {
    dh_tdb_t db;
    char err[512];
    int rc = dh_tdb_load(trace, &db, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "detheap: %s: %s\n", trace,
                rc == -1 ? err : "out of memory");
        return rc == -1 ? DH_EXIT_USAGE : DH_EXIT_FAIL;
    }
    for (int i = 0; i < db.n; i++) {
        if (dh_tdb_calls(db.images[i]) == 0 && db.images[i]->nmisuse == 0)
            continue;
        if (o->misuse) { /* the misuse alone, symbolized */
            if (db.images[i]->nmisuse == 0) continue;
            dh_sites_t s;
            dh_sites_init(&s, db.images[i], o->depth);
            dh_symbolizer_t *sym = dh_sym_open(
                db.images[i]->maps,
                db.images[i]->maps ? db.images[i]->maps_len : 0);
            dh_sites_print_misuse(f, db.images[i], sym, &s, "");
            dh_sym_close(sym);
            dh_sites_free(&s);
            continue;
        }
        if (i) fputc('\n', f);
        print_image(f, db.images[i], o);
    }
    dh_tdb_free(&db);
    return DH_EXIT_OK;
}

/* Parse "--depth D" / "-n N" values: 1..max, else -1. */
long dh_tool_count_arg(const char *v, long max) {
    char *end;
    long n = strtol(v, &end, 10);
    return *v && !*end && n >= 1 && n <= max ? n : -1;
}

int dh_cmd_top(int argc, char **argv) {
    dh_top_opts_t o = {10, 32, false, false};
    const char *trace = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (dh_tool_is_help(a)) {
            fputs(top_usage, stdout);
            return DH_EXIT_OK;
        } else if (strcmp(a, "--leaks") == 0) {
            o.leaks = true;
        } else if ((strcmp(a, "-n") == 0 || strcmp(a, "--depth") == 0) &&
                   i + 1 < argc) {
            long v = dh_tool_count_arg(argv[++i], a[1] == 'n' ? 100000 : 240);
            if (v < 0) {
                fprintf(stderr, "detheap top: bad %s '%s'\n", a, argv[i]);
                return DH_EXIT_USAGE;
            }
            if (a[1] == 'n') o.top = (size_t)v;
            else o.depth = (unsigned)v;
        } else if (a[0] != '-' && trace == NULL) {
            trace = a;
        } else {
            fprintf(stderr, "detheap top: unexpected '%s'\n\n%s", a,
                    top_usage);
            return DH_EXIT_USAGE;
        }
    }
    if (trace == NULL) {
        fprintf(stderr, "detheap top: no TRACE given\n\n%s", top_usage);
        return DH_EXIT_USAGE;
    }
    return dh_top_print(stdout, trace, &o);
}
