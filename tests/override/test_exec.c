/*
 * test_exec.c - the drop-in library from the outside: start-up of real
 * programs under the preload (the dynamic loader's and libc's first
 * allocations land in detheap), option parsing (DETHEAP_BASE places the
 * first block, a malformed value is named on stderr and the default kept),
 * fork while another thread allocates (no deadlock, children exit 0,
 * with and without DETHEAP_STATS), and the lean inline paths of malloc,
 * free, calloc and realloc giving the addresses the general paths give.
 */
#include "spawn.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#define GIB ((uintptr_t)1 << 30)
#define DEFAULT_BASE ((uintptr_t)0x200000000000)

static ov_result_t r;

/* Run argv with LD_PRELOAD and the extra variables (NULL-terminated). */
static void run(char *const argv[], double limit, ...) {
    char *envp[16] = {"PATH=/usr/bin:/bin", "LANG=C",
                      "LD_PRELOAD=" OV_PRELOAD};
    int n = 3;
    va_list ap;
    va_start(ap, limit);
    for (char *v; n < 15 && (v = va_arg(ap, char *)) != NULL;) envp[n++] = v;
    va_end(ap);
    envp[n] = NULL;
    assert_true(ov_run(argv, envp, limit, &r));
    assert_false(r.timed_out);
}

static void assert_exit_0(void) {
    if (!r.exited || r.code != 0)
        fail_msg("exit %d signal %d, stderr: %s", r.code, r.signal, r.err);
}

/* The helper's first malloc result must lie in [lo, lo + len). */
static void assert_first_in(uintptr_t lo, uintptr_t len) {
    const char *at = strstr(r.out, "first 0x");
    assert_non_null(at);
    uintptr_t p = (uintptr_t)strtoull(at + 6, NULL, 16);
    if (p < lo || p - lo >= len)
        fail_msg("first block %#" PRIxPTR " not in [%#" PRIxPTR ", +%#" PRIxPTR
                 ")", p, lo, len);
}

static void test_true(void **state) {
    (void)state;
    char *argv[] = {"/bin/true", NULL};
    run(argv, 30, NULL);
    assert_exit_0();
    assert_string_equal(r.err, "");
}

static void test_ls(void **state) {
    (void)state;
    char *argv[] = {"/bin/ls", "-d", "/", "/usr", NULL};
    run(argv, 30, NULL);
    assert_exit_0();
    assert_string_equal(r.out, "/\n/usr\n");
    assert_string_equal(r.err, "");
}

/* env -i clears everything; the preload is passed on explicitly, and the
 * statistics at exit prove the program really ran on detheap.  They go to
 * a file: coreutils close stderr before the library's exit report. */
static void test_env_i(void **state) {
    (void)state;
    char dir[] = "/tmp/ov-exec-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char file[64], stats[96];
    snprintf(file, sizeof file, "%s/stats", dir);
    snprintf(stats, sizeof stats, "DETHEAP_STATS_FILE=%s", file);
    char *argv[] = {"/usr/bin/env", "-i", "LD_PRELOAD=" OV_PRELOAD,
                    "DETHEAP_STATS=1", stats, "/bin/ls", "-d", "/", NULL};
    run(argv, 30, NULL);
    assert_exit_0();
    assert_string_equal(r.out, "/\n");
    assert_string_equal(r.err, "");
    char text[8192] = "";
    FILE *f = fopen(file, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    unlink(file);
    rmdir(dir);
    assert_non_null(strstr(text, "detheap: statistics of process"));
    assert_non_null(strstr(text, "\nfingerprint: "));
    assert_non_null(strstr(text, "rejected frees: 0\n"));
}

static void test_default_base(void **state) {
    (void)state;
    char *argv[] = {OV_HELPER, "first", NULL};
    run(argv, 30, NULL);
    assert_exit_0();
    assert_string_equal(r.err, "");
    assert_first_in(DEFAULT_BASE, 64 * GIB);
}

static void test_base_option(void **state) {
    (void)state;
    char *argv[] = {OV_HELPER, "first", NULL};
    run(argv, 30, "DETHEAP_BASE=0x300000000000", NULL);
    assert_exit_0();
    assert_string_equal(r.err, "");
    assert_first_in(0x300000000000, 64 * GIB);
    run(argv, 30, "DETHEAP_BASE=0x300000000000", "DETHEAP_RESERVE=1G", NULL);
    assert_exit_0();
    assert_string_equal(r.err, "");
    assert_first_in(0x300000000000, GIB);
}

/* A bad value: named once on stderr, the default in force. */
static void bad_option(const char *setting, const char *why) {
    char *argv[] = {OV_HELPER, "first", NULL};
    run(argv, 30, (char *)setting, NULL);
    assert_exit_0();
    char want[256];
    snprintf(want, sizeof want, "detheap: ignoring %s: %s\n", setting, why);
    assert_string_equal(r.err, want);
    assert_first_in(DEFAULT_BASE, 64 * GIB);
}

static void test_malformed_options(void **state) {
    (void)state;
    bad_option("DETHEAP_BASE=0x123",
               "not a multiple of DETHEAP_RESERVE (0x1000000000); using the "
               "default");
    bad_option("DETHEAP_BASE=0x300000000",
               "not a multiple of DETHEAP_RESERVE (0x1000000000); using the "
               "default");
    bad_option("DETHEAP_BASE=banana", "not a number");
    bad_option("DETHEAP_BASE=0x900000000000", "beyond the user address space");
    bad_option("DETHEAP_RESERVE=1k", "must be between 64M and 16T");
    bad_option("DETHEAP_RESERVE=lots", "not a size");
    bad_option("DETHEAP_ON_ERROR=explode", "expected abort, warn or ignore");
    bad_option("DETHEAP_STATS=maybe", "expected 0, 1 or json");
    bad_option("DETHEAP_STACKS=241",
               "expected 0, 1 or a number of frames up to 240");
    bad_option("DETHEAP_THP=yes", "expected off, auto, always or never");
}

/* A malformed policy keeps the default, abort. */
static void test_malformed_policy_keeps_abort(void **state) {
    (void)state;
    char *argv[] = {OV_HELPER, "misuse", "double-free-class", NULL};
    run(argv, 30, "DETHEAP_ON_ERROR=explode", NULL);
    assert_false(r.exited);
    assert_int_equal(r.signal, SIGABRT);
    assert_non_null(strstr(r.err, "detheap: ignoring DETHEAP_ON_ERROR=explode"));
    assert_non_null(strstr(r.err, "): double free (48-byte class)\n"));
}

/* One thread allocates in a loop while the main thread forks 40 times. */
static void fork_run(const char *stats) {
    char *argv[] = {OV_HELPER, "fork", "40", NULL};
    run(argv, 120, (char *)stats, NULL);
    assert_exit_0();
    assert_string_equal(r.out, "forks 40 failed 0\n");
}

/* DETHEAP_BASE is checked against DETHEAP_RESERVE: a base that is not a
 * multiple of the main heap's (larger than 4 GiB) reserve is named with the
 * rule and the default used; a reserve below 4 GiB is accepted, and the
 * thread heaps then still go to their fixed places, so nothing is said. */
static void test_base_reserve_rule(void **state) {
    (void)state;
    char *argv[] = {OV_HELPER, "first", NULL};
    run(argv, 30, "DETHEAP_BASE=0x200100000000", "DETHEAP_RESERVE=1T", NULL);
    assert_exit_0();
    assert_string_equal(r.err,
                        "detheap: ignoring DETHEAP_BASE=0x200100000000: not a "
                        "multiple of DETHEAP_RESERVE (0x10000000000); using "
                        "the default\n");
    assert_first_in(DEFAULT_BASE, (uint64_t)1 << 40);
    char *threads[] = {OV_HELPER, "fork", "2", NULL};
    run(threads, 60, "DETHEAP_RESERVE=1G", NULL);
    assert_exit_0();
    assert_string_equal(r.err, "");
    run(threads, 60, "DETHEAP_THREAD_RESERVE=1G", NULL);
    assert_exit_0();
    assert_string_equal(r.err, "");
}

static void test_fork(void **state) {
    (void)state;
    fork_run(NULL);
    assert_string_equal(r.err, "");
}

static void test_fork_stats(void **state) {
    (void)state;
    fork_run("DETHEAP_STATS=1");
    /* every child and the parent report at exit */
    int reports = 0;
    for (const char *p = r.err; (p = strstr(p, "\nfingerprint: ")) != NULL;
         p++)
        reports++;
    assert_int_equal(reports, 41);
}

/* The same calls give the same addresses on the lean paths (no option) as
 * on the general, observed ones (DETHEAP_STATS: every call goes through
 * process.c), and every block keeps its contents on both. */
static void test_lean_paths_match_general(void **state) {
    (void)state;
    char *argv[] = {OV_HELPER, "mix", "400000", NULL};
    run(argv, 120, NULL);
    assert_exit_0();
    static char lean[sizeof r.out];
    memcpy(lean, r.out, sizeof lean);
    assert_non_null(strstr(lean, "mix "));
    assert_non_null(strstr(lean, " 0\n")); /* no block lost its contents */
    run(argv, 120, "DETHEAP_STATS=1", "DETHEAP_STATS_FILE=/dev/null", NULL);
    assert_exit_0();
    assert_string_equal(r.out, lean);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_true),
        cmocka_unit_test(test_ls),
        cmocka_unit_test(test_env_i),
        cmocka_unit_test(test_default_base),
        cmocka_unit_test(test_base_option),
        cmocka_unit_test(test_malformed_options),
        cmocka_unit_test(test_malformed_policy_keeps_abort),
        cmocka_unit_test(test_base_reserve_rule),
        cmocka_unit_test(test_fork),
        cmocka_unit_test(test_fork_stats),
        cmocka_unit_test(test_lean_paths_match_general),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
