/*
 * cmd_replay.c - `detheap replay`: perform the calls of a recorded trace
 * against an allocator and measure it.
 *
 * The parent picks the allocator and re-executes the tool (the internal
 * command __replay-child) with LD_PRELOAD set to it, so that the replay's
 * malloc is the allocator being measured and nothing else changes.  The
 * child first turns the trace into a flat array of operations in which
 * every pointer is an object number (so the timed loop does no hashing),
 * then times the loop and writes one result line into a pipe.
 *
 * Calls are replayed in file order, one thread.  A free or realloc of a
 * pointer the trace never showed allocated (possible when the records of
 * several threads interleave) is skipped and counted; calls that failed
 * when traced are not replayed.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "ptrmap.h"
#include "tool_util.h"
#include "trace_read.h"

static const char replay_usage[] =
    "usage: detheap replay TRACE [--allocator NAME|PATH]\n"
    "\n"
    "Replay the malloc/calloc/realloc/free/aligned_alloc calls of a trace\n"
    "(in file order, one thread) against an allocator and report the wall\n"
    "time, peak RSS and instructions (n/a where perf events are not\n"
    "available).  NAME is detheap (default), glibc, jemalloc, mimalloc or\n"
    "tcmalloc; PATH is any preloadable allocator library.  The first byte\n"
    "of every block is written, as a program would.\n";

enum { OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_FREE, OP_ALIGNED };

typedef struct {
    uint32_t kind;
    uint32_t obj;  /* the object the call creates (or frees) */
    uint32_t from; /* realloc: the object it resizes, or UINT32_MAX */
    uint64_t a, b;
} rop_t;

typedef struct {
    rop_t *ops;
    size_t n, cap;
    uint32_t objects;
    uint64_t skipped;
    dh_ptrmap_t live; /* traced pointer -> object number */
} conv_t;

static int count_calls(const dh_trace_rec_t *r, void *user) {
    if (dh_trace_is_call(r->op)) ((conv_t *)user)->cap++;
    return 0;
}

/* The object a traced pointer names now (and forget it), or UINT32_MAX. */
static uint32_t take(conv_t *c, uint64_t ptr) {
    uint64_t obj;
    if (ptr == 0 || !dh_ptrmap_take(&c->live, ptr, &obj, NULL))
        return UINT32_MAX;
    return (uint32_t)obj;
}

static int convert(const dh_trace_rec_t *r, void *user) {
    conv_t *c = user;
    /* exec: a new program, whose heap starts empty; the old program's
     * blocks stay allocated in the replay, as the process's never freed */
    if (r->op == DH_TR_EXEC) dh_ptrmap_free(&c->live);
    if (!dh_trace_is_call(r->op)) return 0;
    bool failed = r->flags & 1;
    rop_t op = {0, UINT32_MAX, UINT32_MAX, r->a, r->b};
    switch (r->op) {
    case DH_TR_FREE:
        op.kind = OP_FREE;
        if ((op.obj = take(c, r->b)) == UINT32_MAX) c->skipped++;
        break;
    case DH_TR_REALLOC:
        if (failed && r->a != 0) return 0;
        op.from = take(c, r->b);
        if (r->b != 0 && op.from == UINT32_MAX) c->skipped++;
        if (r->a == 0 && r->b != 0) { /* realloc(p, 0): a free */
            op.kind = OP_FREE;
            op.obj = op.from;
            break;
        }
        op.kind = OP_REALLOC;
        break;
    default:
        if (failed) return 0;
        op.kind = r->op == DH_TR_MALLOC   ? OP_MALLOC
                  : r->op == DH_TR_CALLOC ? OP_CALLOC
                                          : OP_ALIGNED;
    }
    if (op.kind != OP_FREE) {
        op.obj = c->objects++;
        if (!dh_ptrmap_put(&c->live, r->c, op.obj, 0)) return 1;
    }
    if (op.kind == OP_FREE && op.obj == UINT32_MAX) return 0;
    if (c->n < c->cap) c->ops[c->n++] = op;
    return 0;
}

/* The peak RSS in KiB: VmHWM, which reset_peak() sets back to the current
 * RSS (so the trace's own pages, read before the replay, do not count),
 * or getrusage's lifetime peak where the reset is unavailable. */
static long peak_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &kib) == 1) break;
    if (f) fclose(f);
    if (kib < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kib = ru.ru_maxrss;
    }
    return kib;
}

static void reset_peak(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f == NULL) return;
    fputs("5", f);
    fclose(f);
}

static int perf_open(void) {
    struct perf_event_attr pe;
    memset(&pe, 0, sizeof pe);
    pe.type = PERF_TYPE_HARDWARE;
    pe.size = sizeof pe;
    pe.config = PERF_COUNT_HW_INSTRUCTIONS;
    pe.disabled = 1;
    pe.exclude_kernel = 1;
    pe.exclude_hv = 1;
    return (int)syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0);
}

static void progress(size_t i, size_t n) {
    int pct = (int)(i * 100 / (n ? n : 1)), bar = pct / 4;
    fprintf(stderr, "\rreplay [%.*s%*s] %3d%%", bar,
            "#########################", 25 - bar, "", pct);
}

static uint64_t replay(const conv_t *c, void **objs, uint64_t *failed) {
    bool tty = isatty(2) && c->n > 1000000;
    for (size_t i = 0; i < c->n; i++) {
        const rop_t *o = &c->ops[i];
        void *p = NULL;
        switch (o->kind) {
        case OP_MALLOC: p = malloc(o->a); break;
        case OP_CALLOC: p = calloc(o->a, o->b); break;
        case OP_ALIGNED: p = aligned_alloc(o->b, o->a); break;
        case OP_REALLOC:
            p = realloc(o->from == UINT32_MAX ? NULL : objs[o->from], o->a);
            if (p && o->from != UINT32_MAX) objs[o->from] = NULL;
            break;
        case OP_FREE:
            free(objs[o->obj]);
            objs[o->obj] = NULL;
            continue;
        }
        if (p == NULL) (*failed)++;
        else *(volatile char *)p = 1;
        objs[o->obj] = p;
        if (tty && (i & 0xfffff) == 0) progress(i, c->n);
    }
    if (tty) {
        progress(c->n, c->n);
        fputc('\n', stderr);
    }
    return c->n;
}

/* argv: __replay-child TRACE FD EXPECTED-LIBRARY-BASENAME */
int dh_cmd_replay_child(int argc, char **argv) {
    if (argc != 4) return DH_EXIT_USAGE;
    FILE *res = fdopen(atoi(argv[2]), "w");
    if (res == NULL) return DH_EXIT_FAIL;
    Dl_info info;
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    const char *lib = m && dladdr(m, &info) && info.dli_fname
                          ? info.dli_fname : "?";
    char libcopy[4096];
    snprintf(libcopy, sizeof libcopy, "%s", lib);
    if (strcmp(basename(libcopy), argv[3]) != 0) {
        fprintf(res, "error malloc comes from %s, not %s: the allocator "
                "could not be preloaded\n", lib, argv[3]);
        return DH_EXIT_FAIL;
    }
    dh_trace_file_t f;
    char err[512];
    conv_t c = {0};
    dh_trace_visitor_t v1 = {NULL, count_calls, &c};
    if (dh_trace_map(argv[1], &f, err, sizeof err) != 0 ||
        dh_trace_parse(f.data, f.len, &v1, err, sizeof err) != 0) {
        fprintf(res, "error %s\n", err);
        return DH_EXIT_USAGE;
    }
    size_t bytes = (c.cap ? c.cap : 1) * sizeof(rop_t);
    c.ops = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    dh_trace_visitor_t v2 = {NULL, convert, &c};
    if (c.ops == MAP_FAILED ||
        dh_trace_parse(f.data, f.len, &v2, err, sizeof err) != 0) {
        fprintf(res, "error out of memory\n");
        return DH_EXIT_FAIL;
    }
    dh_ptrmap_free(&c.live);
    dh_trace_unmap(&f);
    void **objs = mmap(NULL, ((size_t)c.objects + 1) * sizeof(void *),
                       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
    if (objs == MAP_FAILED) {
        fprintf(res, "error out of memory\n");
        return DH_EXIT_FAIL;
    }
    reset_peak();
    long rss0 = peak_kib();
    int pfd = perf_open();
    int perf_errno = errno;
    struct timespec t0, t1;
    uint64_t failed = 0, insns = 0;
    if (pfd >= 0) {
        ioctl(pfd, PERF_EVENT_IOC_RESET, 0);
        ioctl(pfd, PERF_EVENT_IOC_ENABLE, 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t calls = replay(&c, objs, &failed);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (pfd >= 0) {
        ioctl(pfd, PERF_EVENT_IOC_DISABLE, 0);
        if (read(pfd, &insns, sizeof insns) != sizeof insns) pfd = -1;
    }
    uint64_t ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u +
                  (uint64_t)t1.tv_nsec - (uint64_t)t0.tv_nsec;
    fprintf(res, "ok %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
            " %ld %ld %d %" PRIu64 " %s\n", calls, c.skipped, failed, ns,
            peak_kib(), rss0, pfd >= 0 ? 0 : perf_errno, insns, lib);
    fclose(res);
    return DH_EXIT_OK;
}

/* The library to preload for NAME|PATH ("" for glibc), and the basename
 * of the object that must then provide malloc; -1 if NAME is unknown. */
static int resolve(const char *name, char *lib, size_t cap, char *expect,
                   size_t ecap) {
    static const char *const known[][2] = {
        {"jemalloc", "libjemalloc.so.2"},
        {"mimalloc", "libmimalloc.so.2"},
        {"tcmalloc", "libtcmalloc_minimal.so.4"}};
    if (strcmp(name, "glibc") == 0) {
        lib[0] = 0;
        snprintf(expect, ecap, "libc.so.6");
        return 0;
    }
    if (strcmp(name, "detheap") == 0) {
        dh_tool_find_lib("libdetheap.so", lib, cap);
    } else if (strchr(name, '/')) {
        if (access(name, R_OK) != 0) {
            fprintf(stderr, "detheap replay: %s: %s\n", name, strerror(errno));
            return -1;
        }
        snprintf(lib, cap, "%s", name);
    } else {
        size_t i = 0;
        while (i < 3 && strcmp(name, known[i][0]) != 0) i++;
        if (i == 3) {
            fprintf(stderr, "detheap replay: unknown allocator '%s' (detheap, "
                    "glibc, jemalloc, mimalloc, tcmalloc or a path)\n", name);
            return -1;
        }
        snprintf(lib, cap, "%s", known[i][1]);
    }
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", lib);
    snprintf(expect, ecap, "%s", basename(copy));
    return 0;
}

static int show(const char *line, const char *trace, const char *name) {
    unsigned long long calls, skipped, failed, ns, insns;
    long rss, rss0;
    int perr;
    char lib[4096];
    if (strncmp(line, "error ", 6) == 0 ||
        sscanf(line, "ok %llu %llu %llu %llu %ld %ld %d %llu %4095s", &calls,
               &skipped, &failed, &ns, &rss, &rss0, &perr, &insns, lib) != 9) {
        fprintf(stderr, "detheap replay: %s", line[0] ? line + 6
                                                     : "the replay failed\n");
        return DH_EXIT_FAIL;
    }
    printf("replay of %s on %s (malloc from %s)\n", trace, name, lib);
    printf("  calls         %llu replayed, %llu skipped (pointer not seen "
           "allocated), %llu failed\n", calls, skipped, failed);
    printf("  wall time     %.3f ms\n", (double)ns / 1e6);
    printf("  peak RSS      %ld KiB (%ld KiB when the replay started: the tool "
           "and the decoded trace)\n", rss, rss0);
    if (perr == 0)
        printf("  instructions  %llu\n", insns);
    else
        printf("  instructions  n/a (perf_event_open: %s)\n", strerror(perr));
    return DH_EXIT_OK;
}

int dh_cmd_replay(int argc, char **argv) {
    const char *trace = NULL, *alloc = "detheap";
    for (int i = 1; i < argc; i++) {
        if (dh_tool_is_help(argv[i])) {
            fputs(replay_usage, stdout);
            return DH_EXIT_OK;
        } else if (strcmp(argv[i], "--allocator") == 0 && i + 1 < argc) {
            alloc = argv[++i];
        } else if (argv[i][0] != '-' && trace == NULL) {
            trace = argv[i];
        } else {
            fprintf(stderr, "detheap replay: unexpected '%s'\n\n%s", argv[i],
                    replay_usage);
            return DH_EXIT_USAGE;
        }
    }
    if (trace == NULL) {
        fprintf(stderr, "detheap replay: no trace given\n\n%s", replay_usage);
        return DH_EXIT_USAGE;
    }
    dh_trace_file_t f; /* reject a bad trace here, with its offset */
    char err[512];
    int rc = dh_trace_map(trace, &f, err, sizeof err);
    if (rc == 0) rc = dh_trace_parse(f.data, f.len, NULL, err, sizeof err);
    dh_trace_unmap(&f);
    if (rc != 0) {
        fprintf(stderr, "detheap: %s%s%s\n", strncmp(err, "offset", 6) ? ""
                : trace, strncmp(err, "offset", 6) ? "" : ": ", err);
        return DH_EXIT_USAGE;
    }
    char lib[4096], expect[4096];
    if (resolve(alloc, lib, sizeof lib, expect, sizeof expect) != 0)
        return DH_EXIT_USAGE;
    int fds[2];
    if (pipe(fds) != 0) return DH_EXIT_FAIL;
    char fdarg[16], pre[4200];
    snprintf(fdarg, sizeof fdarg, "%d", fds[1]);
    snprintf(pre, sizeof pre, "LD_PRELOAD=%s", lib);
    const char *env[] = {lib[0] ? pre : "LD_PRELOAD", NULL};
    char *cargv[] = {"/proc/self/exe", "__replay-child", (char *)trace, fdarg,
                     expect, NULL};
    dh_spawn_t s = {.env = env};
    int st = dh_tool_spawn(cargv, &s);
    close(fds[1]);
    char line[8192] = "";
    FILE *in = fdopen(fds[0], "r");
    if (in == NULL || fgets(line, sizeof line, in) == NULL) line[0] = 0;
    if (in) fclose(in);
    if (st != 0 && line[0] == 0) {
        fprintf(stderr, "detheap replay: the replay process failed (status "
                "%d)\n", st);
        return DH_EXIT_FAIL;
    }
    return show(line, trace, alloc);
}
