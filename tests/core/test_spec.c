/*
 * test_spec.c - every test of the original design's own test module,
 * ported one for one to the handle API (dh_alloc, dh_free(heap, handle),
 * dh_get, dh_write, dh_heap_stats).  A block index of the original is a
 * dh_handle_t here; the original's counters are fields of dh_stats_t.
 * The validator runs after every step that changes the heap.
 */
#include "core_test.h"

static void test_bin_selection(void **state) {
    (void)state;
    assert_int_equal(dh_size_class(1), 0);      /* 16 B */
    assert_int_equal(dh_size_class(16), 0);     /* 16 B */
    assert_int_equal(dh_size_class(17), 1);     /* 32 B */
    assert_int_equal(dh_size_class(48), 2);     /* 48 B */
    assert_int_equal(dh_size_class(65), 4);     /* 128 B */
    assert_int_equal(dh_size_class(65536), 12); /* 64 KiB */
    assert_int_equal(dh_size_class(65537), -1); /* overflow */
}

static void test_alloc_and_read(void **state) {
    (void)state;
    dh_heap_t *h = core_heap();
    dh_handle_t b = dh_alloc(h, 8);
    assert_true(b.id != 0);
    CORE_CHECK(h);
    const uint8_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_true(dh_write(h, b, data, sizeof data));
    CORE_CHECK(h);
    size_t len = 0;
    const uint8_t *p = dh_get(h, b, &len);
    assert_non_null(p);
    assert_true(len >= 8);
    assert_memory_equal(p, data, 8);
    dh_heap_destroy(h);
}

static void test_free_and_reuse(void **state) {
    (void)state;
    dh_heap_t *h = core_heap();
    dh_handle_t b1 = dh_alloc(h, 16);
    dh_free(h, b1);
    CORE_CHECK(h);
    /* The next allocation of the same class reuses b1's block (LIFO). */
    dh_handle_t b2 = dh_alloc(h, 16);
    CORE_CHECK(h);
    assert_true(b1.id != 0);
    assert_int_equal(b1.id, b2.id);
    dh_heap_destroy(h);
}

static void test_double_free_harmless(void **state) {
    (void)state;
    dh_heap_t *h = core_heap();
    dh_handle_t b = dh_alloc(h, 16);
    dh_free(h, b);
    CORE_CHECK(h);
    dh_free(h, b); /* must not crash, report or change the heap */
    CORE_CHECK(h);
    dh_stats_t s = test_stats(h);
    assert_int_equal(s.free_count, 1); /* the second free is a no-op */
    assert_int_equal(s.rejected_handle_frees, 1);
    assert_int_equal(s.free_block_count, 1);
    assert_int_equal(s.live_count, 0);
    dh_heap_destroy(h);
}

static void test_storage_never_shrinks(void **state) {
    (void)state;
    dh_heap_t *h = core_heap();
    for (int i = 0; i < 100; i++) {
        dh_handle_t b = dh_alloc(h, 64);
        assert_true(b.id != 0);
        dh_free(h, b);
        CORE_CHECK(h);
    }
    uint64_t bytes = test_stats(h).storage_bytes;
    assert_true(bytes > 0); /* storage grew */
    for (int i = 0; i < 100; i++) {
        dh_handle_t b = dh_alloc(h, 64);
        dh_free(h, b);
        CORE_CHECK(h);
        assert_true(test_stats(h).storage_bytes >= bytes);
    }
    assert_int_equal(test_stats(h).storage_bytes, bytes);
    dh_heap_destroy(h);
}

static void test_deterministic_alloc_order(void **state) {
    (void)state;
    dh_heap_t *a1 = core_heap(), *a2 = core_heap();
    uint64_t seq1[10], seq2[10];
    for (int i = 0; i < 10; i++) {
        seq1[i] = dh_alloc(a1, 32).id;
        CORE_CHECK(a1);
    }
    for (int i = 0; i < 10; i++) {
        seq2[i] = dh_alloc(a2, 32).id;
        CORE_CHECK(a2);
    }
    /* Same calls, same handles: a handle is an offset, not an address. */
    assert_memory_equal(seq1, seq2, sizeof seq1);
    for (int i = 0; i < 10; i++) {
        assert_true(seq1[i] != 0);
        for (int j = 0; j < i; j++) assert_true(seq1[i] != seq1[j]);
    }
    dh_heap_destroy(a1);
    dh_heap_destroy(a2);
}

static void test_lifo_free_order(void **state) {
    (void)state;
    dh_heap_t *h = core_heap();
    dh_handle_t b1 = dh_alloc(h, 32), b2 = dh_alloc(h, 32),
                b3 = dh_alloc(h, 32);
    dh_free(h, b1);
    dh_free(h, b2);
    dh_free(h, b3);
    CORE_CHECK(h);
    /* LIFO: b3, then b2, then b1. */
    assert_int_equal(dh_alloc(h, 32).id, b3.id);
    assert_int_equal(dh_alloc(h, 32).id, b2.id);
    assert_int_equal(dh_alloc(h, 32).id, b1.id);
    CORE_CHECK(h);
    dh_heap_destroy(h);
}

static void test_overflow_alloc(void **state) {
    (void)state;
    dh_heap_t *h = core_heap();
    dh_handle_t b = dh_alloc(h, 100000); /* > 64 KiB */
    assert_true(b.id != 0);
    CORE_CHECK(h);
    uint8_t data[100];
    memset(data, 0xAB, sizeof data);
    assert_true(dh_write(h, b, data, sizeof data));
    CORE_CHECK(h);
    size_t len = 0;
    const uint8_t *p = dh_get(h, b, &len);
    assert_non_null(p);
    assert_true(len >= 100000);
    assert_int_equal(p[0], 0xAB);
    assert_memory_equal(p, data, sizeof data);
    dh_stats_t s = test_stats(h);
    assert_int_equal(s.large_live_count, 1);
    assert_int_equal(s.live_count, 1);
    dh_heap_destroy(h);
}

static void test_live_count(void **state) {
    (void)state;
    dh_heap_t *h = core_heap();
    dh_handle_t b1 = dh_alloc(h, 16), b2 = dh_alloc(h, 32);
    dh_handle_t b3 = dh_alloc(h, 64);
    assert_true(b3.id != 0);
    CORE_CHECK(h);
    assert_int_equal(test_stats(h).live_count, 3);
    dh_free(h, b1);
    CORE_CHECK(h);
    assert_int_equal(test_stats(h).live_count, 2);
    dh_free(h, b2);
    CORE_CHECK(h);
    assert_int_equal(test_stats(h).live_count, 1);
    dh_heap_destroy(h);
}

static void test_freed_block_not_readable(void **state) {
    (void)state;
    dh_heap_t *h = core_heap();
    dh_handle_t b = dh_alloc(h, 16);
    assert_non_null(dh_get(h, b, NULL));
    dh_free(h, b);
    CORE_CHECK(h);
    size_t len = 12345;
    assert_null(dh_get(h, b, &len));
    assert_int_equal(len, 0);
    dh_heap_destroy(h);
}

static void test_mixed_size_classes(void **state) {
    (void)state;
    dh_heap_t *h = core_heap();
    dh_handle_t small = dh_alloc(h, 8), medium = dh_alloc(h, 256),
                large = dh_alloc(h, 4096);
    CORE_CHECK(h);
    dh_free(h, small);
    dh_free(h, medium);
    dh_free(h, large);
    CORE_CHECK(h);
    /* Each reuses its own class's block. */
    dh_handle_t s2 = dh_alloc(h, 8), m2 = dh_alloc(h, 256),
                l2 = dh_alloc(h, 4096);
    CORE_CHECK(h);
    assert_int_equal(s2.id, small.id);
    assert_int_equal(m2.id, medium.id);
    assert_int_equal(l2.id, large.id);
    assert_true(small.id != medium.id && medium.id != large.id &&
                small.id != large.id);
    dh_heap_destroy(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bin_selection),
        cmocka_unit_test(test_alloc_and_read),
        cmocka_unit_test(test_free_and_reuse),
        cmocka_unit_test(test_double_free_harmless),
        cmocka_unit_test(test_storage_never_shrinks),
        cmocka_unit_test(test_deterministic_alloc_order),
        cmocka_unit_test(test_lifo_free_order),
        cmocka_unit_test(test_overflow_alloc),
        cmocka_unit_test(test_live_count),
        cmocka_unit_test(test_freed_block_not_readable),
        cmocka_unit_test(test_mixed_size_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
