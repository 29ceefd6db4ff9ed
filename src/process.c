/*
 * process.c - the process heap behind malloc and dh_malloc: one heap per
 * thread, each in a slot of the address range chosen by the thread's place
 * in the creation tree (see process.h for the slot map), plus the observed
 * paths (fingerprint, statistics) used when DETHEAP_STATS or DETHEAP_TRACE
 * is set.
 *
 * Start-up: the first call of the process (often from the dynamic loader
 * or libc, before constructors) creates slot 0's heap.  Nothing here
 * allocates through libc: options come from getenv, heaps from the OS layer.
 *
 * libc's own thread bookkeeping goes to a shared system heap instead (see
 * sys_heap below), since when it happens depends on other threads.
 *
 * Cross-thread free: a block freed by another thread than the one whose
 * heap carved it goes to the freeing thread's own free lists (fastpath.h),
 * so no heap's next address depends on when other threads run.  Such
 * blocks (and the allocations that take them back from the foreign list)
 * miss the override's inline paths, so dh_proc_free and dh_proc_malloc
 * try a lean path first, for a thread with its own unobserved heap, and
 * keep the general one out of line.  Each heap
 * is still touched by one thread at a time, without locks: the state map
 * byte of a block is written only by the thread that holds the block.
 */
#include "process.h"

#include "fastpath.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

/* The heap the fast paths see while a thread has none, or while the process
 * is observed: no free block, no span to carve from, no committed data.
 * Its tables must be valid from the first call (before any constructor),
 * so they are set here: every small size maps to bin 0, which is as empty
 * as the rest; no state byte maps to a bin. */
#define EMPTY_BIN(c) {.live_state = DH_ST_LIVE + (c)}
#define EMPTY_BIN0 ((dh_bin_t *)&dh_empty_heap.bins[0])
#define EMPTY_BIN0_X4 EMPTY_BIN0, EMPTY_BIN0, EMPTY_BIN0, EMPTY_BIN0
#define EMPTY_BIN0_X16 EMPTY_BIN0_X4, EMPTY_BIN0_X4, EMPTY_BIN0_X4, EMPTY_BIN0_X4
const dh_heap_t dh_empty_heap = {
    .bins = {EMPTY_BIN(0), EMPTY_BIN(1), EMPTY_BIN(2), EMPTY_BIN(3),
             EMPTY_BIN(4), EMPTY_BIN(5), EMPTY_BIN(6), EMPTY_BIN(7),
             EMPTY_BIN(8), EMPTY_BIN(9), EMPTY_BIN(10), EMPTY_BIN(11),
             EMPTY_BIN(12)},
    .bin_by_size = {EMPTY_BIN0_X16, EMPTY_BIN0_X16, EMPTY_BIN0_X16,
                    EMPTY_BIN0_X16, EMPTY_BIN0}};
_Static_assert(DH_SMALL_INDEXES == 65 && DH_NUM_CLASSES == 13,
               "dh_empty_heap's initializer lists every entry");
__thread dh_thread_t dh_self __attribute__((tls_model("initial-exec"))) = {
    .fast = (dh_heap_t *)&dh_empty_heap};
int dh_observe;

static dh_options_t options;
static _Atomic int init_state; /* 0 none, 1 running, 2 done */
static _Atomic(dh_heap_t *) slot_heap[DH_MAX_SLOTS];
static _Atomic int lock_word;
/* The system heap, under the lock: what libc allocates and frees inside
 * pthread_create/join/detach and in exiting threads (thread stacks' TLS
 * tables, recycled through libc's stack cache at moments that depend on
 * timing) and what threads past their exit allocate.  Its blocks always
 * come back to it, so no thread's own heap sees any of that. */
static dh_heap_t *sys_heap;
static dh_heap_t *orphans; /* heaps of detached threads; under the lock */
static bool fallback_said;

/* ---- the lock --------------------------------------------------------------- */

void dh_proc_lock(void) {
    while (atomic_exchange_explicit(&lock_word, 1, memory_order_acquire))
        while (atomic_load_explicit(&lock_word, memory_order_relaxed))
            __builtin_ia32_pause();
}

void dh_proc_unlock(void) {
    atomic_store_explicit(&lock_word, 0, memory_order_release);
}

void dh_proc_lock_reset(void) { atomic_store(&lock_word, 0); }

const dh_options_t *dh_proc_options(void) { return &options; }

/* ---- slots ------------------------------------------------------------------ */

static void say(const char *const *parts, size_t n) {
    for (size_t i = 0; i < n; i++)
        dh_os_write_stderr(parts[i], strlen(parts[i]));
}

static void hex(char *buf, uintptr_t v) {
    buf[0] = '0';
    buf[1] = 'x';
    for (int i = 0; i < 12; i++)
        buf[2 + i] = "0123456789abcdef"[(v >> (44 - 4 * i)) & 15];
    buf[14] = 0;
}

/* Create the heap of slot `slot`: at its place if free, else anywhere
 * (said once on stderr, since addresses then vary between runs). */
static dh_heap_t *slot_create(uint32_t slot) {
    dh_config_t cfg = DH_CONFIG_INIT;
    cfg.reserve = options.reserve;
    cfg.on_error = options.on_error;
    uintptr_t want = options.base + (uintptr_t)slot * options.reserve;
    bool placeable = options.base != 0 && (want >> DH_ADDRESS_BITS) == 0 &&
                     ((want + options.reserve) >> DH_ADDRESS_BITS) == 0;
    dh_heap_t *h = NULL;
    if (placeable) {
        cfg.base = want;
        h = dh_heap_create(&cfg);
    }
    if (h == NULL) {
        cfg.base = 0;
        h = dh_heap_create(&cfg);
        if (h == NULL) return NULL;
        if (!fallback_said && options.base != 0) {
            fallback_said = true;
            char a[16], b[16];
            hex(a, want);
            hex(b, h->base);
            const char *msg[] = {"detheap: the range at ", a,
                                 " is taken; heap placed at ", b,
                                 " instead (its addresses will differ "
                                 "between runs)\n"};
            say(msg, 5);
        }
    }
    dh_region_set_thp(h, options.thp);
    h->owner_slot = slot;
    h->process = true;
    if (options.trace) dh_trace_thread(h);
    atomic_store_explicit(&slot_heap[slot], h, memory_order_release);
    return h;
}

/* Called with the lock held. */
void dh_proc_orphan(dh_heap_t *h) {
    while (h != NULL) {
        dh_heap_t *next = h->next;
        h->next = orphans;
        orphans = h;
        h = next;
    }
}

/* A fresh slot from the shared pool, first come first served. */
static dh_heap_t *shared_slot_fresh(void) {
    for (uint32_t s = DH_SHARED_SLOTS_START; s < DH_MAX_SLOTS; s++) {
        dh_heap_t *expected = NULL;
        /* claim with a sentinel so that two threads never share a slot */
        if (atomic_compare_exchange_strong(&slot_heap[s], &expected,
                                           (dh_heap_t *)1)) {
            dh_heap_t *h = slot_create(s);
            if (h == NULL) atomic_store(&slot_heap[s], NULL);
            return h;
        }
    }
    errno = ENOMEM;
    return NULL;
}

/* A heap for a thread with no place in the tree: a detached thread's old
 * heap if there is one, else a fresh shared slot. */
static dh_heap_t *shared_slot(void) {
    dh_proc_lock();
    dh_heap_t *h = orphans;
    if (h != NULL) orphans = h->next;
    dh_proc_unlock();
    if (h == NULL) return shared_slot_fresh();
    h->next = NULL;
    return h;
}

/* The slot of the next fresh child of the thread holding heap `parent`,
 * or DH_MAX_SLOTS when the tree is deeper or wider than the slot map. */
static uint32_t child_slot(dh_heap_t *parent) {
    uint32_t s = parent->owner_slot, k = parent->fresh_children;
    if (s == 0 && k + 1 < DH_LEVEL1_SLOTS) return k + 1;
    if (s >= 1 && s <= DH_LEVEL2_PARENTS && k < DH_LEVEL2_CHILDREN)
        return DH_LEVEL1_SLOTS + (s - 1) * DH_LEVEL2_CHILDREN + k;
    return DH_MAX_SLOTS;
}

dh_heap_t *dh_proc_acquire_child_heap(dh_thread_t *parent, bool *unordered) {
    *unordered = false;
    dh_heap_t *h = parent->inherited;
    if (h != NULL) { /* a joined thread's heap, LIFO */
        parent->inherited = h->next;
        h->next = NULL;
        return h;
    }
    uint32_t slot = child_slot(parent->heap);
    if (slot < DH_MAX_SLOTS) {
        parent->heap->fresh_children++;
        return slot_create(slot);
    }
    *unordered = true;
    return shared_slot();
}

dh_heap_t *dh_proc_owner(uintptr_t p) {
    dh_heap_t *h = dh_region_lookup(p);
    return (h != NULL && h->process) ? h : NULL;
}

/* ---- start-up ----------------------------------------------------------------- */

void dh_proc_set_heap(dh_heap_t *h) {
    dh_self.heap = h;
    dh_self.fast = (dh_observe || h == NULL || dh_self.in_system)
                       ? (dh_heap_t *)&dh_empty_heap
                       : h;
}

void dh_proc_system_enter(void) {
    dh_self.in_system = true;
    dh_proc_set_heap(dh_self.heap);
}

void dh_proc_system_leave(void) {
    dh_self.in_system = false;
    dh_proc_set_heap(dh_self.heap);
}

static void init_process(void) {
    dh_options_read(&options);
    dh_observe = options.stats || options.trace || options.stacks;
    if (options.trace) dh_trace_open();
    dh_proc_set_heap(slot_create(0));
    dh_self.path = 0;
    atomic_store_explicit(&init_state, 2, memory_order_release);
    dh_thread_init(); /* may allocate: the heap is ready by now */
}

dh_heap_t *dh_proc_heap_slow(void) {
    if (dh_self.heap != NULL) return dh_self.heap;
    int expected = 0;
    if (atomic_compare_exchange_strong(&init_state, &expected, 1)) {
        init_process();
        return dh_self.heap;
    }
    while (atomic_load_explicit(&init_state, memory_order_acquire) != 2)
        __builtin_ia32_pause();
    if (dh_self.heap == NULL && !dh_self.exited) {
        /* a thread we did not see created: no place in the tree */
        dh_self.unordered = true;
        dh_proc_set_heap(shared_slot());
    }
    return dh_self.heap;
}

/* The system heap; call with the lock held. */
static dh_heap_t *system_heap(void) {
    if (sys_heap == NULL)
        __atomic_store_n(&sys_heap, shared_slot_fresh(), __ATOMIC_RELAXED);
    return sys_heap;
}

/* ---- the pointer API of the process heap ---------------------------------- */

/* Does this call belong to the system heap?  (Inside a libc thread call,
 * past the thread's exit, or on one of the system heap's blocks.) */
static bool system_call(dh_heap_t *owner) {
    return dh_self.in_system || dh_self.exited ||
           (owner != NULL &&
            owner == __atomic_load_n(&sys_heap, __ATOMIC_RELAXED));
}

/* Start a call: the thread's heap, or the system heap under the lock.
 * Returns NULL (ENOMEM) if there is none. */
static dh_heap_t *begin(bool sys, bool *locked) {
    *locked = false;
    if (!sys) {
        dh_heap_t *h = dh_self.heap ? dh_self.heap : dh_proc_heap_slow();
        if (h != NULL || !dh_self.exited) {
            if (h == NULL) errno = ENOMEM;
            return h;
        }
    }
    dh_proc_lock();
    *locked = true;
    dh_heap_t *h = system_heap();
    if (h == NULL) {
        dh_proc_unlock();
        *locked = false;
        errno = ENOMEM;
    }
    return h;
}

#define WITH_HEAP(h, owner, fail)                    \
    bool in_sys = system_call(owner), locked;        \
    dh_heap_t *h = begin(in_sys, &locked);           \
    if (DH_UNLIKELY(h == NULL)) return fail;         \
    bool observed = dh_observe && !locked

#define DONE_HEAP() \
    if (locked) dh_proc_unlock()

/* The thread's lean heap (dh_self.fast): it has a heap, nothing is
 * observed and it is not inside a libc thread call nor past its exit. */
DH_INLINE dh_heap_t *lean_heap(void) {
    dh_heap_t *h = dh_self.fast;
    return h != (dh_heap_t *)&dh_empty_heap ? h : NULL;
}

/* Kept out of line, so that the lean path needs no stack frame. */
static __attribute__((noinline)) void *proc_malloc_slow(size_t n) {
    WITH_HEAP(h, NULL, NULL);
    void *p = dh_heap_malloc(h, n);
    if (observed) dh_observe_op(h, DH_OP_MALLOC, n, 0, 0, (uintptr_t)p);
    DONE_HEAP();
    return p;
}

/* The override's malloc comes here when the class's main list is empty;
 * in a program whose threads free each other's blocks that is often
 * because the blocks at hand are on the foreign list.  Take one there, as
 * bin.c would (the inbox first, so only when it is empty), inline: in
 * such programs this pop is as hot as the override's own. */
DH_INLINE void *lean_class_alloc(dh_heap_t *h, size_t n) {
    int c = dh_class_of(n);
    if (c < 0) return NULL;
    dh_bin_t *b = &h->bins[c];
    void **p = b->head;
    if (p != NULL) {
        b->head = DH_LINK_READ(p);
    } else {
        p = b->foreign;
        if (p == NULL || __atomic_load_n(&h->inbox, __ATOMIC_RELAXED) != NULL)
            return NULL;
        b->foreign = DH_LINK_READ(p);
    }
    *p = NULL; /* no free-list link is left for the caller */
    dh_st_store(dh_state_at(h, (uintptr_t)p), b->live_state);
    DH_BLOCK_ALLOC(p, dh_class_sizes[c]);
    b->allocs++;
    return p;
}

void *dh_proc_malloc(size_t n) {
    dh_heap_t *lean = lean_heap();
    if (DH_LIKELY(lean != NULL)) {
        void *p = lean_class_alloc(lean, n);
        if (DH_LIKELY(p != NULL)) return p;
    }
    return proc_malloc_slow(n);
}

void *dh_proc_calloc(size_t count, size_t size) {
    WITH_HEAP(h, NULL, NULL);
    void *p = dh_heap_calloc(h, count, size);
    if (observed) dh_observe_op(h, DH_OP_CALLOC, count, size, 0, (uintptr_t)p);
    DONE_HEAP();
    return p;
}

void *dh_proc_aligned(size_t align, size_t n) {
    WITH_HEAP(h, NULL, NULL);
    void *p = dh_heap_aligned_alloc(h, align, n);
    if (observed) dh_observe_op(h, DH_OP_ALIGNED, n, align, 0, (uintptr_t)p);
    DONE_HEAP();
    return p;
}

/* Validate a process-heap pointer: its heap and live state byte, or 0. */
static uint8_t proc_live(uintptr_t p, dh_heap_t **owner) {
    dh_heap_t *o = dh_proc_owner(p);
    *owner = o;
    return o ? dh_live_state(o, p) : 0;
}

static void reject(dh_heap_t *h, dh_heap_t *owner, uintptr_t p,
                   const char *call) {
    int c = -1;
    dh_error_code_t code = DH_ERR_FOREIGN;
    if (owner != NULL) code = dh_classify(owner, p, &c);
    dh_report(h, call, (void *)p, code, c);
}

/* DETHEAP_REMOTE_FREE=owner: mark the block free and push it onto its
 * owner's inbox (lock-free; only the owner takes, and it takes all). */
static void remote_return(dh_heap_t *h, dh_heap_t *owner, uintptr_t p,
                          uint8_t s) {
    uint8_t *st = dh_state_at(owner, p);
    if (dh_st_is_live_class(s)) {
        h->bins[s - DH_ST_LIVE].frees++;
        dh_st_store(st, (uint8_t)(s + (DH_ST_FREE - DH_ST_LIVE)));
    } else { /* counted here; the owner only gives the pages back */
        uint64_t bytes = dh_large_pages(owner, p) << DH_PAGE_SHIFT;
        h->large_frees++;
        h->large_live_count--;
        h->large_live_bytes -= bytes;
        dh_st_store(st, DH_ST_FREE_FOREIGN);
    }
    void *head = __atomic_load_n(&owner->inbox, __ATOMIC_RELAXED);
    if (dh_st_is_live_class(s)) DH_BLOCK_FREE((void *)p, dh_class_sizes[s - 1]);
    do DH_LINK_WRITE((void *)p, head);
    while (!__atomic_compare_exchange_n(&owner->inbox, &head, (void *)p, true,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

void dh_inbox_drain(dh_heap_t *h) {
    void *list = __atomic_exchange_n(&h->inbox, NULL, __ATOMIC_ACQUIRE);
    while (list != NULL) {
        uintptr_t p = (uintptr_t)list;
        list = DH_LINK_READ(list);
        uint8_t s = dh_st_load(dh_state_at(h, p));
        if (dh_st_is_free_class(s)) {
            dh_bin_t *b = &h->bins[s - DH_ST_FREE];
            DH_LINK_WRITE((void *)p, b->head);
            b->head = (void *)p;
        } else { /* a large block, already counted as freed: undo the
                  * counts dh_large_free is about to make, then free it */
            uint64_t bytes = dh_large_pages(h, p) << DH_PAGE_SHIFT;
            h->large_frees--;
            h->large_live_count++;
            h->large_live_bytes += bytes;
            h->live_bytes += bytes;
            dh_large_free(h, p);
        }
    }
}

/* A free that the override's fast path did not take is most often a live
 * class block of another thread's heap (or one that came back to this
 * thread from its foreign list).  With a lean heap, that is validated as
 * the general path would (a process heap other than the system heap, a
 * granule of its carved data, a live class byte) and released at once:
 * onto this thread's lists, or its owner's inbox in owner mode.  Returns
 * false for everything else. */
DH_INLINE bool lean_class_free(dh_heap_t *h, uintptr_t p) {
    dh_heap_t *owner = dh_region_lookup(p);
    if (owner == NULL || !owner->process ||
        owner == __atomic_load_n(&sys_heap, __ATOMIC_RELAXED))
        return false;
    uint8_t s = dh_live_state(owner, p);
    if (!dh_st_is_live_class(s)) return false;
    if (options.remote_owner && owner != h)
        remote_return(h, owner, p, s);
    else
        dh_fast_free(h, p, dh_state_at(owner, p), s - DH_ST_LIVE);
    return true;
}

/* Kept out of line, so that the lean path needs no stack frame. */
static __attribute__((noinline)) void proc_free_slow(uintptr_t p,
                                                     const char *call) {
    dh_heap_t *owner;
    uint8_t s = proc_live(p, &owner);
    WITH_HEAP(h, owner, );
    if (s == 0) {
        reject(h, owner, p, call);
    } else {
        if (observed)
            dh_observe_op(h, DH_OP_FREE, dh_block_size(owner, p, s), 0, p, 0);
        if (options.remote_owner && owner != h && !locked)
            remote_return(h, owner, p, s);
        else
            dh_heap_release(h, p, s);
    }
    DONE_HEAP();
}

void dh_proc_free(void *ptr, const char *call) {
    if (ptr == NULL) return;
    uintptr_t p = (uintptr_t)ptr;
    dh_heap_t *lean = lean_heap();
    if (DH_LIKELY(lean != NULL) && DH_LIKELY(lean_class_free(lean, p))) return;
    proc_free_slow(p, call);
}

void *dh_proc_realloc(void *ptr, size_t n, const char *call) {
    uintptr_t p = (uintptr_t)ptr;
    dh_heap_t *owner = NULL;
    uint8_t s = ptr ? proc_live(p, &owner) : 0;
    WITH_HEAP(h, owner, NULL);
    void *q = NULL;
    if (ptr == NULL) {
        q = dh_heap_malloc(h, n);
    } else if (s == 0) {
        reject(h, owner, p, call);
        errno = EINVAL;
    } else {
        /* the block may be another thread heap's: it is resized in place
         * only in its own heap, else moved into this thread's */
        q = dh_realloc_block(h, p, s, n);
    }
    if (observed && (ptr == NULL || s != 0))
        dh_observe_op(h, DH_OP_REALLOC, n, 0, p, (uintptr_t)q);
    DONE_HEAP();
    return q;
}

size_t dh_proc_usable(const void *ptr) {
    dh_heap_t *owner;
    uint8_t s = proc_live((uintptr_t)ptr, &owner);
    return s ? dh_block_size(owner, (uintptr_t)ptr, s) : 0;
}

/* ---- the dh_malloc family: the process heap under dh_ names -------------- */

/* dh_free serves every heap: a block of the process heap is freed by the
 * calling thread's heap (as free does), any other heap's by its own. */
void(dh_free)(void *ptr) {
    if (ptr == NULL) return;
    uintptr_t p = (uintptr_t)ptr;
    dh_heap_t *h = dh_region_lookup(p);
    if (h == NULL) {
        dh_report(NULL, "dh_free", ptr, DH_ERR_FOREIGN, -1);
    } else if (h->process) {
        dh_proc_free(ptr, "dh_free");
    } else {
        dh_heap_free_in(h, p, "dh_free");
    }
}

void *dh_malloc(size_t n) { return dh_proc_malloc(n); }
void *dh_calloc(size_t count, size_t size) { return dh_proc_calloc(count, size); }
void *dh_realloc(void *p, size_t n) { return dh_proc_realloc(p, n, "dh_realloc"); }
void *dh_aligned_alloc(size_t align, size_t n) { return dh_proc_aligned(align, n); }

/* ---- statistics over every heap of the process ------------------------------ */

static void add_stats(dh_stats_t *sum, const dh_stats_t *s) {
    uint64_t *d = &sum->alloc_count;
    const uint64_t *a = &s->alloc_count;
    /* every field after the header is a uint64_t sum, except the class
     * sizes and the peaks, fixed below */
    size_t n = (sizeof *s - offsetof(dh_stats_t, alloc_count)) /
               sizeof(uint64_t);
    for (size_t i = 0; i < n; i++) d[i] += a[i];
}

void dh_proc_stats(dh_stats_t *out) {
    memset(out, 0, sizeof *out);
    uint64_t peak = 0;
    for (uint32_t s = 0; s < DH_MAX_SLOTS; s++) {
        dh_heap_t *h = atomic_load(&slot_heap[s]);
        if (h == NULL || h == (dh_heap_t *)1) continue;
        dh_stats_t one;
        dh_heap_stats(h, &one, sizeof one);
        add_stats(out, &one);
        peak += one.peak_live_bytes;
    }
    out->struct_size = sizeof *out;
    out->version = DH_STATS_VERSION;
    /* a cross-thread free is counted by the freeing heap: only the sums
     * are meaningful, and the per-heap free counts are re-derived */
    out->live_count = out->alloc_count - out->free_count;
    /* malloc's lean fast paths count blocks, not bytes: derive the bytes,
     * and report a peak only where every call was counted (observing) */
    out->live_bytes = out->large_live_bytes;
    for (int c = 0; c < DH_NUM_CLASSES; c++)
        out->live_bytes += (out->classes[c].allocs - out->classes[c].frees) *
                           dh_class_sizes[c];
    out->peak_live_bytes = dh_observe ? peak : 0;
    for (int c = 0; c < DH_NUM_CLASSES; c++) {
        dh_class_stats_t *cs = &out->classes[c];
        cs->size = dh_class_sizes[c];
        cs->live = cs->allocs - cs->frees;
        cs->free = cs->carved - cs->live;
    }
}

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* The process fingerprint: every heap's call hash, combined in slot order
 * (the slot is part of each thread's identity). */
uint64_t dh_proc_fingerprint(void) {
    uint64_t fp = 0xcbf29ce484222325ull;
    for (uint32_t s = 0; s < DH_MAX_SLOTS; s++) {
        dh_heap_t *h = atomic_load(&slot_heap[s]);
        if (h == NULL || h == (dh_heap_t *)1 || h->ops == 0) continue;
        fp = mix(fp ^ mix(s + 1) ^ h->fingerprint);
    }
    return fp;
}

void dh_observe_op(dh_heap_t *h, dh_op_t op, uint64_t a, uint64_t b,
                   uintptr_t in, uintptr_t out) {
    uint64_t fp = h->fingerprint;
    fp = mix(fp ^ ((uint64_t)op << 56) ^ a);
    fp = mix(fp ^ b ^ ((uint64_t)in << 1));
    fp = mix(fp ^ out);
    h->fingerprint = fp;
    h->ops++;
    if (options.trace && !dh_self.in_hook) dh_trace_record(h, op, a, b, in, out);
}

/* At exit: finish the trace and print the statistics.  It lives here, in
 * the file every user of the process heap links, so that a static link
 * gets it too. */
__attribute__((destructor)) static void at_exit(void) {
    if (dh_self.heap == NULL) return; /* the process heap was never used */
    const dh_options_t *o = dh_proc_options();
    if (o->trace) dh_trace_finish();
    if (!o->stats) return;
    int fd = 2;
    if (o->stats_file) {
        char name[4096];
        dh_file_name(name, sizeof name, o->stats_file);
        fd = dh_os_open_write(name);
        if (fd < 0) fd = 2;
    }
    dh_proc_report(fd, o->stats_json);
    if (fd != 2) dh_os_close(fd);
}
