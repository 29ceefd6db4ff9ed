/*
 * test_abi.c - the promises of docs/ABI.md that a program can observe: the
 * version macros agree with the linked library and with the project
 * version the SONAME is made from, and the size-carrying structs
 * (dh_config_t, dh_stats_t) behave as the policy says for callers built
 * against another size.  It is linked against the shared library
 * (tests/packaging/CMakeLists.txt), and checks that it is: a mismatch of
 * header and library is what it is there to catch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <detheap.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The library that defines dh_version in this process must be the shared
 * one, with the SONAME the project version gives (libdetheap.so.MAJOR). */
static void test_linked_against_shared_library(void **state) {
    (void)state;
    Dl_info info;
    assert_true(dladdr((void *)&dh_version, &info) != 0);
    assert_non_null(info.dli_fname);
    char soname[64];
    snprintf(soname, sizeof soname, "libdetheap.so.%d", DH_EXPECT_MAJOR);
    const char *base = strrchr(info.dli_fname, '/');
    base = base ? base + 1 : info.dli_fname;
    if (strncmp(base, soname, strlen(soname)) != 0)
        fail_msg("dh_version is defined in %s, not in %s", info.dli_fname,
                 soname);
}

static void test_version_macros_match_library(void **state) {
    (void)state;
    assert_int_equal(DH_VERSION_MAJOR, DH_EXPECT_MAJOR);
    assert_int_equal(DH_VERSION_MINOR, DH_EXPECT_MINOR);
    assert_int_equal(DH_VERSION_PATCH, DH_EXPECT_PATCH);
    assert_int_equal(dh_version(), DH_VERSION);
    assert_int_equal(DH_VERSION >> 16, DH_VERSION_MAJOR);
    assert_int_equal((DH_VERSION >> 8) & 0xff, DH_VERSION_MINOR);
    assert_int_equal(DH_VERSION & 0xff, DH_VERSION_PATCH);
}

static void test_config_init_stamps_size_and_version(void **state) {
    (void)state;
    dh_config_t cfg;
    memset(&cfg, 0xa5, sizeof cfg);
    dh_config_init(&cfg);
    assert_int_equal(cfg.struct_size, sizeof(dh_config_t));
    assert_int_equal(cfg.version, DH_VERSION);
    dh_config_t lit = DH_CONFIG_INIT;
    assert_int_equal(lit.struct_size, cfg.struct_size);
    assert_int_equal(lit.version, cfg.version);
}

/* A config whose size the library does not know is refused, never read
 * past its end. */
static void test_unknown_config_size_is_refused(void **state) {
    (void)state;
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.reserve = (uint64_t)1 << 20;
    const uint32_t bad[] = {0, 8, (uint32_t)sizeof(dh_config_t) + 8};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.struct_size = bad[i];
        errno = 0;
        assert_null(dh_heap_create(&cfg));
        assert_int_equal(errno, EINVAL);
    }
    cfg.struct_size = sizeof(dh_config_t);
    dh_heap_t *heap = dh_heap_create(&cfg);
    assert_non_null(heap);
    dh_heap_destroy(heap);
}

/* An older caller passes a smaller dh_stats_t: it gets the prefix that
 * fits, and not one byte more. */
static void test_stats_prefix_for_older_callers(void **state) {
    (void)state;
    dh_heap_t *heap = dh_heap_create(NULL);
    assert_non_null(heap);
    void *p = dh_heap_malloc(heap, 40);
    assert_non_null(p);

    dh_stats_t full;
    assert_true(dh_heap_stats(heap, &full, sizeof full));
    assert_int_equal(full.struct_size, sizeof(dh_stats_t));
    assert_int_equal(full.version, DH_STATS_VERSION);

    const size_t cut = offsetof(dh_stats_t, live_count);
    _Alignas(dh_stats_t) unsigned char buf[sizeof(dh_stats_t)];
    memset(buf, 0xee, sizeof buf);
    assert_true(dh_heap_stats(heap, (dh_stats_t *)(void *)buf, cut));
    assert_memory_equal(buf, &full, cut);
    for (size_t i = cut; i < sizeof buf; i++) assert_int_equal(buf[i], 0xee);

    /* Too small for the two header fields: refused. */
    errno = 0;
    assert_false(dh_heap_stats(heap, &full, 2 * sizeof(uint32_t) - 1));
    assert_int_equal(errno, EINVAL);
    dh_heap_destroy(heap);
}

/* A newer caller passes a larger struct: the library fills what it knows
 * and says how much in struct_size; the rest is left alone. */
static void test_stats_larger_caller_struct(void **state) {
    (void)state;
    dh_heap_t *heap = dh_heap_create(NULL);
    assert_non_null(heap);
    struct {
        dh_stats_t known;
        uint64_t future[4];
    } big;
    memset(&big, 0x5a, sizeof big);
    assert_true(dh_heap_stats(heap, &big.known, sizeof big));
    assert_int_equal(big.known.struct_size, sizeof(dh_stats_t));
    for (size_t i = 0; i < 4; i++)
        assert_true(big.future[i] == 0x5a5a5a5a5a5a5a5aull);
    dh_heap_destroy(heap);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linked_against_shared_library),
        cmocka_unit_test(test_version_macros_match_library),
        cmocka_unit_test(test_config_init_stamps_size_and_version),
        cmocka_unit_test(test_unknown_config_size_is_refused),
        cmocka_unit_test(test_stats_prefix_for_older_callers),
        cmocka_unit_test(test_stats_larger_caller_struct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
