/*
 * test_sizeclass.c - the size -> class map, exhaustively: dh_size_class(n)
 * for every n in 0..65537 against the definition (the smallest of the 13
 * class sizes that is >= n, found by a linear scan; n = 0 is class 0; above
 * 64 KiB, -1), and dh_class_size for every index from -1 to 13.
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_size),
        cmocka_unit_test(test_far_sizes),
        cmocka_unit_test(test_class_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
