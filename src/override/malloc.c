/*
 * override/malloc.c - the libc malloc family, forwarding to the process
 * heap (process.c).  This file only forwards: glibc's contract for each
 * function (errno values, EINVAL for bad alignments, realloc(p, 0),
 * overflow checks) is kept here, the allocation logic is not.
 *
 * malloc and free inline lean class-block fast paths when the thread
 * already has a heap and no observation (stats, trace) is on; everything
 * else goes through process.c.  Nothing here calls a libc
 * function that could allocate, and every path works before the process
 * heap exists (the first call creates it).
 */
#include "../fastpath.h"
#include "../process.h"

#include <errno.h>
#include <malloc.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

/* -DDH_OV_RENAMED (tests only, the detheap_ov_renamed library): each
 * function below is defined as dhov_NAME instead of NAME, so that a
 * program with another malloc (a sanitizer runtime's) can call this file's
 * code by those names.  Function-like macros, after the libc headers, so
 * that the struct tags mallinfo and mallinfo2 keep their names. */
#ifdef DH_OV_RENAMED
#define malloc(...) dhov_malloc(__VA_ARGS__)
#define free(...) dhov_free(__VA_ARGS__)
#define calloc(...) dhov_calloc(__VA_ARGS__)
#define realloc(...) dhov_realloc(__VA_ARGS__)
#define reallocarray(...) dhov_reallocarray(__VA_ARGS__)
#define posix_memalign(...) dhov_posix_memalign(__VA_ARGS__)
#define aligned_alloc(...) dhov_aligned_alloc(__VA_ARGS__)
#define memalign(...) dhov_memalign(__VA_ARGS__)
#define valloc(...) dhov_valloc(__VA_ARGS__)
#define pvalloc(...) dhov_pvalloc(__VA_ARGS__)
#define malloc_usable_size(...) dhov_malloc_usable_size(__VA_ARGS__)
#define mallinfo2(...) dhov_mallinfo2(__VA_ARGS__)
#define mallinfo(...) dhov_mallinfo(__VA_ARGS__)
#define malloc_trim(...) dhov_malloc_trim(__VA_ARGS__)
#define malloc_stats(...) dhov_malloc_stats(__VA_ARGS__)
#define mallopt(...) dhov_mallopt(__VA_ARGS__)
#endif

/* The lean fast paths: fastpath.h's checked pop and push, with the bin
 * found by one table load (internal.h: bin_by_size, bin_by_state) and no
 * byte counts.  dh_self.fast is dh_empty_heap until the thread has a heap
 * and whenever the process is observed (stats, trace): its lists are empty
 * and its range void, so every call falls through to process.c.  Anything
 * unusual - an empty free list, a large size, a block of another thread's
 * heap, a bad pointer - takes the same exit. */

/* The pop found no block it may hand out.  A damaged list is abandoned and
 * reported, and n served the long way.  An empty one: carve the class's
 * next block, as bin.c would, but only when the foreign list, which bin.c
 * takes first, is empty and no block waits in the inbox (owner mode: the
 * process layer takes those first); anything else goes the long way.  Out
 * of line, so that the pop keeps its registers. */
static __attribute__((noinline)) void *lean_miss(size_t n, dh_bin_t *b,
                                                 void *head) {
    dh_heap_t *h = dh_self.fast;
    if (DH_UNLIKELY(head != NULL)) {
        dh_list_corrupted(h, "malloc", n, b->live_state - DH_ST_LIVE, false,
                          head);
        return dh_proc_malloc(n);
    }
    void *p = NULL;
    /* (dh_empty_heap is no process heap: it has no inbox to read) */
    if (h->process && b->foreign == NULL &&
        __atomic_load_n(&dh_ph(h)->inbox, __ATOMIC_RELAXED) == NULL)
        p = dh_bin_carve(h, b);
    return p != NULL ? p : dh_proc_malloc(n);
}

/* malloc's body, under another name: the compiler must not see malloc
 * followed by memset in calloc (it would make that a call to calloc). */
static inline __attribute__((always_inline)) void *lean_malloc(size_t n) {
    dh_heap_t *h = dh_self.fast;
    dh_bin_t *b;
    if (DH_LIKELY(n <= DH_SMALL_MAX))
        b = h->bin_by_size[(n + 15) >> DH_GRANULE_SHIFT];
    else if (n <= DH_MAX_CLASS_SIZE)
        b = &h->bins[dh_heap_class_of(h, n)];
    else
        return dh_proc_malloc(n);
    return dh_bin_pop(h, b, n, lean_miss);
}

EXPORT void *malloc(size_t n) { return lean_malloc(n); }

EXPORT void free(void *ptr) {
    dh_heap_t *h = dh_self.fast;
    uintptr_t g = dh_own_granule(h, ptr);
    if (DH_LIKELY(g < h->fast_granules)) {
        uint8_t *st = h->data_state + g;
        uint8_t s = dh_st_load(st);
        dh_bin_t *b = h->bin_by_state[s]; /* NULL unless a live class block */
        if (DH_LIKELY(b != NULL)) {
            dh_bin_push(b, &b->head, ptr, st);
            return;
        }
    }
    dh_proc_free(ptr, "free");
}

EXPORT void *calloc(size_t count, size_t size) {
    size_t n;
    if (DH_UNLIKELY(__builtin_mul_overflow(count, size, &n)) ||
        n > DH_MAX_CLASS_SIZE || dh_observe) /* observed: traced as calloc */
        return dh_proc_calloc(count, size);
    void *p = lean_malloc(n);
    if (p != NULL) memset(p, 0, n);
    return p;
}

/* realloc of an own class block to a class size stays in the caller's heap,
 * so it is decided here: in place within the class, else moved through the
 * lean paths (new block first, then the copy, then the old block freed:
 * the order dh_realloc_block keeps, so the addresses are the same), or,
 * growing to a large block (dh_realloc_to_large), by the general path.
 * realloc(NULL, n) is malloc(n) unless observed (traced as realloc). */
EXPORT void *realloc(void *ptr, size_t n) {
    if (ptr == NULL && !dh_observe) return lean_malloc(n);
    dh_heap_t *h = dh_self.fast;
    uintptr_t g = dh_own_granule(h, ptr);
    uint8_t *st = h->data_state + g;
    dh_bin_t *b = g < h->fast_granules ? h->bin_by_state[dh_st_load(st)] : NULL;
    if (b != NULL && n != 0 && n <= DH_MAX_CLASS_SIZE) {
        int c = b->live_state - DH_ST_LIVE;
        size_t old = dh_bin_size(b);
        if (dh_class_keeps(h, c, n)) return ptr;
        if (!dh_realloc_to_large(old, n)) {
            void *q = lean_malloc(dh_realloc_want(old, n));
            if (q == NULL) return NULL; /* ENOMEM; ptr is untouched */
            memcpy(q, ptr, old < n ? old : n);
            dh_bin_push(b, &b->head, ptr, st);
            return q;
        }
    } else if (g < h->fast_granules && dh_st_load(st) == DH_ST_LIVE_LARGE &&
               dh_realloc_stays_large(n) && h->process && !dh_observe &&
               __atomic_load_n(&dh_ph(h)->inbox, __ATOMIC_RELAXED) == NULL &&
               dh_large_resize(h, (uintptr_t)ptr, n)) {
        return ptr; /* an own large block resized in place, as the general
                     * path would (dh_realloc_block) */
    }
    return dh_proc_realloc(ptr, n, "realloc");
}

EXPORT void *reallocarray(void *ptr, size_t count, size_t size) {
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return dh_proc_realloc(ptr, n, "reallocarray");
}

static bool pow2(size_t a) { return a != 0 && (a & (a - 1)) == 0; }

EXPORT int posix_memalign(void **out, size_t align, size_t n) {
    if (!pow2(align) || align % sizeof(void *) != 0) return EINVAL;
    int saved = errno;
    void *p = dh_proc_aligned(align, n);
    if (p == NULL) {
        int e = errno;
        errno = saved;
        return e;
    }
    *out = p;
    return 0;
}

EXPORT void *aligned_alloc(size_t align, size_t n) {
    if (!pow2(align)) { /* glibc >= 2.38: EINVAL for a bad alignment */
        errno = EINVAL;
        return NULL;
    }
    return dh_proc_aligned(align, n);
}

/* memalign: glibc rounds an alignment that is not a power of two up. */
EXPORT void *memalign(size_t align, size_t n) {
    if (align > ((size_t)1 << (DH_ADDRESS_BITS - 1))) {
        errno = EINVAL;
        return NULL;
    }
    size_t a = 1;
    while (a < align) a <<= 1;
    return dh_proc_aligned(a, n);
}

EXPORT void *valloc(size_t n) { return dh_proc_aligned(dh_os_page_size(), n); }

EXPORT void *pvalloc(size_t n) {
    size_t page = dh_os_page_size();
    size_t rounded = (n + page - 1) & ~(page - 1);
    if (rounded < n) {
        errno = ENOMEM;
        return NULL;
    }
    return dh_proc_aligned(page, rounded ? rounded : page);
}

EXPORT size_t malloc_usable_size(void *ptr) {
    return ptr ? dh_proc_usable(ptr) : 0;
}

static size_t clamp(uint64_t v) { return v > SIZE_MAX ? SIZE_MAX : (size_t)v; }

/* mallinfo2: detheap's figures in glibc's fields.  arena: bytes carved
 * from the range; uordblks: bytes in live blocks; fordblks: carved bytes
 * not in live blocks; ordblks: free blocks; hblks/hblkhd: large blocks;
 * keepcost: 0 (nothing is ever trimmed). */
EXPORT struct mallinfo2 mallinfo2(void) {
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    dh_stats_t s;
    if (!dh_process_stats(&s, sizeof s)) return mi;
    mi.arena = clamp(s.storage_bytes);
    mi.ordblks = clamp(s.free_block_count);
    mi.hblks = clamp(s.large_live_count);
    mi.hblkhd = clamp(s.large_live_bytes);
    mi.uordblks = clamp(s.live_bytes);
    mi.fordblks = clamp(s.storage_bytes > s.live_bytes
                            ? s.storage_bytes - s.live_bytes
                            : 0);
    return mi;
}

EXPORT struct mallinfo mallinfo(void) {
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = (int)m2.arena;
    mi.ordblks = (int)m2.ordblks;
    mi.hblks = (int)m2.hblks;
    mi.hblkhd = (int)m2.hblkhd;
    mi.uordblks = (int)m2.uordblks;
    mi.fordblks = (int)m2.fordblks;
    return mi;
}

/* Memory is never returned to the OS: nothing is released. */
EXPORT int malloc_trim(size_t pad) {
    (void)pad;
    return 0;
}

EXPORT void malloc_stats(void) {
    if (dh_self.heap == NULL && dh_proc_heap_slow() == NULL) return;
    dh_proc_report(2, false);
}

/* mallopt: no glibc tunable applies; report failure (0) as glibc does for
 * an unknown parameter. */
EXPORT int mallopt(int param, int value) {
    (void)param;
    (void)value;
    return 0;
}
