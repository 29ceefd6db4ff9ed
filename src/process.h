/*
 * process.h - the process heap: the heaps behind malloc and dh_malloc, one
 * per thread, each in its own slot of the address range, and what the
 * malloc override needs from it.
 *
 * Slots.  Slot 0 is the main thread's range [base, base + reserve)
 * (DETHEAP_BASE, DETHEAP_RESERVE); thread slot i >= 1 is the i-th range of
 * DETHEAP_THREAD_RESERVE bytes (at least 4 GiB apart) above it, as many as
 * fit below the top of the user address space (about 24 000 at the
 * defaults).  A thread's slot is a pure function of its place in the
 * creation tree, decided by its creator in the creator's program order:
 * the k-th thread that a thread at depth d-1 with index i creates and that
 * needs a fresh heap is at depth d with index i * W[d] + k - 1, if
 * i < P[d] and k <= W[d] (the table in process.c, docs/DESIGN.md); the
 * slots of each depth follow those of the depth above.  Every other thread
 * is *unordered*: it gets a shared slot (or, when those run out, any slot
 * no ordered thread has taken yet, from the top down), first come, first
 * served, and says so in the statistics and the trace.
 *
 * A thread that has joined another thread hands the joined thread's heap on,
 * LIFO, to the next threads it creates, before any fresh slot is used; the
 * heaps that the joined thread had joined travel with its heap, so the
 * thread that next runs on that heap reuses them in turn.  The count of
 * fresh children is kept with the heap, so a slot's children get the same
 * slots whoever holds the heap.
 */
#ifndef DH_PROCESS_H
#define DH_PROCESS_H

#include "internal.h"
#include "options.h"

#define DH_MAX_SLOTS 32768u  /* slot numbers (the 47-bit space at 4 GiB) */
#define DH_NO_SLOT UINT32_MAX

/* Operations, as counted in the fingerprint and written to the trace. */
/* Retired spans given back to the OS per batch (process.c): at most this
 * many spans' memory stays committed per thread heap meanwhile. */
#define DH_DECOMMIT_BATCH 16
/* Their pages of state bytes go back in batches of this many pages (at
 * most 256 KiB per thread heap stays committed meanwhile). */
#define DH_STATE_BATCH 64
/* Freed large blocks whose pages wait to go back (process.c). */
#define DH_DIRTY_MAX 16

/* What the process layer keeps about one of its heaps, beside the core
 * heap (struct dh_heap, which knows nothing of threads): in the heap's
 * header area, DH_PROC_PART bytes above the core struct, committed when the
 * process layer creates the heap. */
typedef struct dh_proc_heap {
    uint32_t owner_slot;      /* the slot this heap lives in */
    bool unordered;           /* its slot was first come, first served */
    bool timing_dependent;    /* it reused memory other threads retired
                                 (its range ran out): from then on its
                                 addresses depend on timing */
    uint16_t depth;           /* place in the slot map (process.c) */
    uint32_t index;
    struct dh_heap *next;     /* link in a hand-over list */
    struct dh_heap *pool;     /* heaps the thread that last ran on this heap
                                 had joined and not handed on: they go with
                                 this heap to the next thread that runs on
                                 it (LIFO via next) */
    uint32_t fresh_children;  /* fresh slots given to threads made here */
    uint64_t tid;             /* kernel thread id of its last thread */
    char thread_name[16];     /* that thread's name when it ended, or "" */
    uint32_t trace_len;       /* bytes waiting in trace_buf */
    uint64_t fingerprint;     /* hash of every observed call's (op, size,
                                 result), in this heap's order */
    uint64_t ops;             /* observed calls */
    uint8_t *trace_buf;       /* DH_TRACE_BUF bytes in the header area */
    void *inbox;              /* DETHEAP_REMOTE_FREE=owner: blocks of this
                                 range freed by other threads, pushed
                                 atomically, taken whole by the owner */
    /* What this heap's thread retired instead of keeping (never reused;
     * whole spans and large blocks of it are given back to the OS), and
     * the retired spans of other ranges whose memory goes back together
     * once DH_DECOMMIT_BATCH are pending, adjacent ones in one call. */
    uint64_t retired_blocks, retired_bytes;
    uint32_t decommit_pending;
    uintptr_t decommit_spans[DH_DECOMMIT_BATCH];
    uint32_t state_pending;
    uintptr_t state_pages[DH_STATE_BATCH];
    /* Recycling (process.c): retired pages of this range that its freeing
     * threads moved, zeroed, to just above what this heap has carved.
     * move_state (atomic): 0 not asked yet, 1 being set up, 2 pages may be
     * moved here, 3 they may not; prefill (atomic): the end of what
     * movers have claimed here.  recycled_bytes: what this heap's thread
     * moved so (into other ranges), instead of giving it back. */
    uint8_t move_state;
    uintptr_t prefill;
    /* Large blocks this heap's thread freed whose pages it still holds
     * (process.c, "giving freed large blocks' pages back"), oldest first. */
    uint32_t ndirty;
    uintptr_t dirty[DH_DIRTY_MAX];
    uint64_t recycled_bytes;
} dh_proc_heap_t;

#define DH_PROC_PART ((uintptr_t)8192)
_Static_assert(sizeof(dh_heap_t) <= DH_PROC_PART,
               "the process part follows the core heap in the header");
_Static_assert(DH_COLORS * DH_CACHE_LINE + DH_PROC_PART +
                       sizeof(dh_proc_heap_t) <= DH_HEADER_SIZE / 2,
               "and ends below the trace buffer (trace.c), the struct's "
               "color included");

/* The process layer's part of a heap it created. */
DH_INLINE dh_proc_heap_t *dh_ph(const dh_heap_t *h) {
    return (dh_proc_heap_t *)((uintptr_t)h + DH_PROC_PART);
}

typedef enum dh_op {
    DH_OP_MALLOC = 1,
    DH_OP_CALLOC = 2,
    DH_OP_REALLOC = 3,
    DH_OP_FREE = 4,
    DH_OP_ALIGNED = 5,
    DH_OP_THREAD = 8,  /* trace only: a thread's identity */
    DH_OP_FRAMES = 9,  /* trace only: the call stack of the previous op */
    DH_OP_MAPS = 10,   /* trace only: the process's memory map at exit */
    DH_OP_END = 11,    /* trace only: a thread or process finished */
    DH_OP_NAME = 12,   /* trace only: a heap's thread and its name */
    DH_OP_EXEC = 13,   /* trace only: the process ran exec; a new program */
    DH_OP_MISUSE = 14  /* trace only: a rejected pointer (free, realloc) */
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
    bool no_heap;         /* no heap could be had for it (address space):
                             it uses the system heap */
    dh_heap_t *inherited; /* heaps of joined threads, LIFO via next */
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
/* The thread leaving h (name: its name) ends its part of the trace. */
DH_HIDDEN void dh_trace_thread_end(dh_heap_t *h, const char name[16]);
/* A misuse of pointer p (code: dh_error_code_t) with its stack. */
DH_HIDDEN void dh_trace_misuse(dh_heap_t *h, uintptr_t p, int code);
/* The process is about to run exec: write what it has (override/exec.c). */
DH_HIDDEN void dh_trace_before_exec(void);
DH_HIDDEN void dh_trace_after_fork(void);

/* Threads (thread.c): hand a heap on when its thread ends. */
DH_HIDDEN void dh_thread_init(void);
/* The calling thread was not created through dh_thread_create (a static
 * link, or a thread libc made): hand its heap to the orphan list when it
 * ends, as a detached thread's. */
DH_HIDDEN void dh_thread_adopt(void);
/* The heap for the next thread the calling thread creates (a joined
 * thread's heap, else a fresh ordered slot, else an unordered one), or
 * NULL when none can be had: the thread then runs on the system heap. */
DH_HIDDEN dh_heap_t *dh_proc_acquire_child_heap(dh_thread_t *parent,
                                                bool *unordered);
/* Make h (and the heaps that travel with it) available to unordered
 * threads: its thread was detached and has ended.  Takes the lock. */
DH_HIDDEN void dh_proc_orphan(dh_heap_t *h);
/* Allocation for the thread layer's own records: the system heap, never a
 * thread's own heap (whose sequence of calls is the program's). */
DH_HIDDEN void *dh_proc_sys_malloc(size_t n);
DH_HIDDEN void dh_proc_sys_free(void *p);

/* What RLIMIT_AS made of the layout, as "RLIMIT_AS of 2 GiB: process heap
 * reserve ... (N slots)" into buf (NUL-terminated, at most cap bytes);
 * returns its length, 0 if the limit changed nothing. */
DH_HIDDEN size_t dh_proc_limit_note(char *buf, size_t cap);
/* The class set of every heap of the process heap (DETHEAP_CLASSES). */
DH_HIDDEN dh_class_set_t dh_proc_class_set(void);

/* The heaps of the process, by slot (NULL: none there), for reports. */
DH_HIDDEN dh_heap_t *dh_proc_heap_at(uint32_t slot);
DH_HIDDEN uint32_t dh_proc_slot_count(void);
DH_HIDDEN bool dh_proc_is_system(const dh_heap_t *h);

/* The process-wide live and peak counts per class (report.c), from every
 * observed call: one atomic counter per class sees each allocation and
 * free, whichever thread makes it, so live and peak stay exact when blocks
 * are freed by another thread than the one that allocated them.  For a
 * free, a is the block's usable size; for realloc, b is the old block's
 * usable size, with DH_COUNT_LARGE set if it was a large block. */
#define DH_COUNT_LARGE ((uint64_t)1 << 63)
DH_HIDDEN void dh_count_op(dh_op_t op, uint64_t a, uint64_t b, uintptr_t in,
                           uintptr_t out);

/* Process-wide statistics: the sum over every heap of the process. */
DH_HIDDEN void dh_proc_stats(dh_stats_t *out);
DH_HIDDEN uint64_t dh_proc_fingerprint(void);
DH_HIDDEN void dh_proc_report(int fd, bool json);

/* The lock that guards slot assignment and the hand-over lists. */
DH_HIDDEN void dh_proc_lock(void);
DH_HIDDEN void dh_proc_unlock(void);
DH_HIDDEN void dh_proc_lock_reset(void); /* in a forked child */
/* In a forked child: stop moving pages (process.c, "recycling"). */
DH_HIDDEN void dh_proc_after_fork_child(void);
/* What exit does for the process heap (finish the trace, print the
 * statistics), once per process; nothing in a vfork child. */
DH_HIDDEN void dh_proc_exit_work(void);

#endif /* DH_PROCESS_H */
