/*
 * test_api_errors.c - every documented failure case of the public API
 * (include/detheap.h): bad configurations, overflow, bad alignments,
 * invalid pointers handed to realloc/usable_size/free, short stats buffers,
 * and the four error policies of the pointer API, including the exact line
 * a misuse report carries and, for ABORT, that the process really dies of
 * SIGABRT after writing it.  A rejected call must leave the heap unchanged:
 * dh_heap_check stays OK and the stats differ only in the misuse counters.
 */
#ifndef _GNU_SOURCE /* MAP_FIXED_NOREPLACE */
#define _GNU_SOURCE
#endif
#include "robust.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

static dh_heap_t *make_heap(dh_on_error_t policy, dh_error_fn cb, void *user,
                            uint64_t reserve) {
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.on_error = policy;
    cfg.error_callback = cb;
    cfg.error_user = user;
    cfg.reserve = reserve;
    dh_heap_t *h = dh_heap_create(&cfg);
    assert_non_null(h);
    return h;
}

static void expect_create_fails(const dh_config_t *cfg, int err) {
    errno = 0;
    dh_heap_t *h = dh_heap_create(cfg);
    assert_null(h);
    assert_int_equal(errno, err);
}

/* ---- dh_heap_create ------------------------------------------------------ */

static void test_create_invalid(void **state) {
    (void)state;
    dh_config_t cfg;

    dh_config_init(&cfg);
    cfg.struct_size = sizeof cfg - 1;
    expect_create_fails(&cfg, EINVAL);
    cfg.struct_size = 0;
    expect_create_fails(&cfg, EINVAL);

    dh_config_init(&cfg);
    cfg.reserve = ((uint64_t)1 << 20) - 1; /* below the 1 MiB minimum */
    expect_create_fails(&cfg, EINVAL);
    cfg.reserve = 1;
    expect_create_fails(&cfg, EINVAL);
    cfg.reserve = (uint64_t)1 << 47; /* more than the address space */
    expect_create_fails(&cfg, EINVAL);
    cfg.reserve = UINT64_MAX;
    expect_create_fails(&cfg, EINVAL);

    dh_config_init(&cfg);
    cfg.base = (uintptr_t)DH_HEAP_ALIGN + 4096;
    expect_create_fails(&cfg, EINVAL);
    cfg.base = (uintptr_t)DH_HEAP_ALIGN / 2;
    expect_create_fails(&cfg, EINVAL);
    cfg.base = 1;
    expect_create_fails(&cfg, EINVAL);

    dh_config_init(&cfg);
    cfg.on_error = (dh_on_error_t)(DH_ON_ERROR_CALLBACK + 1);
    expect_create_fails(&cfg, EINVAL);
    cfg.on_error = (dh_on_error_t)-1;
    expect_create_fails(&cfg, EINVAL);

    dh_config_init(&cfg);
    cfg.on_error = DH_ON_ERROR_CALLBACK; /* and no callback */
    expect_create_fails(&cfg, EINVAL);

    /* The smallest valid reserve and the defaults do work. */
    dh_config_init(&cfg);
    cfg.reserve = (uint64_t)1 << 20;
    dh_heap_t *h = dh_heap_create(&cfg);
    assert_non_null(h);
    dh_heap_destroy(h);
    h = dh_heap_create(NULL);
    assert_non_null(h);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_heap_destroy(h);
    dh_heap_destroy(NULL); /* documented no-op */
}

static void test_create_fixed_base(void **state) {
    (void)state;
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.reserve = (uint64_t)1 << 20;
    dh_heap_t *first = dh_heap_create(&cfg);
    assert_non_null(first);
    uintptr_t base = dh_heap_base(first);
    assert_int_equal(base % DH_HEAP_ALIGN, 0);

    /* The range is taken by a heap. */
    cfg.base = base;
    expect_create_fails(&cfg, EEXIST);
    dh_heap_destroy(first);

    /* Free again: a heap at that exact base can be made. */
    dh_heap_t *again = dh_heap_create(&cfg);
    assert_non_null(again);
    assert_true(dh_heap_base(again) == base);
    assert_ptr_equal(dh_heap_of((void *)(base + 4096)), again);
    dh_heap_destroy(again);

    /* One page mapped by someone else inside the range is enough to fail. */
    void *page = mmap((void *)(base + (512u << 10)), 4096, PROT_READ,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    assert_true(page == (void *)(base + (512u << 10)));
    expect_create_fails(&cfg, EEXIST);
    munmap(page, 4096);
}

/* ---- allocation failures ------------------------------------------------- */

static void test_calloc_overflow(void **state) {
    (void)state;
    dh_heap_t *h = make_heap(DH_ON_ERROR_IGNORE, NULL, NULL, 0);
    dh_stats_t before = test_stats(h);
    errno = 0;
    assert_null(dh_heap_calloc(h, SIZE_MAX / 2 + 1, 2));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(dh_heap_calloc(h, SIZE_MAX, SIZE_MAX));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(dh_heap_calloc(h, (size_t)1 << 32, (size_t)1 << 32));
    assert_int_equal(errno, ENOMEM);
    dh_stats_t after = test_stats(h);
    assert_int_equal(after.failed_allocs, before.failed_allocs + 3);
    assert_stats_same(before, after, false, true);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);

    /* count * size = 0 is a valid minimum block. */
    void *p = dh_heap_calloc(h, 0, 16);
    assert_non_null(p);
    assert_true(dh_usable_size(p) >= 16);

    /* Too large to ever fit is ENOMEM too, for every allocator. */
    errno = 0;
    assert_null(dh_heap_malloc(h, SIZE_MAX));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(dh_heap_aligned_alloc(h, 4096, SIZE_MAX - 4096));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(dh_heap_realloc(h, p, SIZE_MAX));
    assert_int_equal(errno, ENOMEM);
    assert_true(dh_usable_size(p) >= 16); /* untouched */
    errno = 0;
    dh_handle_t hd = dh_alloc(h, SIZE_MAX);
    assert_true(hd.id == DH_HANDLE_NULL.id);
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_heap_destroy(h);
}

static void test_aligned_alloc_bad_alignment(void **state) {
    (void)state;
    dh_heap_t *h = make_heap(DH_ON_ERROR_IGNORE, NULL, NULL, 0);
    dh_stats_t before = test_stats(h);
    const size_t bad[] = {0, 3, 24, 48, 4097, (size_t)3 << 20};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        assert_null(dh_heap_aligned_alloc(h, bad[i], 64));
        assert_int_equal(errno, EINVAL);
    }
    assert_stats_same(before, test_stats(h), false, false);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_heap_destroy(h);
}

static void test_aligned_alloc_honoured(void **state) {
    (void)state;
    dh_heap_t *h = make_heap(DH_ON_ERROR_IGNORE, NULL, NULL, 0);
    enum { MAX_LIVE = 512 };
    static void *live[MAX_LIVE];
    static size_t len[MAX_LIVE];
    size_t nlive = 0;
    for (size_t align = 1; align <= ((size_t)1 << 20); align <<= 1) {
        const size_t sizes[] = {0,        1,         17,        48,
                                align - 1, align,    align + 1, 5000,
                                65536,    70000,     200000};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t n = sizes[i];
            unsigned char *p = dh_heap_aligned_alloc(h, align, n);
            assert_non_null(p);
            if ((uintptr_t)p % align != 0)
                fail_msg("align %zu n %zu gave %p", align, n, (void *)p);
            size_t usable = dh_usable_size(p);
            assert_true(usable >= n);
            assert_true(usable > 0);
            /* Never overlaps a live block. */
            for (size_t j = 0; j < nlive; j++) {
                uintptr_t a = (uintptr_t)live[j], b = (uintptr_t)p;
                assert_true(b + usable <= a || a + len[j] <= b);
            }
            memset(p, (int)(nlive & 0xff), usable);
            assert_true(nlive < MAX_LIVE);
            live[nlive] = p;
            len[nlive++] = usable;
            assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
        }
    }
    for (size_t j = 0; j < nlive; j++) {
        unsigned char *p = live[j];
        for (size_t k = 0; k < len[j]; k += 997)
            assert_int_equal(p[k], j & 0xff);
        dh_heap_free(h, p);
    }
    dh_stats_t s = test_stats(h);
    assert_int_equal(s.live_count, 0);
    assert_int_equal(s.live_bytes, 0);
    assert_int_equal(s.rejected_frees, 0);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_heap_destroy(h);
}

/* ---- realloc -------------------------------------------------------------- */

/* realloc of an invalid pointer: NULL/EINVAL, counted under `code`, and the
 * heap otherwise unchanged. */
static void expect_realloc_rejected(dh_heap_t *h, void *ptr,
                                    dh_error_code_t code) {
    dh_stats_t before = test_stats(h);
    errno = 0;
    assert_null(dh_heap_realloc(h, ptr, 100));
    assert_int_equal(errno, EINVAL);
    dh_stats_t after = test_stats(h);
    assert_int_equal(after.rejected_by_code[code],
                     before.rejected_by_code[code] + 1);
    assert_int_equal(after.rejected_frees, before.rejected_frees + 1);
    assert_stats_same(before, after, true, false);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
}

static void test_realloc_invalid(void **state) {
    (void)state;
    dh_heap_t *h = make_heap(DH_ON_ERROR_IGNORE, NULL, NULL, 0);
    dh_heap_t *other = make_heap(DH_ON_ERROR_IGNORE, NULL, NULL, 0);
    unsigned char *p = dh_heap_malloc(h, 40);
    assert_non_null(p);
    memset(p, 0x5a, 40);
    unsigned char *big = dh_heap_malloc(h, 100000);
    assert_non_null(big);
    void *theirs = dh_heap_malloc(other, 40);
    assert_non_null(theirs);
    void *gone = dh_heap_malloc(h, 200);
    dh_heap_free(h, gone);
    void *gone_large = dh_heap_malloc(h, 70000);
    void *keep = dh_heap_malloc(h, 70000); /* so gone_large is not the top */
    dh_heap_free(h, gone_large);
    int local;
    void *libc = malloc(64);

    expect_realloc_rejected(h, &local, DH_ERR_FOREIGN);
    expect_realloc_rejected(h, libc, DH_ERR_FOREIGN);
    expect_realloc_rejected(h, theirs, DH_ERR_WRONG_HEAP);
    expect_realloc_rejected(h, p + 16, DH_ERR_NOT_A_BLOCK);
    expect_realloc_rejected(h, big + 4096, DH_ERR_NOT_A_BLOCK);
    expect_realloc_rejected(h, p + 1, DH_ERR_MISALIGNED);
    expect_realloc_rejected(h, gone, DH_ERR_DOUBLE_FREE);
    expect_realloc_rejected(h, gone_large, DH_ERR_DOUBLE_FREE);
    /* Inside the range but never carved. */
    expect_realloc_rejected(h, (void *)(dh_heap_base(h) + ((uintptr_t)1 << 34)),
                            DH_ERR_NOT_A_BLOCK);
    for (int i = 0; i < 40; i++) assert_int_equal(p[i], 0x5a);
    assert_int_equal(dh_usable_size(theirs), 48); /* the other heap's block */
    free(libc);
    dh_heap_free(h, keep);
    dh_heap_destroy(other);
    dh_heap_destroy(h);
}

static void test_realloc_zero_frees(void **state) {
    (void)state;
    dh_heap_t *h = make_heap(DH_ON_ERROR_IGNORE, NULL, NULL, 0);
    dh_stats_t s0 = test_stats(h);
    void *p = dh_heap_malloc(h, 100);
    void *q = dh_heap_malloc(h, 300000);
    assert_non_null(p);
    assert_non_null(q);
    assert_null(dh_heap_realloc(h, p, 0));
    assert_null(dh_heap_realloc(h, q, 0));
    assert_int_equal(dh_usable_size(p), 0);
    assert_int_equal(dh_usable_size(q), 0);
    dh_stats_t s1 = test_stats(h);
    assert_int_equal(s1.live_count, s0.live_count);
    assert_int_equal(s1.live_bytes, 0);
    assert_int_equal(s1.free_count, 2);
    assert_int_equal(s1.rejected_frees, 0);
    /* Freed indeed: freeing p again is a double free. */
    dh_heap_free(h, p);
    assert_int_equal(test_stats(h).rejected_by_code[DH_ERR_DOUBLE_FREE], 1);
    /* And the block is reused LIFO. */
    assert_ptr_equal(dh_heap_malloc(h, 128), p);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_heap_destroy(h);
}

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 7);
}

static void assert_filled(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7))
            fail_msg("byte %zu of %p changed", i, (const void *)p);
}

static void test_realloc_contents_and_place(void **state) {
    (void)state;
    dh_heap_t *h = make_heap(DH_ON_ERROR_IGNORE, NULL, NULL, 0);
    /* NULL is malloc. */
    unsigned char *p = dh_heap_realloc(h, NULL, 20);
    assert_non_null(p);
    assert_int_equal(dh_usable_size(p), 32);
    fill(p, 32, 1);
    /* Same class (17..32): in place, contents kept. */
    assert_ptr_equal(dh_heap_realloc(h, p, 32), p);
    assert_ptr_equal(dh_heap_realloc(h, p, 17), p);
    assert_filled(p, 32, 1);
    /* Next class: moves, keeps all 32 bytes, frees the old block. */
    unsigned char *q = dh_heap_realloc(h, p, 33);
    assert_non_null(q);
    assert_ptr_not_equal(q, p);
    assert_int_equal(dh_usable_size(q), 48);
    assert_filled(q, 32, 1);
    assert_int_equal(dh_usable_size(p), 0);
    /* Every class boundary below 4 KiB, growing: a block that must grow
     * moves to the class of 1.5 times its size, or of the new size if that
     * is more (from 4 KiB on it becomes a large block: test_class_sets). */
    size_t n = 48;
    fill(q, 48, 2);
    for (int c = 3; c < DH_NUM_CLASSES; c++) {
        size_t want = dh_class_size(c), roomy = n + n / 2;
        if (want <= n) continue; /* already there */
        if (want >= 4096) break;
        size_t expect = dh_class_size(dh_size_class(
            want > roomy ? want : roomy < 65536 ? roomy : 65536));
        unsigned char *r = dh_heap_realloc(h, q, want);
        assert_non_null(r);
        assert_int_equal(dh_usable_size(r), expect);
        assert_filled(r, n, 2);
        /* Within the class it stays put. */
        assert_ptr_equal(dh_heap_realloc(h, r, expect / 2 + 1), r);
        fill(r, expect, 2);
        n = expect;
        q = r;
    }
    /* Into a large block, then large in place: at the top it grows and
     * shrinks without moving (except in an ASan build, where the library
     * never resizes large blocks in place, so that poisoning stays exact). */
    unsigned char *l = dh_heap_realloc(h, q, 100000);
    assert_non_null(l);
    assert_filled(l, n, 2);
    fill(l, 100000, 3);
    unsigned char *g = dh_heap_realloc(h, l, 300000);
    assert_non_null(g);
    assert_filled(g, 100000, 3);
    unsigned char *k = dh_heap_realloc(h, g, 90000);
    assert_non_null(k);
    assert_filled(k, 90000, 3);
#if !defined(__SANITIZE_ADDRESS__)
    assert_ptr_equal(g, l);
    assert_ptr_equal(k, l);
#endif
    l = k;
    assert_int_equal(dh_usable_size(l), 90112); /* 22 pages */
    /* Back to a small class: moves and keeps the prefix. */
    unsigned char *s = dh_heap_realloc(h, l, 1000);
    assert_non_null(s);
    assert_filled(s, 1000, 3);
    assert_int_equal(dh_usable_size(l), 0);
    dh_stats_t st = test_stats(h);
    assert_int_equal(st.live_count, 1);
    assert_int_equal(st.live_bytes, 1024);
    assert_int_equal(st.rejected_frees, 0);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_heap_destroy(h);
}

/* ---- dh_usable_size, dh_heap_stats and the small pure functions --------- */

static void test_usable_size_invalid(void **state) {
    (void)state;
    dh_heap_t *h = make_heap(DH_ON_ERROR_IGNORE, NULL, NULL, 0);
    unsigned char *p = dh_heap_malloc(h, 40);
    unsigned char *l = dh_heap_malloc(h, 100000);
    void *f = dh_heap_malloc(h, 40);
    dh_heap_free(h, f);
    int local;
    void *libc = malloc(32);
    dh_stats_t before = test_stats(h);
    assert_int_equal(dh_usable_size(p), 48);
    assert_int_equal(dh_usable_size(l), 102400);
    assert_int_equal(dh_usable_size(NULL), 0);
    assert_int_equal(dh_usable_size(&local), 0);
    assert_int_equal(dh_usable_size(libc), 0);
    assert_int_equal(dh_usable_size(p + 16), 0);
    assert_int_equal(dh_usable_size(p + 1), 0);
    assert_int_equal(dh_usable_size(l + 4096), 0);
    assert_int_equal(dh_usable_size(f), 0);
    assert_int_equal(dh_usable_size((void *)dh_heap_base(h)), 0);
    assert_int_equal(
        dh_usable_size((void *)(dh_heap_base(h) + ((uintptr_t)1 << 35))), 0);
    /* It never reports through the policy. */
    assert_stats_same(before, test_stats(h), false, false);
    free(libc);
    dh_heap_destroy(h);
}

static void test_stats_invalid(void **state) {
    (void)state;
    dh_heap_t *h = make_heap(DH_ON_ERROR_IGNORE, NULL, NULL, 0);
    dh_stats_t s;
    errno = 0;
    assert_false(dh_heap_stats(NULL, &s, sizeof s));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_false(dh_heap_stats(h, NULL, sizeof s));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_false(dh_heap_stats(h, &s, 2 * sizeof(uint32_t) - 1));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_false(dh_heap_stats(h, &s, 0));
    assert_int_equal(errno, EINVAL);
    /* An older, shorter caller gets just the prefix. */
    memset(&s, 0xaa, sizeof s);
    assert_true(dh_heap_stats(h, &s, 2 * sizeof(uint32_t)));
    assert_int_equal(s.struct_size, sizeof(dh_stats_t));
    assert_int_equal(s.version, DH_STATS_VERSION);
    assert_true(s.alloc_count == 0xaaaaaaaaaaaaaaaaull);
    memset(&s, 0xaa, sizeof s);
    assert_true(dh_heap_stats(h, &s, offsetof(dh_stats_t, live_count)));
    assert_int_equal(s.alloc_count, 0);
    assert_int_equal(s.free_count, 0);
    assert_true(s.live_count == 0xaaaaaaaaaaaaaaaaull);
    dh_heap_destroy(h);
}

static bool stop_at_first(const dh_block_info_t *b, void *user) {
    (void)b;
    ++*(int *)user;
    return false;
}

static void test_small_functions(void **state) {
    (void)state;
    assert_int_equal(dh_class_size(-1), 0);
    assert_int_equal(dh_class_size(DH_NUM_CLASSES), 0);
    assert_int_equal(dh_size_class(DH_MAX_CLASS_SIZE + 1), -1);
    assert_int_equal(dh_size_class(SIZE_MAX), -1);
    assert_int_equal(dh_size_class(0), 0);
    assert_int_equal(dh_version(), DH_VERSION);
    assert_null(dh_heap_of(NULL));
    int local;
    assert_null(dh_heap_of(&local));
    for (int c = -1; c <= DH_ERR_COUNT; c++)
        assert_non_null(dh_error_name((dh_error_code_t)c));
    assert_non_null(dh_error_name((dh_error_code_t)1000));
    /* A visitor that returns false stops the walk. */
    dh_heap_t *h = make_heap(DH_ON_ERROR_IGNORE, NULL, NULL, 0);
    for (int i = 0; i < 10; i++) assert_non_null(dh_heap_malloc(h, 16));
    int seen = 0;
    size_t visited = dh_heap_walk(h, stop_at_first, &seen);
    assert_int_equal(seen, 1);
    assert_true(visited >= 1);
    dh_heap_destroy(h);
}

/* The handle API's failure cases: all silent no-ops or sentinels. */
static void test_handle_failures(void **state) {
    (void)state;
    dh_heap_t *h = make_heap(DH_ON_ERROR_ABORT, NULL, NULL, 0);
    dh_handle_t a = dh_alloc(h, 40);
    assert_true(a.id != 0);
    dh_free(h, a);
    dh_stats_t before = test_stats(h);
    dh_free(h, a);                    /* stale */
    dh_free(h, DH_HANDLE_NULL);       /* never issued */
    dh_free(h, (dh_handle_t){a.id + 1}); /* not a block start */
    dh_free(h, (dh_handle_t){UINT64_MAX});
    dh_stats_t after = test_stats(h);
    assert_int_equal(after.rejected_handle_frees,
                     before.rejected_handle_frees + 4);
    after.rejected_handle_frees = before.rejected_handle_frees;
    assert_stats_same(before, after, false, false);
    size_t len = 99;
    assert_null(dh_get(h, a, &len));
    assert_int_equal(len, 0);
    assert_null(dh_get(h, (dh_handle_t){UINT64_MAX}, NULL));
    char data[8] = "abcdefg";
    assert_false(dh_write(h, a, data, sizeof data));
    assert_false(dh_write(h, (dh_handle_t){UINT64_MAX}, data, sizeof data));
    assert_null(dh_ptr_of(h, a));
    assert_true(dh_handle_of(NULL).id == 0);
    int local;
    assert_true(dh_handle_of(&local).id == 0);
    void *p = dh_heap_malloc(h, 40);
    assert_true(dh_handle_of((char *)p + 16).id == 0);
    assert_true(dh_handle_of((char *)p + 1).id == 0);
    assert_true(dh_handle_of(p).id == a.id); /* the handle was reused */
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_heap_destroy(h);
}

/* ---- error policies ------------------------------------------------------- */

typedef struct {
    int calls;
    const char *call;
    const void *ptr;
    dh_error_code_t code;
    int size_class;
    char message[200];
} seen_t;

static void record(const dh_error_t *err, void *user) {
    seen_t *s = user;
    s->calls++;
    s->call = err->call;
    s->ptr = err->ptr;
    s->code = err->code;
    s->size_class = err->size_class;
    snprintf(s->message, sizeof s->message, "%s", err->message);
}

/* One misuse: what to do, and what the report must say. */
typedef struct {
    const char *call;       /* "dh_free" or "dh_heap_free" */
    void *ptr;
    dh_error_code_t code;
    int size_class;         /* as the callback sees it */
    char text[200];         /* the expected line, without newline */
} misuse_t;

/* The misuses of heap h (its blocks are set up here): every code, for
 * class and large blocks, through dh_free and dh_heap_free. */
enum { NMISUSE = 8 };

static void expected_line(misuse_t *m, const char *reason) {
    snprintf(m->text, sizeof m->text, "detheap: %s(0x%" PRIxPTR "): %s",
             m->call, (uintptr_t)m->ptr, reason);
}

static int local_object;

static void make_misuses(dh_heap_t *h, dh_heap_t *other, misuse_t *m) {
    unsigned char *dbl = dh_heap_malloc(h, 40); /* 48-byte class */
    unsigned char *in = dh_heap_malloc(h, 40);
    unsigned char *large = dh_heap_malloc(h, 100000);
    unsigned char *large2 = dh_heap_malloc(h, 100000);
    assert_non_null(dh_heap_malloc(h, 100000)); /* keeps large2 off the top */
    void *theirs = dh_heap_malloc(other, 100);
    dh_heap_free(h, dbl);
    dh_heap_free(h, large2);
    assert_int_equal(test_stats(h).rejected_frees, 0);

    m[0] = (misuse_t){"dh_free", dbl, DH_ERR_DOUBLE_FREE, 2, ""};
    expected_line(&m[0], "double free (48-byte class)");
    m[1] = (misuse_t){"dh_free", in + 16, DH_ERR_NOT_A_BLOCK, 2, ""};
    expected_line(&m[1], "not the start of a block (inside a 48-byte block)");
    m[2] = (misuse_t){"dh_free", in + 8, DH_ERR_MISALIGNED, -1, ""};
    expected_line(&m[2], "misaligned pointer");
    m[3] = (misuse_t){"dh_heap_free", &local_object, DH_ERR_FOREIGN, -1, ""};
    expected_line(&m[3], "pointer not from detheap");
    m[4] = (misuse_t){"dh_heap_free", theirs, DH_ERR_WRONG_HEAP, -1, ""};
    expected_line(&m[4], "block of another heap");
    m[5] = (misuse_t){"dh_free", large2, DH_ERR_DOUBLE_FREE, -1, ""};
    expected_line(&m[5], "double free (large block)");
    m[6] = (misuse_t){"dh_free", large + 8192, DH_ERR_NOT_A_BLOCK, -1, ""};
    expected_line(&m[6], "not the start of a block");
    m[7] = (misuse_t){"dh_heap_free", dbl, DH_ERR_DOUBLE_FREE, 2, ""};
    expected_line(&m[7], "double free (48-byte class)");
}

static void do_misuse(dh_heap_t *h, const misuse_t *m) {
    if (strcmp(m->call, "dh_free") == 0)
        dh_free(m->ptr);
    else
        dh_heap_free(h, m->ptr);
}

/* Do each misuse under `policy`: check the counting, the unchanged heap,
 * what the callback got and what reached stderr. */
static void run_misuses(dh_on_error_t policy) {
    seen_t seen;
    memset(&seen, 0, sizeof seen);
    dh_heap_t *h = make_heap(policy, policy == DH_ON_ERROR_CALLBACK ? record
                                                                    : NULL,
                             &seen, 0);
    dh_heap_t *other = make_heap(DH_ON_ERROR_IGNORE, NULL, NULL, 0);
    misuse_t m[NMISUSE];
    make_misuses(h, other, m);
    for (int i = 0; i < NMISUSE; i++) {
        dh_stats_t before = test_stats(h);
        dh_stats_t other_before = test_stats(other);
        uint64_t foreign_before = dh_foreign_frees();
        int calls_before = seen.calls;
        capture_t cap;
        char out[512];
        capture_begin(&cap);
        do_misuse(h, &m[i]);
        capture_end(&cap, out, sizeof out);

        dh_stats_t after = test_stats(h);
        assert_int_equal(after.rejected_by_code[m[i].code],
                         before.rejected_by_code[m[i].code] + 1);
        assert_int_equal(after.rejected_frees, before.rejected_frees + 1);
        assert_stats_same(before, after, true, false);
        assert_stats_same(other_before, test_stats(other), false, false);
        assert_true(dh_foreign_frees() == foreign_before);
        assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
        assert_int_equal(dh_heap_check(other), DH_CHECK_OK);

        if (policy == DH_ON_ERROR_CALLBACK) {
            assert_int_equal(seen.calls, calls_before + 1);
            assert_string_equal(seen.call, m[i].call);
            assert_ptr_equal(seen.ptr, m[i].ptr);
            assert_int_equal(seen.code, m[i].code);
            assert_int_equal(seen.size_class, m[i].size_class);
            assert_string_equal(seen.message, m[i].text);
        } else {
            assert_int_equal(seen.calls, 0);
        }
        if (policy == DH_ON_ERROR_WARN) {
            char line[256];
            snprintf(line, sizeof line, "%s\n", m[i].text);
            assert_string_equal(out, line);
        } else {
            assert_string_equal(out, ""); /* nothing printed */
        }
    }
    dh_heap_destroy(other);
    dh_heap_destroy(h);
}

static void test_policy_ignore(void **state) {
    (void)state;
    run_misuses(DH_ON_ERROR_IGNORE);
}

static void test_policy_callback(void **state) {
    (void)state;
    run_misuses(DH_ON_ERROR_CALLBACK);
}

static void test_policy_warn(void **state) {
    (void)state;
    run_misuses(DH_ON_ERROR_WARN);
}

struct abort_arg {
    dh_heap_t *h;
    misuse_t *m;
};
static void abort_body(void *arg) {
    struct abort_arg *a = arg;
    do_misuse(a->h, a->m);
}

/* ABORT: each misuse in a child process, which must die of SIGABRT after
 * writing exactly the report line. */
static void test_policy_abort(void **state) {
    (void)state;
    dh_heap_t *h = make_heap(DH_ON_ERROR_ABORT, NULL, NULL, 0);
    dh_heap_t *other = make_heap(DH_ON_ERROR_IGNORE, NULL, NULL, 0);
    misuse_t m[NMISUSE];
    make_misuses(h, other, m);
    for (int i = 0; i < NMISUSE; i++) {
        char out[512];
        struct abort_arg a = {h, &m[i]};
        run_aborting(abort_body, &a, out, sizeof out);
        char line[256];
        snprintf(line, sizeof line, "%s\n", m[i].text);
        /* The report line comes first (a sanitizer may add more after). */
        if (strncmp(out, line, strlen(line)) != 0)
            fail_msg("misuse %d: stderr was \"%s\", wanted \"%s\"", i, out,
                     line);
    }
    /* The parent's heap saw none of it. */
    assert_int_equal(test_stats(h).rejected_frees, 0);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_heap_destroy(other);
    dh_heap_destroy(h);
}

/* Pointers of no heap go through the global policy. */
static void test_default_policy(void **state) {
    (void)state;
    int local;
    void *libc = malloc(16);
    seen_t seen;
    memset(&seen, 0, sizeof seen);
    char want[200], out[512];
    capture_t cap;

    uint64_t n0 = dh_foreign_frees();
    capture_begin(&cap);
    dh_free(&local); /* default: IGNORE */
    capture_end(&cap, out, sizeof out);
    assert_string_equal(out, "");
    assert_true(dh_foreign_frees() == n0 + 1);

    assert_true(dh_set_default_error_policy(DH_ON_ERROR_CALLBACK, record,
                                            &seen));
    dh_free(libc);
    assert_true(dh_foreign_frees() == n0 + 2);
    assert_int_equal(seen.calls, 1);
    assert_string_equal(seen.call, "dh_free");
    assert_ptr_equal(seen.ptr, libc);
    assert_int_equal(seen.code, DH_ERR_FOREIGN);
    assert_int_equal(seen.size_class, -1);
    snprintf(want, sizeof want,
             "detheap: dh_free(0x%" PRIxPTR "): pointer not from detheap",
             (uintptr_t)libc);
    assert_string_equal(seen.message, want);

    assert_true(dh_set_default_error_policy(DH_ON_ERROR_WARN, NULL, NULL));
    capture_begin(&cap);
    dh_free(&local);
    capture_end(&cap, out, sizeof out);
    snprintf(want, sizeof want,
             "detheap: dh_free(0x%" PRIxPTR "): pointer not from detheap\n",
             (uintptr_t)&local);
    assert_string_equal(out, want);
    assert_true(dh_foreign_frees() == n0 + 3);
    assert_int_equal(seen.calls, 1); /* the old callback is not called */

    /* A heap's pointers never go through the global policy. */
    dh_heap_t *h = make_heap(DH_ON_ERROR_IGNORE, NULL, NULL, 0);
    void *p = dh_heap_malloc(h, 16);
    dh_free(p);
    capture_begin(&cap);
    dh_free(p);
    capture_end(&cap, out, sizeof out);
    assert_string_equal(out, "");
    assert_true(dh_foreign_frees() == n0 + 3);
    assert_int_equal(test_stats(h).rejected_by_code[DH_ERR_DOUBLE_FREE], 1);
    dh_heap_destroy(h);

    assert_true(dh_set_default_error_policy(DH_ON_ERROR_IGNORE, NULL, NULL));
    dh_free(NULL); /* no-op, not counted */
    assert_true(dh_foreign_frees() == n0 + 3);
    free(libc);
}

/* "Returns false (EINVAL) for an unknown policy": the policy is kept. */
static void test_default_policy_invalid(void **state) {
    (void)state;
    seen_t seen;
    memset(&seen, 0, sizeof seen);
    assert_true(dh_set_default_error_policy(DH_ON_ERROR_CALLBACK, record,
                                            &seen));
    errno = 0;
    assert_false(dh_set_default_error_policy(DH_ON_ERROR_CALLBACK, NULL, NULL));
    int e1 = errno;
    errno = 0;
    assert_false(dh_set_default_error_policy((dh_on_error_t)99, NULL, NULL));
    int e2 = errno;
    int local;
    dh_free(&local);
    assert_int_equal(seen.calls, 1); /* the valid policy stayed */
    assert_true(dh_set_default_error_policy(DH_ON_ERROR_IGNORE, NULL, NULL));
    assert_int_equal(e1, EINVAL);
    assert_int_equal(e2, EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_invalid),
        cmocka_unit_test(test_create_fixed_base),
        cmocka_unit_test(test_calloc_overflow),
        cmocka_unit_test(test_aligned_alloc_bad_alignment),
        cmocka_unit_test(test_aligned_alloc_honoured),
        cmocka_unit_test(test_realloc_invalid),
        cmocka_unit_test(test_realloc_zero_frees),
        cmocka_unit_test(test_realloc_contents_and_place),
        cmocka_unit_test(test_usable_size_invalid),
        cmocka_unit_test(test_stats_invalid),
        cmocka_unit_test(test_small_functions),
        cmocka_unit_test(test_handle_failures),
        cmocka_unit_test(test_policy_ignore),
        cmocka_unit_test(test_policy_callback),
        cmocka_unit_test(test_policy_warn),
        cmocka_unit_test(test_policy_abort),
        cmocka_unit_test(test_default_policy),
        cmocka_unit_test(test_default_policy_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
