/*
 * report.c - DETHEAP_STATS: the process heap's statistics at exit, as a
 * table (DETHEAP_STATS=1) or JSON (DETHEAP_STATS=json), on stderr or in
 * DETHEAP_STATS_FILE.  Also the exported process-wide stats calls.
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

/* One line per heap of the process: which thread ran on it (the last one,
 * for a heap handed from thread to thread), how many calls it served, its
 * fingerprint, and whether its addresses follow from the creation tree. */
static void report_heaps_text(int fd) {
    out(fd, "%-6s %-5s %-6s %-9s %-8s %-16s %12s %16s %s\n", "heap", "depth",
        "index", "kind", "tid", "thread", "calls", "fingerprint", "retired");
    for (uint32_t slot = 0; slot < dh_proc_slot_count(); slot++) {
        const dh_heap_t *h = dh_proc_heap_at(slot);
        if (h == NULL) continue;
        out(fd,
            "%-6" PRIu32 " %-5u %-6" PRIu32 " %-9s %-8" PRIu64
            " %-16s %12" PRIu64 " %016" PRIx64 " %" PRIu64 " B%s\n",
            slot, dh_ph(h)->depth, dh_ph(h)->index, heap_kind(h), dh_ph(h)->tid,
            dh_ph(h)->thread_name[0] ? dh_ph(h)->thread_name : "-", dh_ph(h)->ops, dh_ph(h)->fingerprint,
            dh_ph(h)->retired_bytes,
            dh_ph(h)->timing_dependent ? " (timing-dependent: its range ran out)"
                                : "");
    }
}

static void report_heaps_json(int fd) {
    out(fd, ", \"heaps\": [");
    bool first = true;
    for (uint32_t slot = 0; slot < dh_proc_slot_count(); slot++) {
        const dh_heap_t *h = dh_proc_heap_at(slot);
        if (h == NULL) continue;
        out(fd,
            "%s{\"slot\": %" PRIu32 ", \"depth\": %u, \"index\": %" PRIu32
            ", \"kind\": \"%s\", \"tid\": %" PRIu64
            ", \"thread\": \"%s\", \"calls\": %" PRIu64
            ", \"fingerprint\": \"%016" PRIx64 "\", \"retired_bytes\": %" PRIu64
            ", \"timing_dependent\": %s}",
            first ? "" : ", ", slot, dh_ph(h)->depth, dh_ph(h)->index, heap_kind(h), dh_ph(h)->tid,
            dh_ph(h)->thread_name, dh_ph(h)->ops, dh_ph(h)->fingerprint, dh_ph(h)->retired_bytes,
            dh_ph(h)->timing_dependent ? "true" : "false");
        first = false;
    }
    out(fd, "]");
}

static void report_text(int fd, const dh_stats_t *s, uint64_t fp) {
    out(fd, "detheap: statistics of process %" PRIu64 " (%s classes)\n",
        dh_os_pid(), s->class_set == DH_CLASSES_FINE ? "fine" : "spec");
    out(fd, "%-7s %10s %12s %12s %10s %10s %10s %6s\n", "class", "size",
        "allocs", "frees", "live", "free", "carved", "spans");
    for (uint32_t c = 0; c < s->class_count; c++) {
        const dh_class_stats_t *cs = &s->by_class[c];
        if (cs->allocs == 0 && cs->carved == 0) continue;
        out(fd,
            "%-7u %10" PRIu64 " %12" PRIu64 " %12" PRIu64 " %10" PRIu64
            " %10" PRIu64 " %10" PRIu64 " %6" PRIu64 "\n",
            c, cs->size, cs->allocs, cs->frees, cs->live, cs->free, cs->carved,
            cs->spans);
    }
    out(fd,
        "%-7s %10s %12" PRIu64 " %12" PRIu64 " %10" PRIu64
        " %10" PRIu64 "   live %" PRIu64 " B, free %" PRIu64 " B\n",
        "large", "-", s->large_allocs, s->large_frees, s->large_live_count,
        s->large_free_count, s->large_live_bytes, s->large_free_bytes);
    out(fd,
        "total: allocs %" PRIu64 ", frees %" PRIu64 ", live %" PRIu64
        " (%" PRIu64 " B), peak live %" PRIu64 " B\n",
        s->alloc_count, s->free_count, s->live_count, s->live_bytes,
        s->peak_live_bytes);
    out(fd,
        "memory: storage %" PRIu64 " B, committed %" PRIu64
        " B, failed allocations %" PRIu64 "\n",
        s->storage_bytes, s->committed_bytes, s->failed_allocs);
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

static void report_json(int fd, const dh_stats_t *s, uint64_t fp) {
    out(fd, "{\"pid\": %" PRIu64 ", \"class_set\": \"%s\", \"classes\": [",
        dh_os_pid(), s->class_set == DH_CLASSES_FINE ? "fine" : "spec");
    for (uint32_t c = 0; c < s->class_count; c++) {
        const dh_class_stats_t *cs = &s->by_class[c];
        out(fd,
            "%s{\"class\": %u, \"size\": %" PRIu64 ", \"allocs\": %" PRIu64
            ", \"frees\": %" PRIu64 ", \"live\": %" PRIu64 ", \"free\": %" PRIu64
            ", \"carved\": %" PRIu64 ", \"spans\": %" PRIu64 "}",
            c ? ", " : "", c, cs->size, cs->allocs, cs->frees, cs->live,
            cs->free, cs->carved, cs->spans);
    }
    out(fd,
        "], \"large\": {\"allocs\": %" PRIu64 ", \"frees\": %" PRIu64
        ", \"live\": %" PRIu64 ", \"live_bytes\": %" PRIu64
        ", \"free\": %" PRIu64 ", \"free_bytes\": %" PRIu64 "}",
        s->large_allocs, s->large_frees, s->large_live_count,
        s->large_live_bytes, s->large_free_count, s->large_free_bytes);
    out(fd,
        ", \"alloc_count\": %" PRIu64 ", \"free_count\": %" PRIu64
        ", \"live_count\": %" PRIu64 ", \"live_bytes\": %" PRIu64
        ", \"peak_live_bytes\": %" PRIu64 ", \"storage_bytes\": %" PRIu64
        ", \"committed_bytes\": %" PRIu64 ", \"failed_allocs\": %" PRIu64
        ", \"rejected_frees\": %" PRIu64,
        s->alloc_count, s->free_count, s->live_count, s->live_bytes,
        s->peak_live_bytes, s->storage_bytes, s->committed_bytes,
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
