/*
 * ideal_lifo.c - the benchmarks' reference row, "an ideal LIFO free list
 * behind a call": a minimal malloc, preloaded like any other allocator
 * (LD_PRELOAD=BUILD/bench/libideal_lifo.so), that does the least a
 * size-class allocator can do, so that detheap's microbenchmark times can
 * be read against it.  It is built by bench/CMakeLists.txt, run by
 * scripts/bench.sh for the microbenchmarks and the instruction count only,
 * and never installed.  It is not an allocator to use.
 *
 * Classes.  Class 0 holds malloc(0) (16-byte blocks); class k = 1..64 holds
 * blocks of 16k bytes (16-byte granules up to 1 KiB); then powers of two
 * from 2 KiB to 64 KiB.  Blocks over 64 KiB take more power-of-two classes
 * of the same kind, up to 256 MiB, so that realloc's growth past 64 KiB
 * reuses a block instead of mapping one each time.  A request is rounded up
 * to its class; anything larger is mapped on its own (below).
 *
 * Layout.  One reserved range, REGION_SIZE bytes, cut into one 512 MiB
 * sub-region per class:
 *
 *   g_base                                                  + REGION_SIZE
 *   | class 0 | class 1 | ... | class 64 | 2 KiB | ... | 256 MiB |
 *   |<512 MiB>| blocks of the class, bumped from the start ->   |
 *
 * so free() finds the class from the address alone, (p - g_base) >> 29.
 * Each class has a thread-local LIFO free list threaded through its free
 * blocks (the first word of a free block is the next one) and a bump
 * offset into its sub-region.  malloc pops the list, or bumps when it is
 * empty; free pushes.  There is no header, no state and no validation: a
 * pointer in the range is trusted to be a live block start.  That is what
 * makes it the ideal, and why it must never see a buggy program.
 *
 * Alignment.  Block k of a class of size s lies at base + colour + k*s,
 * with the base 64 KiB-aligned and the colour (under 4 KiB, spreading the
 * classes over the cache sets) a multiple of the largest power of two
 * dividing s, so every block is aligned to that power of two.  An aligned
 * request of n bytes at alignment a <= 64 KiB takes the class of n rounded
 * up to a multiple of a, which is aligned to a.
 *
 * Blocks over 256 MiB, larger alignments, and any class whose 512 MiB are
 * used up, are their own private anonymous mapping, with a 16-byte header
 * (the mapping's start and length) just below the block; free() tells them
 * from class blocks by their address outside the range.
 *
 * Limits (it is a reference, not a product):
 *   - Thread-safe only as far as the benchmarks need: the range is created
 *     once (compare-and-swap) and the bump offsets are atomic, but the free
 *     lists are per thread, so a block freed by another thread joins that
 *     thread's list, and a thread's lists are lost when it ends.
 *   - Memory is never returned to the OS, except the separate mappings; the
 *     sub-region of a class is 512 MiB, after which that class falls back
 *     to mappings of its own.  REGION_SIZE (41.5 GiB: valgrind maps no more
 *     than 64 GiB at once) is reserved with MAP_NORESERVE and given no
 *     huge-page advice (the system's default applies, as it does to
 *     detheap with its default DETHEAP_THP=off); only what is touched is
 *     committed.  If the range cannot be
 *     reserved the library says so on stderr and aborts, rather than carry
 *     on as a different allocator.
 *   - No checks of any kind: a double free or a foreign pointer corrupts
 *     the lists silently.
 *   - realloc never shrinks a block and moves it (copying its usable size)
 *     whenever the new size needs another class.
 *   - mallinfo, malloc_trim, malloc_stats and mallopt are not replaced: the
 *     C library's report on its own (unused) heap.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

#define GRANULE 16u
#define SMALL_MAX 1024u            /* granule classes 1..64 end here */
#define N_SMALL (SMALL_MAX / GRANULE + 1) /* 65, with class 0 for size 0 */
#define POW2_MIN_LOG 11            /* 2 KiB: the first power-of-two class */
#define POW2_MAX_LOG 28            /* 256 MiB: the last */
#define CLASS_MAX ((size_t)1 << POW2_MAX_LOG)
#define N_CLASSES (N_SMALL + POW2_MAX_LOG - POW2_MIN_LOG + 1) /* 83 */
#define SUB_SHIFT 29               /* 512 MiB per class */
#define SUB_SIZE ((size_t)1 << SUB_SHIFT)
#define REGION_SIZE ((size_t)N_CLASSES << SUB_SHIFT)
#define BASE_ALIGN ((size_t)1 << 16) /* 64 KiB: aligns every class block */
#define PAGE 4096u                 /* Linux x86-64 */
#define MAP_HDR 16u                /* header of a separate mapping */

static_assert(CLASS_MAX <= SUB_SIZE, "a class block fits its sub-region");
static_assert(MAP_HDR >= 2 * sizeof(size_t), "the mapping header fits");

/* Until the range exists, g_base is in the kernel half, so that p - g_base
 * is at least 2^47 for every user pointer and NULL: free() then takes the
 * slow path, which knows NULL and separate mappings. */
#define NO_BASE ((uintptr_t)0xFFFF800000000000ull)
static _Atomic uintptr_t g_base = NO_BASE;
/* Bytes of each class's sub-region handed out so far. */
static _Atomic size_t g_bump[N_CLASSES];
/* The free lists: the head of each class's list, this thread's. */
static _Thread_local void *tl_free[N_CLASSES]
    __attribute__((tls_model("initial-exec")));

/* ---- size classes ----------------------------------------------------- */

/* The class of a request of n <= CLASS_MAX bytes. */
static inline size_t size_class(size_t n) {
    if (LIKELY(n <= SMALL_MAX)) return (n + GRANULE - 1) / GRANULE;
    size_t log = 64u - (size_t)__builtin_clzll(n - 1); /* ceil(log2 n) */
    return N_SMALL + log - POW2_MIN_LOG;
}

static inline size_t class_size(size_t c) {
    if (c < N_SMALL) return c == 0 ? GRANULE : (size_t)c * GRANULE;
    return (size_t)1 << (c - N_SMALL + POW2_MIN_LOG);
}

/* Where the blocks of class c start in its sub-region: classes 512 MiB apart
 * would all start on the same cache sets, and a mix of sizes (the lifo
 * benchmark) would keep missing the L1 cache; 37 is prime to 64, so
 * neighbouring classes start on cache lines far apart in a 4 KiB page.
 * Rounded down to the class's own alignment, which it keeps. */
static size_t class_colour(size_t c) {
    size_t size = class_size(c);
    return (c * 37u % 64u * 64u) & ~((size & -size) - 1);
}

/* ---- separate mappings ------------------------------------------------ */

typedef struct {
    void *map;  /* start of the mapping */
    size_t len; /* its length */
} map_hdr_t;
static_assert(sizeof(map_hdr_t) <= MAP_HDR, "the header fits below the block");

/* A mapping of its own for n bytes at alignment align (a power of two, at
 * least 16); NULL with errno ENOMEM on failure. */
static void *map_alloc(size_t n, size_t align) {
    if (n > SIZE_MAX / 2 || align > SIZE_MAX / 4) {
        errno = ENOMEM;
        return NULL;
    }
    size_t len = (n + MAP_HDR + (align > MAP_HDR ? align : 0) + PAGE - 1) &
                 ~(size_t)(PAGE - 1);
    char *map = mmap(NULL, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    uintptr_t p = ((uintptr_t)map + MAP_HDR + align - 1) & ~(uintptr_t)(align - 1);
    map_hdr_t *h = (map_hdr_t *)(p - MAP_HDR);
    h->map = map;
    h->len = len;
    return (void *)p;
}

static inline map_hdr_t *map_header(void *p) {
    return (map_hdr_t *)((char *)p - MAP_HDR);
}

static size_t map_usable(void *p) {
    map_hdr_t *h = map_header(p);
    return (size_t)((char *)h->map + h->len - (char *)p);
}

/* ---- the range -------------------------------------------------------- */

/* Reserve the range once, or abort: a reference that quietly fell back
 * to a mapping per block would measure something else. */
static void region_init(void) {
    size_t span = REGION_SIZE + BASE_ALIGN;
    int saved = errno;
    char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) {
        static const char msg[] =
            "ideal_lifo: cannot reserve its address range\n";
        if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) abort();
        abort();
    }
    uintptr_t base =
        ((uintptr_t)raw + BASE_ALIGN - 1) & ~(uintptr_t)(BASE_ALIGN - 1);
    size_t front = base - (uintptr_t)raw;
    if (front) munmap(raw, front);
    if (span - front > REGION_SIZE)
        munmap((char *)base + REGION_SIZE, span - front - REGION_SIZE);
    uintptr_t expected = NO_BASE;
    if (!atomic_compare_exchange_strong(&g_base, &expected, base))
        munmap((void *)base, REGION_SIZE); /* another thread was first */
    errno = saved;
}

/* A fresh block of class c, bumped from its sub-region; once that is used
 * up, a mapping of its own. */
static __attribute__((noinline)) void *class_refill(size_t c) {
    size_t size = class_size(c);
    uintptr_t base = atomic_load_explicit(&g_base, memory_order_acquire);
    if (UNLIKELY(base == NO_BASE)) {
        region_init();
        base = atomic_load_explicit(&g_base, memory_order_acquire);
    }
    size_t off = atomic_fetch_add_explicit(&g_bump[c], size, memory_order_relaxed);
    off += class_colour(c);
    if (off <= SUB_SIZE - size) return (void *)(base + (c << SUB_SHIFT) + off);
    size_t align = size & -size; /* the class's own alignment */
    return map_alloc(size, align < GRANULE ? GRANULE : align);
}

/* ---- the allocator ---------------------------------------------------- */

/* A block of class c: the head of this thread's list, else a fresh one.
 * *fresh is set when the block has never been used (it is zero). */
static inline void *class_alloc(size_t c, bool *fresh) {
    void *p = tl_free[c];
    if (LIKELY(p != NULL)) {
        tl_free[c] = *(void **)p;
        *fresh = false;
        return p;
    }
    *fresh = true;
    return class_refill(c);
}

/* n bytes aligned to align (a power of two, at least 16). */
static void *alloc_aligned(size_t n, size_t align) {
    bool fresh;
    if (n == 0) n = 1; /* class 0 is only 16-byte aligned */
    if (align <= BASE_ALIGN) {
        size_t m = (n + align - 1) & ~(align - 1);
        if (m >= n && m <= CLASS_MAX) return class_alloc(size_class(m), &fresh);
    }
    return map_alloc(n, align);
}

static inline bool in_region(void *p, size_t *c) {
    uintptr_t base = atomic_load_explicit(&g_base, memory_order_relaxed);
    uintptr_t off = (uintptr_t)p - base;
    *c = off >> SUB_SHIFT;
    return *c < N_CLASSES; /* off < REGION_SIZE */
}

static size_t usable_size(void *p) {
    size_t c;
    if (in_region(p, &c)) return class_size(c);
    return p == NULL ? 0 : map_usable(p);
}

static __attribute__((noinline)) void free_slow(void *p) {
    if (p == NULL) return;
    map_hdr_t *h = map_header(p);
    munmap(h->map, h->len);
}

EXPORT void *malloc(size_t n) {
    bool fresh;
    if (LIKELY(n <= SMALL_MAX))
        return class_alloc((n + GRANULE - 1) / GRANULE, &fresh);
    if (n <= CLASS_MAX) return class_alloc(size_class(n), &fresh);
    return map_alloc(n, GRANULE);
}

EXPORT void free(void *p) {
    size_t c;
    if (LIKELY(in_region(p, &c))) {
        *(void **)p = tl_free[c];
        tl_free[c] = p;
        return;
    }
    free_slow(p);
}

EXPORT void *calloc(size_t count, size_t size) {
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    if (n > CLASS_MAX) return map_alloc(n, GRANULE); /* fresh pages: zero */
    bool fresh;
    void *p = class_alloc(size_class(n), &fresh);
    if (p != NULL && !fresh) memset(p, 0, n);
    return p;
}

EXPORT void *realloc(void *p, size_t n) {
    if (p == NULL) return malloc(n);
    if (n == 0) { /* glibc's behaviour: free, return NULL */
        free(p);
        return NULL;
    }
    size_t have = usable_size(p);
    if (n <= have) return p;
    void *q = malloc(n);
    if (q == NULL) return NULL;
    memcpy(q, p, have);
    free(p);
    return q;
}

EXPORT void *reallocarray(void *p, size_t count, size_t size) {
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n) {
    if (align < sizeof(void *) || (align & (align - 1)) != 0) return EINVAL;
    int saved = errno;
    void *p = alloc_aligned(n, align < GRANULE ? GRANULE : align);
    if (p == NULL) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

/* glibc's memalign: an alignment that is not a power of two is rounded up
 * to one; one beyond SIZE_MAX / 2 fails with EINVAL. */
EXPORT void *memalign(size_t align, size_t n) {
    if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    size_t a = GRANULE;
    while (a < align) a <<= 1;
    return alloc_aligned(n, a);
}

/* aligned_alloc as glibc >= 2.38: any power of two (else EINVAL), any size. */
EXPORT void *aligned_alloc(size_t align, size_t n) {
    if (align == 0 || (align & (align - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    return alloc_aligned(n, align < GRANULE ? GRANULE : align);
}

EXPORT void *valloc(size_t n) { return alloc_aligned(n, PAGE); }

EXPORT void *pvalloc(size_t n) {
    if (n > SIZE_MAX - PAGE) {
        errno = ENOMEM;
        return NULL;
    }
    return alloc_aligned((n + PAGE - 1) & ~(size_t)(PAGE - 1), PAGE);
}

EXPORT size_t malloc_usable_size(void *p) { return usable_size(p); }
