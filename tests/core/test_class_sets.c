/*
 * test_class_sets.c - heaps of each class set (dh_config_t.classes): the
 * set a heap gets, and refuses; a 0.2 caller's config; random work with
 * the full check, usable sizes from the set and the same offsets on two
 * heaps; aligned allocation; realloc's in-place rule; the statistics by
 * class and their fold into the spec's 13; reports naming fine sizes.
 */
#include "core_test.h"
#include "scribble.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

static const dh_class_set_t kSets[] = {DH_CLASSES_SPEC, DH_CLASSES_FINE};

static dh_heap_t *set_heap(dh_class_set_t set) {
    dh_config_t cfg = DH_CONFIG_INIT;
    cfg.classes = set;
    dh_heap_t *h = dh_heap_create(&cfg);
    assert_non_null(h);
    assert_int_equal(dh_heap_class_set(h), set);
    return h;
}

/* The usable size of an n-byte request in a set (a class or pages). */
static size_t set_usable(dh_class_set_t set, size_t n) {
    int c = dh_class_set_of(set, n);
    return c >= 0 ? dh_class_set_size(set, c) : (n + 4095) / 4096 * 4096;
}

static void test_config(void **state) {
    (void)state;
    dh_heap_t *spec = set_heap(DH_CLASSES_SPEC);
    dh_heap_t *fine = set_heap(DH_CLASSES_FINE);
    assert_int_equal(dh_usable_size(dh_heap_malloc(spec, 100)), 128);
    assert_int_equal(dh_usable_size(dh_heap_malloc(fine, 100)), 112);
    dh_heap_destroy(spec);
    dh_heap_destroy(fine);
    /* the default of dh_heap_create is the spec set */
    dh_heap_t *d = core_heap();
    assert_int_equal(dh_heap_class_set(d), DH_CLASSES_SPEC);
    dh_heap_destroy(d);
    /* an unknown set is refused */
    dh_config_t cfg = DH_CONFIG_INIT;
    cfg.classes = (dh_class_set_t)2;
    errno = 0;
    assert_null(dh_heap_create(&cfg));
    assert_int_equal(errno, EINVAL);
}

/* A config of the size dh_config_t had before `classes` (0.x) is refused,
 * as any size the library does not know is; dh_config_init stamps 1.0's. */
static void test_config_size(void **state) {
    (void)state;
    dh_config_t cfg;
    memset(&cfg, 0xa5, sizeof cfg);
    dh_config_init(&cfg);
    assert_int_equal(cfg.struct_size, sizeof cfg);
    assert_int_equal(cfg.classes, DH_CLASSES_SPEC);
    cfg.struct_size = (uint32_t)offsetof(dh_config_t, classes);
    errno = 0;
    assert_null(dh_heap_create(&cfg));
    assert_int_equal(errno, EINVAL);
}

#define SLOTS 512

/* Random malloc/free/realloc on h: every usable size is the set's, the
 * full check holds, and the offsets are written to `offsets`. */
static void churn(dh_heap_t *h, dh_class_set_t set, uint64_t *offsets,
                  size_t steps) {
    void *slot[SLOTS] = {0};
    test_rng_t r = {(uint64_t)set * 7919 + 1};
    uintptr_t base = dh_heap_base(h);
    for (size_t i = 0; i < steps; i++) {
        uint32_t s = (uint32_t)test_rng_range(&r, 0, SLOTS - 1);
        size_t n = test_random_size(&r, 70, 28) + 1; /* realloc(p, 0) frees */
        size_t old = 0; /* a class block realloc may give 1.5x room */
        if (slot[s] != NULL && test_rng_next(&r) % 3 == 0) {
            old = dh_usable_size(slot[s]);
            slot[s] = dh_heap_realloc(h, slot[s], n);
        } else {
            dh_heap_free(h, slot[s]);
            slot[s] = dh_heap_malloc(h, n);
        }
        assert_non_null(slot[s]);
        size_t u = dh_usable_size(slot[s]);
        assert_true(u >= n);
        if (n <= DH_MAX_CLASS_SIZE && u <= DH_MAX_CLASS_SIZE)
            /* a class block: of the set, and the class of n unless realloc
             * kept a bigger block (less than twice n) or grew one by half */
            assert_true(u == set_usable(set, n) || (u > n && u < 2 * n) ||
                        (old < n && old <= DH_MAX_CLASS_SIZE &&
                         u == set_usable(set, old + old / 2 < 65536
                                                  ? old + old / 2
                                                  : 65536)) ||
                        /* realloc made or kept it a large block */
                        (old != 0 && n >= 2048 && u % 4096 == 0 &&
                         u < n + 4096));
        memset(slot[s], (int)i, n < 64 ? n : 64);
        offsets[i] = (uintptr_t)slot[s] - base;
        if (i % 1024 == 0) CORE_CHECK(h);
    }
    CORE_CHECK(h);
    for (size_t s = 0; s < SLOTS; s++) dh_heap_free(h, slot[s]);
    CORE_CHECK(h);
}

static void test_churn_each_set(void **state) {
    (void)state;
    enum { STEPS = 20000 };
    static uint64_t a[STEPS], b[STEPS];
    for (size_t k = 0; k < 2; k++) {
        dh_heap_t *h1 = set_heap(kSets[k]), *h2 = set_heap(kSets[k]);
        churn(h1, kSets[k], a, STEPS);
        churn(h2, kSets[k], b, STEPS);
        /* the offsets are a function of the calls and the set */
        assert_memory_equal(a, b, sizeof a);
        dh_heap_destroy(h1);
        dh_heap_destroy(h2);
    }
}

static void test_aligned_each_set(void **state) {
    (void)state;
    const size_t sizes[] = {1, 17, 48, 100, 300, 1000, 2049, 4097, 5000,
                            13000, 20000, 40000, 65536};
    for (size_t k = 0; k < 2; k++) {
        dh_heap_t *h = set_heap(kSets[k]);
        for (size_t align = 16; align <= 8192; align *= 2)
            for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
                void *p = dh_heap_aligned_alloc(h, align, sizes[i]);
                assert_non_null(p);
                assert_int_equal((uintptr_t)p % align, 0);
                assert_true(dh_usable_size(p) >= sizes[i]);
                /* up to 4 KiB alignment, a class block when one holds n */
                if (align <= 4096)
                    assert_true(dh_usable_size(p) <= DH_MAX_CLASS_SIZE);
            }
        CORE_CHECK(h);
        dh_heap_destroy(h);
    }
}

/* realloc of a class block stays in place exactly when the new size still
 * fits it and is more than half of it (docs/DESIGN.md, "realloc"): every
 * new size from 1 to one past the block, in every class of both sets;
 * the contents are checked at the edges of the rule. */
static void test_realloc_rule(void **state) {
    (void)state;
    for (size_t k = 0; k < 2; k++) {
        dh_heap_t *h = set_heap(kSets[k]);
        int count = dh_class_set_count(kSets[k]);
        for (int c = 0; c < count; c++) {
            size_t size = dh_class_set_size(kSets[k], c);
            for (size_t n = 1; n <= size + 1; n++) {
                bool edge = n == size || n == size - 1 || n == size / 2 + 1 ||
                            n == size / 2 || n == size / 4 || n == 1 ||
                            n == size + 1;
                char *p = dh_heap_malloc(h, size);
                if (edge) memset(p, 0x5c, size);
                int nc = dh_class_set_of(kSets[k], n);
                bool stays = n <= size && (nc == c || 2 * n > size);
                char *q = dh_heap_realloc(h, p, n);
                assert_non_null(q);
                if (stays != (q == p))
                    fail_msg("set %zu: realloc(%zu-byte block, %zu) %s", k,
                             size, n, stays ? "moved" : "stayed");
                for (size_t i = 0; edge && i < (n < size ? n : size); i++)
                    assert_int_equal(q[i], 0x5c);
                dh_heap_free(h, q);
            }
        }
        CORE_CHECK(h);
        dh_heap_destroy(h);
    }
}

/* realloc's large rule (docs/DESIGN.md, "realloc"): a class block that
 * must grow to 4 KiB or more moves into a large block of whole pages,
 * which then grows in place into the top or a free right neighbour; a
 * large block stays large (shrinking in place) down to 2 KiB, and below
 * that moves to a class.  The same in both sets, and the same offsets in
 * two heaps of a set. */
static void test_realloc_large_rule(void **state) {
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    skip(); /* the ASan build never resizes large blocks in place */
#endif
    for (size_t k = 0; k < 2; k++) {
        uint64_t offsets[2][8];
        for (int run = 0; run < 2; run++) {
            dh_heap_t *h = set_heap(kSets[k]);
            uintptr_t base = dh_heap_base(h);
            unsigned char *p = dh_heap_malloc(h, 3000);
            memset(p, 0x11, 3000);
            /* past 4 KiB: moves once, into 2 pages, contents kept */
            unsigned char *q = dh_heap_realloc(h, p, 4097);
            assert_non_null(q);
            assert_ptr_not_equal(q, p);
            assert_int_equal(dh_usable_size(q), 8192);
            assert_int_equal(dh_usable_size(p), 0);
            for (size_t i = 0; i < 3000; i++) assert_int_equal(q[i], 0x11);
            memset(q, 0x22, 4097);
            /* at the top it grows in place, in small steps and big ones,
             * past the largest class and back */
            for (size_t n = 4097; n < 300000; n += n / 8 + 16) {
                assert_ptr_equal(dh_heap_realloc(h, q, n), q);
                assert_true(dh_usable_size(q) >= n);
                assert_true(dh_usable_size(q) < n + 4096);
            }
            for (size_t i = 0; i < 4097; i++) assert_int_equal(q[i], 0x22);
            assert_ptr_equal(dh_heap_realloc(h, q, 40000), q); /* shrinks */
            assert_int_equal(dh_usable_size(q), 40960);
            assert_ptr_equal(dh_heap_realloc(h, q, 2048), q); /* still */
            assert_int_equal(dh_usable_size(q), 4096);
            /* a free right neighbour: the block grows into it */
            unsigned char *a = dh_heap_realloc(h, q, 20000); /* 5 pages */
            assert_ptr_equal(a, q);
            unsigned char *b = dh_heap_malloc(h, 100000); /* above a */
            unsigned char *wall = dh_heap_malloc(h, 100000); /* above b */
            assert_true(b == a + 20480 && wall > b);
            dh_heap_free(h, b);
            assert_ptr_equal(dh_heap_realloc(h, a, 20480 + 50000), a);
            assert_int_equal(dh_usable_size(a), 20480 + 53248);
            /* no room: it moves, whole pages, contents kept */
            unsigned char *c = dh_heap_realloc(h, a, 200000);
            assert_non_null(c);
            assert_ptr_not_equal(c, a);
            assert_int_equal(dh_usable_size(c), 200704);
            for (size_t i = 0; i < 2048; i++) assert_int_equal(c[i], 0x22);
            /* below 2 KiB: back to a class */
            unsigned char *d = dh_heap_realloc(h, c, 2047);
            assert_non_null(d);
            assert_int_equal(dh_usable_size(d), set_usable(kSets[k], 2047));
            for (size_t i = 0; i < 2047; i++) assert_int_equal(d[i], 0x22);
            const unsigned char *seen[] = {p, q, a, b, wall, c, d, NULL};
            for (int i = 0; i < 8; i++)
                offsets[run][i] = seen[i] ? (uintptr_t)seen[i] - base : 0;
            CORE_CHECK(h);
            dh_heap_destroy(h);
        }
        assert_memory_equal(offsets[0], offsets[1], sizeof offsets[0]);
    }
}

/* realloc's room rule at the large threshold (docs/DESIGN.md, "realloc"):
 * a class block below 4 KiB that must grow moves into a large block of one
 * page when the room a class would give it (1.5x its size) reaches 4 KiB,
 * and that page then grows in place at the top; with less room it moves
 * to the class with room, which a growth past that class moves again.
 * Every class below 4 KiB of both sets, grown by one byte. */
static void test_realloc_room_rule(void **state) {
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    skip(); /* the ASan build never resizes large blocks in place */
#endif
    for (size_t k = 0; k < 2; k++) {
        dh_heap_t *h = set_heap(kSets[k]);
        int count = dh_class_set_count(kSets[k]);
        int paged = 0;
        for (int c = 0; c < count; c++) {
            size_t size = dh_class_set_size(kSets[k], c);
            if (size >= 4096) continue;
            unsigned char *p = dh_heap_malloc(h, size);
            memset(p, 0x3c, size);
            unsigned char *q = dh_heap_realloc(h, p, size + 1);
            assert_non_null(q);
            assert_ptr_not_equal(q, p);
            for (size_t i = 0; i < size; i++) assert_int_equal(q[i], 0x3c);
            size_t room = size + size / 2;
            if (room >= 4096) { /* one page, at the top: grows in place */
                paged++;
                assert_int_equal(dh_usable_size(q), 4096);
                assert_ptr_equal(dh_heap_realloc(h, q, 9000), q);
                assert_int_equal(dh_usable_size(q), 12288);
            } else {
                assert_int_equal(dh_usable_size(q), set_usable(kSets[k], room));
                size_t u = dh_usable_size(q);
                unsigned char *r = dh_heap_realloc(h, q, u + 1);
                assert_ptr_not_equal(r, q);
                q = r;
            }
            dh_heap_free(h, q);
        }
        /* the fine set has 3072 and 3584 under 4 KiB with room past it;
         * the spec set none (2048 + 1024 < 4096) */
        assert_int_equal(paged, kSets[k] == DH_CLASSES_FINE ? 2 : 0);
        CORE_CHECK(h);
        dh_heap_destroy(h);
    }
}

/* One live block of every class: by_class has each set's classes, and the
 * spec-shaped `classes` array sums them by the spec class of their size. */
static void test_stats_by_class(void **state) {
    (void)state;
    for (size_t k = 0; k < 2; k++) {
        dh_heap_t *h = set_heap(kSets[k]);
        int count = dh_class_set_count(kSets[k]);
        for (int c = 0; c < count; c++)
            assert_non_null(dh_heap_malloc(h, dh_class_set_size(kSets[k], c)));
        dh_stats_t s = test_stats(h);
        assert_int_equal(s.version, 3);
        assert_int_equal(s.class_set, kSets[k]);
        assert_int_equal(s.class_count, count);
        uint64_t folded[DH_NUM_CLASSES] = {0};
        for (int c = 0; c < count; c++) {
            assert_int_equal(s.by_class[c].size,
                             dh_class_set_size(kSets[k], c));
            assert_int_equal(s.by_class[c].live, 1);
            assert_int_equal(s.by_class[c].spans, 1);
            folded[dh_size_class(s.by_class[c].size)]++;
        }
        for (int c = count; c < DH_CLASSES_MAX; c++)
            assert_int_equal(s.by_class[c].allocs, 0);
        for (int c = 0; c < DH_NUM_CLASSES; c++) {
            assert_int_equal(s.classes[c].live, folded[c]);
            assert_int_equal(s.classes[c].size, dh_class_size(c));
        }
        assert_int_equal(s.live_count, (uint64_t)count);
        dh_heap_destroy(h);
    }
}

/* A fine heap gives whole free spans back to other classes (docs/DESIGN.md,
 * "Worst-case memory"): fill 64 spans with 1152-byte blocks, free them all,
 * then fill as much with 4368-byte blocks: the storage hardly grows, where a
 * spec heap (whose spans stay their class's) takes as much again.  Both
 * heaps stay checkable throughout, and the same calls give the same
 * offsets on a second fine heap. */
static uint64_t phase_change(dh_class_set_t set, uint64_t *sum) {
    enum { SPANS = 64, A = 1152, B = 4368 };
    static void *blocks[SPANS * 65536 / A];
    dh_heap_t *h = set_heap(set);
    size_t na = SPANS * (65536 / A), nb = SPANS * (65536 / B);
    for (size_t i = 0; i < na; i++) {
        blocks[i] = dh_heap_malloc(h, A);
        assert_non_null(blocks[i]);
        memset(blocks[i], 7, A);
    }
    CORE_CHECK(h);
    for (size_t i = 0; i < na; i++) dh_heap_free(h, blocks[i]);
    uint64_t before = test_stats(h).storage_bytes;
    *sum = 0;
    for (size_t i = 0; i < nb; i++) {
        blocks[i] = dh_heap_malloc(h, B);
        assert_non_null(blocks[i]);
        memset(blocks[i], 9, B);
        *sum = *sum * 31 + ((uintptr_t)blocks[i] - dh_heap_base(h));
        if (i % 97 == 0) CORE_CHECK(h);
    }
    CORE_CHECK(h);
    dh_stats_t s = test_stats(h);
    /* the first class still works, from its spans left or fresh ones */
    for (size_t i = 0; i < 100; i++) assert_non_null(dh_heap_malloc(h, A));
    CORE_CHECK(h);
    uint64_t grown = s.storage_bytes - before;
    dh_heap_destroy(h);
    return grown;
}

static void test_spans_move_between_classes(void **state) {
    (void)state;
    uint64_t s1, s2, s3;
    uint64_t fine = phase_change(DH_CLASSES_FINE, &s1);
    uint64_t spec = phase_change(DH_CLASSES_SPEC, &s2);
    assert_true(fine <= 2 * 65536);
    assert_true(spec >= 60 * 65536);
    assert_int_equal(phase_change(DH_CLASSES_FINE, &s3), fine);
    assert_int_equal(s1, s3);
}

/* Resident pages of [p, p + n) (n a multiple of 4 KiB). */
static size_t resident_pages(const void *p, size_t n) {
    unsigned char v[16];
    assert_true(n / 4096 <= sizeof v);
    assert_int_equal(mincore((void *)p, n, v), 0);
    size_t in = 0;
    for (size_t i = 0; i < n / 4096; i++) in += v[i] & 1;
    return in;
}

/* The system backs anonymous memory with huge pages unasked. */
static bool thp_always(void) {
    char buf[128] = {0};
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f == NULL) return false;
    bool always = fgets(buf, sizeof buf, f) != NULL &&
                  strstr(buf, "[always]") != NULL;
    fclose(f);
    return always;
}

/* The fine set's two page ranges (docs/DESIGN.md, "Class sets"):
 * 10,913..12,288 bytes take the page-aligned 16 KiB class and
 * 16,385..20,480 bytes the 32 KiB one, and a block written up to its
 * request size has only those pages backed (3 of 4, 5 of 8): less memory
 * than the 13,104 and 21,840 classes' blocks, which share pages. */
static void test_page_classes_back_written_pages(void **state) {
    (void)state;
    if (thp_always() || sysconf(_SC_PAGESIZE) != 4096) skip();
    static const size_t n[] = {10913, 11200, 12288, 16385, 17000, 20480};
    static const size_t usable[] = {16384, 16384, 16384, 32768, 32768, 32768};
    dh_heap_t *h = set_heap(DH_CLASSES_FINE);
    for (size_t k = 0; k < sizeof n / sizeof n[0]; k++) {
        for (int i = 0; i < 8; i++) { /* fresh blocks, written in full */
            unsigned char *p = dh_heap_malloc(h, n[k]);
            assert_non_null(p);
            assert_int_equal(dh_usable_size(p), usable[k]);
            assert_int_equal((uintptr_t)p % 4096, 0);
            memset(p, 0x6e, n[k]);
            assert_int_equal(resident_pages(p, usable[k]), (n[k] + 4095) / 4096);
        }
    }
    /* one byte more or less: the smallest class that holds it */
    assert_int_equal(dh_usable_size(dh_heap_malloc(h, 10912)), 10912);
    assert_int_equal(dh_usable_size(dh_heap_malloc(h, 12289)), 13104);
    assert_int_equal(dh_usable_size(dh_heap_malloc(h, 20481)), 21840);
    CORE_CHECK(h);
    dh_heap_destroy(h);
}

static char last_message[256];
static int reports;
static void remember(const dh_error_t *e, void *user) {
    (void)user;
    snprintf(last_message, sizeof last_message, "%s", e->message);
    reports++;
}

/* The sweep checks a list before it follows it, as a pop does: a freed
 * block's link aimed at a live block (a write after free) is reported and
 * the list abandoned; no live block is handed out or given back. */
static void test_sweep_checks_the_list(void **state) {
    (void)state;
    enum { A = 1152, N = 20 * (65536 / A) };
    static char *blocks[N];
    dh_config_t cfg = DH_CONFIG_INIT;
    cfg.classes = DH_CLASSES_FINE;
    cfg.on_error = DH_ON_ERROR_CALLBACK;
    cfg.error_callback = remember;
    dh_heap_t *h = dh_heap_create(&cfg);
    assert_non_null(h);
    char *live = dh_heap_malloc(h, 100);
    memset(live, 0x3c, 100);
    for (size_t i = 0; i < N; i++) blocks[i] = dh_heap_malloc(h, A);
    for (size_t i = 0; i < N; i++) dh_heap_free(h, blocks[i]);
    void *bad = live;
    scribble(blocks[N / 2], &bad, sizeof bad); /* a link overwritten */
    reports = 0;
    for (int i = 0; i < 200; i++) { /* another class: its refills sweep */
        char *p = dh_heap_malloc(h, 4368);
        assert_non_null(p);
        assert_true(p + 4368 <= live || p >= live + 100);
        memset(p, 1, 4368);
    }
    assert_int_equal(reports, 1);
    assert_non_null(strstr(last_message, "free list of the 1152-byte class"));
    for (int i = 0; i < 100; i++) assert_int_equal(live[i], 0x3c);
    assert_int_equal(test_stats(h).corruptions, 1);
    CORE_CHECK(h);
    dh_heap_destroy(h);
}

/* A double free in a fine heap names the fine class. */
static void test_report_names_fine_class(void **state) {
    (void)state;
    dh_config_t cfg = DH_CONFIG_INIT;
    cfg.classes = DH_CLASSES_FINE;
    cfg.on_error = DH_ON_ERROR_CALLBACK;
    cfg.error_callback = remember;
    dh_heap_t *h = dh_heap_create(&cfg);
    assert_non_null(h);
    void *p = dh_heap_malloc(h, 4300);
    dh_heap_free(h, p);
    dh_heap_free(h, p);
    assert_non_null(strstr(last_message, "double free (4368-byte class)"));
    CORE_CHECK(h);
    dh_heap_destroy(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_config_size),
        cmocka_unit_test(test_churn_each_set),
        cmocka_unit_test(test_aligned_each_set),
        cmocka_unit_test(test_realloc_rule),
        cmocka_unit_test(test_realloc_large_rule),
        cmocka_unit_test(test_realloc_room_rule),
        cmocka_unit_test(test_page_classes_back_written_pages),
        cmocka_unit_test(test_stats_by_class),
        cmocka_unit_test(test_report_names_fine_class),
        cmocka_unit_test(test_spans_move_between_classes),
        cmocka_unit_test(test_sweep_checks_the_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
