/*
 * fuzz_override.c - the drop-in malloc's own code (src/override/malloc.c:
 * its lean fast paths and glibc's contract, over the process heap of
 * process.c), instrumented with ASan + UBSan, against a model.
 *
 * libFuzzer's runtime has the process's malloc, so the override is linked
 * in under renamed symbols (tests/ov_renamed.h): dhov_malloc, dhov_free,
 * dhov_calloc, dhov_realloc, dhov_reallocarray, dhov_posix_memalign,
 * dhov_aligned_alloc, dhov_memalign, dhov_valloc, dhov_pvalloc,
 * dhov_malloc_usable_size, dhov_mallinfo2.  No misuse: the process heap's
 * policy is to abort (fuzz_pointer fuzzes misuse on the heap API).
 *
 * The input is a program, one op byte (% 10) and its arguments:
 *   0 1  malloc(size)                 5  realloc / reallocarray of a live
 *   2    calloc(count, size), or one       block (0 bytes: frees), or of
 *        whose product overflows           NULL
 *   3    posix_memalign, alignments    6 7  free a live block (or NULL)
 *        1 .. 1 MiB, invalid ones     8  free a class block and malloc its
 *   4    aligned_alloc, memalign,          size again: the same address
 *        valloc, pvalloc                   (LIFO), its first 8 bytes zero,
 *                                          the rest as the program left it
 *                                     9  malloc_usable_size, mallinfo2
 *
 * The model is the set of live blocks with their requested size, alignment
 * and fill byte.  Every block returned must lie in a detheap heap, aligned
 * as asked, with a usable size >= its request, and overlap no live block;
 * calloc memory is zero; realloc keeps min(old, new) bytes; bad alignments
 * fail with EINVAL and an overflowing calloc with ENOMEM, changing nothing;
 * the process statistics count exactly the live blocks (libFuzzer's own
 * allocations are not detheap's), and mallinfo2 agrees with the model.
 *
 * The process heap lives across inputs (one process runs them all): each
 * input frees what it allocated, then dh_process_check must pass.  So that
 * determinism is checked from a fresh process heap too, a zygote process is
 * forked before the process heap is first used; for an input it forks
 * two workers that run the input on their own fresh process heap, hashing
 * every address and usable size they get, and the two hashes must agree
 * (the workers make the same checks; one that fails fails the input).
 * That costs two forks, so it is done for every input of a replay and for
 * one input in 8 while fuzzing (fresh_runs_for).
 */
#include "fuzz_input.h"
#include "ov_renamed.h"

#include <detheap.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    MAX_LIVE = 256,
    LIVE_BUDGET = 4 << 20, /* bytes the live blocks may occupy */
    CLASS_MAX = 65536,     /* the largest class block */
};

typedef struct {
    uint8_t *p;
    size_t n; /* requested (and filled) */
    size_t usable;
    uint8_t fill;
    bool is_class; /* a class block (else a large one, even if small) */
} blk_t;

static struct {
    blk_t live[MAX_LIVE];
    size_t nlive;
    uint64_t live_bytes; /* sum of usable sizes */
    uint8_t next_fill;
    uint64_t hash;       /* every (address, usable size) handed out */
    dh_heap_t *heap;     /* the main thread's heap, where every block lies */
    unsigned mallinfos;  /* mallinfo2 calls made */
} S;

static void hash_in(uint64_t v) {
    S.hash ^= v;
    S.hash *= 0x100000001b3ull;
    S.hash ^= S.hash >> 29;
}

/* n bytes at p all equal `byte`, compared a chunk at a time. */
static bool all_equal(const uint8_t *p, size_t n, uint8_t byte) {
    static uint8_t chunk[4096];
    memset(chunk, byte, sizeof chunk);
    for (size_t at = 0; at < n; at += sizeof chunk) {
        size_t k = n - at < sizeof chunk ? n - at : sizeof chunk;
        if (memcmp(p + at, chunk, k) != 0) return false;
    }
    return true;
}

static void verify(const blk_t *b) { FUZZ_CHECK(all_equal(b->p, b->n, b->fill)); }

/* A new block of n bytes from the drop-in, aligned to align: check it, fill
 * it, track it.  A request of at most 64 KiB aligned to at most 4 KiB is
 * served by a class block; others by a large block (docs/DESIGN.md). */
static void adopt_as(uint8_t *p, size_t n, size_t align, bool is_class) {
    FUZZ_CHECK(p != NULL);
    FUZZ_CHECK(((uintptr_t)p & 15) == 0 && ((uintptr_t)p & (align - 1)) == 0);
    /* detheap's, not libc's, and the one thread's heap */
    if (S.heap == NULL) S.heap = dh_heap_of(p);
    FUZZ_CHECK(S.heap != NULL && dh_heap_of(p) == S.heap);
    size_t usable = dhov_malloc_usable_size(p);
    FUZZ_CHECK(usable >= n && usable >= 16 && usable == dh_usable_size(p));
    FUZZ_CHECK(is_class ? usable <= CLASS_MAX : usable % 4096 == 0);
    for (size_t i = 0; i < S.nlive; i++) {
        const blk_t *o = &S.live[i];
        FUZZ_CHECK((uintptr_t)p + usable <= (uintptr_t)o->p ||
                   (uintptr_t)o->p + o->usable <= (uintptr_t)p);
    }
    blk_t *b = &S.live[S.nlive++];
    *b = (blk_t){p, n, usable, (uint8_t)(++S.next_fill | 1), is_class};
    memset(p, b->fill, n);
    S.live_bytes += usable;
    hash_in((uintptr_t)p);
    hash_in(usable);
}

static void adopt(uint8_t *p, size_t n, size_t align) {
    adopt_as(p, n, align, n <= CLASS_MAX && align <= 4096);
}

static void drop(size_t i) {
    S.live_bytes -= S.live[i].usable;
    S.live[i] = S.live[--S.nlive];
}

/* The process statistics agree with the model (O(slots): once an input). */
static void check_stats(void) {
    dh_stats_t s;
    FUZZ_CHECK(dh_process_stats(&s, sizeof s));
    FUZZ_CHECK(s.live_count == S.nlive);
    FUZZ_CHECK(s.live_bytes == S.live_bytes);
}

/* The same for the thread's heap, after every step. */
static void check_heap_stats(void) {
    if (S.heap == NULL) return;
    dh_stats_t s;
    uint64_t large = 0, large_bytes = 0;
    for (size_t i = 0; i < S.nlive; i++)
        if (!S.live[i].is_class) {
            large++;
            large_bytes += S.live[i].usable;
        }
    FUZZ_CHECK(dh_heap_stats(S.heap, &s, sizeof s));
    FUZZ_CHECK(s.live_count == S.nlive);
    FUZZ_CHECK(s.large_live_count == large && s.large_live_bytes == large_bytes);
}

static size_t pick_size(fuzz_in_t *in) {
    uint8_t k = fin_u8(in);
    switch (k % 8) {
    case 0: case 1: case 2: return fin_u8(in);
    case 3: return fin_u16(in) % 1025; /* the lean classes */
    case 4: return fin_u16(in) % 65537;
    case 5: return (size_t)16 << (k / 8 % 13); /* a class size */
    case 6: return 65536 + (size_t)(k / 8 % 3) - 1;
    default: return 65537 + (size_t)fin_u16(in) * (1 + k / 8 % 16);
    }
}

static bool room_for(size_t n) {
    return S.nlive < MAX_LIVE && S.live_bytes + n + 4096 <= LIVE_BUDGET;
}

/* ---- the ops -------------------------------------------------------------- */

/* The usable size of an n-byte class block in the class set of p's heap
 * (DETHEAP_CLASSES: the fuzzer runs with either). */
static size_t set_usable(const void *p, size_t n) {
    dh_class_set_t set = dh_heap_class_set(dh_heap_of(p));
    return dh_class_set_size(set, dh_class_set_of(set, n));
}

static void op_malloc(fuzz_in_t *in) {
    size_t n = pick_size(in);
    if (!room_for(n)) return;
    uint8_t *p = dhov_malloc(n);
    adopt(p, n, 16);
    if (n <= CLASS_MAX)
        FUZZ_CHECK(S.live[S.nlive - 1].usable == set_usable(p, n));
}

static void op_calloc(fuzz_in_t *in) {
    uint8_t k = fin_u8(in);
    size_t count = fin_u16(in) % 300, size = fin_u16(in) % 600;
    if (k % 8 == 0) { /* count * size overflows */
        errno = 0;
        FUZZ_CHECK(dhov_calloc(SIZE_MAX / 2 + k, 2 + k % 5) == NULL);
        FUZZ_CHECK(errno == ENOMEM);
        return;
    }
    size_t n = count * size;
    if (!room_for(n)) return;
    uint8_t *p = dhov_calloc(count, size);
    FUZZ_CHECK(p != NULL && all_equal(p, n, 0));
    adopt(p, n, 16);
}

/* An alignment from k: a power of two 1 .. 1 MiB, or (k & 0x80) 0 or not a
 * power of two. */
static size_t pick_align(uint8_t k) {
    size_t align = (size_t)1 << (k % 21);
    if (k & 0x80) align = (k & 0x40) ? 0 : align | (align << (1 + k % 3)) | 8;
    return align;
}

static bool pow2(size_t a) { return a != 0 && (a & (a - 1)) == 0; }

static void op_posix_memalign(fuzz_in_t *in) {
    size_t align = pick_align(fin_u8(in)), n = pick_size(in);
    void *out = (void *)&S; /* must stay untouched on failure */
    if (!pow2(align) || align < sizeof(void *)) {
        errno = 12345;
        FUZZ_CHECK(dhov_posix_memalign(&out, align, n) == EINVAL);
        FUZZ_CHECK(out == (void *)&S && errno == 12345);
        return;
    }
    if (!room_for(n + align)) return;
    FUZZ_CHECK(dhov_posix_memalign(&out, align, n) == 0);
    adopt(out, n, align);
}

static void op_aligned(fuzz_in_t *in) {
    uint8_t how = fin_u8(in);
    size_t align = pick_align(fin_u8(in)), n = pick_size(in);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *p;
    switch (how % 4) {
    case 0: /* aligned_alloc: EINVAL unless a power of two */
        if (!pow2(align)) {
            errno = 0;
            FUZZ_CHECK(dhov_aligned_alloc(align, n) == NULL && errno == EINVAL);
            return;
        }
        if (!room_for(n + align)) return;
        adopt(dhov_aligned_alloc(align, n), n, align);
        return;
    case 1: { /* memalign: rounds the alignment up to a power of two */
        size_t a = 1;
        while (a < align) a <<= 1;
        if (!room_for(n + a)) return;
        p = dhov_memalign(align, n);
        adopt(p, n, a);
        return;
    }
    case 2:
        if (!room_for(n + page)) return;
        adopt(dhov_valloc(n), n, page);
        return;
    default: /* pvalloc: whole pages, at least one */
        if (!room_for(n + 2 * page)) return;
        p = dhov_pvalloc(n);
        adopt(p, n, page);
        FUZZ_CHECK(S.live[S.nlive - 1].usable >= (n ? (n + page - 1) & ~(page - 1) : page));
        return;
    }
}

static void op_realloc(fuzz_in_t *in) {
    uint8_t how = fin_u8(in);
    size_t n = pick_size(in);
    if (S.nlive == 0 || how % 8 == 0) { /* realloc(NULL, n) is malloc(n) */
        if (!room_for(n)) return;
        adopt(dhov_realloc(NULL, n), n, 16);
        return;
    }
    size_t i = fin_u8(in) % S.nlive;
    blk_t b = S.live[i];
    verify(&b);
    if (how % 8 == 1 || n == 0) { /* realloc(p, 0) frees, returns NULL */
        FUZZ_CHECK(dhov_realloc(b.p, 0) == NULL);
        drop(i);
        return;
    }
    if (how % 8 == 2) { /* reallocarray whose product overflows: ENOMEM */
        errno = 0;
        FUZZ_CHECK(dhov_reallocarray(b.p, SIZE_MAX / 4, 8) == NULL);
        FUZZ_CHECK(errno == ENOMEM);
        verify(&b);
        return;
    }
    if (!room_for(n)) return;
    drop(i);
    uint8_t *q = how % 8 == 3 ? dhov_reallocarray(b.p, 1, n) : dhov_realloc(b.p, n);
    FUZZ_CHECK(q != NULL);
    FUZZ_CHECK(all_equal(q, b.n < n ? b.n : n, b.fill));
    /* within its class a class block stays where it is */
    if (b.is_class && n <= CLASS_MAX && set_usable(b.p, n) == b.usable)
        FUZZ_CHECK(q == b.p);
    /* a class block grown to 4 KiB or more becomes a large block, and a
     * large block resized to 2 KiB or more stays one (docs/DESIGN.md) */
    bool large = b.is_class ? n > b.usable && n >= 4096 : n >= 2048;
    adopt_as(q, n, 16, n <= CLASS_MAX && !large);
}

static void op_free(fuzz_in_t *in) {
    uint8_t k = fin_u8(in);
    if (S.nlive == 0 || k == 0xff) {
        dhov_free(NULL); /* a no-op */
        return;
    }
    size_t i = k % S.nlive;
    verify(&S.live[i]);
    dhov_free(S.live[i].p);
    drop(i);
}

/* Free a class block and ask for its class again: LIFO gives the same
 * block back, its first 8 bytes (the list link) zeroed, the rest as the
 * program last wrote it (docs/DESIGN.md, "Guarantees"). */
static void op_reuse(fuzz_in_t *in) {
    if (S.nlive == 0) return;
    size_t i = fin_u8(in) % S.nlive;
    blk_t b = S.live[i];
    if (!b.is_class) return;
    verify(&b);
    dhov_free(b.p);
    drop(i);
    uint8_t *q = dhov_malloc(b.usable);
    FUZZ_CHECK(q == b.p);
    size_t link = b.n < 8 ? b.n : 8;
    FUZZ_CHECK(all_equal(q, link, 0));
    FUZZ_CHECK(all_equal(q + link, b.n - link, b.fill));
    adopt(q, b.usable, 16);
}

static void op_sizes(fuzz_in_t *in) {
    FUZZ_CHECK(dhov_malloc_usable_size(NULL) == 0);
    if (S.nlive > 0) {
        const blk_t *b = &S.live[fin_u8(in) % S.nlive];
        FUZZ_CHECK(dhov_malloc_usable_size(b->p) == b->usable);
    }
    if (++S.mallinfos > 4) return; /* O(slots): a few an input */
    struct mallinfo2 mi = dhov_mallinfo2();
    uint64_t large = 0, large_bytes = 0;
    for (size_t i = 0; i < S.nlive; i++)
        if (!S.live[i].is_class) {
            large++;
            large_bytes += S.live[i].usable;
        }
    FUZZ_CHECK(mi.uordblks == S.live_bytes);
    FUZZ_CHECK(mi.hblks == large && mi.hblkhd == large_bytes);
    FUZZ_CHECK(mi.arena >= mi.uordblks);
}

/* Run one input on the process heap; returns the hash of what it got. */
static uint64_t run(const uint8_t *data, size_t size) {
    memset(&S, 0, sizeof S);
    S.hash = 0xcbf29ce484222325ull;
    fuzz_in_t in = {data, size, false};
    while (!in.done) {
        uint8_t op = fin_u8(&in);
        if (in.done) break;
        switch (op % 10) {
        case 0: case 1: op_malloc(&in); break;
        case 2: op_calloc(&in); break;
        case 3: op_posix_memalign(&in); break;
        case 4: op_aligned(&in); break;
        case 5: op_realloc(&in); break;
        case 6: case 7: op_free(&in); break;
        case 8: op_reuse(&in); break;
        default: op_sizes(&in); break;
        }
        check_heap_stats();
    }
    for (size_t i = 0; i < S.nlive; i++) verify(&S.live[i]);
    while (S.nlive) { /* the process heap outlives the input */
        dhov_free(S.live[S.nlive - 1].p);
        drop(S.nlive - 1);
    }
    check_stats();
    FUZZ_CHECK(dh_process_check() == DH_CHECK_OK);
    return S.hash;
}

/* ---- the zygote: fresh process heaps ---------------------------------- */

static int to_zygote = -1, from_zygote = -1;

static bool full_read(int fd, void *buf, size_t n) {
    for (size_t at = 0; at < n;) {
        ssize_t k = read(fd, (char *)buf + at, n - at);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) continue;
            return false;
        }
        at += (size_t)k;
    }
    return true;
}

static bool full_write(int fd, const void *buf, size_t n) {
    for (size_t at = 0; at < n;) {
        ssize_t k = write(fd, (const char *)buf + at, n - at);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) continue;
            return false;
        }
        at += (size_t)k;
    }
    return true;
}

/* In a fresh fork of the zygote: run the input, send the hash. */
static uint64_t worker(const uint8_t *data, size_t size, bool *ok) {
    int fds[2];
    *ok = false;
    if (pipe(fds) != 0) return 0;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        uint64_t h = run(data, size);
        _exit(full_write(fds[1], &h, sizeof h) ? 0 : 1);
    }
    close(fds[1]);
    uint64_t h = 0;
    bool got = pid > 0 && full_read(fds[0], &h, sizeof h);
    close(fds[0]);
    int status = 0;
    if (pid > 0) waitpid(pid, &status, 0);
    *ok = got && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return h;
}

/* The zygote's loop: an input in (length, bytes), two hashes and whether
 * both workers succeeded out.  Ends when the fuzzer does. */
static void zygote(int in, int out) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (;;) {
        uint64_t size;
        if (!full_read(in, &size, sizeof size)) _exit(0);
        uint8_t *data = malloc(size ? size : 1);
        if (data == NULL || !full_read(in, data, size)) _exit(1);
        bool ok1, ok2;
        uint64_t reply[3];
        reply[0] = worker(data, size, &ok1);
        reply[1] = worker(data, size, &ok2);
        reply[2] = ok1 && ok2;
        free(data);
        if (!full_write(out, reply, sizeof reply)) _exit(1);
    }
}

/* Before the process heap is first used. */
static void start_zygote(void) {
    int down[2], up[2];
    FUZZ_CHECK(pipe(down) == 0 && pipe(up) == 0);
    pid_t pid = fork();
    FUZZ_CHECK(pid >= 0);
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        zygote(down[0], up[1]);
    }
    close(down[0]);
    close(up[1]);
    to_zygote = down[1];
    from_zygote = up[0];
}

/* Two forks an input cost more than the input: the fresh runs are made
 * for the first FRESH_ALL inputs of the process (a replayed corpus) and
 * then for one input in FRESH_EVERY, chosen by its bytes. */
#define FRESH_ALL 64
#define FRESH_EVERY 8

static bool fresh_runs_for(const uint8_t *data, size_t size) {
    static unsigned inputs;
    if (inputs < FRESH_ALL) {
        inputs++;
        return true;
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 0x100000001b3ull;
    return h % FRESH_EVERY == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (to_zygote < 0) start_zygote();
    bool fresh = fresh_runs_for(data, size);
    uint64_t len = size, reply[3];
    if (fresh)
        FUZZ_CHECK(full_write(to_zygote, &len, sizeof len) &&
                   full_write(to_zygote, data, size));
    run(data, size); /* here, with coverage, on the long-lived heap */
    if (!fresh) return 0;
    FUZZ_CHECK(full_read(from_zygote, reply, sizeof reply));
    FUZZ_CHECK(reply[2] == 1);        /* both fresh runs passed */
    FUZZ_CHECK(reply[0] == reply[1]); /* and got the same addresses */
    return 0;
}
