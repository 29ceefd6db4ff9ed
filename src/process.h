/*
 * process.h - the process heap: the heaps behind malloc and dh_malloc, one
 * per thread, each in its own slot of the address range, and what the
 * malloc override needs from it.
 *
 * Slots.  Slot i is the range [base + i * reserve, base + (i + 1) * reserve)
 * (DETHEAP_BASE, DETHEAP_RESERVE).  A heap is created in a slot when a
 * thread first needs one, and the slot a thread gets is a pure function of
 * its place in the thread-creation tree:
 *
 *   slot 0                 the main thread (the first thread to allocate)
 *   slot k, 1..255         the k-th thread that slot 0's thread creates and
 *                          that needs a fresh heap
 *   256 + (s-1)*16 + j     the (j+1)-th such thread of slot s, s = 1..40,
 *                          j = 0..15
 *   896..1023              everything else, first come first served (these
 *                          threads' addresses may vary between runs)
 *
 * A thread that has joined another thread hands the joined thread's heap on,
 * LIFO, to the next threads it creates, before any fresh slot is used; the
 * count of fresh children is kept with the heap, so a slot's children get
 * the same slots whoever holds the heap.
 */
#ifndef DH_PROCESS_H
#define DH_PROCESS_H

#include "internal.h"
#include "options.h"

#define DH_MAX_SLOTS 1024u
#define DH_LEVEL1_SLOTS 256u       /* slots 1..255: children of slot 0 */
#define DH_LEVEL2_PARENTS 40u      /* slots 1..40 have level-2 children */
#define DH_LEVEL2_CHILDREN 16u
#define DH_SHARED_SLOTS_START 896u /* first come, first served */

/* Operations, as counted in the fingerprint and written to the trace. */
typedef enum dh_op {
    DH_OP_MALLOC = 1,
    DH_OP_CALLOC = 2,
    DH_OP_REALLOC = 3,
    DH_OP_FREE = 4,
    DH_OP_ALIGNED = 5,
    DH_OP_THREAD = 8,  /* trace only: a thread's identity */
    DH_OP_FRAMES = 9,  /* trace only: the call stack of the previous op */
    DH_OP_MAPS = 10,   /* trace only: the process's memory map at exit */
    DH_OP_END = 11     /* trace only: a thread or process finished */
} dh_op_t;

/* Per-thread state, in initial-exec TLS (no allocation to reach it). */
typedef struct dh_thread {
    dh_heap_t *fast;      /* = heap, unless there is none or the process
                             is observed: then dh_empty_heap, whose lists
                             are empty and range is void, so the fast
                             paths fall through without a test */
    dh_heap_t *heap;      /* this thread's heap, NULL before the first call */
    uint64_t path;        /* identity: hash of the path in the creation tree */
    uint32_t children;    /* threads created so far */
    bool exited;          /* its heap has been handed on */
    bool in_hook;         /* re-entered from the trace/stack hooks */
    bool in_system;       /* inside pthread_create/join/detach: libc's own
                             allocations go to the system heap */
    bool unordered;       /* its slot came from the shared pool */
    dh_heap_t *inherited; /* heaps of joined threads, LIFO via next_free */
} dh_thread_t;

DH_HIDDEN extern const dh_heap_t dh_empty_heap;
DH_HIDDEN extern __thread dh_thread_t dh_self
    __attribute__((tls_model("initial-exec")));

/* Set when stats, trace or stacks are on: every call then goes through the
 * observed (slower) paths. */
DH_HIDDEN extern int dh_observe;

/* Make h the calling thread's heap (NULL: none). */
DH_HIDDEN void dh_proc_set_heap(dh_heap_t *h);

/* Enter or leave a libc thread call (pthread_create, join, detach): while
 * inside, every allocation and free uses the system heap. */
DH_HIDDEN void dh_proc_system_enter(void);
DH_HIDDEN void dh_proc_system_leave(void);

/* The calling thread's heap, creating the process heap on first use;
 * NULL if none can be had (ENOMEM). */
DH_HIDDEN dh_heap_t *dh_proc_heap_slow(void);

/* The options in force (after dh_proc_heap_slow has run once). */
DH_HIDDEN const dh_options_t *dh_proc_options(void);

/* The heap a process-heap pointer lies in, or NULL. */
DH_HIDDEN dh_heap_t *dh_proc_owner(uintptr_t p);

/* Pointer API of the process heap, with misuse reported as `call`. */
DH_HIDDEN void *dh_proc_malloc(size_t n);
DH_HIDDEN void *dh_proc_calloc(size_t count, size_t size);
DH_HIDDEN void *dh_proc_realloc(void *p, size_t n, const char *call);
DH_HIDDEN void *dh_proc_aligned(size_t align, size_t n);
DH_HIDDEN void dh_proc_free(void *p, const char *call);
DH_HIDDEN size_t dh_proc_usable(const void *p);

/* Observation: fingerprint, per-class peaks, trace. */
DH_HIDDEN void dh_observe_op(dh_heap_t *h, dh_op_t op, uint64_t a, uint64_t b,
                             uintptr_t in, uintptr_t out);
DH_HIDDEN void dh_trace_open(void);
/* tmpl with every %p replaced by the process id (DETHEAP_TRACE, _FILE). */
DH_HIDDEN void dh_file_name(char *out, size_t cap, const char *tmpl);
DH_HIDDEN void dh_trace_record(dh_heap_t *h, dh_op_t op, uint64_t a,
                               uint64_t b, uintptr_t in, uintptr_t out);
DH_HIDDEN void dh_trace_thread(dh_heap_t *h);
DH_HIDDEN void dh_trace_flush(dh_heap_t *h);
DH_HIDDEN void dh_trace_finish(void);
DH_HIDDEN void dh_trace_after_fork(void);

/* Threads (thread.c): hand a heap on when its thread ends. */
DH_HIDDEN void dh_thread_init(void);
DH_HIDDEN dh_heap_t *dh_proc_acquire_child_heap(dh_thread_t *parent,
                                                bool *unordered);
DH_HIDDEN void dh_proc_orphan(dh_heap_t *h);

/* Process-wide statistics: the sum over every heap of the process. */
DH_HIDDEN void dh_proc_stats(dh_stats_t *out);
DH_HIDDEN uint64_t dh_proc_fingerprint(void);
DH_HIDDEN void dh_proc_report(int fd, bool json);

/* The lock that guards slot assignment and the hand-over lists. */
DH_HIDDEN void dh_proc_lock(void);
DH_HIDDEN void dh_proc_unlock(void);
DH_HIDDEN void dh_proc_lock_reset(void); /* in a forked child */

#endif /* DH_PROCESS_H */
