/*
 * test_purge.c - a freed large block's pages go back when its thread asks
 * for a larger block (process.c, "giving freed large blocks' pages
 * back"), on the process heap (dh_malloc and dh_free, in this process):
 *
 * (a) 8 MiB freed, then 16 MiB asked for: the 8 MiB's pages are no longer
 *     resident (mincore) but its first; reused, it reads zero there.
 * (b) 8 MiB freed and asked for again, 20 times: the same block, its pages
 *     still resident and its bytes as they were (no system call, no page
 *     fault, for a program that reuses the same size).
 * (c) A block too small to be remembered freed, then the 4 MiB above it,
 *     which merges into it; then a larger request: the merged block (as
 *     the lower one) goes back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <detheap.h>

#define MIB ((size_t)1 << 20)

/* Resident pages of [p, p + n). */
static size_t resident(const void *p, size_t n) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = n / page, in = 0;
    unsigned char *v = malloc(pages);
    assert_non_null(v);
    assert_int_equal(mincore((void *)p, n, v), 0);
    for (size_t i = 0; i < pages; i++) in += v[i] & 1;
    free(v);
    return in;
}

static void test_bigger_request_purges(void **state) {
    (void)state;
    unsigned char *a = dh_malloc(8 * MIB);
    unsigned char *fence = dh_malloc(2 * MIB); /* keeps a off the top */
    assert_non_null(a);
    assert_non_null(fence);
    memset(a, 0x5a, 8 * MIB);
    assert_int_equal(resident(a, 8 * MIB), 8 * MIB / 4096);
    dh_free(a);
    assert_int_equal(resident(a, 8 * MIB), 8 * MIB / 4096); /* kept */
    unsigned char *b = dh_malloc(16 * MIB);
    assert_non_null(b);
    assert_true(b != a);
    assert_true(resident(a, 8 * MIB) <= 1); /* all but the node's page */
    unsigned char *c = dh_malloc(8 * MIB); /* best fit: a again */
    assert_ptr_equal(c, a);
    for (size_t i = 4096; i < 8 * MIB; i += 4096)
        if (c[i] != 0) fail_msg("byte %zu reads %d, not 0", i, c[i]);
    dh_free(c);
    dh_free(b);
    dh_free(fence);
}

static void test_same_size_keeps(void **state) {
    (void)state;
    unsigned char *a = dh_malloc(8 * MIB);
    assert_non_null(a);
    memset(a, 0x33, 8 * MIB);
    for (int i = 0; i < 20; i++) {
        dh_free(a);
        unsigned char *again = dh_malloc(8 * MIB);
        assert_ptr_equal(again, a);
        assert_int_equal(resident(a, 8 * MIB), 8 * MIB / 4096);
        assert_int_equal(a[8 * MIB - 1], 0x33);
    }
    dh_free(a);
}

static void test_merged_neighbours_purge(void **state) {
    (void)state;
    /* lo is too small to be remembered; hi merges into it when freed */
    unsigned char *lo = dh_malloc(512 * 1024), *hi = dh_malloc(4 * MIB);
    unsigned char *fence = dh_malloc(4 * MIB); /* keeps them off the top */
    assert_non_null(lo);
    assert_non_null(hi);
    assert_non_null(fence);
    assert_ptr_equal(hi, lo + 512 * 1024);
    memset(lo, 1, 512 * 1024);
    memset(hi, 1, 4 * MIB);
    dh_free(lo);
    dh_free(hi); /* merges into lo's block, which is remembered instead */
    unsigned char *big = dh_malloc(32 * MIB);
    assert_non_null(big);
    assert_int_equal(resident(hi, 4 * MIB), 0);
    dh_free(big);
    dh_free(fence);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bigger_request_purges),
        cmocka_unit_test(test_same_size_keeps),
        cmocka_unit_test(test_merged_neighbours_purge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
