/*
 * test_thp.c - huge pages (DETHEAP_THP) from the outside: the helper keeps
 * a number of MiB live under the preload and reports how the kernel was
 * advised to back its heap (ov_helper thp).  The default, off, gives no
 * advice, small heap or big.  With auto, a small program's heap gets no
 * huge-page advice either, and a big one gets it from 64 MiB past the
 * start of its data, committed in whole aligned huge pages; always advises
 * from the start, never refuses huge pages everywhere; a bad value is
 * named and the default kept.  Every setting hands out the same
 * addresses.
 *
 * The kernel shows the advice as VmFlags "hg"/"nh" in /proc/self/smaps
 * whenever it has transparent huge pages, whatever mode they are in; on a
 * kernel without them (no /sys/kernel/mm/transparent_hugepage) the test
 * cannot apply and exits 77, which ctest reports as skipped
 * (SKIP_RETURN_CODE).  DETHEAP_TEST_NO_THP=1 makes it behave as on such a
 * kernel, to check that path.  Whether huge pages are then really used
 * (AnonHugePages) depends on the kernel and is not checked.
 */
#include "spawn.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#define MIB ((uintptr_t)1 << 20)
/* The main heap's data start: 64 KiB header + 4 GiB state map (64 GiB) */
#define DATA_OFFSET (((uintptr_t)64 << 10) + ((uintptr_t)4 << 30))

typedef struct {
    int hg, nh, aligned;
    uintptr_t from;
    unsigned long huge_kb;
    char hash[17];
} thp_t;

static ov_result_t r;

/* Run "ov_helper thp MIB" under the preload with DETHEAP_THP=mode (NULL:
 * unset) and parse its report. */
static thp_t run_thp(const char *mode, int mib) {
    char arg[16], setting[64];
    snprintf(arg, sizeof arg, "%d", mib);
    char *argv[] = {OV_HELPER, "thp", arg, NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", "LANG=C", "LD_PRELOAD=" OV_PRELOAD,
                    setting, NULL};
    if (mode != NULL) snprintf(setting, sizeof setting, "DETHEAP_THP=%s", mode);
    else envp[3] = NULL;
    assert_true(ov_run(argv, envp, 60, &r));
    assert_false(r.timed_out);
    if (!r.exited || r.code != 0)
        fail_msg("exit %d signal %d, stderr: %s", r.code, r.signal, r.err);
    thp_t t;
    const char *at = strstr(r.out, "thp hg ");
    assert_non_null(at);
    assert_int_equal(sscanf(at, "thp hg %d nh %d from %" SCNxPTR
                            " aligned %d huge_kb %lu hash %16s",
                            &t.hg, &t.nh, &t.from, &t.aligned, &t.huge_kb,
                            t.hash),
                     6);
    print_message("DETHEAP_THP=%s, %d MiB: %s", mode ? mode : "(unset)", mib,
                  at);
    return t;
}

/* Whether the kernel has transparent huge pages (DETHEAP_TEST_NO_THP=1:
 * pretend it has not). */
static bool have_thp(void) {
    const char *pretend = getenv("DETHEAP_TEST_NO_THP");
    if (pretend != NULL && strcmp(pretend, "1") == 0) return false;
    return access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0;
}

static void test_default_gives_no_advice(void **state) {
    (void)state;
    for (int mib = 8; mib <= 100; mib += 92) {
        thp_t t = run_thp(NULL, mib);
        assert_string_equal(r.err, "");
        assert_int_equal(t.hg, 0);
        assert_int_equal(t.nh, 0);
        thp_t off = run_thp("off", mib);
        assert_int_equal(off.hg + off.nh, 0);
        assert_string_equal(off.hash, t.hash);
    }
}

static void test_auto_small_program_gets_no_huge_pages(void **state) {
    (void)state;
    thp_t t = run_thp("auto", 8);
    assert_string_equal(r.err, "");
    assert_int_equal(t.hg, 0);
    assert_int_equal(t.nh, 0);
    assert_int_equal(t.huge_kb, 0);
}

static void test_auto_past_64_mib(void **state) {
    (void)state;
    thp_t t = run_thp("auto", 100);
    assert_string_equal(r.err, "");
    assert_true(t.hg >= 2); /* data and state map */
    /* from the first huge page boundary 64 MiB into the data */
    uintptr_t want = (DATA_OFFSET + 64 * MIB + 2 * MIB - 1) & ~(2 * MIB - 1);
    assert_int_equal(t.from, want);
    assert_int_equal(t.aligned, 1);
    assert_string_equal(t.hash, run_thp(NULL, 100).hash);
}

static void test_always_and_never(void **state) {
    (void)state;
    thp_t def = run_thp(NULL, 8);
    thp_t always = run_thp("always", 8);
    assert_true(always.hg >= 2);
    assert_int_equal(always.from, (DATA_OFFSET + 2 * MIB - 1) & ~(2 * MIB - 1));
    assert_int_equal(always.aligned, 1);
    thp_t never = run_thp("never", 100);
    assert_string_equal(r.err, "");
    assert_int_equal(never.hg, 0);
    assert_true(never.nh >= 1);
    assert_int_equal(never.huge_kb, 0);
    /* how memory is backed changes no address */
    assert_string_equal(always.hash, def.hash);
    assert_string_equal(never.hash, run_thp(NULL, 100).hash);
}

static void test_bad_value(void **state) {
    (void)state;
    thp_t t = run_thp("sometimes", 100);
    assert_string_equal(
        r.err, "detheap: ignoring DETHEAP_THP=sometimes: expected off, "
               "auto, always or never\n");
    assert_int_equal(t.hg, 0); /* the default, off */
    assert_int_equal(t.nh, 0);
}

int main(void) {
    if (!have_thp()) {
        printf("SKIPPED: test_ov_thp: no transparent huge pages in this "
               "kernel (/sys/kernel/mm/transparent_hugepage): the advice "
               "cannot be seen\n");
        return 77; /* ctest's SKIP_RETURN_CODE */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_gives_no_advice),
        cmocka_unit_test(test_auto_small_program_gets_no_huge_pages),
        cmocka_unit_test(test_auto_past_64_mib),
        cmocka_unit_test(test_always_and_never),
        cmocka_unit_test(test_bad_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
