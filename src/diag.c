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
    if (code == DH_ERR_CORRUPTED) return "heap metadata corrupted";
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
                       const void *ptr, dh_error_code_t code, int size_class,
                       const dh_heap_t *h) {
    out_t o = {buf, cap, 0};
    put(&o, "detheap: ");
    put(&o, call);
    put(&o, "(");
    put_hex(&o, (uintptr_t)ptr);
    put(&o, "): ");
    put(&o, dh_error_name(code));
    if (h != NULL && size_class >= 0 && size_class < h->nclasses) {
        put(&o, code == DH_ERR_NOT_A_BLOCK ? " (inside a " : " (");
        put_dec(&o, dh_class_bytes(h, size_class));
        put(&o, code == DH_ERR_NOT_A_BLOCK ? "-byte block)" : "-byte class)");
    } else if (size_class == DH_LARGE_INDEX) {
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
        return c >= 0 && c < h->nclasses && p < q + dh_class_bytes(h, c) ? c
                                                                       : -1;
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
        *size_class = DH_LARGE_INDEX;
        return DH_ERR_DOUBLE_FREE;
    }
    *size_class = containing_class(h, p);
    return DH_ERR_NOT_A_BLOCK;
}

/* Apply a policy to a report whose line is already formatted (n bytes of
 * line, which has room for one more). */
static void act_line(dh_on_error_t policy, dh_error_fn cb, void *user,
                     const char *call, const void *ptr, dh_error_code_t code,
                     int size_class, char *line, size_t n) {
    if (policy == DH_ON_ERROR_IGNORE) return;
    if (policy == DH_ON_ERROR_CALLBACK) {
        dh_error_t err = {call, ptr, code,
                          size_class < DH_LARGE_INDEX ? size_class : -1, line};
        cb(&err, user);
        return;
    }
    line[n] = '\n';
    dh_os_write_stderr(line, n + 1);
    if (policy == DH_ON_ERROR_ABORT) dh_os_abort();
}

static void act(const dh_heap_t *h, dh_on_error_t policy, dh_error_fn cb,
                void *user, const char *call, const void *ptr,
                dh_error_code_t code, int size_class) {
    if (policy == DH_ON_ERROR_IGNORE) return;
    char line[160];
    size_t n = dh_format_error(line, sizeof line - 1, call, ptr, code,
                               size_class, h);
    if (n > sizeof line - 2) n = sizeof line - 2;
    act_line(policy, cb, user, call, ptr, code, size_class, line, n);
}

void dh_report(dh_heap_t *h, const char *call, const void *ptr,
               dh_error_code_t code, int size_class) {
    if (h == NULL) {
        atomic_fetch_add(&foreign_count, 1);
        act(NULL, (dh_on_error_t)atomic_load(&global_policy),
            atomic_load(&global_cb),
            atomic_load(&global_user), call, ptr, code, size_class);
        return;
    }
    if ((unsigned)code < DH_ERR_COUNT) h->rejected_by_code[code]++;
    act(h, h->on_error, h->error_callback, h->error_user, call, ptr, code,
        size_class);
}

/* ---- integrity ------------------------------------------------------------ */

static const char likely_cause[] =
    ": the block was written after it was freed, or overflowed from the "
    "block before it";

/* Report a corruption found by `call` asking for n bytes, at `at`; `what`
 * names the damaged structure. */
void dh_report_corruption(dh_heap_t *h, const char *call, size_t n,
                          int size_class, const char *what,
                          const void *at) {
    h->corruptions++;
    if (h->on_error == DH_ON_ERROR_IGNORE) return;
    char line[256];
    out_t o = {line, sizeof line - 1, 0};
    put(&o, "detheap: ");
    put(&o, call);
    if (n != SIZE_MAX) { /* SIZE_MAX: the call has no size to name */
        put(&o, "(");
        put_dec(&o, n);
        put(&o, ")");
    }
    put(&o, ": ");
    put(&o, what);
    put(&o, " corrupted at ");
    put_hex(&o, (uintptr_t)at);
    put(&o, likely_cause);
    size_t len = o.len < sizeof line - 2 ? o.len : sizeof line - 2;
    line[len] = 0;
    act_line(h->on_error, h->error_callback, h->error_user, call, at,
             DH_ERR_CORRUPTED, size_class, line, len);
}

void dh_list_corrupted(dh_heap_t *h, const char *call, size_t n, int c,
                       bool foreign, const void *at) {
    dh_bin_t *b = &h->bins[c];
    /* abandoned, never followed: the blocks on it are leaked */
    if (foreign) {
        /* blocks of other ranges, not counted here: the process check
         * allows for them */
        b->foreign = NULL;
        h->class_abandoned = true;
    } else {
        b->head = NULL;
        uint64_t lost;
        if (h->process) { /* its blocks are not all on this list */
            lost = dh_count_free_class(h, c) - h->abandoned[c];
            h->class_abandoned = true;
        } else { /* every free block of a private heap was on it */
            lost = b->carved - (b->allocs - b->frees) - h->abandoned[c];
        }
        h->abandoned[c] += lost;
        h->abandoned_bytes += lost * dh_class_bytes(h, c);
    }
    char what[64];
    out_t o = {what, sizeof what, 0};
    put(&o, foreign ? "foreign free list of the " : "free list of the ");
    put_dec(&o, dh_class_bytes(h, c));
    put(&o, "-byte class");
    what[o.len < sizeof what ? o.len : sizeof what - 1] = 0;
    dh_report_corruption(h, call, n, c, what, at);
}

void dh_tree_corrupted(dh_heap_t *h, const char *call, size_t n,
                       const void *at) {
    dh_report_corruption(h, call, n, DH_LARGE_INDEX,
                      "tree of free large blocks", at);
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
