/*
 * test_snapshot.c - dh_heap_snapshot, dh_heap_rollback, dh_snapshot_free.
 *
 * (a) 10,000 rounds on one snapshot: each round makes the same calls
 *     (class and large blocks, a block past what was committed at the
 *     snapshot, frees of blocks from before it, writes, the root) and
 *     must get the same addresses, the same contents and the same
 *     statistics as the first round; then it rolls back, after which the
 *     heap's statistics, root and every block from before the snapshot
 *     must be as they were (all of it, and dh_heap_check, every 500
 *     rounds).
 * (b) The same on an image opened privately, whose pages are the file's.
 * (c) Scattered writes: one byte in every other page of 8 MiB (1,024 runs
 *     of written pages, far more than one scan of the kernel's returns), in
 *     three rounds with different pages; after each rollback every byte is
 *     as it was.
 * (d) The failure cases: EBUSY, EPERM, EINVAL; a snapshot freed after its
 *     heap was destroyed; a new snapshot after the last was freed; a heap
 *     reset between snapshot and rollback.
 * With the argument "write-image FILE" it writes a small image for the
 * tool's test (tool_image.sh) instead.  Built a second time as
 * test_snapshot_untracked, on the fault-injecting OS layer with write
 * tracking refused: the same results when every rollback copies the
 * whole heap back (500 rounds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "image_test.h"

#ifdef SNAP_UNTRACKED /* test_snapshot_untracked: no write tracking */
#include "os_fault.h"
#define ROUNDS 500u
#else
#define ROUNDS 10000u
#endif
#define BEFORE 600u /* blocks allocated before the snapshot */
#define PER_ROUND 60u

typedef struct world {
    dh_heap_t *h;
    unsigned char *before[BEFORE];
    size_t before_len[BEFORE];
    uint64_t before_stats;
    void *before_root;
} world_t;

static size_t size_of(unsigned i) {
    return i % 50 == 7 ? 70000 + i * 100 : 16 + (i * 131) % 2000;
}

static void fill_before(world_t *w) {
    for (unsigned i = 0; i < BEFORE; i++) {
        w->before_len[i] = size_of(i);
        w->before[i] = dh_heap_malloc(w->h, w->before_len[i]);
        assert_non_null(w->before[i]);
        memset(w->before[i], (int)(i % 251) + 1, w->before_len[i]);
    }
    for (unsigned i = 0; i < BEFORE; i += 5) { /* free blocks to reuse */
        dh_free(w->before[i]);
        w->before[i] = NULL;
    }
    dh_heap_set_root(w->h, w->before[1]);
    w->before_root = w->before[1];
    w->before_stats = img_stats_hash(w->h);
}

/* Every block from before the snapshot holds what it held. */
static bool before_intact(const world_t *w, unsigned step) {
    for (unsigned i = 0; i < BEFORE; i += step) {
        const unsigned char *p = w->before[i];
        if (p == NULL) continue;
        for (size_t k = 0; k < w->before_len[i]; k++)
            if (p[k] != (unsigned char)(i % 251 + 1)) return false;
    }
    return true;
}

/* One round of calls: a hash of what they returned and what the blocks
 * held when handed out. */
static uint64_t round_of_calls(world_t *w) {
    uint64_t x = 0;
    void *got[PER_ROUND];
    for (unsigned i = 0; i < PER_ROUND; i++) {
        size_t n = size_of(i * 7 + 3);
        unsigned char *p = dh_heap_malloc(w->h, n);
        assert_non_null(p);
        x = img_mix(x, (uintptr_t)p);
        for (size_t k = 0; k < n; k += 61) x = img_mix(x, p[k]);
        memset(p, 0xee, n);
        got[i] = p;
        if (i % 3 == 0 && w->before[(i * 11) % BEFORE] != NULL)
            dh_free(w->before[(i * 11) % BEFORE]);
    }
    /* past what was committed at the snapshot */
    unsigned char *big = dh_heap_malloc(w->h, 3u << 20);
    assert_non_null(big);
    x = img_mix(x, (uintptr_t)big);
    x = img_mix(x, big[0] | big[(3u << 20) - 1]);
    big[0] = big[(3u << 20) - 1] = 1;
    for (unsigned i = 0; i < PER_ROUND; i += 2) dh_free(got[i]);
    dh_heap_set_root(w->h, got[1]);
    return img_mix(x, img_stats_hash(w->h));
}

static void run_rounds(world_t *w, unsigned rounds) {
    dh_snapshot_t *s = dh_heap_snapshot(w->h);
    assert_non_null(s);
    uint64_t first = 0;
    for (unsigned r = 0; r < rounds; r++) {
        uint64_t x = round_of_calls(w);
        if (r == 0) first = x;
        if (x != first) fail_msg("round %u differs from round 0", r);
        assert_true(dh_heap_rollback(w->h, s));
        assert_ptr_equal(dh_heap_root(w->h), w->before_root);
        assert_true(img_stats_hash(w->h) == w->before_stats);
        bool full = r % 500 == 0 || r == rounds - 1;
        assert_true(before_intact(w, full ? 1 : 97));
        if (full) assert_int_equal(dh_heap_check(w->h), DH_CHECK_OK);
    }
    dh_snapshot_free(s);
}

static void test_rollback_rounds(void **state) {
    (void)state;
    world_t *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->h = img_heap_at(IMG_BASE_SNAP);
    fill_before(w);
    run_rounds(w, ROUNDS);
    /* after the snapshot is gone, the heap goes on as usual */
    assert_non_null(dh_heap_malloc(w->h, 100));
    assert_int_equal(dh_heap_check(w->h), DH_CHECK_OK);
    dh_heap_destroy(w->h);
    free(w);
}

static void test_rollback_opened_image(void **state) {
    (void)state;
    char path[512];
    img_path(path, sizeof path, "snap.img");
    world_t *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->h = img_heap_at(IMG_BASE_SNAP);
    fill_before(w);
    assert_int_equal(dh_heap_save(w->h, path), 0);
    dh_heap_destroy(w->h);
    w->h = dh_heap_open(path, DH_OPEN_PRIVATE);
    assert_non_null(w->h);
    assert_true(img_stats_hash(w->h) == w->before_stats);
    run_rounds(w, 200);
    dh_heap_destroy(w->h);
    /* the file was never written */
    w->h = dh_heap_open(path, DH_OPEN_PRIVATE | DH_OPEN_VERIFY);
    assert_non_null(w->h);
    assert_true(before_intact(w, 1));
    dh_heap_destroy(w->h);
    free(w);
    unlink(path);
}

static void test_rollback_scattered(void **state) {
    (void)state;
    enum { PAGES = 2048, PAGE = 4096 };
    dh_heap_t *h = dh_heap_create(NULL);
    assert_non_null(h);
    unsigned char *d = dh_heap_malloc(h, (size_t)PAGES * PAGE);
    assert_non_null(d);
    for (size_t i = 0; i < (size_t)PAGES * PAGE; i++)
        d[i] = (unsigned char)(i * 7 + i / PAGE);
    dh_snapshot_t *s = dh_heap_snapshot(h);
    assert_non_null(s);
    for (unsigned round = 0; round < 3; round++) {
        /* pages 0, 2, 4, ... then 1, 3, 5, ... then every third */
        unsigned from = round == 1, step = round == 2 ? 3 : 2;
        for (size_t pg = from; pg < PAGES; pg += step)
            d[pg * PAGE + (pg * 13) % PAGE] ^= 0x5a;
        assert_true(dh_heap_rollback(h, s));
        for (size_t i = 0; i < (size_t)PAGES * PAGE; i++)
            if (d[i] != (unsigned char)(i * 7 + i / PAGE))
                fail_msg("round %u: byte %zu not rolled back", round, i);
    }
    dh_snapshot_free(s);
    dh_heap_destroy(h);
}

static void test_snapshot_errors(void **state) {
    (void)state;
    errno = 0;
    assert_null(dh_heap_snapshot(NULL));
    assert_int_equal(errno, EINVAL);
    void *p = dh_malloc(16);
    assert_non_null(p);
    errno = 0;
    assert_null(dh_heap_snapshot(dh_heap_of(p)));
    assert_int_equal(errno, EPERM);
    dh_free(p);

    dh_heap_t *h = dh_heap_create(NULL); /* any private heap */
    dh_heap_t *g = dh_heap_create(NULL);
    assert_non_null(h);
    assert_non_null(g);
    char *a = dh_heap_malloc(h, 40);
    strcpy(a, "kept");
    dh_snapshot_t *s = dh_heap_snapshot(h);
    assert_non_null(s);
    errno = 0;
    assert_null(dh_heap_snapshot(h));
    assert_int_equal(errno, EBUSY);
    errno = 0;
    assert_false(dh_heap_rollback(g, s));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_false(dh_heap_rollback(h, NULL));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_false(dh_heap_rollback(NULL, s));
    assert_int_equal(errno, EINVAL);
    /* a reset in between is rolled back too */
    assert_true(dh_heap_reset(h));
    assert_true(dh_heap_rollback(h, s));
    assert_string_equal(a, "kept");
    assert_int_equal(test_stats(h).live_count, 1);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    /* freed: the heap may take another */
    dh_snapshot_free(s);
    s = dh_heap_snapshot(h);
    assert_non_null(s);
    /* its heap destroyed first: the snapshot is freed all the same, and
     * rolls back nothing */
    dh_heap_destroy(h);
    h = dh_heap_create(NULL);
    assert_non_null(h);
    errno = 0;
    assert_false(dh_heap_rollback(h, s));
    assert_int_equal(errno, EINVAL);
    dh_snapshot_free(s);
    dh_snapshot_free(NULL);
    s = dh_heap_snapshot(h);
    assert_non_null(s);
    dh_snapshot_free(s);
    dh_heap_destroy(h);
    dh_heap_destroy(g);
}

/* The tool test's image: a few blocks and a root. */
static int write_image(const char *path) {
    dh_heap_t *h = img_heap_at(IMG_BASE_OTHER);
    for (int i = 0; i < 100; i++) {
        char *p = dh_heap_malloc(h, (size_t)i * 50 + 1);
        if (p == NULL) return 1;
        memset(p, 'x', (size_t)i * 50 + 1);
        if (i == 10) dh_heap_set_root(h, p);
    }
    int rc = dh_heap_save(h, path);
    dh_heap_destroy(h);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "write-image") == 0)
        return write_image(argv[2]);
#ifdef SNAP_UNTRACKED
    dh_fault_refuse_wp(true); /* every rollback copies everything back */
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rollback_rounds),
        cmocka_unit_test(test_rollback_opened_image),
        cmocka_unit_test(test_rollback_scattered),
        cmocka_unit_test(test_snapshot_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(img_dir());
    return rc;
}
