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

/* The lean fast paths: a free-list pop or push, the state byte and one
 * counter, with the bin found by one table load (internal.h: bin_by_size,
 * bin_by_state).  dh_self.fast is dh_empty_heap until the thread has a
 * heap and whenever the process is observed (stats, trace): its lists are
 * empty and its range void, so every call falls through to process.c.
 * Anything unusual - an empty free list, a large size, a block of another
 * thread's heap, a bad pointer - takes the same exit. */
/* An empty free list: carve the class's next block, as bin.c would, but
 * only when the foreign list, which bin.c takes first, is empty, the
 * current span has room and no block waits in the inbox (owner mode: the
 * process layer takes those first); anything else goes the long way.
 * The span may lie in another thread heap's range (made from a large block
 * freed here), so its state byte is found the general way.  Out of line, so
 * that the pop path below keeps its registers. */
static __attribute__((noinline)) void *lean_carve(size_t n, dh_bin_t *b) {
    dh_heap_t *h = dh_self.fast;
    uintptr_t size = dh_class_sizes[b->live_state - DH_ST_LIVE];
    if (b->foreign != NULL || b->carve_end - b->carve < size ||
        __atomic_load_n(&dh_ph(h)->inbox, __ATOMIC_RELAXED) != NULL)
        return dh_proc_malloc(n);
    void **p = (void **)b->carve;
    b->carve += size;
    b->carved++;
    DH_MEM_ACCESS(p, sizeof(void *));
    *p = NULL;
    dh_st_store(dh_state_at(h, (uintptr_t)p), b->live_state);
    DH_BLOCK_ALLOC(p, size);
    b->allocs++;
    return p;
}

/* The head of b's list failed its check: abandon the list, report, and
 * serve n the long way.  Out of line: the error path. */
/* The head of b's list is not a free block of b's class in the committed
 * data: NULL (the list is empty: carve), or the list was overwritten
 * (abandon it, report, and serve n the long way).  Out of line. */
static __attribute__((noinline)) void *lean_empty(size_t n, dh_bin_t *b,
                                                  void *at) {
    if (DH_LIKELY(at == NULL)) return lean_carve(n, b);
    dh_list_corrupted(dh_self.fast, "malloc", n, dh_class_of(n), false, at);
    return dh_proc_malloc(n);
}

/* malloc's body, under another name: the compiler must not see malloc
 * followed by memset in calloc (it would make that a call to calloc). */
static inline __attribute__((always_inline)) void *lean_malloc(size_t n) {
    dh_heap_t *h = dh_self.fast;
    dh_bin_t *b;
    if (DH_LIKELY(n <= DH_SMALL_MAX))
        b = h->bin_by_size[(n + 15) >> DH_GRANULE_SHIFT];
    else if (n <= DH_MAX_CLASS_SIZE)
        b = &h->bins[dh_class_of(n)];
    else
        return dh_proc_malloc(n);
    void **p = b->head;
    /* main lists hold only own-range blocks: before p is handed out and
     * its link followed, it must lie in the committed data at a 16-byte
     * boundary and say "free, this class" (a write after free or an
     * overflow can aim a link anywhere).  NULL fails the first test too. */
    uintptr_t g = dh_own_granule(h, p);
    if (DH_UNLIKELY(g >= h->fast_granules)) return lean_empty(n, b, p);
    uint8_t *st = h->data_state + g;
    if (DH_UNLIKELY(dh_st_load(st) != b->free_state))
        return lean_empty(n, b, p);
    b->head = DH_LINK_READ(p);
    *p = NULL; /* no free-list link is left for the caller */
    dh_st_store(st, b->live_state);
    DH_BLOCK_ALLOC(p, dh_class_sizes[b->live_state - DH_ST_LIVE]);
    b->allocs++;
    return p;
}

EXPORT void *malloc(size_t n) { return lean_malloc(n); }

/* Push the live own block ptr (state byte *st, value s, bin b) onto b. */
static inline __attribute__((always_inline)) void lean_free(dh_bin_t *b,
                                                            void *ptr,
                                                            uint8_t *st,
                                                            uint8_t s) {
    dh_st_store(st, (uint8_t)(s + (DH_ST_FREE - DH_ST_LIVE)));
    *(void **)ptr = b->head;
    b->head = ptr;
    DH_BLOCK_FREE(ptr, dh_class_sizes[s - DH_ST_LIVE]);
    b->frees++;
}

EXPORT void free(void *ptr) {
    dh_heap_t *h = dh_self.fast;
    uintptr_t g = dh_own_granule(h, ptr);
    if (DH_LIKELY(g < h->fast_granules)) {
        uint8_t *st = h->data_state + g;
        uint8_t s = dh_st_load(st);
        dh_bin_t *b = h->bin_by_state[s]; /* NULL unless a live class block */
        if (DH_LIKELY(b != NULL)) {
            lean_free(b, ptr, st, s);
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
 * the order dh_realloc_block keeps, so the addresses are the same).
 * realloc(NULL, n) is malloc(n) unless observed (traced as realloc). */
EXPORT void *realloc(void *ptr, size_t n) {
    if (ptr == NULL && !dh_observe) return lean_malloc(n);
    dh_heap_t *h = dh_self.fast;
    uintptr_t g = dh_own_granule(h, ptr);
    uint8_t *st = h->data_state + g;
    dh_bin_t *b = g < h->fast_granules ? h->bin_by_state[dh_st_load(st)] : NULL;
    if (b != NULL && n != 0 && n <= DH_MAX_CLASS_SIZE) {
        int c = b->live_state - DH_ST_LIVE;
        size_t old = dh_class_sizes[c];
        if (dh_class_of(n) == c) return ptr;
        void *q = lean_malloc(n);
        if (q == NULL) return NULL; /* ENOMEM; ptr is untouched */
        memcpy(q, ptr, old < n ? old : n);
        lean_free(b, ptr, st, b->live_state);
        return q;
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
