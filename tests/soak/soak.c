/*
 * soak.c - a long random run across every API, and running out of space.
 *
 *   test_soak [OPS]              the cmocka tests, with OPS random operations
 *                                (default 10,000,000, or $DH_SOAK_OPS)
 *   test_soak --fingerprint OPS  run only the workload and print its
 *                                fingerprint (used by the test itself)
 *
 * test_soak_deterministic: OPS random operations spread over the pointer
 * API (malloc, calloc, realloc, aligned_alloc, dh_free, dh_heap_free), the
 * handle API (alloc, free, write, get, stale and double frees) on one
 * heap, and the process heap (dh_malloc & co), with large blocks and
 * over-aligned ones.  Every block carries a tag in its first and last byte
 * that is checked when it is resized or freed, and every 100,000 operations
 * dh_heap_check must pass on both heaps.  The fingerprint hashes every
 * returned offset (from dh_heap_base of the block's heap) and, at each
 * check, the statistics.  The same workload is run at the same time in a
 * second process (this binary re-executed with --fingerprint): the two
 * fingerprints must be equal.
 *
 * test_soak_out_of_memory: a heap with a 64 MiB reserve is filled, with
 * each API, until allocation fails: NULL (or DH_HANDLE_NULL) with errno
 * ENOMEM, a failed realloc leaves its block intact, the heap passes
 * dh_heap_check, and after freeing, allocation succeeds again.
 *
 * The full count finishes in well under a minute in a RelWithDebInfo build.
 * Under a sanitizer pass a smaller count: build-asan/tests/test_soak 1000000.
 */
#include "detheap.h"

#include <errno.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

extern char **environ;

enum {
    PTR_SLOTS = 4096,
    HANDLE_SLOTS = 4096,
    PROC_SLOTS = 1024,
    CHECK_EVERY = 100000,
};

static uint64_t soak_ops = 10000000;

/* ---- randomness and hashing ---------------------------------------------- */

typedef struct {
    uint64_t s;
} rng_t;

static uint64_t rng_next(rng_t *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t hash_in(uint64_t h, uint64_t v) { /* FNV-1a over 8 bytes */
    for (int i = 0; i < 8; i++) {
        h ^= (v >> (8 * i)) & 0xff;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ---- the workload -------------------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n;
    unsigned char tag;
} pblock_t;

typedef struct {
    dh_handle_t h;
    size_t n;
    unsigned char tag;
} hblock_t;

typedef struct {
    dh_heap_t *heap;
    dh_heap_t *proc; /* the process heap, once dh_malloc has been called */
    rng_t rng;
    uint64_t fp;
    pblock_t ptr[PTR_SLOTS];
    hblock_t hnd[HANDLE_SLOTS];
    pblock_t prc[PROC_SLOTS];
    uint64_t counts[4]; /* operations by API: pointer, handle, process, check */
} soak_t;

/* Failures in the workload are reported the same way in the re-executed
 * child (no cmocka there), so they go through one function. */
static bool in_child;
static void soak_fail(const char *what, uint64_t op) {
    if (in_child) {
        fprintf(stderr, "soak: %s at operation %llu\n", what,
                (unsigned long long)op);
        exit(2);
    }
    fail_msg("%s at operation %llu", what, (unsigned long long)op);
}
#define SOAK_CHECK(cond, op) \
    do { if (!(cond)) soak_fail(#cond, op); } while (0)

static size_t random_size(rng_t *r) {
    uint64_t k = rng_next(r) % 10000;
    if (k < 6000) return (size_t)(rng_next(r) % 129);
    if (k < 9000) return (size_t)(rng_next(r) % 2049);
    if (k < 9950) return (size_t)(rng_next(r) % 65537);
    return 65537 + (size_t)(rng_next(r) % (512 << 10));
}

static void note(soak_t *s, const void *p) {
    if (p == NULL) {
        s->fp = hash_in(s->fp, 0);
        return;
    }
    dh_heap_t *h = dh_heap_of(p);
    s->fp = hash_in(s->fp, (uintptr_t)p - dh_heap_base(h));
}

static void tag_block(unsigned char *p, size_t n, unsigned char tag) {
    if (n == 0) return;
    p[0] = tag;
    p[n - 1] = tag;
}

static bool tag_ok(const unsigned char *p, size_t n, unsigned char tag) {
    return n == 0 || (p[0] == tag && p[n - 1] == tag);
}

static void note_stats(soak_t *s, const dh_heap_t *h) {
    dh_stats_t st;
    if (!dh_heap_stats(h, &st, sizeof st)) soak_fail("dh_heap_stats", 0);
    const uint64_t fields[] = {st.alloc_count,      st.free_count,
                               st.live_count,       st.total_blocks,
                               st.storage_bytes,    st.free_block_count,
                               st.live_bytes,       st.peak_live_bytes,
                               st.large_allocs,     st.large_frees,
                               st.large_free_count, st.large_free_bytes,
                               st.rejected_handle_frees};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        s->fp = hash_in(s->fp, fields[i]);
}

/* One pointer-API operation on slot i of the first heap. */
static void op_pointer(soak_t *s, uint64_t op) {
    pblock_t *b = &s->ptr[rng_next(&s->rng) % PTR_SLOTS];
    uint64_t k = rng_next(&s->rng) % 16;
    if (b->p == NULL) {
        size_t n = random_size(&s->rng);
        unsigned char *p;
        if (k < 10) {
            p = dh_heap_malloc(s->heap, n);
        } else if (k < 13) {
            p = dh_heap_calloc(s->heap, 1 + n % 7, n / 7 + 1);
            if (p) n = (1 + n % 7) * (n / 7 + 1);
            if (p) SOAK_CHECK(p[0] == 0 && p[n - 1] == 0, op);
        } else {
            size_t align = (size_t)1 << (rng_next(&s->rng) % 17);
            p = dh_heap_aligned_alloc(s->heap, align, n);
            if (p) SOAK_CHECK(((uintptr_t)p & (align - 1)) == 0, op);
        }
        SOAK_CHECK(p != NULL, op);
        note(s, p);
        b->p = p;
        b->n = n;
        b->tag = (unsigned char)(op | 1);
        tag_block(p, n, b->tag);
        return;
    }
    SOAK_CHECK(tag_ok(b->p, b->n, b->tag), op);
    if (k < 5) { /* resize */
        size_t n = random_size(&s->rng);
        unsigned char *q = dh_heap_realloc(s->heap, b->p, n);
        note(s, q);
        if (n == 0) {
            SOAK_CHECK(q == NULL, op);
            b->p = NULL;
            return;
        }
        SOAK_CHECK(q != NULL, op);
        size_t keep = n < b->n ? n : b->n;
        SOAK_CHECK(keep == 0 || q[0] == b->tag, op);
        b->p = q;
        b->n = n;
        tag_block(q, n, b->tag);
        return;
    }
    if (k < 12) dh_free(b->p);
    else dh_heap_free(s->heap, b->p);
    b->p = NULL;
}

/* One handle-API operation: the original design's calls, misuse included. */
static void op_handle(soak_t *s, uint64_t op) {
    hblock_t *b = &s->hnd[rng_next(&s->rng) % HANDLE_SLOTS];
    uint64_t k = rng_next(&s->rng) % 16;
    if (b->h.id == 0) {
        size_t n = random_size(&s->rng);
        b->h = dh_alloc(s->heap, n);
        SOAK_CHECK(b->h.id != 0, op);
        s->fp = hash_in(s->fp, b->h.id);
        b->n = n < 64 ? n : 64;
        b->tag = (unsigned char)(op | 1);
        unsigned char data[64];
        memset(data, b->tag, sizeof data);
        SOAK_CHECK(dh_write(s->heap, b->h, data, b->n), op);
        return;
    }
    size_t len;
    unsigned char *p = dh_get(s->heap, b->h, &len);
    SOAK_CHECK(p != NULL && len >= b->n, op);
    for (size_t i = 0; i < b->n; i++) SOAK_CHECK(p[i] == b->tag, op);
    if (k < 4) return; /* a read */
    dh_free(s->heap, b->h);
    SOAK_CHECK(dh_get(s->heap, b->h, NULL) == NULL || k >= 15, op);
    if (k == 15) dh_free(s->heap, b->h); /* double free: a harmless no-op */
    b->h = DH_HANDLE_NULL;
}

/* One operation on the process heap. */
static void op_process(soak_t *s, uint64_t op) {
    pblock_t *b = &s->prc[rng_next(&s->rng) % PROC_SLOTS];
    uint64_t k = rng_next(&s->rng) % 8;
    if (b->p == NULL) {
        size_t n = random_size(&s->rng);
        unsigned char *p;
        if (k < 5) p = dh_malloc(n);
        else if (k < 7) p = dh_calloc(n, 1);
        else p = dh_aligned_alloc(256, n);
        SOAK_CHECK(p != NULL, op);
        if (s->proc == NULL) s->proc = dh_heap_of(p);
        SOAK_CHECK(dh_heap_of(p) == s->proc, op);
        note(s, p);
        b->p = p;
        b->n = n;
        b->tag = (unsigned char)(op | 1);
        tag_block(p, n, b->tag);
        return;
    }
    SOAK_CHECK(tag_ok(b->p, b->n, b->tag), op);
    if (k < 3) {
        size_t n = 1 + random_size(&s->rng);
        unsigned char *q = dh_realloc(b->p, n);
        SOAK_CHECK(q != NULL && (b->n == 0 || q[0] == b->tag), op);
        note(s, q);
        b->p = q;
        b->n = n;
        tag_block(q, n, b->tag);
        return;
    }
    dh_free(b->p);
    b->p = NULL;
}

static void check_point(soak_t *s, uint64_t op) {
    SOAK_CHECK(dh_heap_check(s->heap) == DH_CHECK_OK, op);
    note_stats(s, s->heap);
    if (s->proc != NULL) {
        SOAK_CHECK(dh_heap_check(s->proc) == DH_CHECK_OK, op);
        note_stats(s, s->proc);
    }
    s->counts[3]++;
}

/* Run the workload; returns its fingerprint.  Leaves nothing allocated. */
static uint64_t soak_run(uint64_t ops, uint64_t counts[4]) {
    soak_t *s = calloc(1, sizeof *s);
    if (s == NULL) soak_fail("calloc", 0);
    s->rng.s = 20240611;
    s->fp = 0xcbf29ce484222325ull;
    s->heap = dh_heap_create(NULL);
    if (s->heap == NULL) soak_fail("dh_heap_create", 0);
    for (uint64_t op = 1; op <= ops; op++) {
        uint64_t api = rng_next(&s->rng) % 10;
        if (api < 5) op_pointer(s, op), s->counts[0]++;
        else if (api < 8) op_handle(s, op), s->counts[1]++;
        else op_process(s, op), s->counts[2]++;
        if (op % CHECK_EVERY == 0) check_point(s, op);
    }
    check_point(s, ops);
    for (size_t i = 0; i < PTR_SLOTS; i++)
        if (s->ptr[i].p) dh_free(s->ptr[i].p);
    for (size_t i = 0; i < HANDLE_SLOTS; i++)
        if (s->hnd[i].h.id) dh_free(s->heap, s->hnd[i].h);
    for (size_t i = 0; i < PROC_SLOTS; i++)
        if (s->prc[i].p) dh_free(s->prc[i].p);
    dh_stats_t st;
    if (!dh_heap_stats(s->heap, &st, sizeof st) || st.live_count != 0 ||
        dh_heap_check(s->heap) != DH_CHECK_OK)
        soak_fail("heap not empty and sound at the end", ops);
    uint64_t fp = s->fp;
    if (counts) memcpy(counts, s->counts, sizeof s->counts);
    dh_heap_destroy(s->heap);
    free(s);
    return fp;
}

/* ---- test: two processes, one fingerprint -------------------------------- */

static void test_soak_deterministic(void **state) {
    (void)state;
    /* Start the second process first, so the two run side by side. */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    char ops_arg[32];
    snprintf(ops_arg, sizeof ops_arg, "%llu", (unsigned long long)soak_ops);
    char *argv[] = {"soak", "--fingerprint", ops_arg, NULL};
    pid_t pid;
    assert_int_equal(
        posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);

    uint64_t counts[4];
    uint64_t mine = soak_run(soak_ops, counts);

    char buf[64] = {0};
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 &&
           (n = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    unsigned long long theirs = strtoull(buf, NULL, 16);
    printf("soak: %llu operations (pointer %llu, handle %llu, process %llu), "
           "%llu checks; fingerprint %016llx here, %016llx in pid %d\n",
           (unsigned long long)soak_ops, (unsigned long long)counts[0],
           (unsigned long long)counts[1], (unsigned long long)counts[2],
           (unsigned long long)counts[3], (unsigned long long)mine, theirs,
           (int)pid);
    assert_true(got > 0);
    assert_int_equal(mine, theirs);
    assert_int_not_equal(mine, 0);
}

/* ---- test: running out of reserved space ----------------------------------- */

enum { OOM_MAX = 1 << 20 };

static void *oom_blocks[OOM_MAX];

/* Fill h with blocks of `size` until allocation fails; returns how many. */
static size_t fill(dh_heap_t *h, size_t size, size_t from) {
    size_t n = from;
    for (;;) {
        assert_true(n < OOM_MAX);
        errno = 0;
        void *p = dh_heap_malloc(h, size);
        if (p == NULL) {
            assert_int_equal(errno, ENOMEM);
            return n;
        }
        memset(p, (int)(n & 0xff), size < 64 ? size : 64);
        oom_blocks[n++] = p;
    }
}

static void test_soak_out_of_memory(void **state) {
    (void)state;
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.reserve = (uint64_t)64 << 20;
    dh_heap_t *h = dh_heap_create(&cfg);
    assert_non_null(h);

    /* Large blocks first, then the biggest class, then the smallest: each
     * runs until the reserve is used up. */
    size_t n = fill(h, 1 << 20, 0);
    assert_true(n > 8);
    n = fill(h, 65536, n);
    n = fill(h, 16, n);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_stats_t st;
    assert_true(dh_heap_stats(h, &st, sizeof st));
    assert_true(st.failed_allocs >= 3);
    assert_int_equal(st.live_count, n);

    /* Every API fails cleanly while full. */
    errno = 0;
    assert_null(dh_heap_aligned_alloc(h, 1 << 16, 100));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(dh_heap_calloc(h, 1000, 1000));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_int_equal(dh_alloc(h, 70000).id, 0);
    assert_int_equal(errno, ENOMEM);
    unsigned char *victim = oom_blocks[n - 1]; /* a 16-byte block */
    memset(victim, 0x5c, 16);
    errno = 0;
    assert_null(dh_heap_realloc(h, victim, 3 << 20));
    assert_int_equal(errno, ENOMEM);
    for (int i = 0; i < 16; i++) assert_int_equal(victim[i], 0x5c);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);

    /* Free every other block: the heap works again. */
    for (size_t i = 0; i < n; i += 2) dh_free(oom_blocks[i]);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    void *again = dh_heap_malloc(h, 16);
    assert_non_null(again);
    dh_handle_t hd = dh_alloc(h, 65536);
    assert_int_not_equal(hd.id, 0);
    dh_free(h, hd);
    dh_free(again);
    for (size_t i = 1; i < n; i += 2) dh_free(oom_blocks[i]);
    assert_true(dh_heap_stats(h, &st, sizeof st));
    assert_int_equal(st.live_count, 0);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);

    /* Empty again, it is as big as before: large blocks fill it anew. */
    size_t m = fill(h, 1 << 20, 0);
    assert_true(m >= 1);
    for (size_t i = 0; i < m; i++) dh_free(oom_blocks[i]);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_heap_destroy(h);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--fingerprint") == 0) {
        in_child = true;
        uint64_t fp = soak_run(strtoull(argv[2], NULL, 10), NULL);
        printf("%016llx\n", (unsigned long long)fp);
        return 0;
    }
    const char *env = getenv("DH_SOAK_OPS");
    if (argc >= 2) soak_ops = strtoull(argv[1], NULL, 10);
    else if (env != NULL) soak_ops = strtoull(env, NULL, 10);
    if (soak_ops == 0) soak_ops = 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soak_deterministic),
        cmocka_unit_test(test_soak_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
