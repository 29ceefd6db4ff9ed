/*
 * detheap.h - the public API of detheap, a deterministic memory allocator.
 *
 * detheap hands out memory from 13 size classes (16, 32, 48, 64, 128, 256,
 * 512 B, 1, 2, 4, 8, 16 and 64 KiB), each with a LIFO free list, and from a
 * best-fit pool of page-granular "large" blocks for anything bigger.  Every
 * address (as an offset from the heap's base), every handle and every
 * statistic is a pure function of the sequence of calls made on the heap:
 * nothing depends on time, randomness, ASLR, the environment or the contents
 * of uninitialised memory.  A heap created at a fixed base therefore returns
 * identical absolute addresses in every process that makes the same calls.
 *
 * Two APIs share one heap:
 *   - the handle API (dh_alloc, dh_free(h, handle), dh_get, dh_write), which
 *     is faithful to the original design: handles of freed blocks are reused
 *     LIFO, and using a stale handle is harmless;
 *   - the pointer API (dh_heap_malloc & co, dh_free(ptr)), malloc-style.
 *
 * Threads: a heap is used by one thread at a time.  Calls on different heaps
 * may run concurrently.  dh_free(ptr) and dh_heap_of() may be called from
 * any thread, but the heap the pointer belongs to must not be in use by
 * another thread at that moment.  Creating and destroying heaps is
 * thread-safe.
 *
 * Errors: functions returning a pointer return NULL and set errno; the handle
 * API returns DH_HANDLE_NULL or false.  The library never prints on its own:
 * misuse is reported through the heap's error policy (dh_config_t.on_error).
 */
#ifndef DETHEAP_H
#define DETHEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define DH_API __attribute__((visibility("default")))
#define DH_NODISCARD __attribute__((warn_unused_result))
#else
#define DH_API
#define DH_NODISCARD
#endif

/* ---- version ------------------------------------------------------------ */

#define DH_VERSION_MAJOR 1
#define DH_VERSION_MINOR 0
#define DH_VERSION_PATCH 0
/* One number, comparable: 0x00MMmmpp. */
#define DH_VERSION \
    ((DH_VERSION_MAJOR << 16) | (DH_VERSION_MINOR << 8) | DH_VERSION_PATCH)

/* The version of the library actually linked, as DH_VERSION.  O(1). */
DH_API uint32_t dh_version(void);

/* ---- constants ---------------------------------------------------------- */

/* Number of size classes and the largest class.  Requests above
 * DH_MAX_CLASS_SIZE are served by large blocks. */
#define DH_NUM_CLASSES 13
#define DH_MAX_CLASS_SIZE 65536u

/* Heaps are reserved at multiples of this alignment (4 GiB) so that a
 * pointer's heap can be found in O(1).  A fixed base must be such a
 * multiple. */
#define DH_HEAP_ALIGN ((uint64_t)1 << 32)

/* Default size of a heap's reserved address range (64 GiB).  Reserving
 * costs no memory; only what is used is committed. */
#define DH_DEFAULT_RESERVE ((uint64_t)64 << 30)

/* The size of class c (0 <= c < DH_NUM_CLASSES), or 0 for any other c. */
DH_API size_t dh_class_size(int c);

/* The class that serves a request of n bytes: the smallest class whose size
 * is >= n (n = 0 is served by class 0), or -1 when n > DH_MAX_CLASS_SIZE.
 * O(1), no table walk. */
DH_API int dh_size_class(size_t n);

/* Class sets.  The 13 classes above are the original design's
 * (DH_CLASSES_SPEC): the default of dh_heap_create, the set the handle
 * API's answers, the conformance scripts and the Rust Heap are defined by.
 * DH_CLASSES_FINE is a finer set for memory-sensitive use, and the drop-in
 * malloc's default (DETHEAP_CLASSES): 59 classes, 16-byte steps up to
 * 256 B, 8 classes per doubling up to 2 KiB, 4 up to 4 KiB, then the
 * sizes that cut a 64 KiB span into 15, 14, .. 1 blocks (4368 B .. 64 KiB);
 * a request of 128 < n <= 16384 bytes costs at most about 1.25 n of memory,
 * above that 2 n (docs/DESIGN.md, "Class sets": 10,913..12,288 and
 * 16,385..20,480 bytes take the page-aligned 16 and 32 KiB classes, of
 * which only the pages written are backed).  Both sets are deterministic:
 * a heap's addresses are a pure function of its calls and its set.  DH_CLASSES_MAX bounds every set. */
typedef enum dh_class_set {
    DH_CLASSES_SPEC = 0,
    DH_CLASSES_FINE = 1
} dh_class_set_t;
#define DH_CLASSES_MAX 64

/* The number of classes of a set (13 or 59), or 0 for an unknown set.
 * O(1), thread-safe, like the three below. */
DH_API int dh_class_set_count(dh_class_set_t set);
/* The size of class c of a set, or 0 for an unknown set or a c out of
 * range. */
DH_API size_t dh_class_set_size(dh_class_set_t set, int c);
/* The class of a set that serves n bytes (the smallest whose size is
 * >= n), or -1 when n > DH_MAX_CLASS_SIZE or the set is unknown.  One
 * table load. */
DH_API int dh_class_set_of(dh_class_set_t set, size_t n);

/* ---- configuration ------------------------------------------------------ */

typedef struct dh_heap dh_heap_t; /* opaque */

/* What the heap does when the pointer API is handed a pointer that is not
 * a live block start (see docs/ERRORS.md for every case). */
typedef enum dh_on_error {
    DH_ON_ERROR_IGNORE = 0, /* count it in the stats and carry on (default) */
    DH_ON_ERROR_WARN,       /* count, write one line to stderr, carry on */
    DH_ON_ERROR_ABORT,      /* count, write one line to stderr, abort() */
    DH_ON_ERROR_CALLBACK    /* count, call dh_config_t.error_callback */
} dh_on_error_t;

/* Why a pointer was rejected. */
typedef enum dh_error_code {
    DH_ERR_NONE = 0,
    DH_ERR_DOUBLE_FREE,   /* the block at that address is already free */
    DH_ERR_NOT_A_BLOCK,   /* inside a heap, but no block starts there */
    DH_ERR_FOREIGN,       /* not inside any detheap heap */
    DH_ERR_MISALIGNED,    /* not 16-byte aligned, so never a block start */
    DH_ERR_WRONG_HEAP,    /* a live block of another heap than the one named */
    DH_ERR_COUNT,
    /* Not a rejected pointer: the integrity checks found a free list or a
     * free large block's metadata overwritten (a write after free, or an
     * overflow from the block before).  Reported through the same policy,
     * counted in dh_stats_t.corruptions (rejected_by_code keeps its size,
     * which is part of the ABI). */
    DH_ERR_CORRUPTED = DH_ERR_COUNT
} dh_error_code_t;

/* What an error callback is told. */
typedef struct dh_error {
    const char *call;      /* the API call, e.g. "dh_free" or "free" */
    const void *ptr;       /* the pointer that was rejected */
    dh_error_code_t code;  /* why */
    int size_class;        /* class of the block involved, or -1 */
    const char *message;   /* the same as one line of text, no newline */
} dh_error_t;

typedef void (*dh_error_fn)(const dh_error_t *err, void *user);

/* Configuration for dh_heap_create.  Initialise with dh_config_init (or
 * DH_CONFIG_INIT) and change only the fields you need. */
typedef struct dh_config {
    uint32_t struct_size;   /* sizeof(dh_config_t), set by dh_config_init */
    uint32_t version;       /* DH_VERSION the caller was compiled against */
    uint64_t reserve;       /* bytes of address space to reserve, rounded up
                               to a power of two; 1 MiB .. 64 TiB.
                               0 = DH_DEFAULT_RESERVE. */
    uintptr_t base;         /* 0: anywhere.  Else the exact base address, a
                               multiple of DH_HEAP_ALIGN and of the rounded
                               reserve; creation fails with EEXIST if any
                               part of the range is taken. */
    dh_on_error_t on_error; /* error policy of the pointer API */
    dh_error_fn error_callback; /* with DH_ON_ERROR_CALLBACK */
    void *error_user;       /* passed to error_callback */
    /* Since 1.0: the heap's class set (DH_CLASSES_SPEC, the default, or
     * DH_CLASSES_FINE). */
    dh_class_set_t classes;
} dh_config_t;

#define DH_CONFIG_INIT                                                    \
    { sizeof(dh_config_t), DH_VERSION, 0, 0, DH_ON_ERROR_IGNORE, NULL, NULL, \
      DH_CLASSES_SPEC }

/* Fill *cfg with the defaults.  O(1), thread-safe. */
DH_API void dh_config_init(dh_config_t *cfg);

/* ---- heap lifetime ------------------------------------------------------ */

/* Create a heap: reserve cfg->reserve bytes of address space (nothing is
 * committed but one header page) and return the heap, which lives at the
 * start of its own range.  cfg may be NULL for the defaults.
 * Cost: a few system calls.  Thread-safe.
 * Fails, returning NULL, with errno:
 *   EINVAL  cfg->struct_size is wrong, reserve is out of range, base is not a
 *           multiple of DH_HEAP_ALIGN and of the rounded reserve, on_error
 *           is not a known policy, or CALLBACK is chosen without a callback;
 *   EEXIST  base was given and part of the range is already mapped;
 *   ENOMEM  the address space could not be reserved or the header committed. */
DH_API DH_NODISCARD dh_heap_t *dh_heap_create(const dh_config_t *cfg);

/* Destroy a heap and return its whole range to the OS.  Every pointer and
 * handle of the heap becomes invalid.  NULL is a no-op.  Thread-safe with
 * respect to other heaps; the heap itself must not be in use. */
DH_API void dh_heap_destroy(dh_heap_t *heap);

/* Free every block of the heap at once and return it to the state of a
 * freshly created heap with the same configuration: the calls made after
 * the reset return the same offsets, handles, block contents and
 * statistics as the same calls on a new heap, with one exception:
 * committed_bytes is kept, not reset, because the heap keeps the memory it
 * has committed (so the pages it has touched are not faulted in again).
 * The error policy is kept.  Every pointer and handle of the heap becomes
 * invalid (a stale handle may name a block allocated after the reset).
 * Cost: O(storage_bytes): the carved storage and its state map are zeroed,
 * as fresh memory is, which touches every page of that storage.  No system
 * call.  The heap must not be in use by another thread, nor its blocks be
 * freed concurrently.
 * Fails, returning false and changing nothing, with errno:
 *   EINVAL  heap is NULL or not a live heap;
 *   EPERM   heap is one of the process heap's heaps (dh_heap_of a malloc'd
 *           or dh_malloc'd pointer), whose blocks other code may hold. */
DH_API bool dh_heap_reset(dh_heap_t *heap);

/* The heap that owns ptr (live or free block, or any address inside the
 * heap's range), or NULL.  O(1), thread-safe. */
DH_API dh_heap_t *dh_heap_of(const void *ptr);

/* The first address of the heap's reserved range; block offsets are taken
 * from here.  O(1). */
DH_API uintptr_t dh_heap_base(const dh_heap_t *heap);

/* The heap's class set (dh_config_t.classes; the process heap's is
 * DETHEAP_CLASSES).  O(1). */
DH_API dh_class_set_t dh_heap_class_set(const dh_heap_t *heap);

/* ---- pointer API -------------------------------------------------------- */

/* Allocate at least n bytes, 16-byte aligned (blocks of a power-of-two class
 * up to 4 KiB are aligned to their size).  n = 0 gives a unique minimum
 * block.  O(1) for n <= 64 KiB; O(log F) above, F = free large blocks.
 * The contents are deterministic: zero for memory never used before, else
 * what the program last wrote there; the first 8 bytes are always zero, and
 * nothing detheap kept in a free block (links, tree nodes) is left over.
 * Fails with NULL and errno ENOMEM when the reserved range or the OS runs
 * out; the heap is unchanged and stays usable. */
DH_API DH_NODISCARD void *dh_heap_malloc(dh_heap_t *heap, size_t n);

/* Allocate count*size zeroed bytes.  Fails with ENOMEM if count*size
 * overflows or memory runs out. */
DH_API DH_NODISCARD void *dh_heap_calloc(dh_heap_t *heap, size_t count,
                                         size_t size);

/* Resize ptr's block to n bytes, keeping min(old, n) bytes.  ptr = NULL is
 * dh_heap_malloc.  n = 0 frees ptr and returns NULL.  In place when n still
 * fits a class block and is more than half of it, or when a large block
 * resized to n >= 2 KiB fits its pages, the top of the heap or a free
 * right neighbour; otherwise allocate, copy, free, where a class block
 * that grows to 4 KiB or more, or whose 1.5 x its size is 4 KiB or more,
 * becomes a large block of whole pages (which later growth extends in
 * place), one that grows less gets room for half as much again (the class
 * of max(n, 1.5 x its size)), and a large block
 * resized to less than 2 KiB goes to a class.  The rule depends only on
 * the sizes and the heap's state: deterministic.  On failure returns NULL with
 * errno ENOMEM and leaves ptr untouched.  An invalid ptr is reported through
 * the error policy and NULL is returned with errno EINVAL. */
DH_API DH_NODISCARD void *dh_heap_realloc(dh_heap_t *heap, void *ptr,
                                          size_t n);

/* Allocate n bytes aligned to align, a power of two (any power of two up to
 * half the reserve).  Fails with EINVAL for a bad alignment, ENOMEM when out
 * of memory. */
DH_API DH_NODISCARD void *dh_heap_aligned_alloc(dh_heap_t *heap, size_t align,
                                                size_t n);

/* Free a block of any heap (the heap is found from the pointer in O(1)).
 * NULL is a no-op.  A pointer that is not a live block start is never freed:
 * it is reported through its heap's error policy (or, when it belongs to no
 * heap, the global one, see dh_set_default_error_policy).
 * O(1) for class blocks, O(log F) for large ones.
 *
 * `dh_free` is also the handle API's free: dh_free(heap, handle) expands to
 * dh_free_handle.  The one-argument form is the function below. */
DH_API void(dh_free)(void *ptr);

/* Free ptr, which must belong to heap; a live block of another heap is
 * rejected with DH_ERR_WRONG_HEAP. */
DH_API void dh_heap_free(dh_heap_t *heap, void *ptr);

/* The number of bytes usable at ptr (the class size, or the large block's
 * size), or 0 for NULL or any pointer that is not a live block start.
 * O(1), never reports through the error policy. */
DH_API size_t dh_usable_size(const void *ptr);

/* ---- handle API (the original design) ----------------------------------- */

/* A block handle.  Handles of freed blocks are reused (LIFO within a class),
 * exactly as block indices were in the original design: a handle whose block
 * was handed out again refers to the new allocation. */
typedef struct dh_handle {
    uint64_t id; /* the block's offset from the heap base / 16; 0 = none */
} dh_handle_t;

#define DH_HANDLE_NULL ((dh_handle_t){0})

/* Allocate a block of at least size bytes and return its handle, or
 * DH_HANDLE_NULL with errno ENOMEM when memory runs out.  Same cost and
 * placement as dh_heap_malloc (the two share the heap). */
DH_API DH_NODISCARD dh_handle_t dh_alloc(dh_heap_t *heap, size_t size);

/* Free the block of a handle.  A freed, stale, double-freed or never-issued
 * handle is a no-op that only counts (stats.rejected_handle_frees): this is
 * the original design's behaviour, and it never goes through the error
 * policy.  O(1) for class blocks, O(log F) for large ones. */
DH_API void dh_free_handle(dh_heap_t *heap, dh_handle_t handle);

/* The block's bytes and, in *len (if len is not NULL), its usable size; or
 * NULL (and *len = 0) when the handle is not live.  O(1). */
DH_API void *dh_get(const dh_heap_t *heap, dh_handle_t handle, size_t *len);

/* Copy min(len, block size) bytes of data into the block.  Returns false,
 * writing nothing, when the handle is not live.  O(len). */
DH_API bool dh_write(dh_heap_t *heap, dh_handle_t handle, const void *data,
                     size_t len);

/* The handle of a live block start, or DH_HANDLE_NULL.  O(1). */
DH_API dh_handle_t dh_handle_of(const void *ptr);

/* The address of a live handle's block, or NULL.  O(1). */
DH_API void *dh_ptr_of(const dh_heap_t *heap, dh_handle_t handle);

/* dh_free(p) frees a pointer, dh_free(heap, handle) a handle. */
#define DH_PICK3_(a, b, c, ...) c
#define dh_free(...) \
    DH_PICK3_(__VA_ARGS__, dh_free_handle, (dh_free), )(__VA_ARGS__)

/* ---- statistics --------------------------------------------------------- */

#define DH_STATS_VERSION 3

typedef struct dh_class_stats {
    uint64_t size;      /* the class size in bytes */
    uint64_t allocs;    /* allocations served from this class */
    uint64_t frees;     /* blocks of this class freed (rejected not counted) */
    uint64_t live;      /* blocks in use */
    uint64_t free;      /* blocks on the free list, waiting for reuse */
    uint64_t carved;    /* blocks ever carved from fresh storage */
    uint64_t spans;     /* 64 KiB spans given to this class */
} dh_class_stats_t;

typedef struct dh_stats {
    uint32_t struct_size;      /* sizeof(dh_stats_t) of the library */
    uint32_t version;          /* DH_STATS_VERSION */
    /* The original design's figures. */
    uint64_t alloc_count;      /* every successful allocation */
    uint64_t free_count;       /* frees that freed a live block */
    uint64_t live_count;       /* blocks in use (O(1)) */
    uint64_t total_blocks;     /* blocks ever carved from fresh storage */
    uint64_t storage_bytes;    /* bytes carved from the range; never shrinks */
    uint64_t free_block_count; /* free blocks waiting for reuse */
    /* Memory. */
    uint64_t live_bytes;       /* usable bytes of the blocks in use */
    uint64_t peak_live_bytes;  /* largest value live_bytes has had */
    uint64_t requested_bytes;  /* bytes asked for by the live blocks' callers
                                  (class blocks: as last allocated) */
    uint64_t committed_bytes;  /* data and state map committed; never shrinks */
    uint64_t reserved_bytes;   /* the heap's reserved range */
    uint64_t failed_allocs;    /* allocations that returned NULL/ENOMEM */
    /* Large blocks (page-granular, > 64 KiB or over-aligned). */
    uint64_t large_allocs;
    uint64_t large_frees;
    uint64_t large_live_count;
    uint64_t large_live_bytes;
    uint64_t large_free_count;  /* free large blocks (after coalescing) */
    uint64_t large_free_bytes;
    /* Misuse. */
    uint64_t rejected_frees;        /* pointer frees/reallocs rejected */
    uint64_t rejected_by_code[DH_ERR_COUNT];
    uint64_t rejected_handle_frees; /* no-op handle frees */
    dh_class_stats_t classes[DH_NUM_CLASSES];
    /* Integrity (DH_STATS_VERSION 2): free lists and large-block trees
     * found overwritten and abandoned, and the free blocks they held,
     * which are leaked (never handed out again; docs/ERRORS.md). */
    uint64_t corruptions;
    uint64_t abandoned_blocks;
    uint64_t abandoned_bytes;
    /* Class sets (DH_STATS_VERSION 3): the heap's set, its number of
     * classes, and every class of it in by_class[0 .. class_count).  For a
     * heap of the spec set `classes` above holds the same figures; for a
     * fine heap, each of its entries sums the fine classes that the spec
     * class of that size would serve (size: the spec class's). */
    uint32_t class_set;
    uint32_t class_count;
    dh_class_stats_t by_class[DH_CLASSES_MAX];
} dh_stats_t;

/* Fill *out with the heap's statistics.  Pass sizeof(*out) as out_size; a
 * smaller size (an older caller) gets the prefix that fits.  Returns false
 * (EINVAL) if heap or out is NULL or out_size is below the two header
 * fields.  O(number of classes). */
DH_API bool dh_heap_stats(const dh_heap_t *heap, dh_stats_t *out,
                          size_t out_size);

/* ---- checking and walking ----------------------------------------------- */

/* Result of dh_heap_check: DH_CHECK_OK, or the number (I1, I2, ...) of the
 * first invariant found broken; see docs/DESIGN.md. */
typedef enum dh_check {
    DH_CHECK_OK = 0,
    DH_CHECK_I1 = 1,  /* state map: every block start has a valid state */
    DH_CHECK_I2,      /* spans: every carved block lies in a span of its class */
    DH_CHECK_I3,      /* free lists: each holds only free blocks of its class */
    DH_CHECK_I4,      /* free-list lengths and per-class counters agree */
    DH_CHECK_I5,      /* large blocks tile their ranges; sizes agree */
    DH_CHECK_I6,      /* no two free large blocks are neighbours */
    DH_CHECK_I7,      /* the free-large tree is ordered and balanced */
    DH_CHECK_I8,      /* carved storage, top and committed end agree */
    DH_CHECK_I9       /* live counts and live bytes agree with the blocks */
} dh_check_t;

/* Validate every invariant of the heap.  Never aborts, never changes the
 * heap.  O(carved storage).  Returns DH_CHECK_OK or the first broken one.
 * A heap of the process heap (dh_heap_of a malloc'd pointer) can be checked
 * while no other thread uses it or frees its blocks. */
DH_API dh_check_t dh_heap_check(const dh_heap_t *heap);

/* What the walker reports for each block, in address order. */
typedef struct dh_block_info {
    void *ptr;        /* the block's address */
    size_t size;      /* its usable size */
    int size_class;   /* its class, or -1 for a large block */
    bool live;        /* in use (true) or free (false) */
} dh_block_info_t;

/* Return false from the visitor to stop the walk. */
typedef bool (*dh_visit_fn)(const dh_block_info_t *block, void *user);

/* Visit every carved block of the heap (live and free) in address order.
 * Returns the number of blocks visited.  The visitor must not call into the
 * heap.  O(carved blocks). */
DH_API size_t dh_heap_walk(const dh_heap_t *heap, dh_visit_fn visit,
                           void *user);

/* ---- the process heap --------------------------------------------------- */

/* The default heap API: malloc-style functions on the process heap, which
 * is also what malloc uses when libdetheap.so is preloaded or linked.  The
 * process heap is one heap per thread, each in its own slot of the address
 * range at DETHEAP_BASE (docs/OPTIONS.md), so a thread's addresses depend
 * only on its own calls and its place in the thread-creation tree
 * (docs/DESIGN.md, "Threads").  Thread-safe; blocks may be freed by any
 * thread, with dh_free.  Same errors as the dh_heap_* functions; misuse is
 * reported through DETHEAP_ON_ERROR (default: abort with a message). */
DH_API DH_NODISCARD void *dh_malloc(size_t n);
DH_API DH_NODISCARD void *dh_calloc(size_t count, size_t size);
DH_API DH_NODISCARD void *dh_realloc(void *ptr, size_t n);
DH_API DH_NODISCARD void *dh_aligned_alloc(size_t align, size_t n);

/* Statistics summed over every heap of the process heap.  Same contract as
 * dh_heap_stats.  Exact only while no other thread allocates. */
DH_API bool dh_process_stats(dh_stats_t *out, size_t out_size);

/* The process fingerprint: a 64-bit hash of every (operation, size,
 * returned address) of every thread, per heap in call order.  Counted only
 * while DETHEAP_STATS or DETHEAP_TRACE is set; 0 otherwise. */
DH_API uint64_t dh_process_fingerprint(void);

/* Validate every heap of the process heap (the heap of each thread, and
 * the shared system heap) as one: every invariant of dh_heap_check that
 * holds for a heap on its own, checked for each, and the counts that only
 * add up over the process once threads free each other's blocks (I3, I4,
 * I7, I9: a block freed by another thread is counted, and may be kept, by
 * that thread's heap).  Returns DH_CHECK_OK or the number of the first
 * invariant found broken.  O(carved storage of the process).  Thread-safe
 * in that it takes the process lock, but a heap whose thread allocates or
 * frees meanwhile may be seen half-changed: call it while the other
 * threads are parked (or gone), e.g. after a barrier. */
DH_API int dh_process_check(void);

/* Tool support: a function that stores up to max return addresses of the
 * current call stack in frames and returns how many.  With DETHEAP_STACKS=1
 * and DETHEAP_TRACE set, every traced call records the stack it returns.
 * Called from inside malloc: it may allocate (those calls are not traced). */
typedef int (*dh_stack_fn)(void **frames, int max);
DH_API void dh_set_stack_hook(dh_stack_fn fn);

/* ---- global error policy ------------------------------------------------ */

/* The policy for pointers given to dh_free that belong to no heap
 * (DH_ERR_FOREIGN): dh_free names no heap, so no heap's policy applies.
 * (dh_heap_free and dh_heap_realloc report a foreign pointer through the
 * named heap's policy.)  Default DH_ON_ERROR_IGNORE.  Returns false with
 * errno EINVAL for an unknown policy or CALLBACK without a callback.
 * Thread-safe. */
DH_API bool dh_set_default_error_policy(dh_on_error_t policy, dh_error_fn cb,
                                        void *user);

/* How many foreign pointers have been rejected by the global policy. */
DH_API uint64_t dh_foreign_frees(void);

/* A name for an error code ("double free", ...), never NULL. */
DH_API const char *dh_error_name(dh_error_code_t code);

/* ---- heap images, roots and snapshots ----------------------------------- */

/* A heap created at a fixed base (dh_config_t.base) holds only absolute
 * pointers into its own range, so it can be written to a file and mapped
 * again at the same base in another process: every pointer, handle,
 * content and statistic is as it was, and the calls made afterwards give
 * the addresses they would have given in the saving process.  Snapshots
 * put any private heap back the way it was, at a cost proportional to the
 * pages written since.  The file format, and what is checked when, is in
 * docs/IMAGE.md. */

/* The format version written by dh_heap_save; dh_heap_open refuses others
 * (ENOEXEC). */
#define DH_IMAGE_FORMAT 1u

/* dh_heap_open flags: exactly one of PRIVATE and SHARED, optionally
 * VERIFY. */
#define DH_OPEN_PRIVATE 1u /* copy-on-write: the file is never changed */
#define DH_OPEN_SHARED 2u  /* writes reach the file: a persistent heap */
#define DH_OPEN_VERIFY 4u  /* also check every data page's hash and run
                              the full dh_heap_check: O(image) */

/* Write the heap to path: a versioned header with checksums, the heap's
 * header, its committed state map and its carved data, with holes where a
 * page is zero.  The file is written beside path (path.tmp), flushed to
 * disk and renamed over path, so path is either the old file or the whole
 * new one, and a process that has the old one open keeps its old heap.
 * The heap is unchanged (its root is saved with it).
 * Cost: O(committed bytes) of reading, O(non-zero pages) of writing, one
 * fdatasync.  The heap must not be in use by another thread.
 * Returns 0, or -1 with errno:
 *   EINVAL        heap is NULL or not a live heap, or was not created at a
 *                 fixed base (dh_config_t.base 0), or path is NULL;
 *   EPERM         heap is one of the process heap's heaps;
 *   ENAMETOOLONG  path is longer than 4000 bytes;
 *   any errno of open(2), write(2), fallocate(2), fdatasync(2) or rename(2)
 *                 on the file (ENOENT, EACCES, ENOSPC, EIO ...); path is
 *                 then left as it was. */
DH_API int dh_heap_save(dh_heap_t *heap, const char *path);

/* Map the image at path at its base and return its heap.  Lazy: the data
 * is mapped, not read, so opening costs page faults on use; what is read
 * and checked before returning is the image header, the heap header and
 * the state map (their checksums), the heap header's layout against this
 * library's, and the cheap tier of dh_heap_check (bounds, tables, list
 * heads, the large tree's root).  Data pages are checked only with
 * DH_OPEN_VERIFY (or `detheap image check`).  The heap then behaves as the
 * saved one: same addresses, handles, contents, statistics and root, and
 * dh_free, dh_heap_of and growth work as on any heap.  Its error policy is
 * the saved one, except that DH_ON_ERROR_CALLBACK (whose function was the
 * saving process's) becomes DH_ON_ERROR_IGNORE.
 * DH_OPEN_PRIVATE maps the file copy-on-write (the file is never written);
 * the file may be opened privately by many processes at once.
 * DH_OPEN_SHARED maps it shared: every write to the heap reaches the file,
 * growth extends it, and dh_heap_destroy seals it (rewrites its checksums)
 * for the next process; only one process may have it open shared, and none
 * privately meanwhile.  An image whose shared writer died before sealing
 * is opened after the full dh_heap_check instead of its checksums.
 * dh_heap_destroy unmaps the heap and closes the file.
 * Cost: O(state map) (1/16 of the committed data) plus a few system calls;
 * with DH_OPEN_VERIFY O(image).  Thread-safe.
 * Fails, returning NULL with nothing left mapped and the file unchanged,
 * with errno:
 *   EINVAL   flags is not one of the combinations above or path is NULL;
 *            the file is truncated or damaged (a checksum, a header field
 *            or the heap check disagrees);
 *   ENOEXEC  the file is not a detheap image, or one this library cannot
 *            open: another format version, another layout of the heap
 *            header (DH_IMAGE_LAYOUT), other size classes, another page
 *            size;
 *   EEXIST   part of the image's range is already mapped in this process;
 *   EBUSY    another process has the file open in a mode that excludes
 *            this one (a shared opener excludes every other);
 *   ENOMEM   the range could not be reserved;
 *   any errno of open(2) on path (ENOENT, EACCES ...). */
DH_API DH_NODISCARD dh_heap_t *dh_heap_open(const char *path,
                                            unsigned flags);

/* One pointer kept in the heap's header, saved and opened with it and
 * restored by dh_heap_rollback: where a program finds its data in an image
 * (usually a block of the heap, but any value is kept).  dh_heap_reset
 * clears it.  O(1); NULL heap: no-op / NULL. */
DH_API void dh_heap_set_root(dh_heap_t *heap, void *root);
DH_API void *dh_heap_root(const dh_heap_t *heap);

/* What `detheap image info` prints: read from the file's headers alone,
 * without mapping the heap. */
typedef struct dh_image_info {
    uint32_t struct_size;     /* sizeof(dh_image_info_t) of the caller */
    uint32_t format;          /* the image's format version */
    uint32_t layout;          /* its heap-header layout version */
    uint32_t sealed;          /* 1: checksums current; 0: a shared writer
                                 has it open, or died before sealing */
    uint32_t data_hashed;     /* 1: per-chunk data hashes are current */
    uint32_t class_count;     /* size classes recorded */
    uint32_t class_sizes[64]; /* their sizes, the first class_count */
    uint64_t library_version; /* DH_VERSION of the library that wrote it */
    uint64_t base;            /* where it maps */
    uint64_t reserve;         /* its range's size */
    uint64_t file_bytes;      /* the file's length (holes included) */
    uint64_t committed_bytes; /* header, state map and data mapped */
    uint64_t storage_bytes;   /* carved data */
    uint64_t live_count;      /* blocks in use */
    uint64_t live_bytes;
    uint64_t root;            /* dh_heap_root, as an address */
} dh_image_info_t;

/* Fill *out (out_size = sizeof *out) from the image at path, verifying its
 * header checksum.  O(1): reads the two headers.  Returns 0, or -1 with
 * errno as dh_heap_open (EINVAL, ENOEXEC, open(2)'s), or EINVAL for a
 * NULL out or an out_size below 8. */
DH_API int dh_image_info(const char *path, dh_image_info_t *out,
                         size_t out_size);

/* A snapshot of a private heap: its header (statistics and root), state
 * map and data as they were.  Taking one copies the heap's committed
 * memory (pages that are zero cost nothing) and asks the kernel to track
 * writes to it (userfaultfd write-protection, asynchronous: no handler,
 * no signal); rolling back copies back only the pages written since the
 * snapshot or the last rollback, and gives back the memory the heap
 * committed since.  A snapshot may be rolled back to any number of times.
 * Where the kernel offers no such tracking, rollback copies everything
 * back (O(committed bytes)), with the same result. */
typedef struct dh_snapshot dh_snapshot_t;

/* Take a snapshot of heap.  Cost: O(committed bytes) of copying, once.
 * The heap must not be in use by another thread.  Fails, returning NULL
 * with errno:
 *   EINVAL  heap is NULL or not a live heap, or an image opened with
 *           DH_OPEN_SHARED (its pages belong to the file);
 *   EPERM   heap is one of the process heap's heaps;
 *   EBUSY   heap already has a snapshot (free it first);
 *   ENOMEM  no memory for the copy. */
DH_API DH_NODISCARD dh_snapshot_t *dh_heap_snapshot(dh_heap_t *heap);

/* Put heap back exactly as it was when snap was taken: every byte of its
 * header (statistics, free lists, root), state map and data; the calls
 * made afterwards return what they returned after the snapshot.  Every
 * pointer and handle obtained since is invalid.  Cost: O(pages written
 * since the last rollback or the snapshot) plus a scan of the page tables
 * of the snapshot's range (about 0.6 ms per GiB); O(committed bytes) where
 * writes are not tracked.  Not thread-safe with other uses of the heap.
 * Returns false with errno EINVAL, changing nothing, if heap or snap is
 * NULL, or snap is not a snapshot of heap. */
DH_API bool dh_heap_rollback(dh_heap_t *heap, const dh_snapshot_t *snap);

/* Free a snapshot (the heap, if it still exists, is not changed and may
 * take another).  NULL is a no-op.  May be called after the heap was
 * destroyed. */
DH_API void dh_snapshot_free(dh_snapshot_t *snap);

#ifdef __cplusplus
}
#endif

#endif /* DETHEAP_H */
