/*
 * diag.c - misuse reports.  A rejected pointer is classified in O(1) (the
 * state byte says all that matters), counted, and then handled by the
 * heap's error policy: ignore, warn (one line on stderr), abort (the line,
 * then SIGABRT) or a user callback.  Pointers of no heap use the global
 * policy.  Nothing here allocates or calls stdio, so the malloc override can
 * report from inside malloc.
 *
 * One line names the call, the pointer and the reason:
 *   detheap: free(0x200000401230): double free (48-byte class)
 */
#include "internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

static const char *const names[DH_ERR_COUNT] = {
    [DH_ERR_NONE] = "no error",
    [DH_ERR_DOUBLE_FREE] = "double free",
    [DH_ERR_NOT_A_BLOCK] = "not the start of a block",
    [DH_ERR_FOREIGN] = "pointer not from detheap",
    [DH_ERR_MISALIGNED] = "misaligned pointer",
    [DH_ERR_WRONG_HEAP] = "block of another heap",
};

const char *dh_error_name(dh_error_code_t code) {
    return (unsigned)code < DH_ERR_COUNT ? names[code] : "unknown error";
}

/* The global policy, for pointers of no heap. */
static _Atomic int global_policy = DH_ON_ERROR_IGNORE;
static dh_error_fn _Atomic global_cb;
static void *_Atomic global_user;
static _Atomic uint64_t foreign_count;

bool dh_set_default_error_policy(dh_on_error_t policy, dh_error_fn cb,
                                 void *user) {
    if ((unsigned)policy > DH_ON_ERROR_CALLBACK ||
        (policy == DH_ON_ERROR_CALLBACK && cb == NULL)) {
        errno = EINVAL;
        return false;
    }
    atomic_store(&global_cb, cb);
    atomic_store(&global_user, user);
    atomic_store(&global_policy, (int)policy);
    return true;
}

uint64_t dh_foreign_frees(void) { return atomic_load(&foreign_count); }

/* A small appender: no stdio, no allocation. */
typedef struct {
    char *buf;
    size_t cap, len;
} out_t;

static void put(out_t *o, const char *s) {
    while (*s) {
        if (o->len + 1 < o->cap) o->buf[o->len] = *s;
        o->len++;
        s++;
    }
}

static void put_hex(out_t *o, uintptr_t v) {
    char tmp[2 + 16 + 1], *q = tmp + sizeof tmp - 1;
    *q = 0;
    do {
        *--q = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    *--q = 'x';
    *--q = '0';
    put(o, q);
}

static void put_dec(out_t *o, uint64_t v) {
    char tmp[21], *q = tmp + sizeof tmp - 1;
    *q = 0;
    do {
        *--q = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, q);
}

size_t dh_format_error(char *buf, size_t cap, const char *call,
                       const void *ptr, dh_error_code_t code, int size_class) {
    out_t o = {buf, cap, 0};
    put(&o, "detheap: ");
    put(&o, call);
    put(&o, "(");
    put_hex(&o, (uintptr_t)ptr);
    put(&o, "): ");
    put(&o, dh_error_name(code));
    if (size_class >= 0 && size_class < DH_NUM_CLASSES) {
        put(&o, code == DH_ERR_NOT_A_BLOCK ? " (inside a " : " (");
        put_dec(&o, dh_class_sizes[size_class]);
        put(&o, code == DH_ERR_NOT_A_BLOCK ? "-byte block)" : "-byte class)");
    } else if (size_class == DH_NUM_CLASSES) {
        put(&o, " (large block)");
    }
    if (cap) buf[o.len < cap ? o.len : cap - 1] = 0;
    return o.len;
}

/* For a granule where no block starts, look back (at most one span) for the
 * class block that contains it, to say so in the report.  Bounded, and only
 * on the error path. */
static int containing_class(const dh_heap_t *h, uintptr_t p) {
    uintptr_t lo = p - h->data_start > DH_SPAN ? p - DH_SPAN : h->data_start;
    for (uintptr_t q = p & ~(DH_GRANULE - 1); q >= lo && q > h->data_start;) {
        q -= DH_GRANULE;
        uint8_t s = dh_st_load(dh_state_at(h, q));
        if (s == DH_ST_NONE) continue;
        int c = dh_st_is_live_class(s)   ? s - DH_ST_LIVE
                : dh_st_is_free_class(s) ? s - DH_ST_FREE
                                         : -1;
        return c >= 0 && p < q + dh_class_sizes[c] ? c : -1;
    }
    return -1;
}

dh_error_code_t dh_classify(const dh_heap_t *h, uintptr_t p, int *size_class) {
    *size_class = -1;
    if (p & (DH_GRANULE - 1)) return DH_ERR_MISALIGNED;
    if (!dh_in_data(h, p)) return DH_ERR_NOT_A_BLOCK;
    uint8_t s = dh_st_load(dh_state_at(h, p));
    if (dh_st_is_free_class(s)) {
        *size_class = s - DH_ST_FREE;
        return DH_ERR_DOUBLE_FREE;
    }
    if (s == DH_ST_FREE_LARGE || s == DH_ST_FREE_FOREIGN) {
        *size_class = DH_NUM_CLASSES;
        return DH_ERR_DOUBLE_FREE;
    }
    *size_class = containing_class(h, p);
    return DH_ERR_NOT_A_BLOCK;
}

static void act(dh_on_error_t policy, dh_error_fn cb, void *user,
                const char *call, const void *ptr, dh_error_code_t code,
                int size_class) {
    if (policy == DH_ON_ERROR_IGNORE) return;
    char line[160];
    size_t n = dh_format_error(line, sizeof line - 1, call, ptr, code,
                               size_class);
    if (n > sizeof line - 2) n = sizeof line - 2;
    if (policy == DH_ON_ERROR_CALLBACK) {
        dh_error_t err = {call, ptr, code,
                          size_class < DH_NUM_CLASSES ? size_class : -1, line};
        cb(&err, user);
        return;
    }
    line[n] = '\n';
    dh_os_write_stderr(line, n + 1);
    if (policy == DH_ON_ERROR_ABORT) dh_os_abort();
}

void dh_report(dh_heap_t *h, const char *call, const void *ptr,
               dh_error_code_t code, int size_class) {
    if (h == NULL) {
        atomic_fetch_add(&foreign_count, 1);
        act((dh_on_error_t)atomic_load(&global_policy), atomic_load(&global_cb),
            atomic_load(&global_user), call, ptr, code, size_class);
        return;
    }
    h->rejected_by_code[code]++;
    act(h->on_error, h->error_callback, h->error_user, call, ptr, code,
        size_class);
}

void dh_assert_fail(const char *inv, const char *cond, const char *file,
                    int line) {
    char buf[256];
    out_t o = {buf, sizeof buf, 0};
    put(&o, "detheap: internal invariant ");
    put(&o, inv);
    put(&o, " broken: ");
    put(&o, cond);
    put(&o, " at ");
    put(&o, file);
    put(&o, ":");
    put_dec(&o, (uint64_t)line);
    put(&o, "\n");
    dh_os_write_stderr(buf, o.len < sizeof buf ? o.len : sizeof buf);
    dh_os_abort();
}
