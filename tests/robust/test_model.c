/*
 * test_model.c - the pointer API against a model.  For several fixed seeds a
 * random mix of malloc, calloc, realloc, aligned_alloc, free and
 * usable_size runs against a plain array of live blocks, each remembering
 * its requested size and the byte it was filled with.  After EVERY step the
 * heap must pass dh_heap_check, and its live count and live bytes must
 * equal the model's.  Each new block is checked for alignment, usable size
 * >= request, no overlap with any live block, and (calloc) zero contents;
 * a block's contents are verified whenever it is resized or freed, and all
 * of them periodically.
 *
 * Sizes are weighted toward small requests but reach ~300 KiB, so class
 * blocks, spans taken from freed large blocks, best fit, splitting and
 * coalescing all happen.  The live set is capped so that storage (and so the
 * cost of a full check per step) stays small.
 */
#include "robust.h"

enum {
    MAX_LIVE = 64,
    STEPS = 50000,
    FULL_VERIFY_EVERY = 4096,
};

typedef struct {
    unsigned char *p;
    size_t n;       /* bytes requested (and filled) */
    size_t usable;  /* dh_usable_size at allocation */
    unsigned char tag;
    bool is_class;  /* a class block (else a large one) */
} block_t;

typedef struct {
    dh_heap_t *h;
    test_rng_t rng;
    block_t live[MAX_LIVE];
    size_t nlive;
    uint64_t live_bytes;
    uint64_t ops[5]; /* counts by kind, for the summary line */
} model_t;

static size_t random_size(test_rng_t *r) {
    uint64_t k = test_rng_next(r) % 1000;
    if (k < 600) return (size_t)test_rng_range(r, 0, 128);
    if (k < 850) return (size_t)test_rng_range(r, 129, 1024);
    if (k < 960) return (size_t)test_rng_range(r, 1025, 16384);
    if (k < 990) return (size_t)test_rng_range(r, 16385, 65536);
    return (size_t)test_rng_range(r, 65537, 300 << 10);
}

static void verify_block(const block_t *b) {
    for (size_t i = 0; i < b->n; i++)
        if (b->p[i] != b->tag)
            fail_msg("block %p (n %zu): byte %zu is %#x, want %#x",
                     (void *)b->p, b->n, i, b->p[i], b->tag);
}

/* A fresh block from the heap: alignment, size, no overlap. */
static void check_new(model_t *m, unsigned char *p, size_t n, size_t align) {
    assert_non_null(p);
    if ((uintptr_t)p % align != 0)
        fail_msg("%p not aligned to %zu", (void *)p, align);
    assert_ptr_equal(dh_heap_of(p), m->h);
    size_t usable = dh_usable_size(p);
    if (usable < n || usable == 0)
        fail_msg("%p: usable %zu < requested %zu", (void *)p, usable, n);
    uintptr_t a = (uintptr_t)p;
    for (size_t i = 0; i < m->nlive; i++) {
        uintptr_t b = (uintptr_t)m->live[i].p;
        if (!(a + usable <= b || b + m->live[i].usable <= a))
            fail_msg("new %p+%zu overlaps live %p+%zu", (void *)p, usable,
                     (void *)m->live[i].p, m->live[i].usable);
    }
}

static void add(model_t *m, unsigned char *p, size_t n, bool is_class) {
    assert_true(m->nlive < MAX_LIVE);
    block_t *b = &m->live[m->nlive++];
    b->is_class = is_class;
    b->p = p;
    b->n = n;
    b->usable = dh_usable_size(p);
    b->tag = (unsigned char)test_rng_range(&m->rng, 1, 255);
    memset(p, b->tag, n);
    m->live_bytes += b->usable;
}

static void drop(model_t *m, size_t i) {
    m->live_bytes -= m->live[i].usable;
    m->live[i] = m->live[--m->nlive];
}

static void step_alloc(model_t *m) {
    size_t n = random_size(&m->rng);
    unsigned kind = (unsigned)(test_rng_next(&m->rng) % 10);
    unsigned char *p;
    size_t align = 16;
    if (kind < 6) {
        p = dh_heap_malloc(m->h, n);
        check_new(m, p, n, 16);
        m->ops[0]++;
    } else if (kind < 8) {
        size_t count = (size_t)test_rng_range(&m->rng, 1, 8);
        size_t each = n / count;
        p = dh_heap_calloc(m->h, count, each);
        n = count * each;
        check_new(m, p, n, 16);
        for (size_t i = 0; i < n; i++)
            if (p[i] != 0) fail_msg("calloc %p byte %zu not zero", (void *)p, i);
        m->ops[1]++;
    } else {
        /* Mostly up to a page, sometimes up to 64 KiB. */
        unsigned shift = (unsigned)(test_rng_next(&m->rng) % 100 < 90
                                        ? test_rng_range(&m->rng, 0, 12)
                                        : test_rng_range(&m->rng, 13, 16));
        align = (size_t)1 << shift;
        p = dh_heap_aligned_alloc(m->h, align, n);
        check_new(m, p, n, align > 16 ? align : 16);
        m->ops[2]++;
    }
    /* Over-aligned requests (beyond a page) are served by large blocks. */
    add(m, p, n, n <= DH_MAX_CLASS_SIZE && align <= 4096);
}

static void step_realloc(model_t *m) {
    if (m->nlive == 0 ||
        (m->nlive < MAX_LIVE && test_rng_next(&m->rng) % 50 == 0)) {
        size_t n = random_size(&m->rng);
        unsigned char *p = dh_heap_realloc(m->h, NULL, n);
        check_new(m, p, n, 16);
        add(m, p, n, n <= DH_MAX_CLASS_SIZE);
        return;
    }
    size_t i = (size_t)(test_rng_next(&m->rng) % m->nlive);
    block_t b = m->live[i];
    verify_block(&b);
    m->ops[3]++;
    if (test_rng_next(&m->rng) % 30 == 0) { /* realloc(p, 0) frees */
        assert_null(dh_heap_realloc(m->h, b.p, 0));
        drop(m, i);
        assert_int_equal(dh_usable_size(b.p), 0);
        return;
    }
    /* Often a nearby size, so in-place paths get exercised too. */
    size_t n = test_rng_next(&m->rng) % 2 ? random_size(&m->rng)
                                      : b.n + (size_t)test_rng_range(&m->rng, 0, 64) -
                                            (b.n > 32 ? 32 : b.n);
    if (n == 0) n = 1;
    drop(m, i);
    unsigned char *q = dh_heap_realloc(m->h, b.p, n);
    check_new(m, q, n, 16);
    size_t keep = b.n < n ? b.n : n;
    for (size_t k = 0; k < keep; k++)
        if (q[k] != b.tag) fail_msg("realloc lost byte %zu", k);
    /* Same class: it must not have moved. */
    int c = dh_size_class(n);
    if (c >= 0 && b.is_class && dh_class_size(c) == b.usable)
        assert_ptr_equal(q, b.p);
    if (q != b.p) assert_int_equal(dh_usable_size(b.p), 0);
    /* a class block grown to 4 KiB or more becomes a large block, and a
     * large block resized to 2 KiB or more stays one (docs/DESIGN.md) */
    bool large = b.is_class ? n > b.usable && n >= 4096 : n >= 2048;
    add(m, q, n, c >= 0 && !large);
}

static void step_free(model_t *m) {
    size_t i = (size_t)(test_rng_next(&m->rng) % m->nlive);
    block_t b = m->live[i];
    verify_block(&b);
    if (test_rng_next(&m->rng) % 2)
        dh_free(b.p);
    else
        dh_heap_free(m->h, b.p);
    drop(m, i);
    assert_int_equal(dh_usable_size(b.p), 0);
    m->ops[4]++;
}

static void check_step(model_t *m, uint64_t step) {
    dh_check_t r = dh_heap_check(m->h);
    if (r != DH_CHECK_OK)
        fail_msg("step %llu: dh_heap_check says I%d", (unsigned long long)step,
                 (int)r);
    dh_stats_t s = test_stats(m->h);
    if (s.live_count != m->nlive || s.live_bytes != m->live_bytes)
        fail_msg("step %llu: stats live %llu/%llu B, model %zu/%llu B",
                 (unsigned long long)step, (unsigned long long)s.live_count,
                 (unsigned long long)s.live_bytes, m->nlive,
                 (unsigned long long)m->live_bytes);
    assert_int_equal(s.rejected_frees, 0);
    assert_int_equal(s.failed_allocs, 0);
    if (step % FULL_VERIFY_EVERY == 0)
        for (size_t i = 0; i < m->nlive; i++) verify_block(&m->live[i]);
}

static void run_model(model_t *m, uint64_t seed, uint64_t steps) {
    memset(m, 0, sizeof *m);
    m->rng.s = seed;
    m->h = dh_heap_create(NULL);
    assert_non_null(m->h);
    for (uint64_t step = 1; step <= steps; step++) {
        uint64_t r = test_rng_next(&m->rng) % 100;
        /* Drift between a full and an empty live set, so everything is
         * freed at times and coalescing runs all the way down. */
        uint64_t phase = (step / 5000) % 2;
        uint64_t alloc_pct = phase ? 55 : 35;
        if (m->nlive == 0 || (r < alloc_pct && m->nlive < MAX_LIVE))
            step_alloc(m);
        else if (r < alloc_pct + 15)
            step_realloc(m);
        else
            step_free(m);
        check_step(m, step);
    }
    while (m->nlive > 0) {
        step_free(m);
        check_step(m, steps);
    }
    dh_stats_t s = test_stats(m->h);
    assert_int_equal(s.live_count, 0);
    assert_int_equal(s.live_bytes, 0);
    assert_int_equal(s.large_live_count, 0);
    printf("seed %#llx: %llu malloc, %llu calloc, %llu aligned, %llu realloc, "
           "%llu free; storage %llu KiB, peak live %llu KiB, "
           "large free blocks at end %llu\n",
           (unsigned long long)seed, (unsigned long long)m->ops[0],
           (unsigned long long)m->ops[1], (unsigned long long)m->ops[2],
           (unsigned long long)m->ops[3], (unsigned long long)m->ops[4],
           (unsigned long long)(s.storage_bytes >> 10),
           (unsigned long long)(s.peak_live_bytes >> 10),
           (unsigned long long)s.large_free_count);
    dh_heap_destroy(m->h);
}

static model_t model;

static void test_seed_1(void **state) {
    (void)state;
    run_model(&model, 1, STEPS);
}
static void test_seed_2(void **state) {
    (void)state;
    run_model(&model, 0x5eed0002, STEPS);
}
static void test_seed_3(void **state) {
    (void)state;
    run_model(&model, 0xdeadbeefcafe, STEPS);
}
int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_1),
        cmocka_unit_test(test_seed_2),
        cmocka_unit_test(test_seed_3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
