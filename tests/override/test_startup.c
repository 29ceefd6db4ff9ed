/*
 * test_startup.c - allocation before main.  Run with libdetheap.so
 * preloaded: a constructor of the program allocates (malloc, calloc,
 * strdup, realloc, posix_memalign) before main, when the preloaded library
 * has had no constructor of its own run for certain.  main then checks that
 * those blocks came from detheap, at the base in force (DETHEAP_BASE, or
 * the default), and kept their contents; and that they can be freed.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define RESERVE ((uintptr_t)64 << 30)

static void *early[5];

__attribute__((constructor(101))) static void allocate_early(void) {
    early[0] = malloc(100);
    if (early[0]) memcpy(early[0], "constructed", 12);
    early[1] = calloc(10, 10);
    early[2] = strdup("before main");
    early[3] = realloc(NULL, 5000);
    if (early[3]) memset(early[3], 0x3c, 5000);
    if (posix_memalign(&early[4], 4096, 100) != 0) early[4] = NULL;
}

/* The base in force, as the library reads it (only the forms used here). */
static uintptr_t expected_base(void) {
    const char *b = getenv("DETHEAP_BASE");
    return b ? (uintptr_t)strtoull(b, NULL, 0) : (uintptr_t)0x200000000000;
}

static void test_early_blocks(void **state) {
    (void)state;
    void *(*heap_of)(const void *) =
        (void *(*)(const void *))dlsym(RTLD_DEFAULT, "dh_heap_of");
    assert_non_null(heap_of);
    uintptr_t base = expected_base();
    for (int i = 0; i < 5; i++) {
        assert_non_null(early[i]);
        assert_non_null(heap_of(early[i]));
        uintptr_t p = (uintptr_t)early[i];
        assert_true(p >= base && p - base < RESERVE);
    }
    assert_string_equal(early[0], "constructed");
    for (int i = 0; i < 100; i++)
        assert_int_equal(((unsigned char *)early[1])[i], 0);
    assert_string_equal(early[2], "before main");
    for (int i = 0; i < 5000; i++)
        assert_int_equal(((unsigned char *)early[3])[i], 0x3c);
    assert_int_equal((uintptr_t)early[4] % 4096, 0);
    for (int i = 0; i < 5; i++) free(early[i]);
}

/* What libc allocated on the way in (stdio, locale) works on. */
static void test_libc_after_start(void **state) {
    (void)state;
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    assert_non_null(f);
    for (int i = 0; i < 1000; i++) fprintf(f, "%d,", i);
    fclose(f);
    assert_true(len > 3000);
    uintptr_t p = (uintptr_t)s, base = expected_base();
    assert_true(p >= base && p - base < RESERVE);
    free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_early_blocks),
        cmocka_unit_test(test_libc_after_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
