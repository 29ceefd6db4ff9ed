/*
 * test_determinism.c - the same calls give the same addresses.
 *
 * (a) One long random sequence of malloc/calloc/realloc/aligned_alloc/free
 *     (sizes 0..300000, a fixed seed, 200,000 steps) is run in lockstep on
 *     two heaps of this process: every result must lie at the same offset
 *     from its heap's base, with the same contents where the contract
 *     defines them, and the statistics must be identical.
 * (b) Across processes: the test binary re-executes itself twice (each
 *     child a fresh process with its own address-space layout), each child
 *     creates a heap at a fixed base, runs a sequence and prints a hash of
 *     every absolute address it got back.  The hashes must be equal, and
 *     equal to this process's own run at the same base; and the two
 *     children's layouts must really have differed (their stacks and
 *     libc's code at other addresses), or the test proves nothing.  It is
 *     its own ctest test (test_determinism_processes: this binary with the
 *     argument "processes"), which exits 77, skipped, when ASLR is off
 *     (kernel.randomize_va_space = 0, or the ADDR_NO_RANDOMIZE
 *     personality, as under `setarch -R`).
 * (c) A fixed base that is taken fails with EEXIST, a misaligned one with
 *     EINVAL.
 */
#include "core_test.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLOTS 4096
#define LOCKSTEP_STEPS 200000
#define CHILD_STEPS 60000
#define SEED 0x5eed2024u
#define CHILD_ENV "DH_TEST_DETERMINISM_CHILD"
/* Far from the process heap's default slots (docs/OPTIONS.md) */
#define FIXED_BASE ((uintptr_t)0x500000000000ull)
_Static_assert(FIXED_BASE % DH_HEAP_ALIGN == 0, "base must be aligned");
_Static_assert(FIXED_BASE % DH_DEFAULT_RESERVE == 0, "and fit the reserve");

typedef enum { OP_MALLOC, OP_CALLOC, OP_ALIGNED, OP_REALLOC, OP_FREE } kind_t;

typedef struct {
    kind_t kind;
    size_t slot, n, count, align;
} op_t;

/* One heap's side of a run: the blocks held in each slot, their requested
 * sizes, and the step whose stamp each carries. */
typedef struct {
    dh_heap_t *h;
    uint8_t *ptr[SLOTS];
    size_t size[SLOTS];
    uint64_t stamp[SLOTS];
} side_t;

static size_t random_size(test_rng_t *r) {
    return test_random_size(r, 60, 25);
}

/* The next operation.  It depends only on the rng and on which slots are
 * occupied, which is the same on every side of a lockstep run. */
static op_t next_op(test_rng_t *r, const side_t *s) {
    op_t op = {.slot = test_rng_next(r) % SLOTS, .n = random_size(r)};
    uint64_t k = test_rng_next(r) % 100;
    if (s->ptr[op.slot] != NULL) {
        op.kind = k < 50 ? OP_FREE : OP_REALLOC;
        if (k >= 95) op.n = 0; /* realloc to 0 frees */
    } else if (k < 55) {
        op.kind = OP_MALLOC;
    } else if (k < 75) {
        op.kind = OP_CALLOC;
        op.count = test_rng_range(r, 1, 8);
        op.n /= op.count;
    } else if (k < 90) {
        op.kind = OP_ALIGNED;
        op.align = (size_t)1 << test_rng_range(r, 3, 20);
    } else {
        op.kind = OP_REALLOC; /* of NULL: an allocation */
    }
    return op;
}

/* The first 16 bytes of a block carry the step that allocated it, so that
 * realloc's copy can be checked. */
static void stamp_bytes(uint8_t *out, size_t n, uint64_t step) {
    for (size_t i = 0; i < n && i < 16; i++)
        out[i] = (uint8_t)((step >> (i % 8 * 8)) ^ (i * 29));
}

static void check_stamp(const uint8_t *p, size_t n, uint64_t step) {
    uint8_t want[16];
    if (n > 16) n = 16;
    stamp_bytes(want, n, step);
    assert_memory_equal(p, want, n);
}

static void check_zero(const uint8_t *p, size_t n) {
    /* All of a small block, both ends of a big one. */
    size_t head = n < 4096 ? n : 4096, tail = n < 64 ? n : 64;
    for (size_t i = 0; i < head; i++) assert_int_equal(p[i], 0);
    for (size_t i = n - tail; i < n; i++) assert_int_equal(p[i], 0);
}

/* Apply op on one side; returns the block the slot now holds, or NULL. */
static uint8_t *apply(side_t *s, op_t op, uint64_t step) {
    uint8_t *old = s->ptr[op.slot], *p = NULL;
    size_t n = op.kind == OP_CALLOC ? op.count * op.n : op.n;
    /* A live block still holds what was written into it. */
    if (old != NULL) {
        check_stamp(old, s->size[op.slot], s->stamp[op.slot]);
    }
    switch (op.kind) {
    case OP_MALLOC:
        p = dh_heap_malloc(s->h, n);
        break;
    case OP_CALLOC:
        p = dh_heap_calloc(s->h, op.count, op.n);
        if (p != NULL) check_zero(p, n);
        break;
    case OP_ALIGNED:
        p = dh_heap_aligned_alloc(s->h, op.align, n);
        if (p != NULL) assert_int_equal((uintptr_t)p % op.align, 0);
        break;
    case OP_REALLOC:
        p = dh_heap_realloc(s->h, old, n);
        break;
    case OP_FREE:
        dh_heap_free(s->h, old);
        break;
    }
    if (op.kind == OP_FREE || (op.kind == OP_REALLOC && old && n == 0)) {
        assert_null(p);
        s->ptr[op.slot] = NULL;
        return NULL;
    }
    if (p == NULL) fail_msg("step %" PRIu64 ": allocation of %zu failed",
                            step, n);
    assert_true(dh_usable_size(p) >= n);
    if (op.kind == OP_REALLOC && old != NULL) {
        check_stamp(p, s->size[op.slot] < n ? s->size[op.slot] : n,
                    s->stamp[op.slot]);
    }
    /* Stamp anew: a grown block's bytes beyond the old size are not. */
    stamp_bytes(p, n, step);
    s->stamp[op.slot] = step;
    s->ptr[op.slot] = p;
    s->size[op.slot] = n;
    return p;
}

static uint64_t fnv_word(uint64_t h, uint64_t w) {
    for (int i = 0; i < 8; i++) {
        h ^= (w >> (8 * i)) & 0xff;
        h *= 0x100000001b3ull;
    }
    return h;
}

static void assert_same_stats(const dh_heap_t *a, const dh_heap_t *b) {
    dh_stats_t sa = test_stats(a), sb = test_stats(b);
    assert_memory_equal(&sa, &sb, sizeof sa);
}

/* (a) Two heaps of one process, in lockstep. */
static void test_two_heaps(void **state) {
    (void)state;
    static side_t a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.h = core_heap();
    b.h = core_heap();
    const uintptr_t base_a = dh_heap_base(a.h), base_b = dh_heap_base(b.h);
    assert_true(base_a != base_b);
    test_rng_t rng = {SEED};
    uint64_t allocs = 0, frees = 0;
    for (uint64_t step = 0; step < LOCKSTEP_STEPS; step++) {
        op_t op = next_op(&rng, &a);
        uint8_t *pa = apply(&a, op, step), *pb = apply(&b, op, step);
        if ((pa == NULL) != (pb == NULL) ||
            (pa && (uintptr_t)pa - base_a != (uintptr_t)pb - base_b))
            fail_msg("step %" PRIu64 " (op %d, size %zu): offsets %#" PRIxPTR
                     " and %#" PRIxPTR " differ", step, (int)op.kind, op.n,
                     pa ? (uintptr_t)pa - base_a : 0,
                     pb ? (uintptr_t)pb - base_b : 0);
        if (pa != NULL) {
            /* The contents are deterministic too (zero when fresh, else
             * what was last written, the first 8 bytes zero), and both
             * sides wrote the same: the first bytes must be equal. */
            size_t n = a.size[op.slot], hi = n < 64 ? n : 64;
            if (memcmp(pa, pb, hi) != 0)
                fail_msg("step %" PRIu64 " (op %d, size %zu, offset %#"
                         PRIxPTR "): contents differ", step, (int)op.kind,
                         n, (uintptr_t)pa - base_a);
            allocs++;
        } else {
            frees++;
        }
        if (step % 20000 == 0) {
            CORE_CHECK(a.h);
            CORE_CHECK(b.h);
            assert_same_stats(a.h, b.h);
        }
    }
    CORE_CHECK(a.h);
    CORE_CHECK(b.h);
    assert_same_stats(a.h, b.h);
    /* The run did reach every path it is meant to. */
    dh_stats_t st = test_stats(a.h);
    assert_true(st.large_allocs > 1000);
    assert_true(st.large_frees > 1000);
    assert_true(allocs > 100000 && frees > 50000);
    for (int c = 0; c < DH_NUM_CLASSES; c++)
        assert_true(st.classes[c].frees > 0);
    assert_int_equal(st.failed_allocs, 0);
    assert_int_equal(st.rejected_frees, 0);
    dh_heap_destroy(a.h);
    dh_heap_destroy(b.h);
}

/* Run the child sequence on a heap at FIXED_BASE; returns the hash of
 * every absolute address returned (NULL for frees). */
static uint64_t run_at_fixed_base(void) {
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.base = FIXED_BASE;
    static side_t s;
    memset(&s, 0, sizeof s);
    s.h = dh_heap_create(&cfg);
    if (s.h == NULL) fail_msg("heap at %#" PRIxPTR ": errno %d", FIXED_BASE,
                              errno);
    assert_int_equal(dh_heap_base(s.h), FIXED_BASE);
    test_rng_t rng = {SEED ^ 0xc0ffee};
    uint64_t hash = 0xcbf29ce484222325ull;
    for (uint64_t step = 0; step < CHILD_STEPS; step++) {
        op_t op = next_op(&rng, &s);
        uint8_t *p = apply(&s, op, step);
        if (p != NULL) {
            assert_true((uintptr_t)p >= FIXED_BASE &&
                        (uintptr_t)p < FIXED_BASE + DH_DEFAULT_RESERVE);
        }
        hash = fnv_word(hash, (uint64_t)(uintptr_t)p);
    }
    CORE_CHECK(s.h);
    dh_heap_destroy(s.h);
    return hash;
}

/* libc's strlen, through a pointer the compiler cannot fold. */
static size_t (*volatile libc_fn)(const char *) = strlen;

/* The child: print the hash and two addresses of this process's own
 * layout (its stack, libc's code), which ASLR makes different in each
 * child. */
static int child_main(void) {
    int local = 0;
    uint64_t hash = run_at_fixed_base();
    printf("%016" PRIx64 " %p %p\n", hash, (void *)&local,
           (void *)(uintptr_t)libc_fn);
    return 0;
}

/* Whether the kernel randomizes this process's layout (and its
 * children's, which inherit the personality). */
static int aslr_on(char *why, size_t cap) {
    FILE *f = fopen("/proc/sys/kernel/randomize_va_space", "r");
    int level = -1;
    if (f != NULL) {
        if (fscanf(f, "%d", &level) != 1) level = -1;
        fclose(f);
    }
    int persona = personality(0xffffffff);
    if (level == 0) {
        snprintf(why, cap, "kernel.randomize_va_space is 0");
        return 0;
    }
    if (persona != -1 && (persona & ADDR_NO_RANDOMIZE)) {
        snprintf(why, cap, "the ADDR_NO_RANDOMIZE personality is set "
                           "(setarch -R)");
        return 0;
    }
    return 1;
}

/* Re-execute this binary as a child; returns its output line. */
static void run_child(const char *self, char *line, size_t cap) {
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        setenv(CHILD_ENV, "1", 1);
        execl(self, self, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    assert_non_null(f);
    line[0] = 0;
    if (fgets(line, (int)cap, f) == NULL) line[0] = 0;
    fclose(f);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static char self_path[4096];

/* (b) Two fresh processes, one fixed base, the same absolute addresses. */
static void test_two_processes(void **state) {
    (void)state;
    char out1[256], out2[256];
    run_child(self_path, out1, sizeof out1);
    run_child(self_path, out2, sizeof out2);
    uint64_t h1, h2;
    void *stack1, *stack2, *libc1, *libc2;
    assert_int_equal(sscanf(out1, "%" SCNx64 " %p %p", &h1, &stack1, &libc1),
                     3);
    assert_int_equal(sscanf(out2, "%" SCNx64 " %p %p", &h2, &stack2, &libc2),
                     3);
    print_message("child hashes %016" PRIx64 " %016" PRIx64
                  "; child stacks %p %p; libc %p %p\n", h1, h2, stack1,
                  stack2, libc1, libc2);
    /* The children's layouts differed: the equal hashes below owe nothing
     * to two processes laid out alike. */
    if (stack1 == stack2 || libc1 == libc2)
        fail_msg("the two children were laid out alike (stacks %p %p, libc "
                 "%p %p): ASLR moved nothing, so the same addresses prove "
                 "nothing", stack1, stack2, libc1, libc2);
    assert_int_equal(h1, h2);
    /* And this process, whose layout differs again, agrees. */
    assert_int_equal(run_at_fixed_base(), h1);
    /* A different sequence gives a different hash: the hash does see the
     * addresses. */
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.base = FIXED_BASE;
    dh_heap_t *h = dh_heap_create(&cfg);
    assert_non_null(h);
    void *p = dh_heap_malloc(h, 100);
    uint64_t other = fnv_word(0xcbf29ce484222325ull, (uintptr_t)p);
    assert_true(other != h1);
    dh_heap_destroy(h);
}

/* (c) Fixed bases that cannot be had. */
static void test_fixed_base_errors(void **state) {
    (void)state;
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.base = FIXED_BASE;
    dh_heap_t *h = dh_heap_create(&cfg);
    assert_non_null(h);
    /* Taken by a heap. */
    errno = 0;
    assert_null(dh_heap_create(&cfg));
    assert_int_equal(errno, EEXIST);
    CORE_CHECK(h);
    dh_heap_destroy(h);
    /* Given back: can be had again. */
    h = dh_heap_create(&cfg);
    assert_non_null(h);
    dh_heap_destroy(h);
    /* Taken by an unrelated mapping in the middle of the range. */
    void *want = (void *)(FIXED_BASE + ((uintptr_t)5 << 30));
    void *m = mmap(want, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS |
                                              MAP_FIXED_NOREPLACE, -1, 0);
    assert_ptr_equal(m, want);
    errno = 0;
    assert_null(dh_heap_create(&cfg));
    assert_int_equal(errno, EEXIST);
    assert_int_equal(munmap(m, 4096), 0);
    h = dh_heap_create(&cfg);
    assert_non_null(h);
    dh_heap_destroy(h);
    /* Misaligned: not a multiple of DH_HEAP_ALIGN, or not of the reserve. */
    const uintptr_t bad[] = {FIXED_BASE + 4096, FIXED_BASE + 16,
                             FIXED_BASE + DH_HEAP_ALIGN / 2,
                             FIXED_BASE + DH_HEAP_ALIGN, 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.base = bad[i];
        errno = 0;
        assert_null(dh_heap_create(&cfg));
        assert_int_equal(errno, EINVAL);
    }
    /* With a 4 GiB reserve, one DH_HEAP_ALIGN step is aligned enough. */
    cfg.reserve = DH_HEAP_ALIGN;
    cfg.base = FIXED_BASE + DH_HEAP_ALIGN;
    h = dh_heap_create(&cfg);
    assert_non_null(h);
    assert_int_equal(dh_heap_base(h), FIXED_BASE + DH_HEAP_ALIGN);
    dh_heap_destroy(h);
}

int main(int argc, char **argv) {
    if (getenv(CHILD_ENV) != NULL) return child_main();
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (n <= 0) {
        perror("readlink /proc/self/exe");
        return 1;
    }
    self_path[n] = 0;
    if (argc > 1 && strcmp(argv[1], "processes") == 0) {
        char why[128];
        if (!aslr_on(why, sizeof why)) {
            printf("SKIPPED: test_two_processes: ASLR is off (%s): two "
                   "processes would be laid out alike, so equal addresses "
                   "would prove nothing\n", why);
            return 77; /* ctest's SKIP_RETURN_CODE */
        }
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_two_processes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_heaps),
        cmocka_unit_test(test_fixed_base_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

