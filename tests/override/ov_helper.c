/*
 * ov_helper.c - a small program run with libdetheap.so preloaded by the
 * drop-in tests (test_misuse, test_exec).  It is linked against libc only;
 * what it needs of detheap beyond malloc (stats, the heap check) it looks up
 * with dlsym, so it also shows that the preloaded library exports them.
 *
 *   ov_helper first            print the first malloc result: "first 0x..."
 *   ov_helper misuse NAME      perform the misuse NAME (docs/ERRORS.md),
 *                              after printing "ptr 0x..." (the pointer it
 *                              hands over), then, if still alive, prove the
 *                              heap works and print "continued ..."
 *   ov_helper fork N           one thread allocates in a loop while the main
 *                              thread forks N times; each child allocates,
 *                              frees, creates a thread and exits 0
 *   ov_helper mix N            N calls of malloc, calloc, realloc (from
 *                              NULL, within a class, across classes, to and
 *                              from large blocks, to 0) and free on 256
 *                              slots chosen by a fixed-seed PRNG, checking
 *                              every block's contents; prints "mix HASH BAD"
 *                              with HASH over every address returned and BAD
 *                              the blocks whose contents were wrong
 *   ov_helper thp MIB          keep MIB MiB of 1008-byte blocks live, then
 *                              print how the kernel was advised to back the
 *                              main thread's heap (/proc/self/smaps):
 *                              "thp hg N nh N from OFF aligned A huge_kb K
 *                              hash H" (see thp below)
 *
 * With OV_SAY_ALLOCATOR set, it first prints "allocator: detheap" (or
 * "allocator: libc" when the preload did not take).
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "detheap.h"

/* The heap's reserve with the default options: 64 GiB per thread. */
#define RESERVE ((uintptr_t)64 << 30)

static int usage(void) {
    fprintf(stderr,
            "usage: ov_helper first | misuse NAME | fork N | mix N | thp MIB\n");
    return 2;
}

static void *lookup(const char *name) {
    void *f = dlsym(RTLD_DEFAULT, name);
    if (f == NULL) {
        fprintf(stderr, "ov_helper: %s not found: not preloaded?\n", name);
        exit(3);
    }
    return f;
}

static int first(void) {
    void *p = malloc(24);
    printf("first %p\n", p);
    return 0;
}

/* ---- misuse ------------------------------------------------------------- */

static int static_object[8];

/* Print the pointer the misuse will hand over, and make sure it is out
 * before an abort. */
static void *announce(void *p) {
    printf("ptr %p\n", p);
    fflush(stdout);
    return p;
}

/* Free p and return its address, which is all a double free needs (kept
 * as an integer so that it is plainly not a use of the freed memory). */
static void *free_keep_address(void *p) {
    uintptr_t a = (uintptr_t)p;
    free(p);
    return (void *)a;
}

static void *malloc_40(void *arg) {
    (void)arg;
    return malloc(40);
}

/* A block of another thread's heap: made by a thread that then ends (its
 * heap waits, joined, for the next thread this one creates). */
static void *remote_block(void) {
    pthread_t t;
    void *p = NULL;
    if (pthread_create(&t, NULL, malloc_40, NULL) != 0) return NULL;
    if (pthread_join(t, &p) != 0) return NULL;
    return p;
}

/* The pointer a misuse case hands to free/realloc; `keep` holds blocks that
 * must stay live for the case (a neighbour, the block itself). */
static void *misuse_pointer(const char *what, void **keep) {
    if (strcmp(what, "double-free-class") == 0) {
        return free_keep_address(malloc(40));
    }
    if (strcmp(what, "double-free-large") == 0) {
        void *p = malloc(300000);
        keep[0] = malloc(300000); /* a live neighbour: p is not at the top */
        return free_keep_address(p);
    }
    if (strcmp(what, "double-free-large-top") == 0) {
        /* the last carved block: freed, it goes back to the top */
        return free_keep_address(malloc(300000));
    }
    if (strcmp(what, "double-free-remote") == 0) /* first free: foreign */
        return free_keep_address(remote_block());
    if (strcmp(what, "interior-remote") == 0)
        return (char *)(keep[0] = remote_block()) + 16;
    if (strcmp(what, "interior-class") == 0)
        return (char *)(keep[0] = malloc(40)) + 16;
    if (strcmp(what, "interior-large") == 0)
        return (char *)(keep[0] = malloc(300000)) + 8192;
    if (strcmp(what, "misaligned") == 0)
        return (char *)(keep[0] = malloc(40)) + 1;
    if (strcmp(what, "misaligned-8") == 0)
        return (char *)(keep[0] = malloc(40)) + 8;
    if (strcmp(what, "foreign-stack") == 0) {
        static char *stack_ptr;
        char local[32];
        stack_ptr = local; /* only its address is used, never its bytes */
        return stack_ptr;
    }
    if (strcmp(what, "foreign-static") == 0) return static_object;
    if (strcmp(what, "foreign-mmap") == 0) {
        void *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return m == MAP_FAILED ? NULL : m;
    }
    if (strcmp(what, "header") == 0) { /* the heap's own header */
        keep[0] = malloc(40);
        return (void *)(((uintptr_t)keep[0] & ~(RESERVE - 1)) + 64);
    }
    if (strcmp(what, "state-map") == 0) { /* inside the state map */
        keep[0] = malloc(40);
        return (void *)(((uintptr_t)keep[0] & ~(RESERVE - 1)) + (1u << 20));
    }
    if (strcmp(what, "uncarved") == 0) { /* data never handed out */
        keep[0] = malloc(40);
        return (void *)(((uintptr_t)keep[0] & ~(RESERVE - 1)) +
                        ((uintptr_t)60 << 30));
    }
    return NULL;
}

typedef bool (*stats_fn)(dh_stats_t *, size_t);
typedef dh_heap_t *(*heap_of_fn)(const void *);
typedef dh_check_t (*check_fn)(const dh_heap_t *);

/* What a rejected call must leave alone: the process statistics (all but
 * the rejection counts) and the verdict of the heap check. */
typedef struct snapshot {
    dh_stats_t stats;
    dh_check_t check;
} snapshot_t;

static void take(snapshot_t *s, void *probe) {
    stats_fn stats = (stats_fn)lookup("dh_process_stats");
    heap_of_fn heap_of = (heap_of_fn)lookup("dh_heap_of");
    check_fn check = (check_fn)lookup("dh_heap_check");
    memset(s, 0, sizeof *s);
    if (!stats(&s->stats, sizeof s->stats)) exit(6);
    s->check = check(heap_of(probe));
}

static bool unchanged(const snapshot_t *a, const snapshot_t *b) {
    dh_stats_t x = a->stats, y = b->stats;
    x.rejected_frees = y.rejected_frees = 0;
    memset(x.rejected_by_code, 0, sizeof x.rejected_by_code);
    memset(y.rejected_by_code, 0, sizeof y.rejected_by_code);
    return memcmp(&x, &y, sizeof x) == 0 && a->check == b->check;
}

/* After a misuse the program was allowed to survive: nothing changed but
 * the count, the heap checks clean (DH_CHECK_OK, before and after: a heap
 * broken by the setup would otherwise compare equal to itself), and it
 * goes on working.  Prints the line the test looks for. */
static int carry_on(const snapshot_t *before, void *probe,
                    const char *realloc_result) {
    snapshot_t after;
    take(&after, probe);
    bool same = unchanged(before, &after);
    dh_check_t check = before->check != DH_CHECK_OK ? before->check : after.check;
    void *blocks[64];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 64; i++) {
            size_t n = (size_t)(i * 37 % 1500) + (i % 7 == 0 ? 100000 : 0);
            blocks[i] = malloc(n);
            if (blocks[i] == NULL) return 4;
            memset(blocks[i], i, n);
        }
        for (int i = 0; i < 64; i += 2) free(blocks[i]);
        for (int i = 1; i < 64; i += 2) {
            blocks[i] = realloc(blocks[i], 3000);
            if (blocks[i] == NULL) return 5;
            for (int k = 0; k < 16; k++)
                if (((unsigned char *)blocks[i])[k] != i) return 5;
        }
        for (int i = 1; i < 64; i += 2) free(blocks[i]);
    }
    printf("continued rejected=%" PRIu64 " unchanged=%d check=%d%s\n",
           after.stats.rejected_frees - before->stats.rejected_frees,
           (int)same, (int)check, realloc_result);
    if (check != DH_CHECK_OK) return 8;
    return same ? 0 : 7;
}

static int misuse(const char *name) {
    void *keep[2] = {NULL, NULL};
    bool use_realloc = strncmp(name, "realloc-", 8) == 0;
    bool use_array = strncmp(name, "reallocarray-", 13) == 0;
    const char *what = use_realloc ? name + 8 : use_array ? name + 13 : name;
    /* stdout's buffer is allocated now, not between the setup's free and
     * the misuse, where it could take the freed block over */
    printf("misuse %s\n", name);
    fflush(stdout);
    void *probe = malloc(16);
    void *p = misuse_pointer(what, keep);
    if (p == NULL) return usage();
    announce(p);
    snapshot_t before;
    take(&before, probe);
    const char *res = "";
    if (use_realloc || use_array) {
        errno = 0;
        void *q = use_realloc ? realloc(p, 100) : reallocarray(p, 10, 10);
        res = q == NULL && errno == EINVAL ? " realloc=einval"
                                           : " realloc=unexpected";
    } else {
        free(p);
    }
    int rc = carry_on(&before, probe, res);
    free(keep[0]);
    free(probe);
    return rc;
}

/* ---- fork --------------------------------------------------------------- */

static atomic_bool stop;

static void *churn(void *arg) {
    (void)arg;
    void *slots[128] = {0};
    unsigned x = 1;
    while (!atomic_load(&stop)) {
        x = x * 1103515245u + 12345u;
        unsigned i = (x >> 8) & 127;
        free(slots[i]);
        size_t n = (x >> 16) % 3 == 0 ? (x >> 12) % 200000 : (x >> 12) % 2000;
        slots[i] = malloc(n);
        if (slots[i]) memset(slots[i], 1, n < 64 ? n : 64);
    }
    for (int i = 0; i < 128; i++) free(slots[i]);
    return NULL;
}

static void *child_thread(void *arg) {
    void *p = malloc(1000);
    free(p);
    return arg;
}

/* What a forked child does: a lot of allocation, then a thread. */
static int child_work(void) {
    void *blocks[512];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 512; i++) {
            blocks[i] = malloc((size_t)(i * 13 % 5000) + (i == 7 ? 150000 : 0));
            if (blocks[i] == NULL) return 1;
        }
        for (int i = 0; i < 512; i++) free(blocks[i]);
    }
    char *s = NULL;
    for (int i = 0; i < 100; i++) {
        s = realloc(s, (size_t)(i + 1) * 100);
        if (s == NULL) return 1;
    }
    free(s);
    pthread_t t;
    if (pthread_create(&t, NULL, child_thread, NULL) != 0) return 1;
    if (pthread_join(t, NULL) != 0) return 1;
    return 0;
}

static int forks(int n) {
    pthread_t t;
    if (pthread_create(&t, NULL, churn, NULL) != 0) return 1;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid == 0) exit(child_work());
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
            WEXITSTATUS(st) != 0)
            bad++;
        void *p = malloc((size_t)i * 10);
        free(p);
    }
    atomic_store(&stop, true);
    pthread_join(t, NULL);
    printf("forks %d failed %d\n", n, bad);
    return bad != 0;
}


/* ---- mix: every path of the malloc family, for address comparisons ------ */

#define MIX_SLOTS 256

/* Each live block is filled with a byte derived from its slot and
 * generation; a move by realloc must carry min(old, new) bytes of it. */
typedef struct {
    unsigned char *p;
    size_t n;
    unsigned char fill;
} mix_slot_t;

static uint64_t mix_hash = 0xcbf29ce484222325ull, mix_rng = 0x9e3779b97f4a7c15ull;

static uint64_t mix_next(void) { /* xorshift64 */
    mix_rng ^= mix_rng << 13;
    mix_rng ^= mix_rng >> 7;
    mix_rng ^= mix_rng << 17;
    return mix_rng;
}

static void mix_note(const void *p) {
    mix_hash = (mix_hash ^ (uint64_t)(uintptr_t)p) * 0x100000001b3ull;
}

/* A size: mostly small (the lean paths), some up to 64 KiB (the other
 * classes), a few large. */
static size_t mix_size(void) {
    uint64_t r = mix_next();
    switch (r % 8) {
    case 0: return (size_t)(r >> 8) % 65536 + 1;
    case 1: return (size_t)(r >> 8) % 300000 + 65537;
    default: return (size_t)(r >> 8) % 1100;
    }
}

static bool mix_check(const mix_slot_t *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s->p[i] != s->fill) return false;
    return true;
}

static int mix(long calls) {
    static mix_slot_t slot[MIX_SLOTS];
    long bad = 0;
    for (long i = 0; i < calls; i++) {
        mix_slot_t *s = &slot[mix_next() % MIX_SLOTS];
        uint64_t what = mix_next() % 8;
        if (s->p == NULL && what < 6) { /* a new block */
            size_t n = mix_size();
            s->p = what == 0 ? calloc(1, n) : what == 1 ? realloc(NULL, n)
                                                        : malloc(n);
            if (s->p == NULL) return 1;
            if (what == 0)
                for (size_t j = 0; j < n; j++) bad += s->p[j] != 0;
            s->n = n;
            s->fill = (unsigned char)(i * 7 + 1);
            memset(s->p, s->fill, n);
        } else if (s->p != NULL && what < 5) { /* realloc a live block */
            size_t n = what == 0 ? s->n + 1 : what == 1 ? s->n / 2 + 1 : mix_size() + 1;
            unsigned char *q = realloc(s->p, n);
            if (q == NULL) return 1;
            s->p = q;
            bad += !mix_check(s, n < s->n ? n : s->n);
            s->n = n;
            memset(s->p, s->fill, n);
        } else if (s->p != NULL && what == 5) { /* realloc to 0 frees */
            bad += !mix_check(s, s->n);
            if (realloc(s->p, 0) != NULL) return 1;
            s->p = NULL;
            continue;
        } else if (s->p != NULL) {
            bad += !mix_check(s, s->n);
            free(s->p);
            s->p = NULL;
            continue;
        } else {
            continue;
        }
        mix_note(s->p);
    }
    for (int i = 0; i < MIX_SLOTS; i++) free(slot[i].p);
    printf("mix %016" PRIx64 " %ld\n", mix_hash, bad);
    return 0;
}

/* ---- huge pages --------------------------------------------------------- */

/* Keep mib MiB of 1008-byte blocks live, then read the mappings of the
 * heap's range [base, base + RESERVE) from /proc/self/smaps and print: hg,
 * nh: how many carry the kernel's "hg" (huge pages advised) and "nh" (huge
 * pages refused) flags; from: the lowest start of an hg mapping of the
 * data (not the state map), as an offset from the base (0 if none);
 * aligned: 1 if every read-write hg mapping of the data starts and ends on
 * a 2 MiB boundary (so its huge pages lie wholly in committed memory);
 * huge_kb: AnonHugePages over the range,
 * which depends on the kernel and is only reported; hash: of every block's
 * offset from the base, to compare between settings. */
static int thp(long mib) {
    static void *blocks[1 << 20];
    size_t n = (size_t)mib * 1040; /* 1040 = 1008 + 1/16 of the state map */
    if (n > sizeof blocks / sizeof blocks[0]) return 2;
    uintptr_t (*heap_base)(const dh_heap_t *) =
        (uintptr_t(*)(const dh_heap_t *))lookup("dh_heap_base");
    dh_heap_t *(*heap_of)(const void *) =
        (dh_heap_t * (*)(const void *)) lookup("dh_heap_of");
    uint64_t hash = 0xcbf29ce484222325ull;
    uintptr_t base = 0;
    for (size_t i = 0; i < n; i++) {
        blocks[i] = malloc(1008);
        if (blocks[i] == NULL) return 1;
        memset(blocks[i], 1, 16);
        if (i == 0) base = heap_base(heap_of(blocks[0]));
        hash = (hash ^ ((uintptr_t)blocks[i] - base)) * 0x100000001b3ull;
    }
    /* the data follow the 64 KiB header and the state map (docs/DESIGN.md) */
    uintptr_t data = base + ((uintptr_t)64 << 10) + RESERVE / 16;
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f == NULL) return 1;
    char line[512];
    uintptr_t lo = 0, hi = 0, from = 0;
    bool in = false, rw = false, aligned = true;
    int hg = 0, nh = 0;
    unsigned long huge_kb = 0, kb;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long a, b;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3) {
            lo = a;
            hi = b;
            in = lo >= base && hi <= base + RESERVE;
            rw = perms[0] == 'r' && perms[1] == 'w';
        } else if (in && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1) {
            huge_kb += kb;
        } else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            if (strstr(line, " hg") != NULL) {
                hg++;
                if (lo >= data && (from == 0 || lo - base < from))
                    from = lo - base;
                if (lo >= data && rw && ((lo | hi) & ((2u << 20) - 1)) != 0)
                    aligned = false;
            }
            if (strstr(line, " nh") != NULL) nh++;
        }
    }
    fclose(f);
    printf("thp hg %d nh %d from 0x%" PRIxPTR " aligned %d huge_kb %lu "
           "hash %016" PRIx64 "\n",
           hg, nh, from, aligned, huge_kb, hash);
    for (size_t i = 0; i < n; i++) free(blocks[i]);
    return 0;
}

/* With OV_SAY_ALLOCATOR set, say first whose malloc this is ("allocator:
 * detheap" when detheap's heap claims a malloc'd block): for drivers that
 * must know the preload took (tests/verify/run_memcheck.sh). */
static void say_allocator(void) {
    void *(*heap_of)(const void *) =
        (void *(*)(const void *))dlsym(RTLD_DEFAULT, "dh_heap_of");
    void *p = malloc(24);
    bool ours = heap_of != NULL && p != NULL && heap_of(p) != NULL;
    free(p);
    printf("allocator: %s\n", ours ? "detheap" : "libc");
    fflush(stdout); /* not again in the children of `fork` */
}

int main(int argc, char **argv) {
    if (getenv("OV_SAY_ALLOCATOR") != NULL) say_allocator();
    if (argc >= 2 && strcmp(argv[1], "first") == 0) return first();
    if (argc >= 3 && strcmp(argv[1], "misuse") == 0) return misuse(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "fork") == 0) return forks(atoi(argv[2]));
    if (argc >= 3 && strcmp(argv[1], "mix") == 0) return mix(atol(argv[2]));
    if (argc >= 3 && strcmp(argv[1], "thp") == 0) return thp(atol(argv[2]));
    return usage();
}
