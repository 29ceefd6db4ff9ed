/*
 * test_options.c - the DETHEAP_* options of the drop-in library as a
 * program sees them (issue 13, item 4): every complaint about a malformed
 * value is printed once per process, however many threads and forked
 * children it has; a malformed switch (`DETHEAP_STATS=yes`, `on2`) is
 * named and the default kept, and only the spellings of docs/OPTIONS.md
 * are taken; DETHEAP_STATS_FILE is read at start, so a program that
 * rewrites its environment still gets its report where it asked; a stats
 * file that cannot be opened is named in one line and the report goes to
 * stderr.
 */
#include "spawn.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

static ov_result_t r;

static void run(char *const argv[], ...) {
    char *envp[24] = {"PATH=/usr/bin:/bin", "LANG=C",
                      "LD_PRELOAD=" OV_PRELOAD};
    int n = 3;
    va_list ap;
    va_start(ap, argv);
    for (char *v; n < 23 && (v = va_arg(ap, char *)) != NULL;) envp[n++] = v;
    va_end(ap);
    envp[n] = NULL;
    assert_true(ov_run(argv, envp, 120, &r));
    assert_false(r.timed_out);
    if (!r.exited || r.code != 0)
        fail_msg("exit %d signal %d, stderr: %s", r.code, r.signal, r.err);
}

static int count(const char *text, const char *what) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p++) n++;
    return n;
}

/* Every option malformed at once, in a program with 64 threads, and in
 * one whose thread allocates while it forks: each named exactly once. */
static void test_each_message_once(void **state) {
    (void)state;
    static const char *const bad[] = {
        "DETHEAP_STATS=yes",          "DETHEAP_STACKS=true",
        "DETHEAP_THP=on",             "DETHEAP_ON_ERROR=explode",
        "DETHEAP_REMOTE_FREE=mine",   "DETHEAP_RESERVE=1k",
        "DETHEAP_THREAD_RESERVE=lots", "DETHEAP_BASE=banana",
        "DETHEAP_TRACE=",             "DETHEAP_STATS_FILE=",
        "DETHEAP_CLASSES=tiny",       "DETHEAP_RECYCLE=yes"};
    char *threads[] = {LIMIT_HELPER, "threads", "64", NULL};
    char *forks[] = {OV_HELPER, "fork", "4", NULL};
    for (int prog = 0; prog < 2; prog++) {
        run(prog ? forks : threads, bad[0], bad[1], bad[2], bad[3], bad[4],
            bad[5], bad[6], bad[7], bad[8], bad[9], bad[10], bad[11], NULL);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            char want[96];
            snprintf(want, sizeof want, "detheap: ignoring %s:", bad[i]);
            if (count(r.err, want) != 1)
                fail_msg("\"%s\" %d times in: %s", want, count(r.err, want),
                         r.err);
        }
        assert_int_equal(count(r.err, "detheap: "),
                         (int)(sizeof bad / sizeof bad[0]));
    }
}

/* A switch takes 0 or 1 (and DETHEAP_STATS json), nothing else. */
static void test_malformed_switches(void **state) {
    (void)state;
    char *argv[] = {LIMIT_HELPER, "threads", "2", NULL};
    static const char *const stats[] = {"yes", "on2", "true", "on", "1 ",
                                        "01", "JSON", ""};
    for (size_t i = 0; i < sizeof stats / sizeof stats[0]; i++) {
        char set[64], want[128];
        snprintf(set, sizeof set, "DETHEAP_STATS=%s", stats[i]);
        run(argv, set, NULL);
        snprintf(want, sizeof want,
                 "detheap: ignoring %s: expected 0, 1 or json\n", set);
        assert_string_equal(r.err, want); /* and no report: the default */
    }
    run(argv, "DETHEAP_STACKS=yes", NULL);
    assert_string_equal(r.err,
                        "detheap: ignoring DETHEAP_STACKS=yes: expected 0, 1 "
                        "or a number of frames up to 240\n");
    run(argv, "DETHEAP_STATS=1", NULL);
    assert_int_equal(count(r.err, "detheap: statistics of process"), 1);
    run(argv, "DETHEAP_STATS=json", NULL);
    assert_int_equal(count(r.err, "{\"pid\": "), 1);
    run(argv, "DETHEAP_STATS=0", NULL);
    assert_string_equal(r.err, "");
}

/* The program wipes and rewrites its environment before exit. */
static void test_stats_file_read_at_start(void **state) {
    (void)state;
    char dir[] = "/tmp/dh-options-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char file[96], set[128];
    snprintf(file, sizeof file, "%s/stats", dir);
    snprintf(set, sizeof set, "DETHEAP_STATS_FILE=%s", file);
    char *argv[] = {LIMIT_HELPER, "clobber", NULL};
    run(argv, "DETHEAP_STATS=1", set, NULL);
    assert_string_equal(r.out, "clobbered\n");
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
}

static void test_unopenable_stats_file(void **state) {
    (void)state;
    char *argv[] = {LIMIT_HELPER, "threads", "2", NULL};
    run(argv, "DETHEAP_STATS=1",
        "DETHEAP_STATS_FILE=/nonexistent-dir/stats.%p", NULL);
    const char *line = "detheap: cannot open DETHEAP_STATS_FILE "
                       "/nonexistent-dir/stats.";
    assert_int_equal(count(r.err, line), 1);
    assert_int_equal(strncmp(r.err, line, strlen(line)), 0);
    const char *end = strchr(r.err, '\n');
    assert_non_null(end);
    const char *tail = "; the statistics go to stderr\n";
    assert_int_equal(strncmp(end + 1 - strlen(tail), tail, strlen(tail)), 0);
    /* the report follows, on stderr */
    assert_int_equal(strncmp(end + 1, "detheap: statistics of process", 30), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_message_once),
        cmocka_unit_test(test_malformed_switches),
        cmocka_unit_test(test_stats_file_read_at_start),
        cmocka_unit_test(test_unopenable_stats_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
