/*
 * test_grow.c - the region layer's side of address-space limits, through
 * the fault-injecting OS layer: a range reserved as it grows takes only
 * what it commits, remembers the commit the OS refused (no system call is
 * made again for as much or more), and still serves what it has; a range
 * that ends below its size reserves only up to its end.
 */
#include "internal.h"
#include "os_fault.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#define MIB ((uintptr_t)1 << 20)
#define GIB ((uintptr_t)1 << 30)
/* Free parts of the address space for the test's heaps. */
#define GROW_BASE ((uintptr_t)0x310000000000)
#define END_BASE ((uintptr_t)0x320000000000)

/* Nothing is mapped at [p, p + n): a fixed mapping there succeeds. */
static bool unmapped(uintptr_t p, size_t n) {
    void *m = mmap((void *)p, n, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (m == MAP_FAILED) return false;
    munmap(m, n);
    return m == (void *)p;
}

static void test_grow_remembers_refusal(void **state) {
    (void)state;
    dh_config_t cfg = DH_CONFIG_INIT;
    cfg.reserve = GIB;
    cfg.base = GROW_BASE;
    dh_heap_t *h = dh_region_create_in(&cfg, 0, true, 0);
    assert_non_null(h);
    void *a = dh_heap_malloc(h, MIB);
    assert_non_null(a);
    /* only what was committed is reserved: the rest of the range is free */
    assert_true(unmapped(GROW_BASE + GIB / 2, 64 * MIB));
    unsigned long before = dh_fault_commits_seen();
    dh_fault_set(0, false, -1); /* the next commit is refused */
    errno = 0;
    assert_null(dh_heap_malloc(h, 64 * MIB));
    assert_int_equal(errno, ENOMEM);
    unsigned long refused = dh_fault_commits_seen();
    assert_true(refused > before);
    for (int i = 0; i < 1000; i++) { /* as much or more: not asked again */
        errno = 0;
        assert_null(dh_heap_malloc(h, 64 * MIB + (size_t)i * 4096));
        assert_int_equal(errno, ENOMEM);
    }
    assert_int_equal(dh_fault_commits_seen(), refused);
    /* what it has still serves; less than the refused size may grow */
    void *b = dh_heap_malloc(h, 100);
    assert_non_null(b);
    dh_fault_set(-1, false, -1);
    void *c = dh_heap_malloc(h, 8 * MIB);
    assert_non_null(c);
    memset(c, 1, 8 * MIB);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_free(a);
    dh_free(b);
    dh_free(c);
    dh_heap_destroy(h);
    assert_true(unmapped(GROW_BASE, 64 * MIB));
}

static void test_end_below_size(void **state) {
    (void)state;
    dh_config_t cfg = DH_CONFIG_INIT;
    cfg.reserve = GIB;
    cfg.base = END_BASE;
    dh_heap_t *h = dh_region_create_in(&cfg, 256 * MIB, false, 0);
    assert_non_null(h);
    dh_stats_t s;
    assert_true(dh_heap_stats(h, &s, sizeof s));
    assert_int_equal(s.reserved_bytes, 256 * MIB);
    assert_true(unmapped(END_BASE + 256 * MIB, 64 * MIB));
    size_t got = 0;
    while (dh_heap_malloc(h, MIB) != NULL) got += MIB;
    assert_int_equal(errno, ENOMEM);
    /* 1 GiB's state map (64 MiB) comes first, then the data */
    assert_true(got > 150 * MIB && got < 256 * MIB);
    assert_null(dh_heap_of((void *)(END_BASE + 300 * MIB)));
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_heap_destroy(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_remembers_refusal),
        cmocka_unit_test(test_end_below_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
