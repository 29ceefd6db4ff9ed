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

static void report_text(int fd, const dh_stats_t *s, uint64_t fp) {
    out(fd, "detheap: statistics of process %" PRIu64 "\n", dh_os_pid());
    out(fd, "%-7s %10s %12s %12s %10s %10s %10s %6s\n", "class", "size",
        "allocs", "frees", "live", "free", "carved", "spans");
    for (int c = 0; c < DH_NUM_CLASSES; c++) {
        const dh_class_stats_t *cs = &s->classes[c];
        if (cs->allocs == 0 && cs->carved == 0) continue;
        out(fd,
            "%-7d %10" PRIu64 " %12" PRIu64 " %12" PRIu64 " %10" PRIu64
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
    out(fd, "rejected frees: %" PRIu64, s->rejected_frees);
    for (int i = 1; i < DH_ERR_COUNT; i++)
        if (s->rejected_by_code[i])
            out(fd, ", %s %" PRIu64, code_names[i], s->rejected_by_code[i]);
    out(fd, "\nfingerprint: %016" PRIx64 "\n", fp);
}

static void report_json(int fd, const dh_stats_t *s, uint64_t fp) {
    out(fd, "{\"pid\": %" PRIu64 ", \"classes\": [", dh_os_pid());
    for (int c = 0; c < DH_NUM_CLASSES; c++) {
        const dh_class_stats_t *cs = &s->classes[c];
        out(fd,
            "%s{\"class\": %d, \"size\": %" PRIu64 ", \"allocs\": %" PRIu64
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
    out(fd, "}, \"fingerprint\": \"%016" PRIx64 "\"}\n", fp);
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
