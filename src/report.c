/*
 * report.c - DETHEAP_STATS: the process heap's statistics at exit, as a
 * table (DETHEAP_STATS=1) or JSON (DETHEAP_STATS=json, schema in
 * docs/stats.schema.json), on stderr or in DETHEAP_STATS_FILE.  `detheap
 * run --stats` prints this same report.  Also the exported process-wide
 * stats calls.
 *
 * Live and peak counts per class.  The heaps' own counters are per heap: a
 * block freed by another thread is counted as a free of the freeing heap,
 * so only their sums are meaningful, and a sum of per-heap peaks is no
 * peak at all.  While the process is observed (DETHEAP_STATS or
 * DETHEAP_TRACE), every call also updates one process-wide atomic counter
 * per class (dh_count_op), whose running maximum is the true peak, whatever
 * thread frees what.
 */
#include "process.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool dh_process_stats(dh_stats_t *out, size_t out_size) {
    if (out == NULL || out_size < 2 * sizeof(uint32_t)) return false;
    dh_stats_t s;
    if (dh_self.heap == NULL && dh_proc_heap_slow() == NULL) return false;
    dh_proc_stats(&s);
    memcpy(out, &s, out_size < sizeof s ? out_size : sizeof s);
    return true;
}

uint64_t dh_process_fingerprint(void) {
    return dh_observe ? dh_proc_fingerprint() : 0;
}

/* ---- process-wide counts of the observed calls ---------------------------- */

typedef struct {
    uint64_t live, peak;             /* blocks */
    uint64_t live_bytes, peak_bytes; /* their usable bytes */
    uint64_t requested, usable;      /* summed over every allocation */
} count_t;

/* by class of the process's set; index DH_LARGE_INDEX: large blocks */
static count_t counts[DH_MAX_CLASSES + 1];
static uint64_t all_live_bytes, all_peak_bytes;

static void raise_to(uint64_t *peak, uint64_t v) {
    uint64_t p = __atomic_load_n(peak, __ATOMIC_RELAXED);
    while (v > p && !__atomic_compare_exchange_n(peak, &p, v, true,
                                                 __ATOMIC_RELAXED,
                                                 __ATOMIC_RELAXED)) {
    }
}

/* The count index of the live block at p and its usable size, or -1. */
static int live_index(uintptr_t p, uint64_t *usable) {
    dh_heap_t *o = p ? dh_proc_owner(p) : NULL;
    uint8_t s = o ? dh_live_state(o, p) : 0;
    if (s == 0) return -1;
    *usable = dh_block_size(o, p, s);
    return dh_st_is_live_class(s) ? s - DH_ST_LIVE : DH_LARGE_INDEX;
}

static void count_add(uintptr_t p, uint64_t requested) {
    uint64_t usable;
    int i = live_index(p, &usable);
    if (i < 0) return;
    count_t *k = &counts[i];
    raise_to(&k->peak, __atomic_add_fetch(&k->live, 1, __ATOMIC_RELAXED));
    raise_to(&k->peak_bytes,
             __atomic_add_fetch(&k->live_bytes, usable, __ATOMIC_RELAXED));
    raise_to(&all_peak_bytes,
             __atomic_add_fetch(&all_live_bytes, usable, __ATOMIC_RELAXED));
    __atomic_add_fetch(&k->requested, requested, __ATOMIC_RELAXED);
    __atomic_add_fetch(&k->usable, usable, __ATOMIC_RELAXED);
}

static void count_drop(int i, uint64_t usable) {
    count_t *k = &counts[i];
    __atomic_sub_fetch(&k->live, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&k->live_bytes, usable, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&all_live_bytes, usable, __ATOMIC_RELAXED);
}

void dh_count_op(dh_op_t op, uint64_t a, uint64_t b, uintptr_t in,
                 uintptr_t out) {
    uint64_t usable;
    int i;
    switch (op) {
    case DH_OP_MALLOC:
    case DH_OP_ALIGNED:
        count_add(out, a);
        break;
    case DH_OP_CALLOC:
        count_add(out, a * b); /* it succeeded: no overflow */
        break;
    case DH_OP_FREE: /* counted before the block is released */
        if ((i = live_index(in, &usable)) >= 0) count_drop(i, usable);
        break;
    case DH_OP_REALLOC:
        /* the old block went unless a resize failed (it then stays) */
        if (in != 0 && b != 0 && (out != 0 || a == 0)) {
            usable = b & ~DH_COUNT_LARGE;
            i = b & DH_COUNT_LARGE
                    ? DH_LARGE_INDEX
                    : dh_class_set_of(dh_proc_class_set(), (size_t)usable);
            if (i >= 0) count_drop(i, usable);
        }
        if (out != 0) count_add(out, a);
        break;
    default:
        break;
    }
}

/* ---- the report ------------------------------------------------------------ */

/* printf into a stack buffer, then write: no stdio stream state. */
__attribute__((format(printf, 2, 3))) static void out(int fd, const char *fmt,
                                                     ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1) n = (int)sizeof buf - 1;
    if (n > 0) dh_os_write_all(fd, buf, (size_t)n);
}

static const char *const code_names[DH_ERR_COUNT] = {
    "none", "double_free", "not_a_block", "foreign", "misaligned",
    "wrong_heap"};

/* What a heap's line says of its thread. */
static const char *heap_kind(const dh_heap_t *h) {
    if (dh_proc_is_system(h)) return "system";
    return dh_ph(h)->unordered ? "unordered" : "ordered";
}

/* The name of the thread of h: the one it had when it ended, or, for the
 * reporting thread's own heap, its name now. */
static void thread_name(const dh_heap_t *h, char out[16]) {
    memcpy(out, dh_ph(h)->thread_name, 16);
    if (out[0] == 0 && h == dh_self.heap) dh_os_thread_name(out);
    out[15] = 0;
}

/* "N B" into buf. */
static const char *bytes_text(char buf[32], uint64_t n) {
    snprintf(buf, 32, "%" PRIu64 " B", n);
    return buf;
}

/* One line per heap of the process: which thread ran on it (the last one,
 * for a heap handed from thread to thread), how many calls it served, its
 * fingerprint, and whether its addresses follow from the creation tree. */
static void report_heaps_text(int fd) {
    out(fd, "%-6s %-5s %-6s %-9s %-8s %-16s %12s %16s %-12s %s\n", "heap",
        "depth", "index", "kind", "tid", "thread", "calls", "fingerprint",
        "retired", "recycled");
    for (uint32_t slot = 0; slot < dh_proc_slot_count(); slot++) {
        const dh_heap_t *h = dh_proc_heap_at(slot);
        if (h == NULL) continue;
        char name[16], retired[32];
        thread_name(h, name);
        out(fd,
            "%-6" PRIu32 " %-5u %-6" PRIu32 " %-9s %-8" PRIu64
            " %-16s %12" PRIu64 " %016" PRIx64 " %-12s %" PRIu64 " B%s\n",
            slot, dh_ph(h)->depth, dh_ph(h)->index, heap_kind(h),
            dh_ph(h)->tid, name[0] ? name : "-", dh_ph(h)->ops,
            dh_ph(h)->fingerprint, bytes_text(retired, dh_ph(h)->retired_bytes),
            dh_ph(h)->recycled_bytes,
            dh_ph(h)->timing_dependent
                ? " (timing-dependent: its range ran out)"
                : "");
    }
}

/* A thread name as a JSON string body: quotes, backslashes and control
 * bytes escaped. */
static void json_name(const char *name, char *outp, size_t cap) {
    size_t n = 0;
    for (const char *p = name; *p && n + 7 < cap; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') {
            outp[n++] = '\\';
            outp[n++] = (char)ch;
        } else if (ch < 0x20) {
            n += (size_t)snprintf(outp + n, cap - n, "\\u%04x", ch);
        } else {
            outp[n++] = (char)ch;
        }
    }
    outp[n] = 0;
}

static void report_heaps_json(int fd) {
    out(fd, ", \"heaps\": [");
    bool first = true;
    for (uint32_t slot = 0; slot < dh_proc_slot_count(); slot++) {
        const dh_heap_t *h = dh_proc_heap_at(slot);
        if (h == NULL) continue;
        char name[16], esc[100];
        thread_name(h, name);
        json_name(name, esc, sizeof esc);
        out(fd,
            "%s{\"slot\": %" PRIu32 ", \"depth\": %u, \"index\": %" PRIu32
            ", \"kind\": \"%s\", \"tid\": %" PRIu64
            ", \"thread\": \"%s\", \"calls\": %" PRIu64
            ", \"fingerprint\": \"%016" PRIx64 "\", \"retired_bytes\": %" PRIu64
            ", \"recycled_bytes\": %" PRIu64 ", \"timing_dependent\": %s}",
            first ? "" : ", ", slot, dh_ph(h)->depth, dh_ph(h)->index,
            heap_kind(h), dh_ph(h)->tid, esc, dh_ph(h)->ops,
            dh_ph(h)->fingerprint, dh_ph(h)->retired_bytes,
            dh_ph(h)->recycled_bytes,
            dh_ph(h)->timing_dependent ? "true" : "false");
        first = false;
    }
    out(fd, "]");
}

/* One row of the report: a class, or the large blocks. */
typedef struct {
    uint64_t size; /* class size; 0 for large blocks */
    uint64_t allocs, frees, live, peak, live_bytes, peak_bytes, free,
        requested, rounding;
} row_t;

/* The rows (the process's classes, then the large blocks; returns how
 * many), from the heaps' sums (allocs, frees, live, free) and the
 * process-wide counts (peaks, requested bytes).  A peak is never below
 * what is live now: libc's own blocks made inside thread calls (on the
 * system heap) are counted by the heaps but are not observed calls. */
static int make_rows(const dh_stats_t *s, row_t rows[DH_MAX_CLASSES + 1]) {
    int n = (int)s->class_count;
    for (int c = 0; c <= n; c++) {
        row_t *r = &rows[c];
        const count_t *k = &counts[c < n ? c : DH_LARGE_INDEX];
        if (c < n) {
            const dh_class_stats_t *cs = &s->by_class[c];
            r->size = cs->size;
            r->allocs = cs->allocs;
            r->frees = cs->frees;
            r->live = cs->live;
            r->free = cs->free;
            r->live_bytes = cs->live * r->size;
        } else {
            r->size = 0;
            r->allocs = s->large_allocs;
            r->frees = s->large_frees;
            r->live = s->large_live_count;
            r->free = s->large_free_count;
            r->live_bytes = s->large_live_bytes;
        }
        r->peak = __atomic_load_n(&k->peak, __ATOMIC_RELAXED);
        r->peak_bytes = __atomic_load_n(&k->peak_bytes, __ATOMIC_RELAXED);
        if (r->peak < r->live) r->peak = r->live;
        if (r->peak_bytes < r->live_bytes) r->peak_bytes = r->live_bytes;
        r->requested = __atomic_load_n(&k->requested, __ATOMIC_RELAXED);
        r->rounding = __atomic_load_n(&k->usable, __ATOMIC_RELAXED) -
                      r->requested;
    }
    return n + 1;
}

/* The class's name in the table: "48", "1K", "64K", "large". */
static void class_name(uint64_t size, char out_name[24]) {
    if (size == 0)
        snprintf(out_name, 24, "large");
    else if (size >= 1024 && size % 1024 == 0)
        snprintf(out_name, 24, "%" PRIu64 "K", size / 1024);
    else
        snprintf(out_name, 24, "%" PRIu64, size);
}

/* VmHWM and VmRSS of /proc/self/status, in bytes (0 if unknown). */
static void read_rss(uint64_t *peak, uint64_t *now) {
    *peak = *now = 0;
    int fd = dh_os_open_read("/proc/self/status");
    if (fd < 0) return;
    char buf[4096];
    long n = dh_os_read(fd, buf, sizeof buf - 1);
    dh_os_close(fd);
    if (n <= 0) return;
    buf[n] = 0;
    const char *keys[2] = {"VmHWM:", "VmRSS:"};
    uint64_t *vals[2] = {peak, now};
    for (int i = 0; i < 2; i++) {
        const char *p = strstr(buf, keys[i]);
        if (p == NULL) continue;
        p += strlen(keys[i]);
        while (*p == ' ' || *p == '\t') p++;
        uint64_t v = 0;
        while (*p >= '0' && *p <= '9') v = v * 10 + (uint64_t)(*p++ - '0');
        *vals[i] = v * 1024; /* kB */
    }
}

static uint64_t peak_all(const dh_stats_t *s) {
    uint64_t p = __atomic_load_n(&all_peak_bytes, __ATOMIC_RELAXED);
    return p > s->live_bytes ? p : s->live_bytes;
}

static void report_text(int fd, const dh_stats_t *s, uint64_t fp) {
    row_t rows[DH_MAX_CLASSES + 1];
    int nrows = make_rows(s, rows);
    uint64_t rss_peak, rss_now;
    read_rss(&rss_peak, &rss_now);
    out(fd, "detheap: statistics of process %" PRIu64 " (%s classes)\n",
        dh_os_pid(), s->class_set == DH_CLASSES_FINE ? "fine" : "spec");
    out(fd, "%-6s %10s %10s %9s %9s %12s %12s %9s %10s\n", "class", "allocs",
        "frees", "live", "peak", "live bytes", "peak bytes", "free",
        "rounding");
    for (int c = 0; c < nrows; c++) {
        const row_t *r = &rows[c];
        if (r->allocs == 0 && r->free == 0 && r->size != 0) continue;
        char name[24];
        class_name(r->size, name);
        out(fd,
            "%-6s %10" PRIu64 " %10" PRIu64 " %9" PRIu64 " %9" PRIu64
            " %12" PRIu64 " %12" PRIu64 " %9" PRIu64 " %10" PRIu64 "\n",
            name, r->allocs, r->frees, r->live, r->peak, r->live_bytes,
            r->peak_bytes, r->free, r->rounding);
    }
    out(fd,
        "total: %" PRIu64 " allocations, %" PRIu64 " frees, %" PRIu64
        " live blocks (%" PRIu64 " B), peak %" PRIu64 " B live\n",
        s->alloc_count, s->free_count, s->live_count, s->live_bytes,
        peak_all(s));
    out(fd,
        "memory: %" PRIu64 " B carved, %" PRIu64 " B committed, peak RSS %"
        PRIu64 " KiB (%" PRIu64 " KiB at exit), %" PRIu64
        " failed allocations\n",
        s->storage_bytes, s->committed_bytes, rss_peak / 1024, rss_now / 1024,
        s->failed_allocs);
    char note[200];
    if (dh_proc_limit_note(note, sizeof note) != 0)
        out(fd, "address space: %s\n", note);
    out(fd, "rejected frees: %" PRIu64, s->rejected_frees);
    for (int i = 1; i < DH_ERR_COUNT; i++)
        if (s->rejected_by_code[i])
            out(fd, ", %s %" PRIu64, code_names[i], s->rejected_by_code[i]);
    if (s->corruptions)
        out(fd,
            "\ncorrupted metadata: %" PRIu64 " (free lists and trees "
            "abandoned), leaked %" PRIu64 " blocks, %" PRIu64 " B",
            s->corruptions, s->abandoned_blocks, s->abandoned_bytes);
    out(fd, "\nfingerprint: %016" PRIx64 "\n", fp);
    report_heaps_text(fd);
}

/* The JSON schema version (docs/stats.schema.json). */
#define STATS_SCHEMA 3

static void report_json(int fd, const dh_stats_t *s, uint64_t fp) {
    row_t rows[DH_MAX_CLASSES + 1];
    int nrows = make_rows(s, rows);
    uint64_t rss_peak, rss_now;
    read_rss(&rss_peak, &rss_now);
    out(fd,
        "{\"pid\": %" PRIu64 ", \"schema\": %d, \"class_set\": \"%s\", "
        "\"classes\": [",
        dh_os_pid(), STATS_SCHEMA,
        s->class_set == DH_CLASSES_FINE ? "fine" : "spec");
    for (int c = 0; c + 1 < nrows; c++) {
        const dh_class_stats_t *cs = &s->by_class[c];
        const row_t *r = &rows[c];
        out(fd,
            "%s{\"class\": %d, \"size\": %" PRIu64 ", \"allocs\": %" PRIu64
            ", \"frees\": %" PRIu64 ", \"live\": %" PRIu64 ", \"peak\": %"
            PRIu64 ", \"live_bytes\": %" PRIu64 ", \"peak_bytes\": %" PRIu64
            ", \"requested_bytes\": %" PRIu64 ", \"rounding_bytes\": %" PRIu64
            ", \"free\": %" PRIu64 ", \"carved\": %" PRIu64
            ", \"spans\": %" PRIu64 "}",
            c ? ", " : "", c, r->size, r->allocs, r->frees, r->live, r->peak,
            r->live_bytes, r->peak_bytes, r->requested, r->rounding, r->free,
            cs->carved, cs->spans);
    }
    const row_t *lg = &rows[nrows - 1];
    out(fd,
        "], \"large\": {\"allocs\": %" PRIu64 ", \"frees\": %" PRIu64
        ", \"live\": %" PRIu64 ", \"peak\": %" PRIu64 ", \"live_bytes\": %"
        PRIu64 ", \"peak_bytes\": %" PRIu64 ", \"requested_bytes\": %" PRIu64
        ", \"free\": %" PRIu64 ", \"free_bytes\": %" PRIu64 "}",
        lg->allocs, lg->frees, lg->live, lg->peak, lg->live_bytes,
        lg->peak_bytes, lg->requested, lg->free, s->large_free_bytes);
    out(fd,
        ", \"alloc_count\": %" PRIu64 ", \"free_count\": %" PRIu64
        ", \"live_count\": %" PRIu64 ", \"live_bytes\": %" PRIu64
        ", \"peak_live_bytes\": %" PRIu64 ", \"storage_bytes\": %" PRIu64
        ", \"committed_bytes\": %" PRIu64 ", \"peak_rss_bytes\": %" PRIu64
        ", \"rss_bytes\": %" PRIu64 ", \"failed_allocs\": %" PRIu64
        ", \"rejected_frees\": %" PRIu64,
        s->alloc_count, s->free_count, s->live_count, s->live_bytes,
        peak_all(s), s->storage_bytes, s->committed_bytes, rss_peak, rss_now,
        s->failed_allocs, s->rejected_frees);
    out(fd, ", \"rejected\": {");
    for (int i = 1; i < DH_ERR_COUNT; i++)
        out(fd, "%s\"%s\": %" PRIu64, i > 1 ? ", " : "", code_names[i],
            s->rejected_by_code[i]);
    out(fd,
        "}, \"corruptions\": %" PRIu64 ", \"abandoned_blocks\": %" PRIu64
        ", \"abandoned_bytes\": %" PRIu64,
        s->corruptions, s->abandoned_blocks, s->abandoned_bytes);
    out(fd, ", \"fingerprint\": \"%016" PRIx64 "\"", fp);
    report_heaps_json(fd);
    out(fd, "}\n");
}

void dh_proc_report(int fd, bool json) {
    dh_stats_t s;
    dh_proc_stats(&s);
    uint64_t fp = dh_proc_fingerprint();
    if (json)
        report_json(fd, &s, fp);
    else
        report_text(fd, &s, fp);
}
