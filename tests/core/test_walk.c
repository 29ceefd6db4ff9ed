/*
 * test_walk.c - the heap walker: it visits every carved block exactly once,
 * in address order, with the right size, class and live flag; it stops as
 * soon as the visitor returns false; and what it finds adds up to the
 * statistics (carved class blocks + large blocks, live and free counts,
 * live bytes).  The blocks the test expects are the ones it allocated and
 * freed itself, so every visited block is accounted for.
 */
#include "core_test.h"

#include <stdlib.h>

#define MAX_BLOCKS 8192

typedef struct {
    dh_block_info_t v[MAX_BLOCKS];
    size_t n;
    size_t stop_after; /* 0: never stop */
} seen_t;

static bool record(const dh_block_info_t *b, void *user) {
    seen_t *s = user;
    assert_true(s->n < MAX_BLOCKS);
    s->v[s->n++] = *b;
    return s->stop_after == 0 || s->n < s->stop_after;
}

/* What the test knows about a block it allocated. */
typedef struct {
    void *ptr;
    size_t request;
    bool live;
} mine_t;

static mine_t mine[MAX_BLOCKS];
static size_t n_mine;

static void *take(dh_heap_t *h, size_t n) {
    void *p = dh_heap_malloc(h, n);
    assert_non_null(p);
    assert_true(n_mine < MAX_BLOCKS);
    mine[n_mine++] = (mine_t){p, n, true};
    return p;
}

static void give_back(dh_heap_t *h, size_t i) {
    dh_heap_free(h, mine[i].ptr);
    mine[i].live = false;
}

static const mine_t *find_mine(const void *p) {
    /* The newest record of an address wins: a reused block. */
    for (size_t i = n_mine; i-- > 0;)
        if (mine[i].ptr == p) return &mine[i];
    return NULL;
}

/* Walk, then check everything the walk saw against the test's records and
 * the statistics. */
static void check_walk(dh_heap_t *h) {
    CORE_CHECK(h);
    static seen_t s;
    memset(&s, 0, sizeof s);
    size_t visited = dh_heap_walk(h, record, &s);
    assert_int_equal(visited, s.n);

    dh_stats_t st = test_stats(h);
    uint64_t live = 0, free_blocks = 0, live_bytes = 0, large_live = 0,
             large_free = 0, large_free_bytes = 0;
    uint64_t class_live[DH_NUM_CLASSES] = {0}, class_free[DH_NUM_CLASSES] = {0};
    for (size_t i = 0; i < s.n; i++) {
        const dh_block_info_t *b = &s.v[i];
        uintptr_t p = (uintptr_t)b->ptr;
        if (i > 0) /* address order, no overlap */
            assert_true((uintptr_t)s.v[i - 1].ptr + s.v[i - 1].size <= p);
        assert_ptr_equal(dh_heap_of(b->ptr), h);
        if (b->size_class >= 0) {
            assert_true(b->size_class < DH_NUM_CLASSES);
            assert_int_equal(b->size, dh_class_size(b->size_class));
            (b->live ? class_live : class_free)[b->size_class]++;
        } else {
            assert_int_equal(b->size_class, -1);
            assert_true(b->size > 0 && b->size % 4096 == 0); /* pages */
            if (b->live) {
                large_live++;
            } else {
                large_free++;
                large_free_bytes += b->size;
            }
        }
        if (b->live) {
            live++;
            live_bytes += b->size;
            /* A live block is one of ours, and what the APIs say of it. */
            const mine_t *m = find_mine(b->ptr);
            assert_non_null(m);
            assert_true(m->live);
            assert_true(b->size >= m->request);
            assert_int_equal(dh_usable_size(b->ptr), b->size);
            if (b->size_class >= 0)
                assert_int_equal(b->size_class, dh_size_class(m->request));
        } else {
            free_blocks++;
            assert_int_equal(dh_usable_size(b->ptr), 0);
        }
    }
    /* Every live block of ours was visited, exactly once (addresses are
     * strictly increasing, so "once" follows from being found). */
    for (size_t i = 0; i < n_mine; i++) {
        if (!mine[i].live) continue;
        size_t hits = 0;
        for (size_t j = 0; j < s.n; j++)
            hits += s.v[j].ptr == mine[i].ptr && s.v[j].live;
        assert_int_equal(hits, 1);
    }
    uint64_t carved = 0;
    for (int c = 0; c < DH_NUM_CLASSES; c++) {
        assert_int_equal(class_live[c], st.classes[c].live);
        assert_int_equal(class_free[c], st.classes[c].free);
        carved += st.classes[c].carved;
    }
    assert_int_equal(s.n, carved + st.large_live_count + st.large_free_count);
    assert_int_equal(live, st.live_count);
    assert_int_equal(free_blocks, st.free_block_count);
    assert_int_equal(live_bytes, st.live_bytes);
    assert_int_equal(large_live, st.large_live_count);
    assert_int_equal(large_free, st.large_free_count);
    assert_int_equal(large_free_bytes, st.large_free_bytes);
}

static void test_empty(void **state) {
    (void)state;
    dh_heap_t *h = core_heap();
    n_mine = 0;
    static seen_t s;
    memset(&s, 0, sizeof s);
    assert_int_equal(dh_heap_walk(h, record, &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(dh_heap_walk(h, NULL, NULL), 0);
    assert_int_equal(dh_heap_walk(NULL, record, &s), 0);
    check_walk(h);
    dh_heap_destroy(h);
}

/* Blocks of every class (some spans full, some partly carved), large
 * blocks with free ones between live ones, then frees and reuse. */
static void test_every_kind(void **state) {
    (void)state;
    dh_heap_t *h = core_heap();
    n_mine = 0;
    for (int c = 0; c < DH_NUM_CLASSES; c++) {
        size_t size = dh_class_size(c);
        int count = c == 12 ? 3 : (int)(65536 / size) + 2; /* > one span */
        if (count > 200) count = 200;
        for (int i = 0; i < count; i++) take(h, size - (size_t)(i % 3));
        check_walk(h);
    }
    const size_t large[] = {65537, 100000, 300000, 70000, 1 << 20, 200000};
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
        take(h, large[i]);
        take(h, 40); /* a class block between large ones */
    }
    check_walk(h);
    /* Free every third block (class and large), walk, reuse, walk. */
    for (size_t i = 0; i < n_mine; i += 3) give_back(h, i);
    check_walk(h);
    for (int i = 0; i < 50; i++) take(h, (size_t)(i * 37) % 5000);
    take(h, 150000);
    check_walk(h);
    /* Free everything: nothing live, every carved block still visited. */
    for (size_t i = 0; i < n_mine; i++)
        if (mine[i].live) give_back(h, i);
    check_walk(h);
    assert_int_equal(test_stats(h).live_count, 0);
    dh_heap_destroy(h);
}

static void test_random(void **state) {
    (void)state;
    dh_heap_t *h = core_heap();
    n_mine = 0;
    test_rng_t rng = {42};
    for (int step = 0; step < 3000 && n_mine < MAX_BLOCKS - 1; step++) {
        uint64_t r = test_rng_next(&rng) % 100;
        if (r < 60) {
            size_t n = r < 50 ? test_rng_range(&rng, 0, 2048)
                     : r < 57 ? test_rng_range(&rng, 2049, 65536)
                              : test_rng_range(&rng, 65537, 400000);
            take(h, n);
        } else if (n_mine > 0) {
            size_t i = test_rng_next(&rng) % n_mine;
            if (mine[i].live) give_back(h, i);
        }
        if (step % 250 == 0) check_walk(h);
    }
    check_walk(h);
    dh_heap_destroy(h);
}

static void test_stop(void **state) {
    (void)state;
    dh_heap_t *h = core_heap();
    n_mine = 0;
    for (int i = 0; i < 20; i++) take(h, 100);       /* one span */
    for (int i = 0; i < 3; i++) take(h, 100000);      /* large */
    for (int i = 0; i < 5; i++) take(h, 3000);        /* another span */
    static seen_t all, part;
    memset(&all, 0, sizeof all);
    size_t total = dh_heap_walk(h, record, &all);
    assert_int_equal(total, 28);
    /* Stopping at every position, including inside a span: the visitor is
     * not called again, and the walk reports the blocks it visited. */
    for (size_t k = 1; k <= total; k++) {
        memset(&part, 0, sizeof part);
        part.stop_after = k;
        dh_heap_walk(h, record, &part);
        assert_int_equal(part.n, k);
        for (size_t i = 0; i < k; i++) { /* field by field: padding */
            assert_ptr_equal(part.v[i].ptr, all.v[i].ptr);
            assert_int_equal(part.v[i].size, all.v[i].size);
            assert_int_equal(part.v[i].size_class, all.v[i].size_class);
            assert_int_equal(part.v[i].live, all.v[i].live);
        }
    }
    CORE_CHECK(h);
    dh_heap_destroy(h);
}

/* The documented result, "the number of blocks visited", is the number of
 * visitor calls when the visitor stops the walk, too. */
static void test_stop_count(void **state) {
    (void)state;
    dh_heap_t *h = core_heap();
    n_mine = 0;
    for (int i = 0; i < 20; i++) take(h, 100);
    for (int i = 0; i < 3; i++) take(h, 100000);
    static seen_t part;
    for (size_t k = 1; k <= 23; k++) {
        memset(&part, 0, sizeof part);
        part.stop_after = k;
        size_t visited = dh_heap_walk(h, record, &part);
        assert_int_equal(part.n, k);
        if (visited != k)
            fail_msg("the visitor stopped the walk after %zu blocks, but "
                     "dh_heap_walk returned %zu", k, visited);
    }
    dh_heap_destroy(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_every_kind),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_stop_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
