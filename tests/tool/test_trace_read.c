/*
 * test_trace_read.c - the trace reader (tools/trace_read.c) on valid,
 * truncated, corrupt and randomly mutated traces.  The real trace is
 * written by the library itself: a child process turns tracing on (with a
 * stack hook, so FRAMES and MAPS records are present), makes a few
 * thousand calls and exits.  Every mutation must either parse or fail with
 * a message that names a byte offset - never crash or read out of bounds
 * (the ASan build checks the latter).
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

typedef struct {
    size_t calls, frames, maps, ends, threads;
    uint64_t last_call_result;
} counts_t;

static int count(const dh_trace_rec_t *r, void *user) {
    counts_t *c = user;
    if (dh_trace_is_call(r->op)) {
        c->calls++;
        c->last_call_result = r->c;
    }
    c->frames += r->op == DH_TR_FRAMES;
    c->maps += r->op == DH_TR_MAPS;
    c->ends += r->op == DH_TR_END;
    c->threads += r->op == DH_TR_THREAD;
    return 0;
}

/* ---- a hand-made trace --------------------------------------------------- */

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* header + malloc + frames(3 frames: 1 payload record) + free */
static size_t make_small(uint8_t *buf) {
    memset(buf, 0, 64 + 4 * 32);
    memcpy(buf, "DHTRACE1", 8);
    buf[8] = 1;
    buf[12] = 32;
    put64(buf + 16, 1234);
    buf[48] = 1; /* stacks */
    uint8_t *r = buf + 64;
    r[0] = DH_TR_MALLOC;
    put64(r + 8, 48);
    put64(r + 24, 0x200000001000);
    r += 32;
    r[0] = DH_TR_FRAMES;
    r[2] = 3;
    r += 32;
    put64(r, 0x401000);
    put64(r + 8, 0x401100);
    put64(r + 16, 0x401200);
    r += 32;
    r[0] = DH_TR_FREE;
    put64(r + 8, 48);
    put64(r + 16, 0x200000001000);
    return 64 + 4 * 32;
}

static void expect_error(const uint8_t *buf, size_t len, const char *msg) {
    char err[256];
    assert_int_equal(dh_trace_parse(buf, len, NULL, err, sizeof err), -1);
    if (strcmp(err, msg) != 0) fprintf(stderr, "got: %s\n", err);
    assert_string_equal(err, msg);
}

static void test_valid_small(void **state) {
    (void)state;
    uint8_t buf[256];
    size_t len = make_small(buf);
    counts_t c = {0};
    dh_trace_visitor_t v = {NULL, count, &c};
    char err[256];
    assert_int_equal(dh_trace_parse(buf, len, &v, err, sizeof err), 0);
    assert_int_equal(c.calls, 2);
    assert_int_equal(c.frames, 1);
}

static void test_errors_name_offsets(void **state) {
    (void)state;
    uint8_t buf[256];
    size_t len = make_small(buf);
    expect_error(buf, 10, "offset 10: truncated header (10 of 64 bytes); "
                          "not a complete detheap trace");
    expect_error(buf, len - 5, "offset 160: truncated record (27 of 32 "
                               "bytes)");
    /* the frames' payload cut off */
    expect_error(buf, 64 + 2 * 32, "offset 96: frames record announces 3 "
                                   "frames but the file ends at offset 128");
    buf[64 + 3 * 32] = 77;
    expect_error(buf, len, "offset 160: record of unknown op 77");
    make_small(buf);
    buf[0] = 'X';
    expect_error(buf, len, "offset 0: not a detheap trace (bad magic)");
    make_small(buf);
    buf[64 + 5] = 0x80; /* slot 32768: one past the library's last */
    expect_error(buf, len, "offset 68: malloc record of slot 32768 (max 32767)");
    make_small(buf);
    buf[64 + 32 + 2] = 0;
    expect_error(buf, len, "offset 98: frames record with 0 frames (1..256)");
}

static void test_maps_length_checked(void **state) {
    (void)state;
    uint8_t buf[64 + 4 * 32];
    make_small(buf);
    uint8_t *r = buf + 64;
    memset(r, 0, 3 * 32);
    r[0] = DH_TR_MAPS;
    put64(r + 8, 40); /* 40 bytes of text: 2 records */
    memset(r + 32, 'x', 64);
    size_t len = 64 + 3 * 32;
    assert_int_equal(dh_trace_parse(buf, len, NULL, NULL, 0), 0);
    put64(r + 8, UINT64_MAX); /* must not wrap around */
    expect_error(buf, len, "offset 72: maps record announces "
                                  "18446744073709551615 bytes of text but "
                                  "only 64 follow");
}

/* ---- a real trace, written by the library ------------------------------- */

static int fake_stack(void **frames, int max) {
    int n = max < 5 ? max : 5;
    for (int i = 0; i < n; i++) frames[i] = (void *)(uintptr_t)(0x1000 * i + 1);
    return n;
}

static uint8_t *real_trace(size_t *len) {
    char path[] = "/tmp/dh_trace_test.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("DETHEAP_TRACE", path, 1);
        setenv("DETHEAP_STACKS", "1", 1);
        dh_set_stack_hook(fake_stack);
        void *keep[64] = {0};
        for (unsigned i = 0; i < 3000; i++) {
            unsigned k = (i * 2654435761u) % 64;
            if (keep[k]) {
                if (i % 3 == 0) keep[k] = dh_realloc(keep[k], i % 5000 + 1);
                else { dh_free(keep[k]); keep[k] = NULL; }
            } else {
                keep[k] = i % 7 ? dh_malloc(i % 3000)
                                : i % 2 ? dh_calloc(3, i % 100)
                                        : dh_aligned_alloc(64, i % 200 + 64);
            }
        }
        /* Referencing report.c links in its destructor, which writes the
         * end record and the last buffer (see test_trace_static_end). */
        if (dh_process_fingerprint() == 0) _exit(3);
        exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    uint8_t *data = malloc(*len);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, *len, f), *len);
    fclose(f);
    if (getenv("DH_TEST_KEEP_TRACE") == NULL) unlink(path);
    else fprintf(stderr, "trace kept in %s\n", path);
    return data;
}

static void test_real_trace(void **state) {
    (void)state;
    size_t len;
    uint8_t *data = real_trace(&len);
    counts_t c = {0};
    dh_trace_visitor_t v = {NULL, count, &c};
    char err[256] = "";
    int rc = dh_trace_parse(data, len, &v, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    if (c.calls < 3000) fprintf(stderr, "calls %zu\n", c.calls);
    assert_true(c.calls >= 3000);
    assert_int_equal(c.frames, c.calls); /* a stack for every call */
    assert_int_equal(c.maps, 1);
    assert_int_equal(c.ends, 1);
    free(data);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* 600 mutants: truncations, byte flips, op and count overwrites. */
static void test_mutants_never_crash(void **state) {
    (void)state;
    size_t len;
    uint8_t *orig = real_trace(&len);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    int rejected = 0;
    for (int i = 0; i < 600; i++) {
        memcpy(buf, orig, len);
        size_t n = len;
        switch (i % 4) {
        case 0: n = (size_t)(next() % len); break;
        case 1:
            for (int k = 0; k < 1 + i % 8; k++)
                buf[next() % len] ^= (uint8_t)(1u << (next() % 8));
            break;
        case 2: /* a record's op, flags or extra field */
            buf[64 + (next() % ((len - 64) / 32)) * 32 + next() % 4] =
                (uint8_t)next();
            break;
        default: /* a count field of a record: a, or extra */
            put64(buf + 64 + (next() % ((len - 64) / 32)) * 32 + 8, next());
            buf[64 + (next() % ((len - 64) / 32)) * 32 + 2] = (uint8_t)next();
        }
        /* parse exactly n bytes from a buffer of that size, so ASan sees
         * any read past the end */
        uint8_t *exact = malloc(n ? n : 1);
        assert_non_null(exact);
        memcpy(exact, buf, n);
        counts_t c = {0};
        dh_trace_visitor_t v = {NULL, count, &c};
        char err[256];
        int rc = dh_trace_parse(exact, n, &v, err, sizeof err);
        assert_true(rc == 0 || rc == -1);
        if (rc == -1) {
            rejected++;
            assert_memory_equal(err, "offset ", 7);
        }
        free(exact);
    }
    /* truncations alone reject most mutants; a reader that accepts
     * everything is broken */
    assert_true(rejected > 150);
    free(buf);
    free(orig);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_small),
        cmocka_unit_test(test_errors_name_offsets),
        cmocka_unit_test(test_maps_length_checked),
        cmocka_unit_test(test_real_trace),
        cmocka_unit_test(test_mutants_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
