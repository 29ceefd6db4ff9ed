/*
 * test_fault.c - out-of-memory paths, through the fault-injecting OS layer
 * (linked as detheap_fault; controlled with dh_fault_set from os_fault.h).
 *
 * The main test replays one fixed workload that needs many commits, once
 * for every k = 0, 1, 2, ...: the k-th commit after creating the heap fails.
 * The allocation that needed it must return NULL with errno ENOMEM and
 * leave the heap as it was (dh_heap_check OK, stats equal but for
 * failed_allocs, and committed_bytes, which may count state-map pages
 * committed just before the failing data commit); once injection is off the same allocation must succeed
 * and the workload carries on to the end with every block intact and every
 * block at the same offset as in the fault-free run.  The
 * loop stops at the first k the workload never reaches.
 *
 * Also: a failed reserve or header commit makes dh_heap_create fail with
 * ENOMEM, every allocator fails cleanly while all commits fail, and a small
 * heap that runs out of its reserved range fails with ENOMEM and keeps
 * working once blocks are freed.
 */
#include "robust.h"
#include "os_fault.h"

#include <errno.h>

static void injection_off(void) { dh_fault_set(-1, false, -1); }

/* ---- the workload ---------------------------------------------------------- */

enum { OPS = 1500, MAX_LIVE = 400 };

typedef struct {
    unsigned char *p;
    size_t n;
    unsigned char tag;
} blk_t;

typedef struct {
    dh_heap_t *h;
    test_rng_t rng;
    blk_t live[MAX_LIVE];
    size_t nlive;
} work_t;

/* What one run of the workload saw. */
typedef struct {
    unsigned long commits;   /* commits attempted during the run */
    int failures;            /* allocations that returned NULL */
    int committed_changed;   /* ... of which changed committed_bytes */
} result_t;

/* The offset from the heap base of every block the fault-free run got: a
 * failed allocation must not change where later blocks go. */
static uintptr_t clean_offset[OPS];

static size_t work_size(test_rng_t *r) {
    uint64_t k = test_rng_next(r) % 100;
    if (k < 60) return (size_t)test_rng_range(r, 1, 2048);
    if (k < 85) return (size_t)test_rng_range(r, 2049, 65536);
    return (size_t)test_rng_range(r, 65537, 1 << 20);
}

static void verify(const blk_t *b) {
    for (size_t i = 0; i < b->n; i += 61)
        if (b->p[i] != b->tag) fail_msg("block %p byte %zu changed",
                                        (void *)b->p, i);
}

/* One allocating operation; returns the block or NULL. */
typedef enum { OP_MALLOC, OP_CALLOC, OP_ALIGNED, OP_REALLOC } op_t;

static void *do_op(work_t *w, op_t op, size_t n, size_t align, blk_t *old) {
    switch (op) {
    case OP_MALLOC: return dh_heap_malloc(w->h, n);
    case OP_CALLOC: return dh_heap_calloc(w->h, 1, n);
    case OP_ALIGNED: return dh_heap_aligned_alloc(w->h, align, n);
    case OP_REALLOC: return dh_heap_realloc(w->h, old->p, n);
    }
    return NULL;
}

/* Run the workload with the k-th commit failing (k < 0: none). */
static result_t run_workload(long k) {
    static work_t w;
    result_t res = {0, 0, 0};
    memset(&w, 0, sizeof w);
    w.rng.s = 42;
    injection_off();
    w.h = dh_heap_create(NULL);
    assert_non_null(w.h);
    unsigned long start = dh_fault_commits_seen();
    dh_fault_set(k, false, -1);
    for (int i = 0; i < OPS; i++) {
        uint64_t r = test_rng_next(&w.rng) % 100;
        if (w.nlive > 0 && (r < 20 || w.nlive == MAX_LIVE)) {
            size_t j = (size_t)(test_rng_next(&w.rng) % w.nlive);
            verify(&w.live[j]);
            dh_heap_free(w.h, w.live[j].p);
            w.live[j] = w.live[--w.nlive];
            continue;
        }
        op_t op = r < 60 ? OP_MALLOC : r < 70 ? OP_CALLOC
                : r < 80 ? OP_ALIGNED : OP_REALLOC;
        if (op == OP_REALLOC && w.nlive == 0) op = OP_MALLOC;
        size_t n = work_size(&w.rng);
        size_t align = (size_t)1 << test_rng_range(&w.rng, 4, 16);
        size_t j = op == OP_REALLOC ? (size_t)(test_rng_next(&w.rng) % w.nlive)
                                    : w.nlive;
        blk_t *old = op == OP_REALLOC ? &w.live[j] : NULL;
        if (op == OP_REALLOC) n += old->n; /* growing: may need commits */

        dh_stats_t before = test_stats(w.h);
        errno = 0;
        unsigned char *p = do_op(&w, op, n, align, old);
        if (p == NULL) {
            assert_int_equal(errno, ENOMEM);
            assert_true(k >= 0 && res.failures == 0);
            assert_true(dh_fault_commits_seen() - start > (unsigned long)k);
            res.failures++;
            assert_int_equal(dh_heap_check(w.h), DH_CHECK_OK);
            dh_stats_t after = test_stats(w.h);
            assert_int_equal(after.failed_allocs, before.failed_allocs + 1);
            /* The state map may have been committed before the data
             * commit failed: committed_bytes then grows by that much. */
            if (after.committed_bytes != before.committed_bytes) {
                /* At most the state map (1 byte per 16) of what the
                 * request could need, rounded to a 1 MiB commit step. */
                uint64_t state_max = (n + align + (2u << 20)) / 16 + 4096;
                if (after.committed_bytes < before.committed_bytes ||
                    after.committed_bytes - before.committed_bytes >
                        state_max)
                    fail_msg("k=%ld op %d: committed_bytes %llu -> %llu", k,
                             i, (unsigned long long)before.committed_bytes,
                             (unsigned long long)after.committed_bytes);
                res.committed_changed++;
            }
            after.committed_bytes = before.committed_bytes;
            assert_stats_same(before, after, false, true);
            if (old) verify(old); /* realloc left it untouched */
            injection_off();
            errno = 0;
            p = do_op(&w, op, n, align, old);
            assert_non_null(p);
        }
        if (op == OP_ALIGNED) assert_int_equal((uintptr_t)p % align, 0);
        uintptr_t off = (uintptr_t)p - dh_heap_base(w.h);
        if (k < 0)
            clean_offset[i] = off;
        else if (off != clean_offset[i])
            fail_msg("k=%ld op %d: offset %#lx, fault-free run %#lx", k, i,
                     (unsigned long)off, (unsigned long)clean_offset[i]);
        if (op == OP_REALLOC) {
            size_t keep = old->n;
            for (size_t b = 0; b < keep; b += 61)
                assert_int_equal(p[b], old->tag);
        }
        if (op == OP_CALLOC)
            for (size_t b = 0; b < n; b += 61) assert_int_equal(p[b], 0);
        if (j == w.nlive) w.nlive++;
        w.live[j] = (blk_t){p, n, (unsigned char)(i % 255 + 1)};
        memset(p, w.live[j].tag, n);
    }
    res.commits = dh_fault_commits_seen() - start;
    injection_off();
    assert_int_equal(dh_heap_check(w.h), DH_CHECK_OK);
    dh_stats_t s = test_stats(w.h);
    assert_int_equal(s.live_count, w.nlive);
    for (size_t j = 0; j < w.nlive; j++) verify(&w.live[j]);
    dh_heap_destroy(w.h);
    return res;
}

static void test_every_commit_fails_once(void **state) {
    (void)state;
    result_t clean = run_workload(-1);
    printf("workload: %lu commits without faults\n", clean.commits);
    assert_true(clean.commits >= 40);
    long k;
    int failed_runs = 0, absorbed = 0, committed_changed = 0;
    for (k = 0;; k++) {
        result_t r = run_workload(k);
        /* The same calls commit the same way until the fault. */
        if ((unsigned long)k >= r.commits) {
            assert_int_equal(r.failures, 0);
            break;
        }
        if (r.failures)
            failed_runs++;
        else
            absorbed++; /* e.g. realloc fell back to a move that worked */
        committed_changed += r.committed_changed;
    }
    printf("k = 0..%ld: %d allocations failed cleanly, %d faults absorbed, "
           "%d failures left the state map committed (committed_bytes grew)"
           "\n", k - 1, failed_runs, absorbed, committed_changed);
    assert_int_equal((unsigned long)k, clean.commits);
    assert_true(failed_runs >= (int)clean.commits / 2);
}

/* ---- creation ------------------------------------------------------------- */

static void test_create_failures(void **state) {
    (void)state;
    dh_fault_set(-1, false, 0); /* the reserve fails */
    errno = 0;
    assert_null(dh_heap_create(NULL));
    assert_int_equal(errno, ENOMEM);

    dh_fault_set(0, false, -1); /* the header commit fails */
    errno = 0;
    assert_null(dh_heap_create(NULL));
    assert_int_equal(errno, ENOMEM);

    injection_off();
    dh_heap_t *h = dh_heap_create(NULL);
    assert_non_null(h);
    assert_non_null(dh_heap_malloc(h, 10));
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_heap_destroy(h);
}

static void test_all_commits_fail(void **state) {
    (void)state;
    injection_off();
    dh_heap_t *h = dh_heap_create(NULL);
    assert_non_null(h);
    dh_fault_set(-1, true, -1);
    const size_t sizes[] = {0, 16, 100, 4096, 65536, 65537, 1 << 20};
    int fails = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        errno = 0;
        assert_null(dh_heap_malloc(h, n));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(dh_heap_calloc(h, 1, n));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(dh_heap_aligned_alloc(h, 8192, n));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(dh_heap_realloc(h, NULL, n));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_true(dh_alloc(h, n).id == 0);
        assert_int_equal(errno, ENOMEM);
        fails += 5;
    }
    dh_stats_t s = test_stats(h);
    assert_int_equal(s.failed_allocs, fails);
    assert_int_equal(s.alloc_count, 0);
    assert_int_equal(s.storage_bytes, 0);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    injection_off();
    void *p = dh_heap_malloc(h, 100);
    assert_non_null(p);
    assert_non_null(dh_heap_malloc(h, 1 << 20));
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_heap_destroy(h);
}

/* ---- running out of the reserved range ------------------------------------- */

static dh_heap_t *small_heap(void) {
    injection_off();
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.reserve = (uint64_t)1 << 20;
    dh_heap_t *h = dh_heap_create(&cfg);
    assert_non_null(h);
    return h;
}

static void test_out_of_range_small_blocks(void **state) {
    (void)state;
    dh_heap_t *h = small_heap();
    enum { MAX = 1 << 16 };
    static void *ptrs[MAX];
    size_t count = 0;
    for (;;) {
        errno = 0;
        void *p = dh_heap_malloc(h, 16);
        if (p == NULL) break;
        assert_true(count < MAX);
        ptrs[count++] = p;
    }
    assert_int_equal(errno, ENOMEM);
    dh_stats_t s = test_stats(h);
    printf("1 MiB heap: %zu 16-byte blocks, storage %llu KiB\n", count,
           (unsigned long long)(s.storage_bytes >> 10));
    /* All of the data part was carved into 16-byte blocks. */
    assert_int_equal(count * 16, s.storage_bytes);
    assert_true(s.storage_bytes >= (768u << 10) &&
                s.storage_bytes < s.reserved_bytes);
    assert_int_equal(s.failed_allocs, 1);
    errno = 0;
    assert_null(dh_heap_malloc(h, 32)); /* needs a span: none left */
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(dh_heap_malloc(h, 100000));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(dh_heap_realloc(h, ptrs[0], 100));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(dh_usable_size(ptrs[0]), 16);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    assert_int_equal(test_stats(h).failed_allocs, 4);

    /* Freed blocks are reused, newest first. */
    for (size_t i = 0; i < count; i += 2) dh_heap_free(h, ptrs[i]);
    size_t last = (count - 1) & ~(size_t)1;
    assert_ptr_equal(dh_heap_malloc(h, 10), ptrs[last]);
    assert_ptr_equal(dh_heap_malloc(h, 0), ptrs[last - 2]);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_heap_destroy(h);
}

static void test_out_of_range_large_blocks(void **state) {
    (void)state;
    dh_heap_t *h = small_heap();
    unsigned char *blocks[32];
    size_t count = 0;
    for (;;) {
        errno = 0;
        unsigned char *p = dh_heap_malloc(h, 100000);
        if (p == NULL) break;
        assert_true(count < 32);
        memset(p, (int)count + 1, 100000);
        blocks[count++] = p;
    }
    assert_int_equal(errno, ENOMEM);
    assert_true(count >= 7);
    size_t mid = count / 2;
    errno = 0;
    assert_null(dh_heap_realloc(h, blocks[mid], 300000));
    assert_int_equal(errno, ENOMEM);
    for (size_t i = 0; i < 100000; i += 97)
        assert_int_equal(blocks[mid][i], mid + 1);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);

    dh_heap_free(h, blocks[mid]);
    unsigned char *again = dh_heap_malloc(h, 100000);
    assert_ptr_equal(again, blocks[mid]);
    /* Two neighbours freed make room for one block of twice the size. */
    errno = 0;
    assert_null(dh_heap_malloc(h, 200000));
    assert_int_equal(errno, ENOMEM);
    dh_heap_free(h, blocks[1]);
    dh_heap_free(h, blocks[2]);
    assert_ptr_equal(dh_heap_malloc(h, 200000), blocks[1]);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_heap_destroy(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_failures),
        cmocka_unit_test(test_all_commits_fail),
        cmocka_unit_test(test_out_of_range_small_blocks),
        cmocka_unit_test(test_out_of_range_large_blocks),
        cmocka_unit_test(test_every_commit_fails_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
