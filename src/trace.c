/*
 * trace.c - DETHEAP_TRACE: every call of the process heap recorded in a
 * compact binary file for the detheap tool (layout: docs/TRACE.md).
 *
 * Each heap buffers its records in its own header area and appends them to
 * the file with one write() when the buffer is full, when its thread ends
 * and at exit; the file is opened O_APPEND, so whole buffers from several
 * threads never interleave.  A record names the heap's slot, and a heap's
 * records are in the order its calls were made, which is deterministic even
 * when the heaps' buffers reach the file in varying order.
 *
 *   file:    header (64 bytes) | record | record | ...
 *   record:  u8 op | u8 flags | u16 extra | u32 slot | u64 a | u64 b | u64 c
 *
 * With DETHEAP_STACKS=1 and a stack hook registered (the tool's helper
 * library does that), each call is followed by a FRAMES record and its
 * return addresses; at exit the process's memory map is appended (MAPS),
 * so the tool can symbolize the addresses afterwards.
 */
#include "process.h"

#include <string.h>

#define TRACE_MAGIC "DHTRACE1"
#define TRACE_VERSION 1u
#define RECORD 32u
#define MAX_FRAMES 32

typedef struct {
    uint8_t op, flags;
    uint16_t extra;
    uint32_t slot;
    uint64_t a, b, c;
} record_t;
_Static_assert(sizeof(record_t) == RECORD, "records are 32 bytes");

typedef struct {
    char magic[8];
    uint32_t version, record_size;
    uint64_t pid, ppid, base, reserve, flags, reserved;
} header_t;
_Static_assert(sizeof(header_t) == 64, "the header is 64 bytes");

static int trace_fd = -1;
static dh_stack_fn stack_hook;

void dh_set_stack_hook(dh_stack_fn fn) {
    __atomic_store_n(&stack_hook, fn, __ATOMIC_RELEASE);
}

/* The file name: the template with each %p replaced by the pid. */
void dh_file_name(char *out, size_t cap, const char *tmpl) {
    size_t n = 0;
    for (const char *s = tmpl; *s && n + 24 < cap; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            char digits[24];
            int k = 0;
            uint64_t pid = dh_os_pid();
            do digits[k++] = (char)('0' + pid % 10);
            while ((pid /= 10) != 0);
            while (k) out[n++] = digits[--k];
            s++;
        } else {
            out[n++] = *s;
        }
    }
    out[n] = 0;
}

void dh_trace_open(void) {
    const dh_options_t *o = dh_proc_options();
    char name[4096];
    dh_file_name(name, sizeof name, o->trace);
    trace_fd = dh_os_open_write(name);
    if (trace_fd < 0) {
        const char msg[] = "detheap: cannot open the DETHEAP_TRACE file; "
                           "not tracing\n";
        dh_os_write_stderr(msg, sizeof msg - 1);
        return;
    }
    header_t h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, TRACE_MAGIC, 8);
    h.version = TRACE_VERSION;
    h.record_size = RECORD;
    h.pid = dh_os_pid();
    h.ppid = dh_os_ppid();
    h.base = o->base;
    h.reserve = o->reserve;
    h.flags = o->stacks ? 1 : 0;
    dh_os_write_all(trace_fd, &h, sizeof h);
}

void dh_trace_flush(dh_heap_t *h) {
    if (dh_ph(h)->trace_len == 0 || trace_fd < 0) return;
    dh_os_write_all(trace_fd, dh_ph(h)->trace_buf, dh_ph(h)->trace_len);
    dh_ph(h)->trace_len = 0;
}

static void put(dh_heap_t *h, const record_t *r) {
    if (dh_ph(h)->trace_buf == NULL) return;
    if (dh_ph(h)->trace_len + RECORD > DH_TRACE_BUF) dh_trace_flush(h);
    memcpy(dh_ph(h)->trace_buf + dh_ph(h)->trace_len, r, RECORD);
    dh_ph(h)->trace_len += RECORD;
}

/* Give h a buffer (in its header area) and say which thread now runs it. */
void dh_trace_thread(dh_heap_t *h) {
    if (trace_fd < 0 || h == NULL) return;
    if (dh_ph(h)->trace_buf == NULL) {
        uintptr_t buf = h->base + DH_HEADER_SIZE / 2;
        if (!dh_os_commit((void *)buf, DH_TRACE_BUF)) return;
        dh_ph(h)->trace_buf = (uint8_t *)buf;
    }
    record_t r = {DH_OP_THREAD, dh_self.unordered, 0, dh_ph(h)->owner_slot,
                  dh_self.path, dh_ph(h)->ops, 0};
    put(h, &r);
}

static void put_frames(dh_heap_t *h) {
    dh_stack_fn hook = __atomic_load_n(&stack_hook, __ATOMIC_ACQUIRE);
    if (hook == NULL) return;
    void *frames[MAX_FRAMES + 3];
    dh_self.in_hook = true;
    int n = hook(frames, MAX_FRAMES);
    dh_self.in_hook = false;
    if (n <= 0) return;
    /* the record and its addresses go out in one buffer, never split */
    uint32_t need = RECORD * (1 + (uint32_t)(n + 3) / 4);
    if (dh_ph(h)->trace_len + need > DH_TRACE_BUF) dh_trace_flush(h);
    record_t r = {DH_OP_FRAMES, 0, (uint16_t)n, dh_ph(h)->owner_slot, 0, 0, 0};
    put(h, &r);
    for (int i = 0; i < n; i += 4) { /* four frames a record */
        uint64_t chunk[4] = {0, 0, 0, 0};
        for (int j = 0; j < 4 && i + j < n; j++)
            chunk[j] = (uint64_t)(uintptr_t)frames[i + j];
        put(h, (const record_t *)(const void *)chunk);
    }
}

void dh_trace_record(dh_heap_t *h, dh_op_t op, uint64_t a, uint64_t b,
                     uintptr_t in, uintptr_t out) {
    if (trace_fd < 0) return;
    if (dh_ph(h)->trace_buf == NULL) dh_trace_thread(h);
    record_t r = {(uint8_t)op, (uint8_t)(out == 0 && op != DH_OP_FREE), 0,
                  dh_ph(h)->owner_slot, a, b ? b : in, out};
    /* a call and its stack share a buffer: the stack has no slot of its own */
    if (dh_proc_options()->stacks &&
        dh_ph(h)->trace_len + RECORD * (2 + MAX_FRAMES / 4) > DH_TRACE_BUF)
        dh_trace_flush(h);
    put(h, &r);
    if (dh_proc_options()->stacks) put_frames(h);
}

/* Append the memory map, so the tool can symbolize return addresses. */
static void put_maps(void) {
    int fd = dh_os_open_read("/proc/self/maps");
    if (fd < 0) return;
    char buf[8192];
    uint64_t total = 0;
    long n;
    /* first pass: length, so the record can say it */
    while ((n = dh_os_read(fd, buf, sizeof buf)) > 0) total += (uint64_t)n;
    dh_os_close(fd);
    fd = dh_os_open_read("/proc/self/maps");
    if (fd < 0) return;
    record_t r = {DH_OP_MAPS, 0, 0, 0, total, 0, 0};
    dh_os_write_all(trace_fd, &r, sizeof r);
    uint64_t written = 0;
    while (written < total && (n = dh_os_read(fd, buf, sizeof buf)) > 0) {
        if ((uint64_t)n > total - written) n = (long)(total - written);
        dh_os_write_all(trace_fd, buf, (size_t)n);
        written += (uint64_t)n;
    }
    dh_os_close(fd);
    memset(buf, ' ', sizeof buf); /* pad: short read, then to a record */
    while (written < total) {
        uint64_t k = total - written < sizeof buf ? total - written : sizeof buf;
        dh_os_write_all(trace_fd, buf, (size_t)k);
        written += k;
    }
    uint64_t pad = (RECORD - total % RECORD) % RECORD;
    if (pad) dh_os_write_all(trace_fd, buf, (size_t)pad);
}

void dh_trace_finish(void) {
    if (trace_fd < 0) return;
    dh_heap_t *h = dh_self.heap;
    if (h != NULL) {
        record_t r = {DH_OP_END, 0, 0, dh_ph(h)->owner_slot, dh_ph(h)->ops, dh_ph(h)->fingerprint,
                      dh_proc_fingerprint()};
        put(h, &r);
        dh_trace_flush(h);
    }
    if (dh_proc_options()->stacks) put_maps();
}

void dh_trace_after_fork(void) {
    if (trace_fd >= 0) dh_os_close(trace_fd);
    trace_fd = -1;
    dh_heap_t *h = dh_self.heap;
    if (h != NULL) dh_ph(h)->trace_len = 0; /* the parent writes those */
    dh_trace_open();
    dh_trace_thread(h);
}
