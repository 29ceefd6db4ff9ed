/*
 * test_corruption.c - the integrity checks of the heap API (docs/ERRORS.md,
 * "Corrupted heap metadata").  Each row damages a heap the way a buggy
 * program does - a write after free into a freed block's link, an overflow
 * from the block before, a freed large block's first bytes overwritten -
 * and then allocates.  Under every policy the outcome must be a report (or,
 * for damage to plain data, nothing) and blocks that overlap nothing live:
 * never a live block handed out twice, never a pointer outside the heap.
 * Under IGNORE, WARN and CALLBACK the heap then goes on working and checks
 * clean, with the abandoned blocks counted; under ABORT the child dies of
 * SIGABRT after the line.
 */
#include "robust.h"
#include "scribble.h"

#include <sys/mman.h>

#define MAX_LIVE 4096

typedef struct {
    void *p[MAX_LIVE];
    size_t n[MAX_LIVE];
    int count;
} live_t;

/* A block just handed out must overlap no block the test holds live. */
static void take(live_t *l, void *p, size_t n) {
    assert_non_null(p);
    uintptr_t a = (uintptr_t)p, e = a + dh_usable_size(p);
    assert_true(dh_usable_size(p) >= n);
    for (int i = 0; i < l->count; i++) {
        uintptr_t b = (uintptr_t)l->p[i], f = b + l->n[i];
        if (a < f && b < e)
            fail_msg("%p (%zu bytes) overlaps the live block %p (%zu bytes)",
                     p, n, l->p[i], l->n[i]);
    }
    assert_true(l->count < MAX_LIVE);
    l->p[l->count] = p;
    l->n[l->count++] = dh_usable_size(p);
}

static void *alloc(dh_heap_t *h, live_t *l, size_t n) {
    void *p = dh_heap_malloc(h, n);
    take(l, p, n);
    return p;
}

static void drop(dh_heap_t *h, live_t *l, void *p) {
    for (int i = 0; i < l->count; i++)
        if (l->p[i] == p) {
            l->p[i] = l->p[--l->count];
            l->n[i] = l->n[l->count];
            dh_heap_free(h, p);
            return;
        }
    fail_msg("%p is not live", p);
}

static char a_global[64] __attribute__((aligned(16)));

/* One row: damage the heap (returning the address the report must name,
 * or NULL if no report is due), then the allocations that meet it. */
typedef struct row {
    const char *name;
    void *(*damage)(dh_heap_t *h, live_t *l);
    size_t size;        /* the allocations that follow */
    const char *what;   /* the damaged structure, as the line names it */
    int size_class;     /* in the callback, or -1 */
    bool leaks;         /* abandoned_blocks must grow */
} row_t;

/* A 48-byte free list b -> c -> d, b's link then aimed at `to` (or, if
 * `to` is NULL, into the middle of the free block c): c and d are lost. */
static void *aim_48(dh_heap_t *h, live_t *l, void *to) {
    void *a = alloc(h, l, 48);
    (void)a;
    void *b = alloc(h, l, 48);
    char *c = alloc(h, l, 48);
    void *d = alloc(h, l, 48);
    drop(h, l, d);
    drop(h, l, c);
    drop(h, l, b);
    if (to == NULL) to = c + 16;
    scribble(b, &to, sizeof to); /* the write after free */
    return to;
}

static void *uaf_to_live(dh_heap_t *h, live_t *l) {
    void *victim = alloc(h, l, 48);
    return aim_48(h, l, victim);
}

/* An 8-byte linear overflow from block p into the freed block after it. */
static void *overflow_to_live(dh_heap_t *h, live_t *l) {
    void *victim = alloc(h, l, 48);
    char *p = alloc(h, l, 48);
    char *next = alloc(h, l, 48);
    void *c = alloc(h, l, 48);
    assert_ptr_equal(next, p + 48); /* carved in address order */
    drop(h, l, c);
    drop(h, l, next); /* next -> c */
    scribble(p + 48, &victim, sizeof victim); /* p[48..55]: one word too far */
    return victim;
}

static void *uaf_to_global(dh_heap_t *h, live_t *l) {
    return aim_48(h, l, a_global);
}

static void *uaf_to_nearby(dh_heap_t *h, live_t *l) {
    char *live = alloc(h, l, 48);
    return aim_48(h, l, live + 8); /* not a granule start */
}

static void *uaf_to_interior(dh_heap_t *h, live_t *l) {
    return aim_48(h, l, NULL); /* inside a free 48-byte block */
}

static void *uaf_to_other_class(dh_heap_t *h, live_t *l) {
    void *other = alloc(h, l, 64);
    drop(h, l, other); /* free, but of the 64-byte class */
    return aim_48(h, l, other);
}

/* A freed 1 MiB block between live ones, and a second free one, so that the
 * tree has two nodes; the first 64 bytes of the 1 MiB block (its node)
 * overwritten by `fill`. */
static void *large_start(dh_heap_t *h, live_t *l, int fill) {
    void *guard = alloc(h, l, 1 << 20);
    char *big = alloc(h, l, 1 << 20);
    void *mid = alloc(h, l, 100000);
    void *small = alloc(h, l, 300000);
    void *end = alloc(h, l, 100000);
    (void)guard, (void)end;
    drop(h, l, big);
    drop(h, l, small);
    void *words[8];
    for (int i = 0; i < 8; i++)
        words[i] = fill == 0 ? mid : fill == 1 ? (void *)(uintptr_t)-1 : NULL;
    if (fill == 2) words[2] = (void *)(uintptr_t)4096; /* pages: 4096 */
    scribble(big, words, sizeof words);
    return big;
}

static void *large_start_live(dh_heap_t *h, live_t *l) {
    return large_start(h, l, 0);
}
static void *large_start_garbage(dh_heap_t *h, live_t *l) {
    return large_start(h, l, 1);
}
static void *large_pages(dh_heap_t *h, live_t *l) {
    return large_start(h, l, 2);
}

/* The last 64 bytes of a freed 1 MiB block are data, not metadata: no
 * report, and nothing overlaps. */
static void *large_end(dh_heap_t *h, live_t *l) {
    char *big = alloc(h, l, 1 << 20);
    void *after = alloc(h, l, 100000);
    (void)after;
    drop(h, l, big);
    unsigned char junk[64];
    memset(junk, 0xa5, sizeof junk);
    scribble(big + (1 << 20) - 64, junk, sizeof junk);
    return NULL;
}

static const row_t rows[] = {
    {"write after free: link to a live block", uaf_to_live, 48,
     "free list of the 48-byte class", 2, true},
    {"8-byte overflow from the block before", overflow_to_live, 48,
     "free list of the 48-byte class", 2, true},
    {"write after free: link to a global", uaf_to_global, 48,
     "free list of the 48-byte class", 2, true},
    {"write after free: link to a nearby misaligned address", uaf_to_nearby,
     48, "free list of the 48-byte class", 2, true},
    {"write after free: link into a free block", uaf_to_interior, 48,
     "free list of the 48-byte class", 2, true},
    {"write after free: link to a block of another class",
     uaf_to_other_class, 48, "free list of the 48-byte class", 2, true},
    {"freed large block's first 64 bytes: pointers to a live block",
     large_start_live, 1 << 20, "tree of free large blocks", -1, true},
    {"freed large block's first 64 bytes: garbage", large_start_garbage,
     1 << 20, "tree of free large blocks", -1, true},
    {"freed large block's page count changed", large_pages, 1 << 20,
     "tree of free large blocks", -1, true},
    {"freed large block's last 64 bytes (data)", large_end, 1 << 20, NULL, -1,
     false},
};
#define NROWS ((int)(sizeof rows / sizeof rows[0]))

typedef struct {
    int calls;
    dh_error_t last;
    char message[256];
} seen_t;

static void on_error(const dh_error_t *e, void *user) {
    seen_t *s = user;
    s->calls++;
    s->last = *e;
    snprintf(s->message, sizeof s->message, "%s", e->message);
}

static dh_heap_t *make(dh_on_error_t policy, seen_t *seen) {
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.reserve = (uint64_t)1 << 30;
    cfg.on_error = policy;
    if (policy == DH_ON_ERROR_CALLBACK) {
        cfg.error_callback = on_error;
        cfg.error_user = seen;
    }
    dh_heap_t *h = dh_heap_create(&cfg);
    assert_non_null(h);
    return h;
}

/* The allocations after the damage: every block must overlap nothing. */
static void meet(dh_heap_t *h, live_t *l, const row_t *r) {
    for (int i = 0; i < 4; i++) alloc(h, l, r->size);
}

static void expected_line(char *buf, size_t cap, const row_t *r,
                          const void *at) {
    snprintf(buf, cap,
             "detheap: dh_heap_malloc(%zu): %s corrupted at %p: the block was "
             "written after it was freed, or overflowed from the block "
             "before it",
             r->size, r->what, at);
}

/* After a report: the heap goes on working and checks clean. */
static void still_works(dh_heap_t *h, live_t *l, const row_t *r) {
    dh_stats_t s = test_stats(h);
    assert_int_equal(s.corruptions, r->what ? 1 : 0);
    if (r->leaks) {
        assert_true(s.abandoned_blocks >= 1);
        assert_true(s.abandoned_bytes >= 48);
    }
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    for (int i = 0; i < 200; i++) alloc(h, l, (size_t)(16 + (i * 37) % 2000));
    for (int i = 0; i < 8; i++) alloc(h, l, (size_t)70000 + (size_t)i * 4096);
    while (l->count > 0) drop(h, l, l->p[l->count - 1]);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    assert_int_equal(test_stats(h).corruptions, r->what ? 1 : 0);
}

static void run_row(const row_t *r, dh_on_error_t policy) {
    seen_t seen = {0};
    dh_heap_t *h = make(policy, &seen);
    static live_t l;
    l.count = 0;
    char out[1024] = "", want[512];
    capture_t cap;
    capture_begin(&cap);
    void *at = r->damage(h, &l);
    meet(h, &l, r);
    capture_end(&cap, out, sizeof out);
    if (r->what == NULL) {
        assert_null(at);
        assert_string_equal(out, "");
        assert_int_equal(seen.calls, 0);
    } else {
        expected_line(want, sizeof want, r, at);
        if (policy == DH_ON_ERROR_WARN) {
            strcat(want, "\n");
            assert_string_equal(out, want);
        } else {
            assert_string_equal(out, "");
        }
        if (policy == DH_ON_ERROR_CALLBACK) {
            assert_int_equal(seen.calls, 1);
            assert_int_equal(seen.last.code, DH_ERR_CORRUPTED);
            assert_ptr_equal(seen.last.ptr, at);
            assert_int_equal(seen.last.size_class, r->size_class);
            assert_string_equal(seen.last.call, "dh_heap_malloc");
            assert_string_equal(seen.message, want);
        }
    }
    still_works(h, &l, r);
    dh_heap_destroy(h);
}

static void test_ignore(void **state) {
    (void)state;
    for (int i = 0; i < NROWS; i++) {
        print_message("ignore: %s\n", rows[i].name);
        run_row(&rows[i], DH_ON_ERROR_IGNORE);
    }
}

static void test_warn(void **state) {
    (void)state;
    for (int i = 0; i < NROWS; i++) {
        print_message("warn: %s\n", rows[i].name);
        run_row(&rows[i], DH_ON_ERROR_WARN);
    }
}

static void test_callback(void **state) {
    (void)state;
    for (int i = 0; i < NROWS; i++) {
        print_message("callback: %s\n", rows[i].name);
        run_row(&rows[i], DH_ON_ERROR_CALLBACK);
    }
}

struct abort_arg {
    const row_t *r;
    void **at;
};
static void abort_body(void *arg) {
    struct abort_arg *a = arg;
    dh_heap_t *h = make(DH_ON_ERROR_ABORT, NULL);
    static live_t l;
    *a->at = a->r->damage(h, &l);
    meet(h, &l, a->r);
}

/* ABORT: the child dies of SIGABRT right after the line, before any
 * damaged block is handed out. */
static void test_abort(void **state) {
    (void)state;
    for (int i = 0; i < NROWS; i++) {
        const row_t *r = &rows[i];
        if (r->what == NULL) continue;
        print_message("abort: %s\n", r->name);
        /* the child reports the address its damage aimed at here */
        void **at_p = mmap(NULL, sizeof(void *), PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(at_p != MAP_FAILED);
        struct abort_arg a = {r, at_p};
        char out[1024];
        run_aborting(abort_body, &a, out, sizeof out);
        void *at = *at_p;
        munmap(at_p, sizeof(void *));
        char want[512];
        expected_line(want, sizeof want, r, at);
        strcat(want, "\n");
        if (strncmp(out, want, strlen(want)) != 0)
            fail_msg("%s: stderr was \"%s\", wanted \"%s\"", r->name, out, want);
    }
}

/* A damaged tree found while a block is being freed (its left neighbour's
 * node was overwritten): the tree is abandoned in the middle of the free,
 * while the freed block has no state bytes yet, and every other free large
 * block must still be found and retired - one report, not a second one
 * when a missed block is met later. */
static void test_abandon_during_free(void **state) {
    (void)state;
    dh_heap_t *h = make(DH_ON_ERROR_IGNORE, NULL);
    static live_t l;
    l.count = 0;
    alloc(h, &l, 1 << 20);                    /* guard */
    char *a = alloc(h, &l, 1 << 20);          /* freed, then damaged */
    void *b = alloc(h, &l, 300000);           /* 74 pages: not a span multiple */
    void *c = alloc(h, &l, 100000);           /* freed: must be retired */
    void *d = alloc(h, &l, 100000);           /* its neighbour, freed last */
    alloc(h, &l, 100000);                     /* keeps d off the top */
    drop(h, &l, c);
    drop(h, &l, a);
    void *junk[4] = {a, a, (void *)(uintptr_t)7, NULL};
    scribble(a, junk, sizeof junk);
    drop(h, &l, b); /* finds a's node damaged */
    assert_int_equal(test_stats(h).corruptions, 1);
    drop(h, &l, d); /* meets c: retired, so no second report */
    for (int i = 0; i < 8; i++) alloc(h, &l, (size_t)70000 + (size_t)i * 8192);
    assert_int_equal(test_stats(h).corruptions, 1);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    while (l.count > 0) drop(h, &l, l.p[l.count - 1]);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    assert_int_equal(test_stats(h).corruptions, 1);
    dh_heap_destroy(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ignore),
        cmocka_unit_test(test_warn),
        cmocka_unit_test(test_callback),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_abandon_during_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
