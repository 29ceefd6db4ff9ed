/*
 * test_limits.c - the drop-in library under an address-space limit
 * (RLIMIT_AS, set in the child before it execs the program, as `ulimit -v`
 * does): under 2 GiB a program gets at least 1.5 GiB from malloc, then
 * NULL with ENOMEM, and malloc works again after free; so does a thread;
 * 64 threads start;
 * the one line that says how the limit shrank the layout appears exactly
 * once (and in the statistics); the same limit gives the same addresses;
 * reserves below 4 GiB work with and without a limit; sort and python3
 * run under the limit.
 *
 *   test_limits                the cmocka tests
 *   test_limits tool NAME      run the real program NAME (sort, python3)
 *                              under the limit; exit 77 (skipped) if it is
 *                              not installed
 */
#include "spawn.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <sys/stat.h>

#include <cmocka.h>

#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define LIMIT (2 * GIB) /* ulimit -v 2097152 */
#define SKIP 77

#define LAYOUT_2G                                                   \
    "RLIMIT_AS of 2 GiB: process heap reserve 1680 MiB, thread heaps " \
    "4 GiB each, all taken as they grow, 1792 MiB in all\n"
#define NOTE_2G "detheap: " LAYOUT_2G

static ov_result_t r;

/* Run argv under the preload, with as_bytes of address space (0: no
 * limit) and the extra variables (NULL-terminated). */
static void run(char *const argv[], unsigned long long as_bytes, ...) {
    char *envp[16] = {"PATH=/usr/bin:/bin", "LANG=C",
                      "LD_PRELOAD=" OV_PRELOAD};
    int n = 3;
    va_list ap;
    va_start(ap, as_bytes);
    for (char *v; n < 15 && (v = va_arg(ap, char *)) != NULL;) envp[n++] = v;
    va_end(ap);
    envp[n] = NULL;
    assert_true(ov_run_as(argv, envp, 120, as_bytes, &r));
    assert_false(r.timed_out);
}

static void assert_exit_0(void) {
    if (!r.exited || r.code != 0)
        fail_msg("exit %d signal %d, stdout: %s stderr: %s", r.code, r.signal,
                 r.out, r.err);
}

static int count(const char *text, const char *what) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p++) n++;
    return n;
}

/* What `limit_helper fill` reported: bytes before the failure, and the
 * blocks had again after freeing eight. */
static void fill_result(unsigned long long *bytes, int *again) {
    char err[16];
    const char *at = strstr(r.out, "fill ");
    assert_non_null(at);
    assert_int_equal(sscanf(at, "fill %llu errno %15s again %d", bytes, err,
                            again),
                     3);
    assert_string_equal(err, "ENOMEM");
}

/* `limit_helper MODE` under 2 GiB: at least 1.5 GiB before ENOMEM, and
 * the eight blocks again after freeing eight. */
static void fill_under_2g(char *mode) {
    char *argv[] = {LIMIT_HELPER, mode, NULL};
    run(argv, LIMIT, NULL);
    assert_exit_0();
    unsigned long long bytes;
    int again;
    fill_result(&bytes, &again);
    if (bytes < 3 * GIB / 2)
        fail_msg("%s: only %llu MiB before malloc failed", mode, bytes / MIB);
    assert_int_equal(again, 8);
    assert_int_equal(count(r.err, NOTE_2G), 1);
}

static void test_fill_under_2g(void **state) {
    (void)state;
    fill_under_2g("fill");
}

/* A thread gets as much as the main thread: the thread heaps reserve as
 * they grow, within the one budget, instead of a small share each. */
static void test_thread_fill_under_2g(void **state) {
    (void)state;
    fill_under_2g("threadfill");
    /* what stopped it is named: the limit, not a full range */
    assert_int_equal(count(r.err, " met the address-space limit; its thread "
                                  "allocates from the shared system heap"),
                     1);
    assert_int_equal(count(r.err, " is full;"), 0);
}

static void test_64_threads(void **state) {
    (void)state;
    char *argv[] = {LIMIT_HELPER, "threads", "64", NULL};
    run(argv, LIMIT, NULL);
    assert_exit_0();
    assert_string_equal(r.out, "threads 64 started 64 ok 64\n");
    /* the limit's line exactly once, first, whatever the threads do */
    assert_int_equal(count(r.err, "RLIMIT_AS"), 1);
    assert_int_equal(strncmp(r.err, NOTE_2G, strlen(NOTE_2G)), 0);
}

static void test_note_in_stats(void **state) {
    (void)state;
    char *argv[] = {LIMIT_HELPER, "threads", "4", NULL};
    run(argv, LIMIT, "DETHEAP_STATS=1", NULL);
    assert_exit_0();
    assert_int_equal(count(r.err, NOTE_2G), 1);
    assert_int_equal(count(r.err, "\naddress space: " LAYOUT_2G), 1);
}

static void test_no_note_without_limit(void **state) {
    (void)state;
    char *argv[] = {LIMIT_HELPER, "threads", "4", NULL};
    run(argv, 0, "DETHEAP_STATS=1", NULL);
    assert_exit_0();
    assert_int_equal(count(r.err, "RLIMIT_AS"), 0);
}

/* Same limit, same addresses, and those a program has without a limit,
 * the threads' too (every range only reserves as it grows). */
static void test_same_addresses(void **state) {
    (void)state;
    char *argv[] = {LIMIT_HELPER, "addrs", NULL};
    static char first[sizeof r.out], free_run[sizeof r.out];
    run(argv, LIMIT, NULL);
    assert_exit_0();
    memcpy(first, r.out, sizeof first);
    assert_int_equal(strncmp(first, "addrs ", 6), 0);
    run(argv, LIMIT, NULL);
    assert_exit_0();
    assert_string_equal(r.out, first);
    run(argv, 0, NULL);
    assert_exit_0();
    memcpy(free_run, r.out, sizeof free_run);
    assert_string_equal(free_run, first);
}

/* Reserves below 4 GiB: the main heap and the thread heaps of their own
 * size, with and without a limit. */
static void test_small_reserves(void **state) {
    (void)state;
    char *fill[] = {LIMIT_HELPER, "fill", NULL};
    char *threads[] = {LIMIT_HELPER, "threads", "64", NULL};
    unsigned long long bytes;
    int again;
    for (int limited = 0; limited < 2; limited++) {
        unsigned long long as = limited ? LIMIT : 0;
        run(fill, as, "DETHEAP_RESERVE=256M", "DETHEAP_THREAD_RESERVE=64M",
            NULL);
        assert_exit_0();
        fill_result(&bytes, &again);
        /* 256 MiB less its state map, then the system heap's share */
        if (bytes < 200 * MIB || bytes > 400 * MIB)
            fail_msg("%llu MiB with a 256 MiB reserve", bytes / MIB);
        assert_int_equal(again, 8);
        assert_int_equal(count(r.err, "ignoring"), 0);
        run(threads, as, "DETHEAP_RESERVE=256M", "DETHEAP_THREAD_RESERVE=64M",
            NULL);
        assert_exit_0();
        assert_string_equal(r.out, "threads 64 started 64 ok 64\n");
        assert_int_equal(count(r.err, "ignoring"), 0);
    }
    /* under the limit they keep their sizes, taken as they grow */
    assert_int_equal(count(r.err,
                           "detheap: RLIMIT_AS of 2 GiB: process heap reserve "
                           "256 MiB, thread heaps 64 MiB each, all taken as "
                           "they grow, 1792 MiB in all\n"),
                     1);
}

/* ---- real programs ----------------------------------------------------- */

static const char *tool_path;

static const char *find_tool(const char *name) {
    static char path[256];
    const char *dirs[] = {"/usr/bin", "/bin", "/usr/local/bin"};
    struct stat st;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dirs[i], name);
        if (stat(path, &st) == 0 && (st.st_mode & S_IXUSR)) return path;
    }
    return NULL;
}

static void test_sort(void **state) {
    (void)state;
    char file[] = "/tmp/dh-limits-XXXXXX";
    int fd = mkstemp(file);
    assert_true(fd >= 0);
    for (int i = 0; i < 20000; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "%d\n", (i * 7919) % 20000);
        assert_int_equal(write(fd, line, (size_t)n), n);
    }
    close(fd);
    char *argv[] = {(char *)tool_path, "-n", file, NULL};
    run(argv, LIMIT, NULL);
    unlink(file);
    assert_exit_0();
    assert_int_equal(strncmp(r.out, "0\n1\n2\n3\n", 8), 0);
    assert_int_equal(count(r.out, "\n"), 20000);
    assert_int_equal(count(r.err, NOTE_2G), 1);
}

static void test_python(void **state) {
    (void)state;
    char *argv[] = {(char *)tool_path, "-c",
                    "import threading\n"
                    "out = []\n"
                    "ts = [threading.Thread(target=lambda i=i: out.append("
                    "sum(range(i * 1000)))) for i in range(8)]\n"
                    "[t.start() for t in ts]\n"
                    "[t.join() for t in ts]\n"
                    "print(len(out), sum(len(str(x)) for x in range(100000)))",
                    NULL};
    run(argv, LIMIT, NULL);
    assert_exit_0();
    assert_string_equal(r.out, "8 488890\n");
    assert_int_equal(count(r.err, NOTE_2G), 1);
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "tool") == 0) {
        tool_path = find_tool(argv[2]);
        if (tool_path == NULL) {
            printf("%s is not installed: skipped\n", argv[2]);
            return SKIP;
        }
        const struct CMUnitTest one[] = {
            strcmp(argv[2], "sort") == 0
                ? (struct CMUnitTest)cmocka_unit_test(test_sort)
                : (struct CMUnitTest)cmocka_unit_test(test_python),
        };
        return cmocka_run_group_tests(one, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fill_under_2g),
        cmocka_unit_test(test_thread_fill_under_2g),
        cmocka_unit_test(test_64_threads),
        cmocka_unit_test(test_note_in_stats),
        cmocka_unit_test(test_no_note_without_limit),
        cmocka_unit_test(test_same_addresses),
        cmocka_unit_test(test_small_reserves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
