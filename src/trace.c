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
 * With DETHEAP_STACKS and a stack hook registered (the tool's helper
 * library does that), each call is followed by a FRAMES record and its
 * return addresses; at exit the process's memory map is appended (MAPS),
 * so the tool can symbolize the addresses afterwards.
 *
 * exec: before the program is replaced (override/exec.c) the calling
 * thread's buffer, its end record and the map are written; the new program
 * finds the file it reopens (same name: the same pid) already started by
 * its own pid, and appends an EXEC record instead of truncating it.
 *
 * DETHEAP_TRACE_LOG=FD:DEV:INO (set by the tool): one line per process on
 * that inherited descriptor saying whether its trace could be opened and
 * written, so that a process whose trace is missing is never overlooked.
 */
#include "process.h"

#include <errno.h>
#include <string.h>

#define TRACE_MAGIC "DHTRACE1"
#define TRACE_VERSION 2u
#define RECORD 32u
#define OWN_FRAMES 8 /* detheap's own frames above the program's */
#define MAX_FRAMES (DH_MAX_STACK_DEPTH + OWN_FRAMES)
#define FLAG_STACKS 1u /* header flags (docs/TRACE.md) */
#define FLAG_OWNER 2u
#define FLAG_FINE 4u /* DETHEAP_CLASSES=fine */

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

static void put_decimal(char *out, size_t *n, uint64_t v) {
    char digits[24];
    int k = 0;
    do digits[k++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (k) out[(*n)++] = digits[--k];
}

/* "WHAT PID PPID ERRNO COMM NAME\n" on the tool's descriptor, if it is
 * still the one the tool opened; one write (O_APPEND), so lines never mix.
 * COMM is the calling thread's name (the program's, at its first call),
 * blanks made '_'. */
static void log_line(const char *what, int err, const char *name) {
    const dh_options_t *o = dh_proc_options();
    if (!o->trace_log ||
        !dh_os_fd_is(o->trace_log_fd, o->trace_log_dev, o->trace_log_ino))
        return;
    char line[4200];
    size_t n = 0, w = strlen(what), k = strlen(name);
    memcpy(line, what, w);
    n = w;
    line[n++] = ' ';
    put_decimal(line, &n, dh_os_pid());
    line[n++] = ' ';
    put_decimal(line, &n, dh_os_ppid());
    line[n++] = ' ';
    put_decimal(line, &n, (uint64_t)err);
    line[n++] = ' ';
    char comm[16];
    dh_os_thread_name(comm);
    if (comm[0] == 0) memcpy(comm, "?", 2);
    for (int i = 0; comm[i]; i++)
        line[n++] = comm[i] == ' ' || comm[i] == '\n' ? '_' : comm[i];
    line[n++] = ' ';
    if (k > sizeof line - n - 1) k = sizeof line - n - 1;
    memcpy(line + n, name, k);
    n += k;
    line[n++] = '\n';
    dh_os_write_all(o->trace_log_fd, line, n);
}

static char trace_name[4096];
static void put_maps(void);
static bool write_failed;

/* A write that failed leaves a trace with a hole: said once, on stderr and
 * to the tool. */
static void write_out(const void *buf, size_t len) {
    if (dh_os_write_all(trace_fd, buf, len) || write_failed) return;
    int err = errno;
    write_failed = true;
    const char msg[] = "detheap: writing the DETHEAP_TRACE file failed; the "
                       "trace is incomplete\n";
    dh_os_write_stderr(msg, sizeof msg - 1);
    log_line("writefail", err, trace_name);
}

/* Whether name is a trace this very process started: a program that ran
 * exec and reopens its own file (its pid is the same). */
static bool started_by_us(const char *name) {
    int fd = dh_os_open_read(name);
    if (fd < 0) return false;
    header_t h;
    long n = dh_os_read(fd, &h, sizeof h);
    dh_os_close(fd);
    return n == (long)sizeof h && memcmp(h.magic, TRACE_MAGIC, 8) == 0 &&
           h.pid == dh_os_pid();
}

static uint64_t header_flags(const dh_options_t *o) {
    return (o->stacks ? FLAG_STACKS : 0) | (o->remote_owner ? FLAG_OWNER : 0) |
           (o->classes == DH_CLASSES_FINE ? FLAG_FINE : 0);
}

/* A crash (trace on): the crashing thread's buffer and the map go out, so
 * the trace ends at the last call; no end record (the process did not
 * finish).  Only write() and open() here: it runs in a signal handler. */
static void on_crash(int sig) {
    (void)sig;
    dh_heap_t *h = dh_self.heap;
    if (trace_fd < 0 || h == NULL || dh_self.in_hook) return;
    if (dh_ph(h)->trace_len % RECORD != 0) return; /* caught mid-record */
    char name[16];
    dh_os_thread_name(name);
    dh_trace_thread_end(h, name);
    if (dh_proc_options()->stacks) put_maps();
}

void dh_trace_open(void) {
    const dh_options_t *o = dh_proc_options();
    static bool handler_set;
    if (!handler_set) {
        handler_set = true;
        dh_os_on_fatal_signal(on_crash);
    }
    dh_file_name(trace_name, sizeof trace_name, o->trace);
    write_failed = false;
    bool after_exec = started_by_us(trace_name);
    trace_fd = after_exec ? dh_os_open_append(trace_name)
                          : dh_os_open_write(trace_name);
    if (trace_fd < 0) {
        int err = errno;
        const char *msg[] = {"detheap: process ", NULL, ": cannot open the "
                             "DETHEAP_TRACE file ", trace_name,
                             "; not tracing\n"};
        char pid[24];
        size_t n = 0;
        put_decimal(pid, &n, dh_os_pid());
        pid[n] = 0;
        msg[1] = pid;
        dh_say_parts(msg, 5);
        log_line("fail", err, trace_name);
        return;
    }
    log_line(after_exec ? "exec" : "open", 0, trace_name);
    if (after_exec) {
        record_t r = {DH_OP_EXEC, 0, 0, 0, dh_os_pid(), dh_os_ppid(),
                      header_flags(o)};
        write_out(&r, sizeof r);
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
    h.flags = header_flags(o);
    write_out(&h, sizeof h);
}

void dh_trace_flush(dh_heap_t *h) {
    if (dh_ph(h)->trace_len == 0 || trace_fd < 0) return;
    write_out(dh_ph(h)->trace_buf, dh_ph(h)->trace_len);
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
                  dh_self.path, dh_ph(h)->ops, dh_os_tid()};
    put(h, &r);
}

/* The name of the thread leaving h (its thread ends, or the process
 * exits), then its buffer out. */
void dh_trace_thread_end(dh_heap_t *h, const char name[16]) {
    if (trace_fd < 0 || h == NULL) return;
    if (dh_ph(h)->trace_buf != NULL) {
        record_t r = {DH_OP_NAME, 0, 0, dh_ph(h)->owner_slot, dh_os_tid(), 0,
                      0};
        memcpy(&r.b, name, 16);
        put(h, &r);
    }
    dh_trace_flush(h);
}

static void put_frames(dh_heap_t *h) {
    dh_stack_fn hook = __atomic_load_n(&stack_hook, __ATOMIC_ACQUIRE);
    if (hook == NULL) return;
    void *frames[MAX_FRAMES + 3];
    dh_self.in_hook = true;
    int n = hook(frames, dh_proc_options()->stack_depth + OWN_FRAMES);
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
    /* free and realloc: b is the record's pointer (the caller's b is for
     * the statistics) */
    bool ptr_arg = op == DH_OP_FREE || op == DH_OP_REALLOC;
    record_t r = {(uint8_t)op, (uint8_t)(out == 0 && op != DH_OP_FREE), 0,
                  dh_ph(h)->owner_slot, a, ptr_arg ? in : b, out};
    /* a call and its stack share a buffer: the stack has no slot of its own */
    if (dh_proc_options()->stacks &&
        dh_ph(h)->trace_len + RECORD * (3 + MAX_FRAMES / 4) > DH_TRACE_BUF)
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
    write_out(&r, sizeof r);
    uint64_t written = 0;
    while (written < total && (n = dh_os_read(fd, buf, sizeof buf)) > 0) {
        if ((uint64_t)n > total - written) n = (long)(total - written);
        write_out(buf, (size_t)n);
        written += (uint64_t)n;
    }
    dh_os_close(fd);
    memset(buf, ' ', sizeof buf); /* pad: short read, then to a record */
    while (written < total) {
        uint64_t k = total - written < sizeof buf ? total - written : sizeof buf;
        write_out(buf, (size_t)k);
        written += k;
    }
    uint64_t pad = (RECORD - total % RECORD) % RECORD;
    if (pad) write_out(buf, (size_t)pad);
}

void dh_trace_finish(void) {
    if (trace_fd < 0) return;
    dh_heap_t *h = dh_self.heap;
    if (h != NULL) {
        record_t r = {DH_OP_END, 0, 0, dh_ph(h)->owner_slot, dh_ph(h)->ops,
                      dh_ph(h)->fingerprint, dh_proc_fingerprint()};
        put(h, &r);
        char name[16];
        dh_os_thread_name(name);
        dh_trace_thread_end(h, name);
    }
    if (dh_proc_options()->stacks) put_maps();
}

/* A misuse about to be reported: the call's pointer, why, and its stack,
 * written out now (an abort follows by default), with the map. */
void dh_trace_misuse(dh_heap_t *h, uintptr_t p, int code) {
    if (trace_fd < 0 || dh_self.in_hook) return;
    if (h == NULL || dh_ph(h)->trace_buf == NULL) h = dh_self.heap;
    if (h == NULL || dh_ph(h)->trace_buf == NULL) return;
    if (dh_proc_options()->stacks &&
        dh_ph(h)->trace_len + RECORD * (3 + MAX_FRAMES / 4) > DH_TRACE_BUF)
        dh_trace_flush(h);
    record_t r = {DH_OP_MISUSE, 0, (uint16_t)code, dh_ph(h)->owner_slot, p, 0,
                  0};
    put(h, &r);
    if (dh_proc_options()->stacks) put_frames(h);
    if (dh_proc_options()->on_error != DH_ON_ERROR_ABORT) {
        dh_trace_flush(h);
        return;
    }
    /* the process stops here: what dh_trace_finish would have written */
    char name[16];
    dh_os_thread_name(name);
    dh_trace_thread_end(h, name);
    if (dh_proc_options()->stacks) put_maps();
}

void dh_trace_before_exec(void) {
    if (trace_fd < 0 || dh_self.in_hook) return;
    dh_trace_finish();
}

void dh_trace_after_fork(void) {
    if (trace_fd >= 0) dh_os_close(trace_fd);
    trace_fd = -1;
    dh_heap_t *h = dh_self.heap;
    if (h != NULL) dh_ph(h)->trace_len = 0; /* the parent writes those */
    dh_trace_open();
    dh_trace_thread(h);
}
