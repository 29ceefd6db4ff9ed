/*
 * test_reset.c - dh_heap_reset returns a heap to the state of a fresh one.
 *
 * (a) A heap is dirtied by a random sequence (class and large blocks, all
 *     bytes written, stale and double handle frees, reallocs, rejected
 *     pointer frees), some blocks left live, and reset.  Its statistics
 *     then equal a fresh heap's but for committed_bytes, which is kept; it
 *     has no block; its old handles are not live.  Then a second long
 *     random sequence runs in lockstep on it and on a fresh heap: every
 *     handle (offset), every new block's whole contents and every
 *     statistic must agree, the validator passes, and the two walks are
 *     the same at the end.
 * (b) Running the dirtying sequence again after a reset commits nothing
 *     and takes (almost) no page faults, where the first run took one per
 *     page it touched.
 * (c) Failures: NULL is EINVAL; a heap of the process heap is refused
 *     with EPERM and keeps its blocks.  The error policy survives a reset.
 */
#include "core_test.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>

#define SLOTS 512
#define DIRTY_STEPS 20000
#define LOCKSTEP_STEPS 60000
#define CHECK_EVERY 4999
#define DIRTY_SEED 0xd1127u
#define LOCKSTEP_SEED 0x10c57e9u

typedef struct {
    dh_heap_t *h;
    dh_handle_t slot[SLOTS];
    dh_handle_t stale[SLOTS]; /* the slot's last freed handle */
} side_t;

typedef enum { OP_ALLOC, OP_FREE, OP_STALE, OP_REALLOC, OP_BADFREE } kind_t;

typedef struct {
    kind_t kind;
    size_t slot, n;
    uint8_t fill;
} op_t;

static size_t random_size(test_rng_t *r) {
    return test_random_size(r, 70, 22);
}

static op_t next_op(test_rng_t *r, const side_t *s) {
    op_t o = {OP_ALLOC, test_rng_next(r) % SLOTS, random_size(r),
              (uint8_t)(1 + test_rng_next(r) % 255)};
    uint64_t k = test_rng_next(r) % 100;
    if (s->slot[o.slot].id == 0) return o; /* empty: allocate */
    if (k < 55) o.kind = OP_FREE;
    else if (k < 65) o.kind = OP_STALE;
    else if (k < 80) o.kind = OP_REALLOC;
    else if (k < 85) o.kind = OP_BADFREE;
    else o.kind = OP_FREE;
    return o;
}

/* Fill the whole block of a live handle with `fill`. */
static void fill_block(dh_heap_t *h, dh_handle_t hd, uint8_t fill) {
    size_t len;
    uint8_t *p = dh_get(h, hd, &len);
    if (p != NULL) memset(p, fill, len);
}

/* Apply o to s; returns the handle it produced (or DH_HANDLE_NULL). */
static dh_handle_t apply(side_t *s, const op_t *o) {
    dh_handle_t *hd = &s->slot[o->slot];
    switch (o->kind) {
    case OP_ALLOC:
        *hd = dh_alloc(s->h, o->n);
        return *hd;
    case OP_FREE:
        dh_free(s->h, *hd);
        s->stale[o->slot] = *hd;
        *hd = DH_HANDLE_NULL;
        return DH_HANDLE_NULL;
    case OP_STALE: /* a handle freed before: harmless, or aliased */
        dh_free(s->h, s->stale[o->slot]);
        return DH_HANDLE_NULL;
    case OP_REALLOC: {
        void *p = dh_heap_realloc(s->h, dh_ptr_of(s->h, *hd), o->n + 1);
        *hd = dh_handle_of(p);
        return *hd;
    }
    default: { /* OP_BADFREE: inside the block, never a block start */
        uint8_t *p = dh_ptr_of(s->h, *hd);
        if (p != NULL) dh_heap_free(s->h, p + 16);
        return DH_HANDLE_NULL;
    }
    }
}

/* The dirtying sequence: every byte handed out is overwritten. */
static void dirty(dh_heap_t *h) {
    static side_t s;
    memset(&s, 0, sizeof s);
    s.h = h;
    test_rng_t r = {DIRTY_SEED};
    for (int i = 0; i < DIRTY_STEPS; i++) {
        op_t o = next_op(&r, &s);
        dh_handle_t got = apply(&s, &o);
        if (got.id != 0) fill_block(h, got, o.fill);
    }
}

static uint64_t minor_faults(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (uint64_t)u.ru_minflt;
}

/* Statistics equal but committed_bytes. */
static void assert_stats_equal_but_committed(dh_stats_t a, dh_stats_t b) {
    a.committed_bytes = b.committed_bytes = 0;
    assert_memory_equal(&a, &b, sizeof a);
}

typedef struct {
    uintptr_t base;
    size_t n, cap;
    dh_block_info_t *blocks; /* ptr held as an offset from base */
} walk_t;

static bool record(const dh_block_info_t *b, void *user) {
    walk_t *w = user;
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 1024;
        w->blocks = realloc(w->blocks, w->cap * sizeof *w->blocks);
        assert_non_null(w->blocks);
    }
    dh_block_info_t *info = &w->blocks[w->n++];
    memset(info, 0, sizeof *info); /* padding too: the walks are memcmp'd */
    info->ptr = (void *)((uintptr_t)b->ptr - w->base);
    info->size = b->size;
    info->size_class = b->size_class;
    info->live = b->live;
    return true;
}

static walk_t walk_of(dh_heap_t *h) {
    walk_t w = {dh_heap_base(h), 0, 0, NULL};
    dh_heap_walk(h, record, &w);
    return w;
}

static void test_reset_is_fresh(void **state) {
    (void)state;
    dh_heap_t *a = core_heap(), *b = core_heap();
    dirty(a);
    dh_handle_t old = dh_alloc(a, 100); /* a live block at the reset */
    fill_block(a, old, 0xee);
    CORE_CHECK(a);
    uint64_t committed = test_stats(a).committed_bytes;
    assert_true(test_stats(a).live_count > 0);
    assert_true(dh_heap_reset(a));
    CORE_CHECK(a);
    dh_stats_t sa = test_stats(a), sb = test_stats(b);
    assert_int_equal(sa.committed_bytes, committed);
    assert_stats_equal_but_committed(sa, sb);
    assert_int_equal(sa.storage_bytes, 0);
    assert_int_equal(dh_heap_walk(a, record, &(walk_t){0, 0, 0, NULL}), 0);
    assert_null(dh_get(a, old, NULL));

    static side_t sda, sdb;
    memset(&sda, 0, sizeof sda);
    memset(&sdb, 0, sizeof sdb);
    sda.h = a, sdb.h = b;
    test_rng_t r = {LOCKSTEP_SEED};
    for (int i = 0; i < LOCKSTEP_STEPS; i++) {
        op_t o = next_op(&r, &sda);
        dh_handle_t ga = apply(&sda, &o), gb = apply(&sdb, &o);
        assert_int_equal(ga.id, gb.id);
        if (ga.id != 0 && o.kind == OP_ALLOC) {
            /* a new block: the same bytes on both, first byte to last */
            size_t la, lb;
            uint8_t *pa = dh_get(a, ga, &la), *pb = dh_get(b, gb, &lb);
            assert_non_null(pa);
            assert_int_equal(la, lb);
            assert_memory_equal(pa, pb, la);
        }
        if (ga.id != 0) { /* writes only on some blocks, so zeros matter */
            if (o.fill & 1) fill_block(a, ga, o.fill);
            if (o.fill & 1) fill_block(b, gb, o.fill);
        }
        if (i % CHECK_EVERY == 0) {
            CORE_CHECK(a);
            assert_stats_equal_but_committed(test_stats(a), test_stats(b));
        }
    }
    CORE_CHECK(a);
    CORE_CHECK(b);
    assert_stats_equal_but_committed(test_stats(a), test_stats(b));
    walk_t wa = walk_of(a), wb = walk_of(b);
    assert_true(wa.n > 0);
    assert_int_equal(wa.n, wb.n);
    assert_memory_equal(wa.blocks, wb.blocks, wa.n * sizeof *wa.blocks);
    for (size_t i = 0; i < wa.n; i++) /* every live block's bytes */
        if (wa.blocks[i].live)
            assert_memory_equal((uint8_t *)dh_heap_base(a) +
                                    (uintptr_t)wa.blocks[i].ptr,
                                (uint8_t *)dh_heap_base(b) +
                                    (uintptr_t)wb.blocks[i].ptr,
                                wa.blocks[i].size);
    free(wa.blocks);
    free(wb.blocks);
    dh_heap_destroy(a);
    dh_heap_destroy(b);
}

static void test_reset_keeps_memory(void **state) {
    (void)state;
    dh_heap_t *h = core_heap();
    uint64_t f0 = minor_faults();
    dirty(h);
    uint64_t first = minor_faults() - f0;
    uint64_t committed = test_stats(h).committed_bytes;
    assert_true(dh_heap_reset(h));
    assert_int_equal(test_stats(h).committed_bytes, committed);
    f0 = minor_faults();
    dirty(h);
    uint64_t again = minor_faults() - f0;
    assert_int_equal(test_stats(h).committed_bytes, committed);
    /* the first run faulted in every page it touched; the second, none
     * of the heap's (a few faults of the process are tolerated) */
    assert_true(first >= 256);
    assert_true(again < 16);
    CORE_CHECK(h);
    dh_heap_destroy(h);
}

static void test_reset_failures(void **state) {
    (void)state;
    errno = 0;
    assert_false(dh_heap_reset(NULL));
    assert_int_equal(errno, EINVAL);

    void *p = dh_malloc(32);
    assert_non_null(p);
    dh_heap_t *process = dh_heap_of(p);
    assert_non_null(process);
    errno = 0;
    assert_false(dh_heap_reset(process));
    assert_int_equal(errno, EPERM);
    assert_int_equal(dh_usable_size(p), 32); /* still live */
    dh_free(p);
}

static int rejected;
static void count_error(const dh_error_t *err, void *user) {
    (void)err, (void)user;
    rejected++;
}

static void test_reset_keeps_policy(void **state) {
    (void)state;
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.on_error = DH_ON_ERROR_CALLBACK;
    cfg.error_callback = count_error;
    dh_heap_t *h = dh_heap_create(&cfg);
    assert_non_null(h);
    void *p = dh_heap_malloc(h, 64);
    assert_non_null(p);
    assert_true(dh_heap_reset(h));
    dh_heap_free(h, p); /* no longer a live block: reported */
    assert_int_equal(rejected, 1);
    assert_int_equal(test_stats(h).rejected_frees, 1);
    dh_heap_destroy(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reset_is_fresh),
        cmocka_unit_test(test_reset_keeps_memory),
        cmocka_unit_test(test_reset_failures),
        cmocka_unit_test(test_reset_keeps_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
