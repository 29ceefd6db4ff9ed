/*
 * test_policies.c - the heap API's half of docs/ERRORS.md: every misuse of
 * dh_free, dh_heap_free and dh_heap_realloc under each error policy of the
 * heap (IGNORE, the default; WARN; ABORT; CALLBACK), the global policy for
 * pointers of no heap, and the handle API, whose misuses are silent no-ops
 * counted in rejected_handle_frees.  Linked with the static library, no
 * preload: it also runs in sanitizer builds.
 *
 * WARN's line is read back from a pipe put in place of stderr; ABORT runs
 * in a forked child whose stderr is a pipe and whose death by SIGABRT is
 * checked.
 */
#include "detheap.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "test_common.h"

/* ---- the misuses ---------------------------------------------------------- */

typedef enum { CALL_DH_FREE, CALL_HEAP_FREE, CALL_HEAP_REALLOC } call_t;
static const char *const call_names[] = {"dh_free", "dh_heap_free",
                                         "dh_heap_realloc"};

typedef struct misuse {
    const char *name;
    dh_error_code_t code;
    int size_class;      /* as the callback is told */
    const char *reason;  /* the end of the line */
} misuse_t;

static const misuse_t misuses[] = {
    {"double free class", DH_ERR_DOUBLE_FREE, 2, "double free (48-byte class)"},
    {"double free large", DH_ERR_DOUBLE_FREE, -1, "double free (large block)"},
    {"interior", DH_ERR_NOT_A_BLOCK, 2,
     "not the start of a block (inside a 48-byte block)"},
    {"misaligned", DH_ERR_MISALIGNED, -1, "misaligned pointer"},
    {"header", DH_ERR_NOT_A_BLOCK, -1, "not the start of a block"},
    {"other heap", DH_ERR_WRONG_HEAP, -1, "block of another heap"},
};
#define NMISUSES (sizeof misuses / sizeof misuses[0])

typedef struct world {
    dh_heap_t *h, *other;
    void *keep[2];
} world_t;

/* Set up misuse m on heap w->h; returns the pointer to hand over. */
static void *prepare(world_t *w, size_t m) {
    dh_heap_t *h = w->h;
    switch (m) {
    case 0: {
        void *p = dh_heap_malloc(h, 40);
        uintptr_t a = (uintptr_t)p;
        dh_heap_free(h, p);
        return (void *)a;
    }
    case 1: {
        void *p = dh_heap_malloc(h, 300000);
        w->keep[0] = dh_heap_malloc(h, 300000); /* p is not at the top */
        uintptr_t a = (uintptr_t)p;
        dh_heap_free(h, p);
        return (void *)a;
    }
    case 2: return (char *)(w->keep[0] = dh_heap_malloc(h, 40)) + 16;
    case 3: return (char *)(w->keep[0] = dh_heap_malloc(h, 40)) + 4;
    case 4: return (void *)(dh_heap_base(h) + 256);
    default: return w->keep[1] = dh_heap_malloc(w->other, 64);
    }
}

static world_t make_world(dh_on_error_t policy, dh_error_fn cb, void *user) {
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.on_error = policy;
    cfg.error_callback = cb;
    cfg.error_user = user;
    world_t w = {dh_heap_create(&cfg), dh_heap_create(NULL), {NULL, NULL}};
    assert_non_null(w.h);
    assert_non_null(w.other);
    return w;
}

static void end_world(world_t *w) {
    assert_int_equal(dh_heap_check(w->h), DH_CHECK_OK);
    assert_int_equal(dh_heap_check(w->other), DH_CHECK_OK);
    dh_heap_destroy(w->h);
    dh_heap_destroy(w->other);
}

/* dh_free finds the heap from the pointer: a block of another heap is
 * simply freed there, so that row does not apply to it. */
static bool applies(call_t call, size_t m) {
    return !(call == CALL_DH_FREE && misuses[m].code == DH_ERR_WRONG_HEAP);
}

/* Perform the call; returns what realloc returned (NULL otherwise). */
static void *perform(world_t *w, call_t call, void *p) {
    switch (call) {
    case CALL_DH_FREE: dh_free(p); return NULL;
    case CALL_HEAP_FREE: dh_heap_free(w->h, p); return NULL;
    default: return dh_heap_realloc(w->h, p, 100);
    }
}

static void expected_line(char *buf, size_t cap, call_t call, const void *p,
                          size_t m) {
    snprintf(buf, cap, "detheap: %s(%p): %s", call_names[call], p,
             misuses[m].reason);
}

/* The heap still works after a survived misuse: fill and empty it. */
static void still_works(dh_heap_t *h) {
    void *b[32];
    for (int i = 0; i < 32; i++) {
        b[i] = dh_heap_malloc(h, (size_t)i * 300 + (i == 5 ? 200000 : 1));
        assert_non_null(b[i]);
        memset(b[i], i, 16);
    }
    for (int i = 0; i < 32; i++) dh_heap_free(h, b[i]);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
}

static uint64_t rejected(dh_heap_t *h, dh_error_code_t code) {
    dh_stats_t s;
    assert_true(dh_heap_stats(h, &s, sizeof s));
    assert_int_equal(s.rejected_frees, s.rejected_by_code[code]);
    return s.rejected_frees;
}

/* ---- the policies ------------------------------------------------------------- */

static void check_realloc_result(call_t call, void *q, int err) {
    if (call != CALL_HEAP_REALLOC) return;
    assert_null(q);
    assert_int_equal(err, EINVAL);
}

/* Every misuse under a policy that carries on: the report line on stderr
 * (WARN) or nothing (IGNORE); the call's result; one rejection counted;
 * and a heap that still works. */
static void run_carry_on(dh_on_error_t policy) {
    for (int call = 0; call < 3; call++)
        for (size_t m = 0; m < NMISUSES; m++) {
            if (!applies(call, m)) continue;
            world_t w = make_world(policy, NULL, NULL);
            void *p = prepare(&w, m);
            capture_t c;
            char out[512], want[256] = "";
            capture_begin(&c);
            errno = 0;
            void *q = perform(&w, call, p);
            int err = errno;
            capture_end(&c, out, sizeof out);
            if (policy == DH_ON_ERROR_WARN) {
                expected_line(want, sizeof want - 1, call, p, m);
                strcat(want, "\n");
            }
            assert_string_equal(out, want); /* IGNORE: silent */
            check_realloc_result(call, q, err);
            assert_int_equal(rejected(w.h, misuses[m].code), 1);
            still_works(w.h);
            end_world(&w);
        }
}

static void test_ignore(void **state) {
    (void)state;
    run_carry_on(DH_ON_ERROR_IGNORE);
}

static void test_warn(void **state) {
    (void)state;
    run_carry_on(DH_ON_ERROR_WARN);
}

struct abort_arg {
    world_t *w;
    int call;
    void *p;
};
static void abort_body(void *arg) {
    struct abort_arg *a = arg;
    perform(a->w, a->call, a->p);
}

static void test_abort(void **state) {
    (void)state;
    for (int call = 0; call < 3; call++)
        for (size_t m = 0; m < NMISUSES; m++) {
            if (!applies(call, m)) continue;
            world_t w = make_world(DH_ON_ERROR_ABORT, NULL, NULL);
            void *p = prepare(&w, m);
            char out[512], want[256];
            struct abort_arg a = {&w, call, p};
            run_aborting(abort_body, &a, out, sizeof out);
            expected_line(want, sizeof want - 1, call, p, m);
            strcat(want, "\n");
            assert_string_equal(out, want);
            end_world(&w);
        }
}

typedef struct seen {
    int calls;
    dh_error_t err;
    char message[256];
    void *user;
} seen_t;

static void on_error(const dh_error_t *err, void *user) {
    seen_t *s = user;
    s->calls++;
    s->err = *err;
    s->user = user;
    snprintf(s->message, sizeof s->message, "%s", err->message);
}

static void test_callback(void **state) {
    (void)state;
    for (int call = 0; call < 3; call++)
        for (size_t m = 0; m < NMISUSES; m++) {
            if (!applies(call, m)) continue;
            seen_t seen = {0};
            world_t w = make_world(DH_ON_ERROR_CALLBACK, on_error, &seen);
            void *p = prepare(&w, m);
            capture_t c;
            char out[512], want[256];
            capture_begin(&c);
            errno = 0;
            void *q = perform(&w, call, p);
            int err = errno;
            capture_end(&c, out, sizeof out);
            assert_string_equal(out, ""); /* the callback, not stderr */
            check_realloc_result(call, q, err);
            assert_int_equal(seen.calls, 1);
            assert_ptr_equal(seen.user, &seen);
            assert_string_equal(seen.err.call, call_names[call]);
            assert_ptr_equal(seen.err.ptr, p);
            assert_int_equal(seen.err.code, misuses[m].code);
            assert_int_equal(seen.err.size_class, misuses[m].size_class);
            expected_line(want, sizeof want, call, p, m);
            assert_string_equal(seen.message, want);
            assert_int_equal(rejected(w.h, misuses[m].code), 1);
            still_works(w.h);
            end_world(&w);
        }
}

/* A pointer of no heap: the heap's policy for dh_heap_free/realloc, the
 * global one (IGNORE unless changed) for dh_free, which has no heap. */
static void test_foreign(void **state) {
    (void)state;
    static int object;
    world_t w = make_world(DH_ON_ERROR_WARN, NULL, NULL);
    capture_t c;
    char out[512], want[256];
    capture_begin(&c);
    dh_heap_free(w.h, &object);
    capture_end(&c, out, sizeof out);
    snprintf(want, sizeof want,
             "detheap: dh_heap_free(%p): pointer not from detheap\n",
             (void *)&object);
    assert_string_equal(out, want);
    assert_int_equal(rejected(w.h, DH_ERR_FOREIGN), 1);

    uint64_t before = dh_foreign_frees();
    capture_begin(&c);
    dh_free(&object);
    capture_end(&c, out, sizeof out);
    assert_string_equal(out, ""); /* global default: IGNORE */
    assert_int_equal(dh_foreign_frees(), before + 1);

    seen_t seen = {0};
    assert_true(dh_set_default_error_policy(DH_ON_ERROR_CALLBACK, on_error,
                                            &seen));
    dh_free(&object);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.err.code, DH_ERR_FOREIGN);
    assert_string_equal(seen.err.call, "dh_free");
    assert_false(dh_set_default_error_policy(DH_ON_ERROR_CALLBACK, NULL, NULL));
    assert_false(dh_set_default_error_policy((dh_on_error_t)99, NULL, NULL));
    assert_true(dh_set_default_error_policy(DH_ON_ERROR_IGNORE, NULL, NULL));
    assert_int_equal(dh_foreign_frees(), before + 2);
    end_world(&w);
}

/* The handle API never reports: a freed, stale or never-issued handle is a
 * no-op counted in rejected_handle_frees, whatever the policy. */
static void test_handles(void **state) {
    (void)state;
    world_t w = make_world(DH_ON_ERROR_ABORT, NULL, NULL);
    dh_heap_t *h = w.h;
    dh_handle_t a = dh_alloc(h, 40), b = dh_alloc(h, 300000),
                c = dh_alloc(h, 100);
    assert_true(a.id != 0 && b.id != 0 && c.id != 0);
    dh_free(h, a);
    dh_free(h, b);
    dh_stats_t s0, s1;
    assert_true(dh_heap_stats(h, &s0, sizeof s0));
    capture_t cap;
    char out[256];
    capture_begin(&cap);
    dh_free(h, a);                        /* freed */
    dh_free(h, b);                        /* freed large */
    dh_free(h, (dh_handle_t){c.id + 1});  /* inside a live block */
    dh_free(h, DH_HANDLE_NULL);           /* never issued */
    dh_free(h, (dh_handle_t){1});         /* the header */
    dh_free(h, (dh_handle_t){UINT64_MAX}); /* beyond the heap */
    dh_free(h, (dh_handle_t){(uint64_t)1 << 30}); /* never carved */
    capture_end(&cap, out, sizeof out);
    assert_string_equal(out, "");
    assert_true(dh_heap_stats(h, &s1, sizeof s1));
    assert_int_equal(s1.rejected_handle_frees - s0.rejected_handle_frees, 7);
    assert_int_equal(s1.rejected_frees, 0); /* not the pointer API's count */
    assert_int_equal(s1.free_count, s0.free_count);
    assert_int_equal(s1.live_count, s0.live_count);
    assert_null(dh_get(h, a, NULL));
    /* reuse: the handle names the new block again (LIFO), as in the
     * original design */
    dh_handle_t again = dh_alloc(h, 40);
    assert_int_equal(again.id, a.id);
    assert_non_null(dh_get(h, a, NULL));
    still_works(h);
    end_world(&w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ignore),   cmocka_unit_test(test_warn),
        cmocka_unit_test(test_abort),    cmocka_unit_test(test_callback),
        cmocka_unit_test(test_foreign),  cmocka_unit_test(test_handles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
