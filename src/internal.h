/*
 * internal.h - detheap's vocabulary, numbered invariants, the heap struct
 * and the assert macros.  Every source file of the library includes it.
 *
 * Vocabulary
 * ----------
 *   range      the heap's reserved address range [base, base + size).
 *   header     the first DH_HEADER_SIZE bytes of the range: struct dh_heap.
 *   state map  one byte per 16-byte granule of the range, right after the
 *              header: what starts at that granule (see "State bytes").
 *   data       [data_start, limit): where spans and large blocks are carved,
 *              bottom up; `top` is the first byte never carved (or given
 *              back to the top by a freed large block).
 *   class      one of the heap's size classes (its class set: the spec's
 *              13, or the fine set's 59); class c serves sizes up to
 *              the size of its bin.
 *   span       64 KiB of data given to one class and cut into its blocks
 *              in address order, one at a time ("carving").
 *   bin        per class: a LIFO free list threaded through the free blocks
 *              themselves (first 8 bytes: next pointer), and the class's
 *              current span with its carve pointer.
 *   block      what the APIs hand out: a class block, or a large block.
 *   large      a block of whole 4 KiB pages, for > 64 KiB or over-aligned
 *              requests; free large blocks are coalesced and kept in an AVL
 *              tree ordered by (pages, address), for best fit.
 *   handle     a block's offset from base, divided by 16.
 *
 *   Range layout:
 *
 *   base                                data_start            top     limit
 *   | header | state map (size/16 bytes) | span | large | span |.......|
 *                                        ^ 64 KiB aligned     ^ carved up
 *                                                               to here
 *
 * State bytes (one per granule g; "start" = a block starts at g), in four
 * groups of 64 values: live, free, size tags, retired:
 *   0x00          nothing starts here (inside a block, or not carved)
 *   0x01 + c      live class-c block starts here    (c < DH_MAX_CLASSES)
 *   0x3f          live large block starts here
 *   0x41 + c      free class-c block starts here (on bin c's free list)
 *   0x7f          free large block starts here (in the large tree of the
 *                 heap whose range it lies in)
 *   0x7e          free large block starts here, held in the large tree of
 *                 another heap (freed by another thread); never coalesced
 *   0xc1 + c      retired class-c block starts here: freed by a thread of
 *                 another heap that kept no more such blocks; on no list,
 *                 never handed out again (unless its range runs out)
 *   0xff          retired large block starts here (its pages given back)
 *   0x80 | 6 bits a large block's size tag: its page count, 6 bits a byte,
 *                 low bits first, in the 6 granules after its start (head
 *                 tag) and in its last 8 granules (tail tag, for the left
 *                 neighbour to be found when coalescing; those 8 state
 *                 bytes are one aligned word, accessed atomically because
 *                 another thread may read it while this one rewrites it).
 *
 * Invariants (dh_heap_check reports the first broken one by number)
 * ----------
 *   I1  Every granule's state byte is one of the values above; a start byte
 *       lies at an address aligned to its block's alignment.
 *   I2  Every carved class-c block lies wholly inside a span whose blocks
 *       are all of class c, at span + i * size(c); nothing else starts
 *       inside a span.
 *   I3  Bin c's free lists hold exactly the blocks whose state is free
 *       class c, each once, and nothing else: `head` those of this heap's
 *       range, `foreign` those of other heaps' ranges (per-thread heaps).
 *       The fast paths' tables lead to bin c exactly from the sizes of
 *       class c up to 1024 and from the state byte LIVE + c, and bin c
 *       carries LIVE + c.
 *   I4  For each class: carved = live + free, with live = allocs - frees
 *       and free = the free list's length.
 *   I5  Spans and large blocks tile [data_start, top) without gaps; a large
 *       block's head and tail tags both hold its page count.
 *   I6  No two free large blocks are neighbours, and no free large block
 *       ends at top (both would have been merged).
 *   I7  The large tree holds exactly the free large blocks, ordered by
 *       (pages, address), with correct AVL heights and balance.
 *   I8  data_start <= top <= high water <= commit_end <= limit; the state
 *       map is committed for [data_start, commit_end).
 *   I9  The live counts and live bytes in the stats equal the sum over the
 *       live blocks found by walking the heap.
 *
 * Determinism (also an invariant): no decision depends on time,
 * randomness, the base address, thread timing or uninitialised memory.
 */
#ifndef DH_INTERNAL_H
#define DH_INTERNAL_H

#include "annotate.h"
#include "config.h"
#include "detheap.h"
#include "os.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define DH_LIKELY(x) __builtin_expect(!!(x), 1)
#define DH_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define DH_INLINE static inline __attribute__((always_inline))

/* Tier 2: internal O(1) assertions, compiled out of release builds.  The
 * invariant number goes first so the message cites it. */
#if DH_DEBUG
#define DH_ASSERT(inv, cond)                                              \
    do {                                                                  \
        if (DH_UNLIKELY(!(cond)))                                         \
            dh_assert_fail(inv, #cond, __FILE__, __LINE__);               \
    } while (0)
#else
#define DH_ASSERT(inv, cond) ((void)0)
#endif
DH_HIDDEN _Noreturn void dh_assert_fail(const char *inv, const char *cond,
                                        const char *file, int line);

/* ---- state bytes --------------------------------------------------------- */

/* Classes a heap may have (bins in struct dh_heap): the state bytes of
 * each group hold this many classes and the group's large value. */
#define DH_MAX_CLASSES 60
#define DH_FINE_CLASSES 59
/* The index that stands for large blocks in per-class arrays. */
#define DH_LARGE_INDEX DH_MAX_CLASSES
_Static_assert(DH_FINE_CLASSES <= DH_MAX_CLASSES &&
                   DH_MAX_CLASSES <= DH_CLASSES_MAX,
               "every set fits the bins and the stats");

enum {
    DH_ST_NONE = 0x00,
    DH_ST_LIVE = 0x01,       /* + class */
    DH_ST_LIVE_LARGE = 0x3f,
    DH_ST_FREE = 0x41,       /* + class */
    DH_ST_FREE_LARGE = 0x7f,
    DH_ST_FREE_FOREIGN = 0x7e,
    DH_ST_RETIRED = 0xc1,    /* + class */
    DH_ST_RETIRED_LARGE = 0xff,
    DH_ST_TAG = 0x80,        /* | 6 bits of a page count */
    DH_TAG_BYTES = 6,        /* head tag: 36 bits of page count */
    DH_TAIL_BYTES = 8        /* tail tag: one aligned 64-bit word, written
                                and read atomically (48 bits of count) */
};

DH_INLINE bool dh_st_is_live_class(uint8_t s) {
    return (uint8_t)(s - DH_ST_LIVE) < DH_MAX_CLASSES;
}
DH_INLINE bool dh_st_is_free_class(uint8_t s) {
    return (uint8_t)(s - DH_ST_FREE) < DH_MAX_CLASSES;
}
DH_INLINE bool dh_st_is_retired_class(uint8_t s) {
    return (uint8_t)(s - DH_ST_RETIRED) < DH_MAX_CLASSES;
}
DH_INLINE bool dh_st_is_tag(uint8_t s) { return (s & 0xc0) == DH_ST_TAG; }
_Static_assert(DH_ST_LIVE + DH_MAX_CLASSES <= DH_ST_LIVE_LARGE &&
                   DH_ST_FREE + DH_MAX_CLASSES <= DH_ST_FREE_FOREIGN &&
                   DH_ST_RETIRED + DH_MAX_CLASSES <= DH_ST_RETIRED_LARGE,
               "each group holds every class and its large values");

/* Span map words (h->span_map): one per 64 KiB cell of the data, for the
 * span that begins in that cell (at most one can; a span is 64 KiB and
 * page-aligned, so it may reach into the next cell). */
#define DH_SPAN_COUNT_MASK 0x1fffu     /* its blocks retired (<= 4096) */
#define DH_SPAN_CLASS_SHIFT 16         /* 6 bits: class + 1; 0: no span */
#define DH_SPAN_PAGE_SHIFT 24          /* 4 bits: its first page in the cell */
#define DH_SPAN_DECOMMITTED (1u << 31) /* all retired, memory given back */
#define DH_SPAN_OWN (1u << 30)         /* carved by the heap whose range it
                                          is in (not by another thread heap
                                          from a free block it held) */

/* The word for a span of class c starting at address span (count 0). */
DH_INLINE uint32_t dh_span_word_make(int c, uintptr_t span) {
    return (uint32_t)(c + 1) << DH_SPAN_CLASS_SHIFT |
           (uint32_t)((span >> DH_PAGE_SHIFT) & (DH_SPAN_PAGES - 1))
               << DH_SPAN_PAGE_SHIFT;
}
/* The class of the span a word describes, or -1 if none begins there. */
DH_INLINE int dh_span_word_class(uint32_t v) {
    return (int)((v >> DH_SPAN_CLASS_SHIFT) & 63) - 1;
}
/* Where that span begins, given the start of the word's 64 KiB cell. */
DH_INLINE uintptr_t dh_span_word_start(uint32_t v, uintptr_t cell) {
    return cell + ((uintptr_t)((v >> DH_SPAN_PAGE_SHIFT) & (DH_SPAN_PAGES - 1))
                   << DH_PAGE_SHIFT);
}

/* The span holding the class block p of a heap's range (its data starts at
 * data_start, its span map is map), and *word its span-map word; 0 and
 * NULL if no span there is recorded. */
DH_INLINE uintptr_t dh_span_lookup(uintptr_t data_start, uint32_t *map,
                                   uintptr_t p, uint32_t **word) {
    uintptr_t cell = (p - data_start) >> DH_SPAN_SHIFT;
    for (int back = 0; back < 2 && cell >= (uintptr_t)back; back++) {
        uint32_t *w = &map[cell - back];
        uint32_t v = __atomic_load_n(w, __ATOMIC_RELAXED);
        uintptr_t start = dh_span_word_start(
            v, data_start + ((cell - back) << DH_SPAN_SHIFT));
        if (dh_span_word_class(v) >= 0 && start <= p) {
            *word = w;
            return start;
        }
    }
    *word = NULL;
    return 0;
}
#define dh_span_of(r, p, word) \
    dh_span_lookup((r)->data_start, (r)->span_map, (p), (word))

/* State bytes are read and written with relaxed atomic accesses (plain
 * moves on x86): with per-thread heaps, a thread may read a neighbour's
 * state byte while the thread holding that block writes it. */
DH_INLINE uint8_t dh_st_load(const uint8_t *st) {
    return __atomic_load_n(st, __ATOMIC_RELAXED);
}
DH_INLINE void dh_st_store(uint8_t *st, uint8_t v) {
    __atomic_store_n(st, v, __ATOMIC_RELAXED);
}

/* ---- the heap ------------------------------------------------------------ */

/* Per class: free list and carving. */
typedef struct dh_bin {
    void *head;          /* LIFO free list: newest freed block, or NULL */
    uintptr_t carve;     /* next block to carve in the current span */
    uintptr_t carve_end; /* end of the current span's usable part */
    uint64_t allocs;     /* allocations served (stats) */
    uint64_t frees;      /* blocks freed (stats) */
    uint64_t carved;     /* blocks carved (stats) */
    uint32_t spans;      /* spans taken (stats; a range holds < 2^32) */
    uint8_t live_state;  /* DH_ST_LIVE + this bin's class: what the
                            table-driven fast paths store */
    uint8_t free_state;  /* DH_ST_FREE + this bin's class: what the state
                            byte of a block popped from the lists must be */
    uint16_t granules;   /* the class size / 16 */
    void *foreign;       /* LIFO of free blocks of other heaps' ranges (freed
                            here by this heap's thread); used when `head` is
                            empty, so `head` holds only this range's blocks */
} dh_bin_t;
_Static_assert(sizeof(dh_bin_t) == 64, "a bin is indexed by a shift");
_Static_assert(((uint64_t)1 << (DH_ADDRESS_BITS - DH_SPAN_SHIFT)) <= UINT32_MAX,
               "spans fits the spans taken from any range");

/* Sizes up to DH_SMALL_MAX find their bin in one load from a heap's
 * bin_by_size table, indexed by (n + 15) >> 4. */
#define DH_SMALL_MAX 1024u
#define DH_SMALL_INDEXES ((DH_SMALL_MAX >> DH_GRANULE_SHIFT) + 1)

/* A free large block's tree node, kept in the block's first bytes. */
typedef struct dh_large_node {
    struct dh_large_node *left, *right; /* AVL children */
    uint64_t pages;                     /* size in pages (the key) */
    int32_t height;                     /* AVL height, leaf = 1 */
} dh_large_node_t;

#define DH_HEAP_MAGIC 0x70616568746564ull /* "detheap" */

/* What a heap keeps for images and snapshots.  Only `root` and
 * `fixed_base` mean anything in a saved image; the other fields belong to
 * the process that has the heap and are cleared in the saved copy. */
typedef struct dh_heap_ext {
    void *root;             /* dh_heap_set_root */
    bool fixed_base;        /* created at a base the caller chose */
    uint32_t image_mode;    /* 0, or DH_OPEN_PRIVATE / DH_OPEN_SHARED:
                               mapped from an image file */
    int image_fd;           /* that file (locked), when image_mode != 0 */
    uint64_t body_off;      /* file offset of the first state-map byte
                               saved (the span map), when image_mode != 0 */
    /* Commits the pages [p, p + n) of the state map or the data instead of
     * the OS layer (a shared image maps them from its file), or NULL. */
    bool (*commit_hook)(struct dh_heap *h, uintptr_t p, uintptr_t n);
    struct dh_snapshot *snapshot; /* the heap's snapshot, or NULL */
} dh_heap_ext_t;

struct dh_heap {
    uint64_t magic;          /* DH_HEAP_MAGIC while the heap exists */
    uintptr_t base;          /* first byte of the range (also the header) */
    uintptr_t size;          /* bytes of the range: a power of two, and
                                base is a multiple of it */
    uintptr_t mask;          /* size - 1 */
    uintptr_t mapped;        /* bytes reserved from the OS (>= size) */
    uint8_t *state;          /* state map: state[(p - base) >> 4] */
    uintptr_t data_start;    /* first byte of data */
    uintptr_t top;           /* first byte not carved */
    uintptr_t high_water;    /* highest top ever (storage never shrinks);
                                read by other threads: atomic accesses */
    uintptr_t commit_end;    /* data committed below here; read by other
                                threads: atomic stores */
    uintptr_t state_commit_end; /* state map committed below here */
    uintptr_t limit;         /* end of data */
    size_t os_page;          /* commit granularity */
    uintptr_t fast_granules; /* (commit_end - data_start) / 16 */
    uint8_t *data_state;     /* the state byte of data_start */
    dh_bin_t bins[DH_MAX_CLASSES];
    uint8_t class_set;       /* dh_class_set_t: which sizes the bins have */
    uint8_t nclasses;        /* bins in use: 13 or DH_FINE_CLASSES */
    /* The fast paths' tables (dh_bins_init): the bin serving size n <= 1024
     * at [(n + 15) >> 4] (in the heap's class set), and the bin of a live
     * class block whose state
     * byte is s at [s] (NULL for every other state byte, so one load both
     * validates a pointer given to free and finds its bin). */
    dh_bin_t *bin_by_size[DH_SMALL_INDEXES];
    dh_bin_t *bin_by_state[256];
    dh_large_node_t *large_root; /* AVL tree of free large blocks */
    /* Statistics not held by the bins. */
    uint64_t live_bytes, peak_live_bytes;
    uint64_t large_allocs, large_frees, large_carved;
    uint64_t large_live_count, large_live_bytes;
    uint64_t large_free_count, large_free_bytes;
    uint64_t failed_allocs;
    /* Cross-thread frees (per-thread heaps): bytes of other ranges' free
     * blocks held on this heap's foreign lists and large tree. */
    uint64_t foreign_bytes;
    /* ...and bytes of such blocks it handed out again, all told (what it
     * may keep grows with it: process.c, foreign_keep). */
    uint64_t foreign_reused;
    /* One word per span of the data (region.c): the class + 1 of the span
     * carved there (bits 16..23), blocks of it retired (bits 0..15), and
     * DH_SPAN_DECOMMITTED once all were and its memory went back. */
    uint32_t *span_map;
    uint64_t rejected_by_code[DH_ERR_COUNT];
    uint64_t rejected_handle_frees;
    /* Integrity (diag.c): lists and trees found overwritten and abandoned,
     * and the free blocks they held, per class (the last: large blocks),
     * which are leaked: they keep their free state bytes (class blocks) or
     * are marked retired (large blocks of this range) and are on no list. */
    uint64_t corruptions;
    uint64_t abandoned[DH_MAX_CLASSES + 1]; /* [DH_LARGE_INDEX]: large */
    uint64_t abandoned_bytes;
    bool class_abandoned;     /* a class list of this process heap was
                                 abandoned: its count is an upper bound */
    /* Fine class set (bin.c, "giving spans back"): each class's count of
     * frees when its free list was last swept for whole free spans. */
    uint64_t swept_frees[DH_MAX_CLASSES];
    /* Error policy. */
    dh_on_error_t on_error;
    dh_error_fn error_callback;
    void *error_user;
    /* A heap of the process heap (process.c): other threads may free its
     * blocks, so its spans are written to the span map, and its foreign
     * lists are used.  What only the process layer keeps about such a heap
     * (its slot, its thread, its trace) is in its header area, after this
     * struct: process.h, dh_proc_heap_t. */
    bool process;
    /* Huge pages (region.c). */
    uintptr_t huge_from;      /* data from here up is advised huge pages and
                                 committed in whole aligned huge pages; a
                                 multiple of DH_HUGE_PAGE, or UINTPTR_MAX */
    bool huge_advised;        /* that advice has been given */
    /* Address-space limits (region.c, dh_region_create_in). */
    bool grows;               /* the range is reserved as it is committed
                                 (dh_os_map_fixed), not all at creation */
    uintptr_t refused_at;     /* a growing range: the lowest commit target
                                 the OS refused (0: none); targets at or
                                 past it fail at once, without a system
                                 call */
    /* Images, roots and snapshots (image.c, snapshot.c); last, so that the
     * rest of the struct is laid out without them.  dh_heap_reset keeps
     * them, but for the root. */
    dh_heap_ext_t ext;
};

/* Bytes of trace buffered per heap (in the heap's header area). */
#define DH_TRACE_BUF 16384u

/* ---- address helpers ----------------------------------------------------- */

/* region.c: the size mask of the heap whose range holds p (p must lie in
 * some heap's range). */
DH_HIDDEN uintptr_t dh_region_mask(uintptr_t p);

/* The state byte of address p.  It is found from p alone: every heap's
 * range is aligned to its own power-of-two size and starts with the header
 * and the state map.  h supplies the mask when p is in h's range; a block
 * of another heap (per-thread heaps exchange blocks, and the main thread's
 * heap is larger than the others) takes the mask of the heap it is in. */
DH_INLINE uint8_t *dh_state_at(const dh_heap_t *h, uintptr_t p) {
    uintptr_t mask = h->mask;
    if (DH_UNLIKELY((p & ~mask) != h->base)) mask = dh_region_mask(p);
    return (uint8_t *)((p & ~mask) + DH_HEADER_SIZE) +
           ((p & mask) >> DH_GRANULE_SHIFT);
}
DH_INLINE uintptr_t dh_high_water(const dh_heap_t *h) {
    return __atomic_load_n(&h->high_water, __ATOMIC_RELAXED);
}
/* p lies in h's carved data, where its state byte is committed. */
DH_INLINE bool dh_in_data(const dh_heap_t *h, uintptr_t p) {
    return p - h->data_start < dh_high_water(h) - h->data_start;
}
/* p lies in h's own range (not another thread heap's). */
DH_INLINE bool dh_owns(const dh_heap_t *h, uintptr_t p) {
    return (p & ~h->mask) == h->base;
}

/* The granule of p in h's committed data, or a number >= h->fast_granules
 * if p is not at a 16-byte boundary there: the offset is rotated so that a
 * misaligned one becomes huge (as does anything below data_start, NULL
 * included), and one compare checks range and alignment. */
DH_INLINE uintptr_t dh_own_granule(const dh_heap_t *h, const void *p) {
    uintptr_t off = (uintptr_t)p - h->data_start;
    return (off >> DH_GRANULE_SHIFT) |
           (off << (sizeof(uintptr_t) * 8 - DH_GRANULE_SHIFT));
}

/* Integrity check before a block of another process heap's range is taken
 * from a foreign list (and its link followed): it lies in that heap's data
 * at a 16-byte boundary and its state byte is `want` (free, the list's
 * class).  Returns the state byte, or NULL (bin.c).  The pop of a main
 * list does the same for h's own range inline (fastpath.h). */
DH_HIDDEN uint8_t *dh_foreign_free_ok(const dh_heap_t *h, const void *p,
                                      uint8_t want);

/* The span-map word of the cell holding p, which lies in the range of h or
 * of another heap (found through the heap map). */
DH_HIDDEN uint32_t *dh_span_word_any(uintptr_t p);
DH_INLINE uint32_t *dh_span_word(const dh_heap_t *h, uintptr_t p) {
    if (DH_UNLIKELY(!dh_owns(h, p))) return dh_span_word_any(p);
    return &h->span_map[(p - h->data_start) >> DH_SPAN_SHIFT];
}

/* The name of an allocation call on h, for a report: the drop-in's or the
 * heap API's. */
DH_INLINE const char *dh_malloc_name(const dh_heap_t *h) {
    return h->process ? "malloc" : "dh_heap_malloc";
}

/* ---- functions shared between files (hidden) ----------------------------- */

/* sizeclass.c: the spec set (dh_class_of) and the fine set. */
DH_HIDDEN extern const uint32_t dh_class_sizes[DH_NUM_CLASSES];
DH_HIDDEN extern const uint8_t dh_small_class[65]; /* by (n + 15) >> 4 */
DH_INLINE int dh_class_of(size_t n) {
    if (DH_LIKELY(n <= 1024)) return dh_small_class[(n + 15) >> 4];
    if (n > DH_MAX_CLASS_SIZE) return -1;
    if (n > 16384) return 12;
    /* 1025..16384: 2 KiB (class 8) .. 16 KiB (class 11), by bit length */
    return 61 - __builtin_clzll((unsigned long long)(n - 1));
}
#define DH_FINE_TABLE ((16384 >> DH_GRANULE_SHIFT) + 1)
DH_HIDDEN extern const uint32_t dh_fine_sizes[DH_FINE_CLASSES];
DH_HIDDEN extern const uint8_t dh_fine_class[DH_FINE_TABLE];
DH_INLINE int dh_fine_class_of(size_t n) {
    if (DH_LIKELY(n <= 16384)) return dh_fine_class[(n + 15) >> 4];
    if (n > DH_MAX_CLASS_SIZE) return -1;
    /* 16,385..20,480 B: five pages of the page-aligned 32 KiB class cost
     * less memory than the 21,840 class (sizeclass.c) */
    return n <= 20480 ? 57 : n <= 21840 ? 56 : n <= 32768 ? 57 : 58;
}
/* The class of h's set serving n bytes, or -1 (a large block). */
DH_INLINE int dh_heap_class_of(const dh_heap_t *h, size_t n) {
    return h->class_set == DH_CLASSES_FINE ? dh_fine_class_of(n)
                                           : dh_class_of(n);
}
/* The size of class c of h's set. */
DH_INLINE size_t dh_class_bytes(const dh_heap_t *h, int c) {
    return (size_t)h->bins[c].granules << DH_GRANULE_SHIFT;
}

/* region.c: growth of the carved part of the range. */
DH_HIDDEN bool dh_region_grow(dh_heap_t *h, uintptr_t new_top);
DH_HIDDEN dh_heap_t *dh_region_lookup(uintptr_t p);
DH_HIDDEN dh_heap_t *dh_region_create(const dh_config_t *cfg);
/* The same with the process layer's layout under an address-space limit:
 * the range ends `end` bytes above its base (0: at base + size; else at
 * most size), and with `grow` (a fixed base only) it is reserved as it is
 * committed rather than all at once.  Only the bytes up to the end are
 * ever reserved.  The struct lies `color` cache lines (< DH_COLORS) above
 * the base: heaps' bases are multiples of 4 GiB, so their structs would
 * otherwise all fall into the same sets of the CPU's caches, and a thread
 * that frees the blocks of many heaps would have them evict each other on
 * every call. */
DH_HIDDEN dh_heap_t *dh_region_create_in(const dh_config_t *cfg,
                                         uintptr_t end, bool grow,
                                         unsigned color);
#define DH_COLORS 64u
/* At most this many bytes for all ranges reserved as they grow together
 * (set once, before any exists; the default: no bound): a reservation
 * past it fails with ENOMEM, as the OS's would. */
DH_HIDDEN void dh_region_set_grow_budget(uintptr_t bytes);
/* Lay h's header out afresh, as dh_region_create did, keeping its range,
 * its error policy and what it has committed (dh_heap_reset). */
DH_HIDDEN void dh_region_relayout(dh_heap_t *h);
DH_HIDDEN void dh_region_destroy(dh_heap_t *h);
/* Lay out in *out the header a heap of class set `classes` created at
 * base with a range of size bytes ending end bytes above base would have
 * (an image's heap header is compared with it), without touching memory
 * outside *out. */
DH_HIDDEN void dh_region_layout_of(dh_heap_t *out, uintptr_t base,
                                   uintptr_t size, uintptr_t end,
                                   dh_class_set_t classes);
/* Enter h, a heap whose range this process has just mapped (an image),
 * into the heap map; false if a granule it needs is taken. */
DH_HIDDEN bool dh_region_adopt(dh_heap_t *h);
/* Huge-page policy of a heap, set before its first allocation: off (the
 * default of every heap: no advice, the system's own policy), auto (huge
 * pages past its first DH_HUGE_AFTER bytes of data), always (from the
 * start of its data), never (advise base pages only). */
typedef enum dh_thp {
    DH_THP_OFF,
    DH_THP_AUTO,
    DH_THP_ALWAYS,
    DH_THP_NEVER
} dh_thp_t;
DH_HIDDEN void dh_region_set_thp(dh_heap_t *h, dh_thp_t mode);


/* bin.c: class blocks. */
/* The bins and fast-path tables of a fresh heap of class set `set`. */
DH_HIDDEN void dh_bins_init(dh_heap_t *h, dh_class_set_t set);
/* A fresh span, or NULL, for a class of `n`-byte blocks (for a report). */
DH_HIDDEN void *dh_span_take(dh_heap_t *h, size_t n);

/* large.c: large blocks. */
/* Give the span at p (its state bytes already zero, on no list) back to
 * h's free pages: merged with free neighbours or the top, for any class's
 * next span or a large block. */
DH_HIDDEN void dh_span_release(dh_heap_t *h, uintptr_t p);
DH_HIDDEN void *dh_large_alloc(dh_heap_t *h, size_t n, size_t align);
/* Free the live large block p; returns the start of the free block it is
 * now part of (merged with free neighbours), or 0 if it went into the
 * top. */
DH_HIDDEN uintptr_t dh_large_free(dh_heap_t *h, uintptr_t p);
DH_HIDDEN uint64_t dh_large_pages(const dh_heap_t *h, uintptr_t p);
DH_HIDDEN void dh_large_set(dh_heap_t *h, uintptr_t p, uint64_t pages,
                            uint8_t head);
/* The page count of 8 tag bytes (large.c: byte i holds bits 6i..6i+5 of
 * it, in its 6 low bits), gathered back. */
DH_INLINE uint64_t dh_tag_pages(uint64_t v) {
    uint64_t x = v & 0x3f3f3f3f3f3f3f3full;
    x = (x & 0x00ff00ff00ff00ffull) | ((x & 0xff00ff00ff00ff00ull) >> 2);
    x = (x & 0x0000ffff0000ffffull) | ((x & 0xffff0000ffff0000ull) >> 4);
    return (x & 0xffffffffull) | ((x & 0xffffffff00000000ull) >> 8);
}
/* The page count of the head tag at tag (the state bytes after a large
 * block's head byte). */
DH_INLINE uint64_t dh_tag_read(const uint8_t *tag) {
    /* Two loads the width of tag_write's two stores, combined in a
     * register: a memcpy of the 6 bytes into a zeroed word went through
     * the stack, and the word's load, spanning the two narrower stores,
     * could not be forwarded from them (a stall of some 15 cycles that
     * was most of an in-place realloc's time). */
    _Static_assert(DH_TAG_BYTES == 6, "the tag is read as 4 + 2 bytes");
    uint32_t lo;
    uint16_t hi;
    memcpy(&lo, tag, sizeof lo);
    memcpy(&hi, tag + sizeof lo, sizeof hi);
    return dh_tag_pages(lo | (uint64_t)hi << 32); /* little-endian */
}
/* Pages for a large block of n bytes, or 0 if n is too large to ever fit. */
DH_INLINE uint64_t dh_pages_for(size_t n) {
    if (n > ((uint64_t)1 << (DH_ADDRESS_BITS - 1))) return 0;
    uint64_t pages = ((uint64_t)n + DH_PAGE - 1) >> DH_PAGE_SHIFT;
    return pages ? pages : 1;
}
/* dh_large_resize's parts (large.c): a block of another range (only its
 * page count staying makes it true), and an own block p, whose state
 * bytes are at st, changing from `have` pages to `want`. */
DH_HIDDEN bool dh_large_resize_other(dh_heap_t *h, uintptr_t p, size_t n);
DH_HIDDEN bool dh_large_repage(dh_heap_t *h, uintptr_t p, uint8_t *st,
                               uint64_t have, uint64_t want, size_t n);
/* Resize a live large block p of h in place to hold n (> 2 KiB) bytes:
 * shrink by giving the tail back, grow into the top or a free right
 * neighbour.  Returns false, changing nothing, when it cannot (a block of
 * another range is resized only where its page count stays).  Inline up
 * to the page counts, found once: in-place realloc is one dependent chain
 * of loads. */
DH_INLINE bool dh_large_resize(dh_heap_t *h, uintptr_t p, size_t n) {
    uintptr_t g = dh_own_granule(h, (const void *)p);
    if (DH_UNLIKELY(g >= h->fast_granules))
        return dh_large_resize_other(h, p, n);
    uint8_t *st = h->data_state + g;
    uint64_t have = dh_tag_read(st + 1), want = dh_pages_for(n);
    return want == have || dh_large_repage(h, p, st, have, want, n);
}
/* n is a free large block a tree of h may hold: a page-aligned block start
 * in h's data whose state byte says free (or, for a process heap, one of
 * another process heap's data marked held by another heap) and whose page
 * count is its size tag's. */
DH_HIDDEN bool dh_large_node_ok(const dh_heap_t *h, const dh_large_node_t *n);
DH_HIDDEN uint64_t dh_tail_read(const uint64_t *word);

/* The state byte of p if p is a live block start of h, else 0: O(1),
 * inline because every free and every handle check starts here. */
DH_INLINE uint8_t dh_live_state(const dh_heap_t *h, uintptr_t p) {
    if ((p & (DH_GRANULE - 1)) || !dh_in_data(h, p)) return 0;
    uint8_t s = dh_st_load(dh_state_at(h, p));
    return (dh_st_is_live_class(s) || s == DH_ST_LIVE_LARGE) ? s : 0;
}

/* The usable size of the live block at p whose state byte is s. */
DH_INLINE size_t dh_block_size(const dh_heap_t *h, uintptr_t p, uint8_t s) {
    if (DH_LIKELY(dh_st_is_live_class(s))) return dh_class_bytes(h, s - DH_ST_LIVE);
    return (size_t)dh_large_pages(h, p) << DH_PAGE_SHIFT;
}

/* heap.c: the shared allocation paths. */
DH_HIDDEN void dh_heap_release(dh_heap_t *h, uintptr_t p, uint8_t s);
DH_HIDDEN uint64_t dh_heap_live_bytes(const dh_heap_t *h);
/* Add the figures of one class of a heap's set (by_class) into the spec
 * class of its size (classes[]), as dh_stats_t promises. */
DH_HIDDEN void dh_stats_fold(dh_stats_t *s, const dh_class_stats_t *cs);
/* realloc's rule for a class-c block resized to n bytes: it stays where it
 * is when n still fits it and is more than half of it, or n's class is c.
 * Deterministic: a function of c, n (> 0) and the set.  Found with no class
 * lookup but where n is at most half the block (n's class is c itself
 * then only in the spec set's 64 KiB class, whose smaller neighbour is
 * 16 KiB). */
DH_INLINE bool dh_class_keeps(const dh_heap_t *h, int c, size_t n) {
    size_t size = dh_class_bytes(h, c);
    if (n > size) return false;    /* a larger class, or a large size */
    if (2 * n > size) return true; /* more than half of it: it stays */
    return dh_heap_class_of(h, n) == c;
}
/* What realloc asks for when a class block of `old` bytes must move to
 * hold n: a block that grows past its class gets room for half as much
 * again (old + old / 2, within the classes), so that a buffer grown by
 * small steps moves once per 1.5x, not once per class.  Deterministic. */
DH_INLINE size_t dh_realloc_want(size_t old, size_t n) {
    size_t roomy = old + old / 2;
    if (n <= old || n > DH_MAX_CLASS_SIZE || roomy <= n) return n;
    return roomy < DH_MAX_CLASS_SIZE ? roomy : DH_MAX_CLASS_SIZE;
}
/* A class block of `old` bytes that realloc must grow to n moves into a
 * large block (whole pages) when n or the room it would get in a class
 * (dh_realloc_want: old + old / 2) is DH_REALLOC_LARGE bytes or more;
 * later growth extends it in place into the top of the heap or a free
 * right neighbour.  A large block resized to n >= DH_REALLOC_LARGE / 2
 * stays large (in place when it can).  So a buffer grown in small steps is
 * copied while it is under 2,731 bytes and, where it has room, never
 * after; and one page (4 KiB) holds it where the class with room would
 * have been 4,368 or 4,672 bytes.  Deterministic: a function of the
 * sizes. */
#define DH_REALLOC_LARGE ((size_t)4096)
DH_INLINE bool dh_realloc_to_large(size_t old, size_t n) {
    return n > old && (n >= DH_REALLOC_LARGE ||
                       old + old / 2 >= DH_REALLOC_LARGE);
}
DH_INLINE bool dh_realloc_stays_large(size_t n) {
    return n >= DH_REALLOC_LARGE / 2;
}
DH_HIDDEN void *dh_realloc_new(dh_heap_t *h, uint8_t s, size_t old, size_t n);
DH_HIDDEN void dh_heap_free_in(dh_heap_t *h, uintptr_t p, const char *call);
DH_HIDDEN void *dh_realloc_block(dh_heap_t *h, uintptr_t p, uint8_t s,
                                 size_t n);

/* check.c: what a walk of one heap's range finds, and the lengths of its
 * lists, for dh_process_check to add up over the per-thread heaps. */
typedef struct dh_census {
    uint64_t live[DH_MAX_CLASSES], free[DH_MAX_CLASSES];
    uint64_t retired[DH_MAX_CLASSES], listed[DH_MAX_CLASSES];
    uint64_t large_live, large_live_bytes, large_free, large_free_bytes;
    uint64_t large_retired, tree_nodes;
    uint64_t live_bytes;
} dh_census_t;
DH_HIDDEN dh_check_t dh_heap_check_part(const dh_heap_t *h, dh_census_t *out);
/* The cheap tier of dh_heap_check (what dh_heap_open runs): the bounds
 * (I8), the fast paths' tables and each bin's carve range and list heads
 * (I3), the large tree's root (I7).  O(tables), reads no data page but
 * the ones the list heads and the root are in. */
DH_HIDDEN dh_check_t dh_heap_check_cheap(const dh_heap_t *h);

/* diag.c: reporting misuse through the error policy. */
DH_HIDDEN void dh_report(dh_heap_t *h, const char *call, const void *ptr,
                         dh_error_code_t code, int size_class);
DH_HIDDEN dh_error_code_t dh_classify(const dh_heap_t *h, uintptr_t p,
                                      int *size_class);
/* The report's line; size_class is a class of h (NULL: none) or
 * DH_LARGE_INDEX. */
DH_HIDDEN size_t dh_format_error(char *buf, size_t cap, const char *call,
                                 const void *ptr, dh_error_code_t code,
                                 int size_class, const dh_heap_t *h);
/* Integrity: bin c's main (or foreign) list of h was found overwritten at
 * `at` by `call` asking for n bytes.  The list is abandoned (its blocks
 * leaked and counted) and the corruption reported through h's policy. */
DH_HIDDEN void dh_list_corrupted(dh_heap_t *h, const char *call, size_t n,
                                 int c, bool foreign, const void *at);
/* Count and report a corruption of `what` (a phrase: "free list of the
 * 48-byte class") found at `at` by `call` asking for n bytes (SIZE_MAX:
 * a call without a size). */
DH_HIDDEN void dh_report_corruption(dh_heap_t *h, const char *call, size_t n,
                                    int size_class, const char *what,
                                    const void *at);
/* The same for h's tree of free large blocks, found overwritten at `at`
 * (large.c calls it; the tree is already emptied). */
DH_HIDDEN void dh_tree_corrupted(dh_heap_t *h, const char *call, size_t n,
                                 const void *at);
/* Count the free class-c blocks of h's own range (leaked when a list is
 * abandoned): a walk of its data, on that error path only (check.c). */
DH_HIDDEN uint64_t dh_count_free_class(const dh_heap_t *h, int c);

#endif /* DH_INTERNAL_H */
