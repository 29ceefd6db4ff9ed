/*
 * test_trace_static_end.c - shows a library gap: a program linked with the
 * static library, which calls dh_malloc & co but nothing of src/report.c,
 * gets a truncated trace.  The destructor that writes the last buffer and
 * the end record lives in report.c, and a static link only pulls that
 * object in when the program references one of its functions, so the
 * trace ends at the last full 16 KiB buffer (often in the middle of a
 * FRAMES record's payload).  Expected: an end record, as with the shared
 * library.  This file deliberately calls no function of report.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <detheap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "trace_read.h"

static int find_end(const dh_trace_rec_t *r, void *user) {
    if (r->op == DH_TR_END) *(int *)user = 1;
    return 0;
}

static void test_static_link_writes_end_record(void **state) {
    (void)state;
    char path[] = "/tmp/dh_trace_static.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("DETHEAP_TRACE", path, 1);
        for (int i = 0; i < 1000; i++) dh_free(dh_malloc((size_t)i));
        exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t data[1 << 20];
    size_t len = fread(data, 1, sizeof data, f);
    fclose(f);
    unlink(path);
    int have_end = 0;
    dh_trace_visitor_t v = {NULL, find_end, &have_end};
    char err[256];
    int rc = dh_trace_parse(data, len, &v, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_true(len > 64 + 2000 * 32); /* every call is in the file */
    assert_true(have_end);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_static_link_writes_end_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
