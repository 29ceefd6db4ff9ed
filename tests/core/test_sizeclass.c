/*
 * test_sizeclass.c - the size -> class map, exhaustively: dh_size_class(n)
 * for every n in 0..65537 against the definition (the smallest of the 13
 * class sizes that is >= n, found by a linear scan; n = 0 is class 0; above
 * 64 KiB, -1), and dh_class_size for every index from -1 to 13; the same
 * for the fine class set (dh_class_set_of, dh_class_set_size).
 */
#include "core_test.h"

/* The 13 sizes of the original design, written out independently of the
 * library's table. */
static const size_t kSizes[DH_NUM_CLASSES] = {
    16, 32, 48, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536,
};

static int reference_class(size_t n) {
    for (int c = 0; c < DH_NUM_CLASSES; c++)
        if (n <= kSizes[c]) return c;
    return -1;
}

static void test_every_size(void **state) {
    (void)state;
    size_t per_class[DH_NUM_CLASSES] = {0};
    for (size_t n = 0; n <= 65537; n++) {
        int want = reference_class(n);
        int got = dh_size_class(n);
        if (got != want) fail_msg("dh_size_class(%zu) = %d, want %d", n, got,
                                  want);
        if (want >= 0) per_class[want]++;
    }
    /* The scan itself covers each class's whole range once. */
    size_t prev = 0;
    for (int c = 0; c < DH_NUM_CLASSES; c++) {
        assert_int_equal(per_class[c], kSizes[c] - prev + (c == 0));
        prev = kSizes[c];
    }
    assert_int_equal(dh_size_class(65537), -1);
    assert_int_equal(dh_size_class(0), 0);
}

static void test_far_sizes(void **state) {
    (void)state;
    /* Far above the classes, including sizes that overflow n + 15. */
    const size_t big[] = {65538, 100000, (size_t)1 << 20, (size_t)1 << 32,
                          SIZE_MAX / 2, SIZE_MAX - 15, SIZE_MAX - 1, SIZE_MAX};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        assert_int_equal(dh_size_class(big[i]), -1);
}

static void test_class_size(void **state) {
    (void)state;
    assert_int_equal(dh_class_size(-1), 0);
    for (int c = 0; c < DH_NUM_CLASSES; c++) {
        assert_int_equal(dh_class_size(c), kSizes[c]);
        /* A class serves its own size, and the next byte goes up. */
        assert_int_equal(dh_size_class(dh_class_size(c)), c);
        assert_int_equal(dh_size_class(dh_class_size(c) + 1),
                         c + 1 < DH_NUM_CLASSES ? c + 1 : -1);
    }
    assert_int_equal(dh_class_size(DH_NUM_CLASSES), 0);
    assert_int_equal(dh_class_size(13), 0);
    assert_int_equal(dh_class_size(INT32_MIN), 0);
    assert_int_equal(dh_class_size(INT32_MAX), 0);
    assert_int_equal(dh_class_size(DH_NUM_CLASSES - 1), DH_MAX_CLASS_SIZE);
}

/* ---- the fine set (DH_CLASSES_FINE) --------------------------------------
 * Its sizes written out from their rule (docs/DESIGN.md, "Class sets"):
 * 16-byte steps to 256, 32 to 512, 64 to 1024, 128 to 2048, 512 to 4096,
 * then 65536 / k rounded down to 16 bytes for k = 15 .. 1. */
static size_t fine[DH_CLASSES_MAX];
static int nfine;

static void fine_sizes(void) {
    nfine = 0;
    for (size_t n = 16; n <= 4096;) {
        fine[nfine++] = n;
        n += n < 256 ? 16 : n < 512 ? 32 : n < 1024 ? 64 : n < 2048 ? 128 : 512;
    }
    for (size_t k = 15; k >= 1; k--) fine[nfine++] = 65536 / k / 16 * 16;
}

static void test_fine_every_size(void **state) {
    (void)state;
    fine_sizes();
    assert_int_equal(nfine, 59);
    assert_int_equal(fine[55], 16384);
    assert_int_equal(fine[57], 32768);
    assert_int_equal(dh_class_set_count(DH_CLASSES_FINE), nfine);
    assert_int_equal(dh_class_set_count(DH_CLASSES_SPEC), DH_NUM_CLASSES);
    int c = 0;
    for (size_t n = 0; n <= 65537; n++) {
        while (c < nfine && fine[c] < n) c++;
        int want = c < nfine ? c : -1;
        /* the smallest class that holds n, but whole pages of the
         * page-aligned 16 and 32 KiB classes for these (docs/DESIGN.md,
         * "Class sets") */
        if (n > 10912 && n <= 12288) want = 55;
        if (n > 16384 && n <= 20480) want = 57;
        int got = dh_class_set_of(DH_CLASSES_FINE, n);
        if (got != want)
            fail_msg("dh_class_set_of(FINE, %zu) = %d, want %d", n, got, want);
        /* the spec set through the same entry point is dh_size_class */
        assert_int_equal(dh_class_set_of(DH_CLASSES_SPEC, n), dh_size_class(n));
    }
    for (int k = 0; k < nfine; k++) {
        assert_int_equal(dh_class_set_size(DH_CLASSES_FINE, k), fine[k]);
        /* a span wastes less than 16 bytes a block above 4 KiB */
        if (fine[k] > 4096)
            assert_true(65536 % fine[k] < 16 * (65536 / fine[k]));
        /* n + 1 bytes past a class get at most 1.125 (n + 1) up to 2 KiB,
         * about 1.25 (n + 1) (1.2502 at 16 KiB) up to 16 KiB */
        if (k > 0 && fine[k - 1] >= 128 && fine[k] <= 2048)
            assert_true(fine[k] * 8 <= (fine[k - 1] + 1) * 9);
        if (k > 0 && fine[k - 1] >= 128 && fine[k] <= 16384)
            assert_true(fine[k] * 10000 <= (fine[k - 1] + 1) * 12503);
    }
    for (int k = 0; k < DH_NUM_CLASSES; k++)
        assert_int_equal(dh_class_set_size(DH_CLASSES_SPEC, k), kSizes[k]);
}

static void test_unknown_sets(void **state) {
    (void)state;
    assert_int_equal(dh_class_set_count((dh_class_set_t)2), 0);
    assert_int_equal(dh_class_set_of((dh_class_set_t)2, 16), -1);
    assert_int_equal(dh_class_set_size((dh_class_set_t)-1, 0), 0);
    assert_int_equal(dh_class_set_size(DH_CLASSES_FINE, -1), 0);
    assert_int_equal(dh_class_set_size(DH_CLASSES_FINE, 59), 0);
    assert_int_equal(dh_class_set_size(DH_CLASSES_SPEC, 13), 0);
    assert_int_equal(dh_class_set_of(DH_CLASSES_FINE, 65537), -1);
    assert_int_equal(dh_class_set_of(DH_CLASSES_FINE, SIZE_MAX), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_size),
        cmocka_unit_test(test_far_sizes),
        cmocka_unit_test(test_class_size),
        cmocka_unit_test(test_fine_every_size),
        cmocka_unit_test(test_unknown_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
