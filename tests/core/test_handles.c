/*
 * test_handles.c - the handle API beyond the original design's own tests:
 * handle <-> pointer round trips for every class and for large blocks;
 * handles that are stale, never issued, zero or out of range are not live,
 * and freeing one only counts it (stats.rejected_handle_frees); a handle
 * whose block was handed out again aliases the new allocation, as block
 * indices did in the original design; dh_write truncates to the block.
 */
#include "core_test.h"

#include <stdlib.h>

/* Every field of the stats equal but rejected_handle_frees, which must
 * have grown by exactly `more`. */
static void assert_only_rejected(dh_stats_t before, dh_stats_t after,
                                 uint64_t more) {
    assert_int_equal(after.rejected_handle_frees,
                     before.rejected_handle_frees + more);
    after.rejected_handle_frees = before.rejected_handle_frees;
    assert_memory_equal(&before, &after, sizeof before);
}

/* h is not live: nothing reads, writes or frees through it. */
static void assert_not_live(dh_heap_t *heap, dh_handle_t h) {
    size_t len = 999;
    assert_null(dh_get(heap, h, &len));
    assert_int_equal(len, 0);
    assert_null(dh_ptr_of(heap, h));
    const uint8_t byte = 0x5a;
    assert_false(dh_write(heap, h, &byte, 1));
    dh_stats_t before = test_stats(heap);
    dh_free(heap, h);
    assert_only_rejected(before, test_stats(heap), 1);
    CORE_CHECK(heap);
}

static void assert_round_trip(dh_heap_t *heap, dh_handle_t h, size_t n) {
    size_t len = 0;
    uint8_t *p = dh_get(heap, h, &len);
    assert_non_null(p);
    assert_true(len >= n);
    assert_ptr_equal(dh_ptr_of(heap, h), p);
    assert_int_equal(dh_handle_of(p).id, h.id);
    assert_int_equal(dh_usable_size(p), len);
    assert_ptr_equal(dh_heap_of(p), heap);
    assert_int_equal(((uintptr_t)p - dh_heap_base(heap)) / 16, h.id);
    /* No other address inside the block is a block start. */
    assert_int_equal(dh_handle_of(p + 1).id, 0);
    assert_int_equal(dh_handle_of(p + len - 1).id, 0);
    if (len > 16) {
        assert_int_equal(dh_handle_of(p + 16).id, 0);
        assert_int_equal(dh_handle_of(p + len - 16).id, 0);
        dh_handle_t inner = {h.id + 1}, last = {h.id + len / 16 - 1};
        assert_null(dh_get(heap, inner, NULL));
        assert_null(dh_get(heap, last, NULL));
    }
}

static void test_round_trips(void **state) {
    (void)state;
    dh_heap_t *heap = core_heap();
    /* Every class, both edges, and large blocks. */
    for (int c = 0; c < DH_NUM_CLASSES; c++) {
        size_t n = dh_class_size(c);
        dh_handle_t a = dh_alloc(heap, n), b = dh_alloc(heap, n - 1);
        CORE_CHECK(heap);
        assert_round_trip(heap, a, n);
        assert_round_trip(heap, b, n - 1);
        size_t len;
        dh_get(heap, a, &len);
        assert_int_equal(len, n);
    }
    const size_t large[] = {65537, 100000, (size_t)1 << 20, 3 << 20};
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
        dh_handle_t h = dh_alloc(heap, large[i]);
        CORE_CHECK(heap);
        assert_round_trip(heap, h, large[i]);
    }
    /* The pointer API's blocks have handles too, and back. */
    void *p = dh_heap_malloc(heap, 40);
    assert_non_null(p);
    dh_handle_t hp = dh_handle_of(p);
    assert_ptr_equal(dh_ptr_of(heap, hp), p);
    dh_heap_free(heap, p);
    CORE_CHECK(heap);
    assert_int_equal(dh_handle_of(p).id, 0); /* freed: no handle */
    /* Addresses that are no block at all. */
    int local = 0;
    assert_int_equal(dh_handle_of(NULL).id, 0);
    assert_int_equal(dh_handle_of(&local).id, 0);
    assert_int_equal(dh_handle_of(heap).id, 0); /* the header */
    dh_heap_destroy(heap);
}

static void test_rejected_handles(void **state) {
    (void)state;
    dh_heap_t *heap = core_heap();
    dh_handle_t live = dh_alloc(heap, 64);
    dh_handle_t stale = dh_alloc(heap, 200);
    dh_handle_t big = dh_alloc(heap, 200000);
    dh_handle_t keep = dh_alloc(heap, 300000); /* stops big merging into top */
    dh_free(heap, stale);
    dh_free(heap, big);
    CORE_CHECK(heap);
    dh_stats_t s = test_stats(heap);
    assert_int_equal(s.rejected_handle_frees, 0);
    assert_int_equal(s.live_count, 2);

    assert_not_live(heap, DH_HANDLE_NULL);
    assert_not_live(heap, stale);            /* freed class block */
    assert_not_live(heap, big);              /* freed large block */
    dh_handle_t inside = {live.id + 1};      /* never issued: mid-block */
    assert_not_live(heap, inside);
    dh_handle_t inside_large = {keep.id + 4096 / 16};
    assert_not_live(heap, inside_large);
    dh_handle_t header = {1};                /* the heap's own header */
    assert_not_live(heap, header);
    /* Past everything carved, at the end of the range, and beyond it. */
    dh_handle_t uncarved = {keep.id + (1u << 20)};
    dh_handle_t last = {DH_DEFAULT_RESERVE / 16 - 1};
    dh_handle_t end = {DH_DEFAULT_RESERVE / 16};
    dh_handle_t huge = {UINT64_MAX};
    dh_handle_t half = {UINT64_MAX / 2 + 1};
    assert_not_live(heap, uncarved);
    assert_not_live(heap, last);
    assert_not_live(heap, end);
    assert_not_live(heap, huge);
    assert_not_live(heap, half);
    /* A double free, counted the same way. */
    assert_not_live(heap, stale);

    s = test_stats(heap);
    assert_int_equal(s.rejected_handle_frees, 12);
    assert_int_equal(s.free_count, 2);
    assert_int_equal(s.live_count, 2);
    /* Rejected handle frees never go through the pointer API's policy. */
    assert_int_equal(s.rejected_frees, 0);
    /* The live blocks were never touched. */
    assert_non_null(dh_get(heap, live, NULL));
    assert_non_null(dh_get(heap, keep, NULL));
    dh_heap_destroy(heap);
}

static void test_alias_reused_block(void **state) {
    (void)state;
    dh_heap_t *heap = core_heap();
    dh_handle_t old = dh_alloc(heap, 32);
    dh_free(heap, old);
    dh_handle_t cur = dh_alloc(heap, 30); /* same class: same block */
    CORE_CHECK(heap);
    assert_int_equal(cur.id, old.id);
    /* The old handle names the new allocation: it reads and writes it. */
    const char msg[] = "written through the old handle";
    assert_true(dh_write(heap, old, msg, sizeof msg));
    size_t len;
    const char *p = dh_get(heap, cur, &len);
    assert_non_null(p);
    assert_int_equal(len, 32);
    assert_memory_equal(p, msg, sizeof msg < 32 ? sizeof msg : 32);
    assert_ptr_equal(dh_get(heap, old, NULL), p);
    /* And freeing the old handle frees the new allocation. */
    dh_free(heap, old);
    CORE_CHECK(heap);
    dh_stats_t s = test_stats(heap);
    assert_int_equal(s.free_count, 2);
    assert_int_equal(s.live_count, 0);
    assert_null(dh_get(heap, cur, NULL));
    dh_free(heap, cur);
    assert_int_equal(test_stats(heap).rejected_handle_frees, 1);
    /* A block of another class is not reached through the old handle. */
    dh_handle_t other = dh_alloc(heap, 100);
    assert_true(other.id != old.id);
    assert_null(dh_get(heap, old, NULL));
    CORE_CHECK(heap);
    dh_heap_destroy(heap);
}

static void test_write_truncates(void **state) {
    (void)state;
    dh_heap_t *heap = core_heap();
    dh_handle_t a = dh_alloc(heap, 20); /* class 32 */
    dh_handle_t b = dh_alloc(heap, 20); /* its neighbour in the span */
    uint8_t fill[32];
    memset(fill, 0xee, sizeof fill);
    assert_true(dh_write(heap, b, fill, sizeof fill));
    uint8_t data[100];
    for (int i = 0; i < 100; i++) data[i] = (uint8_t)(i + 1);
    assert_true(dh_write(heap, a, data, sizeof data));
    CORE_CHECK(heap);
    size_t len;
    const uint8_t *pa = dh_get(heap, a, &len);
    assert_int_equal(len, 32);
    assert_memory_equal(pa, data, 32);
    const uint8_t *pb = dh_get(heap, b, &len);
    assert_memory_equal(pb, fill, sizeof fill); /* untouched */
    /* An empty write is a write. */
    assert_true(dh_write(heap, a, data, 0));
    assert_memory_equal(pa, data, 32);
    /* Exactly the size, and one byte. */
    uint8_t one = 0x77;
    assert_true(dh_write(heap, a, &one, 1));
    assert_int_equal(pa[0], 0x77);
    assert_memory_equal(pa + 1, data + 1, 31);
    dh_heap_destroy(heap);
}

static void test_large_handles(void **state) {
    (void)state;
    dh_heap_t *heap = core_heap();
    const size_t n = 200000;
    dh_handle_t h = dh_alloc(heap, n);
    CORE_CHECK(heap);
    size_t len;
    uint8_t *p = dh_get(heap, h, &len);
    assert_non_null(p);
    assert_true(len >= n);
    assert_int_equal(len % 4096, 0); /* page-granular */
    /* A write longer than the block is cut to it. */
    size_t wlen = len + 5000;
    uint8_t *data = malloc(wlen);
    assert_non_null(data);
    for (size_t i = 0; i < wlen; i++) data[i] = (uint8_t)(i * 7);
    assert_true(dh_write(heap, h, data, wlen));
    assert_memory_equal(p, data, len);
    CORE_CHECK(heap);
    dh_handle_t after = dh_alloc(heap, 16); /* right after the large block */
    assert_true(after.id > h.id);
    assert_true((after.id - h.id) * 16 >= len);
    /* Freed: not live; freed twice: only counted. */
    dh_free(heap, h);
    CORE_CHECK(heap);
    assert_not_live(heap, h);
    dh_stats_t s = test_stats(heap);
    assert_int_equal(s.large_frees, 1);
    assert_int_equal(s.large_live_count, 0);
    assert_int_equal(s.rejected_handle_frees, 1);
    /* The same size again gets the same block back: the same handle. */
    dh_handle_t again = dh_alloc(heap, n);
    CORE_CHECK(heap);
    assert_int_equal(again.id, h.id);
    assert_ptr_equal(dh_ptr_of(heap, again), p);
    assert_int_equal(dh_handle_of(p).id, again.id);
    dh_free(heap, after);
    dh_free(heap, again);
    CORE_CHECK(heap);
    assert_int_equal(test_stats(heap).live_count, 0);
    free(data);
    dh_heap_destroy(heap);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_rejected_handles),
        cmocka_unit_test(test_alias_reused_block),
        cmocka_unit_test(test_write_truncates),
        cmocka_unit_test(test_large_handles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
