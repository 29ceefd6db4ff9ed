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
#define EMPTY_BIN(c, g)                                                   \
    {.live_state = DH_ST_LIVE + (c), .free_state = DH_ST_FREE + (c),      \
     .granules = (g)}
#define EMPTY_BIN0 ((dh_bin_t *)&dh_empty_heap.bins[0])
#define EMPTY_BIN0_X4 EMPTY_BIN0, EMPTY_BIN0, EMPTY_BIN0, EMPTY_BIN0
#define EMPTY_BIN0_X16 EMPTY_BIN0_X4, EMPTY_BIN0_X4, EMPTY_BIN0_X4, EMPTY_BIN0_X4
const dh_heap_t dh_empty_heap = {
    .bins = {EMPTY_BIN(0, 1), EMPTY_BIN(1, 2), EMPTY_BIN(2, 3),
             EMPTY_BIN(3, 4), EMPTY_BIN(4, 8), EMPTY_BIN(5, 16),
             EMPTY_BIN(6, 32), EMPTY_BIN(7, 64), EMPTY_BIN(8, 128),
             EMPTY_BIN(9, 256), EMPTY_BIN(10, 512), EMPTY_BIN(11, 1024),
             EMPTY_BIN(12, 4096)},
    .class_set = DH_CLASSES_SPEC, /* its bins are the spec's (empty) */
    .nclasses = DH_NUM_CLASSES,
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

/* The process whose heaps these are: set when the process heap starts and
 * in a forked child.  A child made by vfork (or a raw clone) shares the
 * parent's memory, and its pid differs: it must not write the parent's
 * trace or report. */
static _Atomic uint64_t heap_pid;
static _Atomic bool exit_done;
static dh_heap_t *orphans; /* heaps of detached threads; under the lock */

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

/* ---- the slot map -------------------------------------------------------------- */

/* Depth d of the creation tree (main is depth 0): a thread at depth d-1
 * whose index is below `parents` gives its first `width` fresh children
 * the indexes index * width + 0 .. width - 1 at depth d; the slots of depth
 * d follow those of depth d-1.  Chains of first children keep their index
 * from depth 4 on, so they go 27 deep.  About 23 500 ordered slots in all;
 * process.h and docs/DESIGN.md say what this covers. */
static const struct {
    uint32_t parents, width;
} levels[] = {
    {1, 4096},  {512, 24}, {1024, 4}, {256, 1}, {256, 1}, {256, 1},
    {256, 1},   {256, 1},  {256, 1},  {256, 1}, {256, 1}, {64, 1},
    {64, 1},    {64, 1},   {64, 1},   {64, 1},  {64, 1},  {64, 1},
    {64, 1},    {64, 1},   {64, 1},   {64, 1},  {64, 1},  {64, 1},
    {64, 1},    {64, 1},   {64, 1},
};
#define DH_LEVELS (sizeof levels / sizeof levels[0])

/* Where the slots are (set once, by init_process, from the options). */
static struct {
    uintptr_t thread_start; /* slot 1's range */
    uintptr_t stride;       /* from one thread slot to the next */
    uint32_t count;         /* slots 0 .. count - 1 exist */
    uint32_t ordered_end;   /* slots 1 .. ordered_end - 1 are ordered */
    uint32_t first[DH_LEVELS]; /* first slot of each depth */
} map;
static _Atomic uint32_t shared_next;  /* next shared slot to try */
static _Atomic uint32_t steal_next;   /* next ordered slot to take, top down */

static uintptr_t align_up(uintptr_t v, uintptr_t a) {
    return (v + a - 1) & ~(a - 1);
}

/* ---- the layout under an address-space limit ------------------------------ */

/* RLIMIT_AS, read once at start, sizes the layout (docs/DESIGN.md,
 * "Address space"): detheap's ranges take at most 7/8 of the limit (the
 * budget), the rest is left to the program's own mappings (stacks,
 * libraries, its own mmaps).  If the layout of the options (slot 0's range
 * and every thread slot's) fits in that budget, nothing changes.  Else
 * every heap keeps its place and size, so its addresses are those it has
 * without a limit, and reserves its range as it grows instead, all of
 * them together within the budget (region.c, dh_region_set_grow_budget);
 * slot 0's range also ends at 15/16 of the budget (its state map is sized
 * to its range).  A thread heap then costs the address space it uses, and
 * any thread may use what the others leave.
 *
 * All of it is a pure function of the options and the limit, so the same
 * limit gives the same layout and the same addresses. */
#define DH_BUDGET_NUM 7u
#define DH_BUDGET_DEN 8u
#define MIB ((uint64_t)1 << 20)

static struct {
    uint64_t as_limit;    /* RLIMIT_AS at start; UINT64_MAX: none */
    bool limited;         /* it shrank the layout */
    uint64_t main_end;    /* slot 0's range ends this far above its base
                             (0: at its size) */
    uint64_t main_budget; /* address space slot 0 may take */
    uint64_t budget;      /* address space all heaps may take */
} plan;

/* Size slot 0 and the growing reservations to the budget, if the layout
 * of the options (with `slots` thread slots) does not fit in it. */
static void plan_init(uint64_t slots) {
    uint64_t limit = dh_os_as_limit();
    plan.as_limit = limit;
    if (limit == UINT64_MAX) return;
    uint64_t budget = (limit / DH_BUDGET_DEN * DH_BUDGET_NUM) & ~(MIB - 1);
    uint64_t main = options.reserve;
    if (main + slots * options.thread_reserve <= budget) return;
    plan.limited = true;
    plan.budget = budget;
    dh_region_set_grow_budget(budget);
    uint64_t cap = (budget / 16 * 15) & ~(MIB - 1);
    plan.main_budget = main;
    if (main > cap) {
        /* its data d and their state bytes (d/16), span map and header
         * stay within cap */
        uint64_t data_off = DH_HEADER_SIZE + align_up(main >> 4, DH_SPAN);
        uint64_t d = cap > 2 * DH_HEADER_SIZE
                         ? (cap - 2 * DH_HEADER_SIZE) / 17 * 16
                         : 0;
        d &= ~(uint64_t)(DH_COMMIT_STEP - 1);
        if (d > main - data_off - DH_SPAN) d = main - data_off - DH_SPAN;
        plan.main_end = data_off + d;
        plan.main_budget = cap;
    }
}

/* v in decimal into buf (at least 21 bytes); returns its length. */
static size_t decimal(char *buf, uint64_t v) {
    char digits[20];
    size_t n = 0, at = 0;
    do digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0) buf[at++] = digits[--n];
    buf[at] = 0;
    return at;
}

/* v as "2 GiB", "1680 MiB", "1000 KiB" or "1234 B" into buf[32]. */
static void size_text(char *buf, uint64_t v) {
    static const char *const unit[] = {" B", " KiB", " MiB", " GiB", " TiB"};
    int u = 0;
    while (u < 4 && v != 0 && v % 1024 == 0) {
        v /= 1024;
        u++;
    }
    size_t at = decimal(buf, v);
    memcpy(buf + at, unit[u], strlen(unit[u]) + 1);
}

size_t dh_proc_limit_note(char *buf, size_t cap) {
    if (!plan.limited || cap == 0) return 0;
    char lim[32], main[32], thread[32], all[32];
    size_text(lim, plan.as_limit);
    size_text(main, plan.main_budget);
    size_text(thread, options.thread_reserve);
    size_text(all, plan.budget);
    const char *parts[] = {"RLIMIT_AS of ", lim, ": process heap reserve ",
                           main, ", thread heaps ", thread,
                           " each, all taken as they grow, ", all,
                           " in all"};
    size_t at = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        for (const char *p = parts[i]; *p && at + 1 < cap; p++) buf[at++] = *p;
    buf[at] = 0;
    return at;
}

static void map_init(void) {
    uintptr_t main_span = options.reserve > DH_HEAP_ALIGN ? options.reserve
                                                          : DH_HEAP_ALIGN;
    map.stride = options.thread_reserve > DH_HEAP_ALIGN ? options.thread_reserve
                                                        : DH_HEAP_ALIGN;
    /* the top 8 TiB stay the OS's (its mmap area: libraries, thread
     * stacks, files), so that no slot is usually taken there */
    uintptr_t top = ((uintptr_t)1 << DH_ADDRESS_BITS) - ((uintptr_t)8 << 40);
    uint64_t count = DH_MAX_SLOTS;
    if (options.base != 0) {
        map.thread_start = align_up(options.base + main_span, map.stride);
        count = map.thread_start < top
                    ? 1 + (top - map.thread_start) / map.stride
                    : 1;
        if (count > DH_MAX_SLOTS) count = DH_MAX_SLOTS;
    }
    plan_init(count - 1);
    map.count = (uint32_t)count;
    uint64_t next = 1;
    for (size_t d = 0; d < DH_LEVELS; d++) {
        map.first[d] = (uint32_t)(next < map.count ? next : map.count);
        next += (uint64_t)levels[d].parents * levels[d].width;
    }
    map.ordered_end = (uint32_t)(next < map.count ? next : map.count);
    atomic_store(&shared_next, map.ordered_end);
    atomic_store(&steal_next, map.ordered_end - 1);
}

static uintptr_t slot_address(uint32_t slot) {
    if (options.base == 0) return 0;
    return slot == 0 ? options.base
                     : map.thread_start + (uintptr_t)(slot - 1) * map.stride;
}

/* The slot of the next fresh child of the thread holding `parent`, with
 * its depth and index, or DH_NO_SLOT when the tree is deeper or wider
 * there than the map. */
static uint32_t child_slot(const dh_heap_t *parent, uint16_t *depth,
                           uint32_t *index) {
    uint32_t d = dh_ph(parent)->depth, k = dh_ph(parent)->fresh_children;
    if (dh_ph(parent)->unordered || d >= DH_LEVELS) return DH_NO_SLOT;
    if (dh_ph(parent)->index >= levels[d].parents || k >= levels[d].width)
        return DH_NO_SLOT;
    uint32_t i = dh_ph(parent)->index * levels[d].width + k;
    uint64_t slot = (uint64_t)map.first[d] + i;
    if (slot >= map.ordered_end) return DH_NO_SLOT;
    *depth = (uint16_t)(d + 1);
    *index = i;
    return (uint32_t)slot;
}

/* ---- creating slot heaps ----------------------------------------------------- */


static void hex(char *buf, uintptr_t v) {
    buf[0] = '0';
    buf[1] = 'x';
    for (int i = 0; i < 12; i++)
        buf[2 + i] = "0123456789abcdef"[(v >> (44 - 4 * i)) & 15];
    buf[14] = 0;
}

/* Say `msg` once per process (the flag is claimed atomically). */
static void say_once(_Atomic bool *said, const char *const *parts, size_t n) {
    if (!atomic_exchange(said, true)) dh_say_parts(parts, n);
}

static _Atomic bool taken_said, no_space_said;

/* Where a slot's heap struct lies in its header (dh_region_create_in):
 * neighbouring slots, and the slots of one depth of the map, 4096 apart,
 * get different cache lines. */
static unsigned slot_color(uint32_t slot) {
    return (unsigned)((slot * 11u + (slot >> 12) * 5u) % DH_COLORS);
}

/* Create the heap of slot `slot` (its claim already made): at its place
 * if that is free, else, if the range is taken, anywhere (said once: its
 * addresses then differ between runs).  NULL (errno) if the address space
 * has no room: nothing is retried for that slot. */
static dh_heap_t *slot_create(uint32_t slot) {
    dh_config_t cfg = DH_CONFIG_INIT;
    cfg.reserve = slot == 0 ? options.reserve : options.thread_reserve;
    cfg.on_error = options.on_error;
    cfg.classes = options.classes;
    uintptr_t end = slot == 0 ? plan.main_end : 0;
    bool grow = plan.limited; /* only with a fixed base */
    uintptr_t want = slot_address(slot);
    dh_heap_t *h = NULL;
    if (want != 0) {
        cfg.base = want;
        h = dh_region_create_in(&cfg, end, grow, slot_color(slot));
        if (h == NULL && errno != EEXIST) return NULL;
    }
    if (h == NULL) {
        cfg.base = 0;
        h = dh_region_create_in(&cfg, end, false, slot_color(slot));
        if (h == NULL) return NULL;
        if (want != 0) {
            char a[16], b[16];
            hex(a, want);
            hex(b, h->base);
            const char *msg[] = {"detheap: the range at ", a,
                                 " is taken; heap placed at ", b,
                                 " instead (its addresses will differ "
                                 "between runs)\n"};
            say_once(&taken_said, msg, 5);
        }
    }
    /* the process layer's part of the heap, in its header area */
    uintptr_t part = (uintptr_t)dh_ph(h) & ~(uintptr_t)(h->os_page - 1);
    if (!dh_os_commit((void *)part,
                      align_up((uintptr_t)(dh_ph(h) + 1) - part, h->os_page))) {
        dh_region_destroy(h);
        return NULL;
    }
    /* A thread heap is made readable and writable whole, at once: its
     * commits then split no mapping, so that each heap costs the process
     * one or two of its mappings (vm.max_map_count, 65 530 by default, is
     * what limits thousands of threads), and neighbouring heaps merge.
     * Pages are still backed only when touched; if the OS refuses (strict
     * overcommit), the heap commits step by step as before.  Not under
     * valgrind, whose memcheck would shadow every byte of the range. */
    if (slot != 0 && !DH_UNDER_VALGRIND && !h->grows)
        dh_os_commit((void *)h->base, h->mapped);
    dh_region_set_thp(h, options.thp);
    dh_ph(h)->owner_slot = slot;
    h->process = true;
    if (options.trace) dh_trace_thread(h);
    return h;
}

/* Claim slot `slot` (false if another thread has it) and create its heap. */
#define SLOT_CLAIMED ((dh_heap_t *)1)
static bool slot_claim(uint32_t slot) {
    dh_heap_t *expected = NULL;
    return slot < map.count &&
           atomic_compare_exchange_strong(&slot_heap[slot], &expected,
                                          SLOT_CLAIMED);
}

static dh_heap_t *slot_publish(uint32_t slot, dh_heap_t *h) {
    /* a slot whose range cannot be had stays claimed: never retried */
    if (h != NULL) atomic_store_explicit(&slot_heap[slot], h,
                                         memory_order_release);
    return h;
}

static void no_space(void) {
    const char *msg[] = {"detheap: no address space for another thread "
                         "heap; such threads share the system heap (their "
                         "addresses depend on timing)\n"};
    say_once(&no_space_said, msg, 1);
}

/* A fresh slot for a thread with no place in the tree: a shared slot, or
 * when those are gone an ordered slot nobody has taken, from the top down. */
static dh_heap_t *unordered_fresh(void) {
    for (;;) {
        uint32_t s = atomic_fetch_add(&shared_next, 1);
        if (s >= map.count) break;
        if (slot_claim(s)) return slot_publish(s, slot_create(s));
    }
    atomic_store(&shared_next, map.count); /* no wrap-around */
    for (;;) {
        uint32_t s = atomic_fetch_sub(&steal_next, 1);
        if (s == 0 || s > map.ordered_end) break;
        if (slot_claim(s)) return slot_publish(s, slot_create(s));
    }
    atomic_store(&steal_next, 0);
    errno = ENOMEM;
    return NULL;
}

/* Unlink the first heap of the orphan list (heaps of detached threads that
 * ended), with what travels with it re-queued; under the lock. */
static dh_heap_t *orphan_pop_unsafe(void) {
    dh_heap_t *h = orphans;
    if (h == NULL) return NULL;
    orphans = dh_ph(h)->next;
    dh_ph(h)->next = NULL;
    return h;
}

void dh_proc_orphan(dh_heap_t *h) {
    dh_proc_lock();
    while (h != NULL) { /* flatten: each heap and what travels with it */
        dh_heap_t *next = dh_ph(h)->next;
        if (dh_ph(h)->pool != NULL) {
            dh_heap_t *last = dh_ph(h)->pool;
            while (dh_ph(last)->next) last = dh_ph(last)->next;
            dh_ph(last)->next = next;
            next = dh_ph(h)->pool;
            dh_ph(h)->pool = NULL;
        }
        dh_ph(h)->next = orphans;
        orphans = h;
        h = next;
    }
    dh_proc_unlock();
}

/* A heap for a thread with no place in the tree. */
static dh_heap_t *unordered_heap(void) {
    dh_proc_lock();
    dh_heap_t *h = orphan_pop_unsafe();
    dh_proc_unlock();
    if (h == NULL) h = unordered_fresh();
    if (h == NULL) {
        no_space();
        return NULL;
    }
    dh_ph(h)->unordered = true;
    return h;
}

dh_heap_t *dh_proc_acquire_child_heap(dh_thread_t *parent, bool *unordered) {
    *unordered = false;
    dh_heap_t *h = parent->inherited;
    if (h != NULL) { /* a joined thread's heap, LIFO */
        parent->inherited = dh_ph(h)->next;
        dh_ph(h)->next = NULL;
        return h;
    }
    dh_heap_t *ph = parent->heap;
    if (ph != NULL && !parent->unordered) {
        uint16_t depth;
        uint32_t index;
        uint32_t slot = child_slot(ph, &depth, &index);
        dh_ph(ph)->fresh_children++;
        if (slot != DH_NO_SLOT && slot_claim(slot)) {
            h = slot_publish(slot, slot_create(slot));
            if (h != NULL) {
                dh_ph(h)->depth = depth;
                dh_ph(h)->index = index;
                return h;
            }
        }
    }
    *unordered = true;
    return unordered_heap();
}

dh_heap_t *dh_proc_owner(uintptr_t p) {
    dh_heap_t *h = dh_region_lookup(p);
    return (h != NULL && h->process) ? h : NULL;
}

/* The heap in slot s, or NULL (none, or being created). */
static dh_heap_t *slot_get(uint32_t s) {
    dh_heap_t *h = atomic_load_explicit(&slot_heap[s], memory_order_acquire);
    return h == SLOT_CLAIMED ? NULL : h;
}

dh_heap_t *dh_proc_heap_at(uint32_t slot) {
    return slot < map.count ? slot_get(slot) : NULL;
}

uint32_t dh_proc_slot_count(void) { return map.count; }

bool dh_proc_is_system(const dh_heap_t *h) {
    return h == __atomic_load_n(&sys_heap, __ATOMIC_RELAXED);
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

static dh_heap_t *system_heap(void);

static void init_process(void) {
    atomic_store(&heap_pid, dh_os_pid());
    dh_options_read(&options);
    dh_observe = options.stats || options.trace || options.stacks;
    map_init();
    char note[200];
    if (dh_proc_limit_note(note, sizeof note) != 0) { /* once: here */
        const char *msg[] = {"detheap: ", note, "\n"};
        dh_say_parts(msg, 3);
    }
    if (options.remote_owner) { /* the one mode that gives up determinism */
        const char *msg[] = {
            "detheap: DETHEAP_REMOTE_FREE=owner: blocks freed by another "
            "thread go back to their heap; that heap's addresses then depend "
            "on timing\n"};
        dh_say_parts(msg, 1);
    }
    if (options.trace) dh_trace_open();
    dh_heap_t *h = slot_claim(0) ? slot_publish(0, slot_create(0)) : NULL;
    dh_proc_set_heap(h);
    if (h != NULL) dh_ph(h)->tid = dh_os_tid();
    dh_self.path = 0;
    /* under a limit, the system heap (where threads without a heap of
     * their own go) takes its place while the budget has room */
    if (plan.limited) (void)system_heap();
    dh_thread_init(); /* may allocate: this thread's heap is ready */
    atomic_store_explicit(&init_state, 2, memory_order_release);
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
    if (dh_self.heap == NULL && !dh_self.exited && !dh_self.no_heap) {
        /* a thread we did not see created: no place in the tree */
        dh_self.unordered = true;
        dh_heap_t *h = unordered_heap();
        dh_self.no_heap = h == NULL;
        dh_proc_set_heap(h);
        if (h != NULL) dh_ph(h)->tid = dh_os_tid();
        dh_thread_adopt(); /* its heap is handed on when it ends */
    }
    return dh_self.heap;
}

/* The system heap, created on first use.  Its slot is claimed like an
 * unordered thread's; the lock serialises its use, not its creation. */
static _Atomic int sys_state; /* 0 none, 1 being created, 2 ready, 3 none */
static dh_heap_t *system_heap(void) {
    int st = atomic_load_explicit(&sys_state, memory_order_acquire);
    if (st == 2) return sys_heap;
    int expected = 0;
    if (atomic_compare_exchange_strong(&sys_state, &expected, 1)) {
        dh_heap_t *h = unordered_fresh();
        __atomic_store_n(&sys_heap, h, __ATOMIC_RELEASE);
        atomic_store_explicit(&sys_state, h ? 2 : 3, memory_order_release);
        return h;
    }
    while ((st = atomic_load_explicit(&sys_state, memory_order_acquire)) == 1)
        __builtin_ia32_pause();
    return st == 2 ? sys_heap : NULL;
}

/* ---- the pointer API of the process heap ---------------------------------- */

/* Does this call belong to the system heap?  (Inside a libc thread call,
 * past the thread's exit, for a thread that could get no heap, or on one of
 * the system heap's blocks.) */
static bool system_call(dh_heap_t *owner) {
    return dh_self.in_system || dh_self.exited || dh_self.no_heap ||
           (owner != NULL &&
            owner == __atomic_load_n(&sys_heap, __ATOMIC_RELAXED));
}

/* One call of the pointer API: the heap it runs on, and whether that is
 * the system heap (whose lock is then held) or an observed thread heap. */
typedef struct call {
    dh_heap_t *h;
    bool locked;
    bool observed;
} call_t;

/* DETHEAP_REMOTE_FREE=owner: take back the blocks other threads returned
 * to h (its own thread only). */
static void inbox_drain(dh_heap_t *h);

/* Start a call: the thread's heap, or the system heap under the lock.
 * Returns false (ENOMEM) if there is none. */
static bool call_begin(call_t *c, dh_heap_t *owner) {
    c->locked = false;
    c->h = NULL;
    if (!system_call(owner)) {
        dh_heap_t *h = dh_self.heap ? dh_self.heap : dh_proc_heap_slow();
        if (h != NULL) {
            if (__atomic_load_n(&dh_ph(h)->inbox, __ATOMIC_RELAXED) != NULL)
                inbox_drain(h);
            c->h = h;
            c->observed = dh_observe;
            return true;
        }
        if (!dh_self.exited && !dh_self.no_heap) {
            errno = ENOMEM;
            return false;
        }
    }
    dh_heap_t *sys = system_heap(); /* created outside the lock */
    if (sys == NULL) {
        errno = ENOMEM;
        return false;
    }
    dh_proc_lock();
    c->h = sys;
    c->locked = true;
    c->observed = false;
    return true;
}

static void call_end(const call_t *c) {
    if (c->locked) dh_proc_unlock();
}

void *dh_proc_sys_malloc(size_t n) {
    dh_heap_t *sys = system_heap();
    if (sys == NULL) return NULL;
    dh_proc_lock();
    void *p = dh_heap_malloc(sys, n);
    dh_proc_unlock();
    return p;
}

void dh_proc_sys_free(void *p) {
    if (p == NULL) return;
    dh_heap_t *sys = __atomic_load_n(&sys_heap, __ATOMIC_ACQUIRE);
    dh_proc_lock();
    dh_heap_free_in(sys, (uintptr_t)p, "free");
    dh_proc_unlock();
}

/* A thread heap that is out of room (its range is full) serves the call
 * from the system heap instead of failing; said once, since from then on
 * that thread's addresses depend on timing. */
static _Atomic bool full_said;
static void *overflow_alloc(call_t *c, void *(*fn)(dh_heap_t *, size_t,
                                                   size_t),
                            size_t a, size_t b, size_t need) {
    /* a request that no heap of this size could ever hold (or whose size
     * overflowed) is no sign of a full heap: ENOMEM, nothing said */
    if (c->locked || errno != ENOMEM || need == SIZE_MAX ||
        need > c->h->limit - c->h->data_start)
        return NULL;
    dh_heap_t *sys = system_heap();
    if (sys == NULL) return NULL;
    if (!dh_ph(c->h)->timing_dependent) {
        dh_ph(c->h)->timing_dependent = true;
        char slot[24];
        decimal(slot, dh_ph(c->h)->owner_slot);
        /* a growing range the OS or the address-space budget refused is
         * not full: it met the limit */
        const char *msg[] = {"detheap: thread heap ", slot,
                             c->h->refused_at != 0
                                 ? " met the address-space limit"
                                 : " is full",
                             "; its thread allocates from the shared "
                             "system heap from now on (its addresses then "
                             "depend on timing)\n"};
        say_once(&full_said, msg, 4);
    }
    dh_proc_lock();
    void *p = fn(sys, a, b);
    dh_proc_unlock();
    return p;
}

static void *heap_malloc2(dh_heap_t *h, size_t n, size_t unused) {
    (void)unused;
    return dh_heap_malloc(h, n);
}
static void *heap_calloc2(dh_heap_t *h, size_t n, size_t size) {
    return dh_heap_calloc(h, n, size);
}
static void *heap_aligned2(dh_heap_t *h, size_t align, size_t n) {
    return dh_heap_aligned_alloc(h, align, n);
}

/* The thread's lean heap (dh_self.fast): it has a heap, nothing is
 * observed and it is not inside a libc thread call nor past its exit. */
DH_INLINE dh_heap_t *lean_heap(void) {
    dh_heap_t *h = dh_self.fast;
    return h != (dh_heap_t *)&dh_empty_heap ? h : NULL;
}

static void purge_smaller(dh_heap_t *h, size_t n);

/* Before a large request on the call's heap (not the shared one). */
static void large_ahead(const call_t *c, size_t n) {
    if (n > DH_MAX_CLASS_SIZE && !c->locked && dh_ph(c->h)->ndirty != 0)
        purge_smaller(c->h, n);
}

/* Kept out of line, so that the lean path needs no stack frame. */
static __attribute__((noinline)) void *proc_malloc_slow(size_t n) {
    call_t c;
    if (!call_begin(&c, NULL)) return NULL;
    large_ahead(&c, n);
    void *p = dh_heap_malloc(c.h, n);
    if (p == NULL) p = overflow_alloc(&c, heap_malloc2, n, 0, n);
    if (c.observed) dh_observe_op(c.h, DH_OP_MALLOC, n, 0, 0, (uintptr_t)p);
    call_end(&c);
    return p;
}

/* The override's malloc comes here when the class's main list is empty;
 * in a program whose threads free each other's blocks that is often
 * because the blocks at hand are on the foreign list.  Take one there, as
 * bin.c would (only when the inbox is empty: those come first), inline:
 * in such programs this pop is as hot as the override's own. */
/* The pop found no block: a damaged list is abandoned; an empty one gives
 * a block of the foreign list, unless blocks wait in the inbox. */
static void *lean_class_miss(size_t n, dh_bin_t *b, void *head) {
    dh_heap_t *h = dh_bin_heap(b);
    if (head != NULL) {
        dh_list_corrupted(h, "malloc", n, b->live_state - DH_ST_LIVE, false,
                          head);
        return NULL; /* the long way */
    }
    if (__atomic_load_n(&dh_ph(h)->inbox, __ATOMIC_RELAXED) != NULL)
        return NULL;
    return dh_bin_pop_foreign(h, b, n);
}

DH_INLINE void *lean_class_alloc(dh_heap_t *h, size_t n) {
    int c = dh_heap_class_of(h, n);
    if (c < 0) return NULL;
    return dh_bin_pop(h, &h->bins[c], n, lean_class_miss);
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
    call_t c;
    if (!call_begin(&c, NULL)) return NULL;
    size_t need;
    if (__builtin_mul_overflow(count, size, &need)) need = SIZE_MAX;
    large_ahead(&c, need);
    void *p = dh_heap_calloc(c.h, count, size);
    if (p == NULL) p = overflow_alloc(&c, heap_calloc2, count, size, need);
    if (c.observed)
        dh_observe_op(c.h, DH_OP_CALLOC, count, size, 0, (uintptr_t)p);
    call_end(&c);
    return p;
}

void *dh_proc_aligned(size_t align, size_t n) {
    call_t c;
    if (!call_begin(&c, NULL)) return NULL;
    large_ahead(&c, n);
    void *p = dh_heap_aligned_alloc(c.h, align, n);
    if (p == NULL && errno == ENOMEM)
        p = overflow_alloc(&c, heap_aligned2, align, n,
                           n + align < n ? SIZE_MAX : n + align);
    if (c.observed)
        dh_observe_op(c.h, DH_OP_ALIGNED, n, align, 0, (uintptr_t)p);
    call_end(&c);
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
    if (options.trace) dh_trace_misuse(h, p, (int)code);
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
    void *head = __atomic_load_n(&dh_ph(owner)->inbox, __ATOMIC_RELAXED);
    if (dh_st_is_live_class(s))
        DH_BLOCK_FREE((void *)p, dh_class_bytes(h, s - DH_ST_LIVE));
    do DH_LINK_WRITE((void *)p, head);
    while (!__atomic_compare_exchange_n(&dh_ph(owner)->inbox, &head, (void *)p, true,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

static void inbox_drain(dh_heap_t *h) {
    void *list = __atomic_exchange_n(&dh_ph(h)->inbox, NULL, __ATOMIC_ACQUIRE);
    while (list != NULL) {
        uintptr_t p = (uintptr_t)list;
        /* a block other threads returned: in this range's data, and free
         * (class or large) - else the rest of the inbox is abandoned */
        uint8_t s = dh_own_granule(h, list) < h->fast_granules
                        ? dh_st_load(dh_state_at(h, p))
                        : 0;
        if (!dh_st_is_free_class(s) && s != DH_ST_FREE_FOREIGN) {
            h->class_abandoned = true; /* its blocks: on no list */
            dh_report_corruption(h, "free", SIZE_MAX, -1,
                                 "list of blocks other threads returned",
                                 list);
            return;
        }
        list = DH_LINK_READ(list);
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

/* ---- retiring: bounded memory for threads that free but do not reuse ----- */

/* A thread keeps this many bytes of other ranges' free blocks for its own
 * reuse (DETHEAP_REMOTE_FREE=keep), more if it reuses them (foreign_keep,
 * class blocks only); past that, a block it frees
 * that lies in another thread heap's range is retired: marked, kept on no
 * list, never handed out again.  When every block of a span is retired,
 * the span's memory (and, for a span aligned to 64 KiB, its page of the
 * state map) goes back to the OS; a retired large block's pages go back at
 * once.  Which blocks are retired depends only on the freeing thread's own
 * calls, and no heap ever reuses them, so every address and every content
 * stays as deterministic as before: physical memory is bounded, the
 * producing thread's address range keeps growing. */
#define DH_FOREIGN_KEEP ((uint64_t)1 << 20)
#define DH_FOREIGN_KEEP_MAX ((uint64_t)16 << 20)

/* What h may keep of other ranges' free blocks when it frees a class block:
 * DH_FOREIGN_KEEP, plus half of the class blocks of other ranges it has
 * handed out again, up to DH_FOREIGN_KEEP_MAX.  A thread that only frees
 * other threads' blocks (a consumer) keeps 1 MiB; one that reuses them (larson's threads, which
 * free about as many of each other's blocks as they allocate) keeps more,
 * and retires fewer: every retired block leaves a hole in a span that
 * goes back to the OS only once all of its blocks are retired, so
 * retiring blocks that would have been reused costs memory, not saves it.
 * A function of h's own calls, as the keeping is. */
DH_INLINE uint64_t foreign_keep(const dh_heap_t *h) {
    uint64_t more = h->foreign_reused / 2;
    uint64_t room = DH_FOREIGN_KEEP_MAX - DH_FOREIGN_KEEP;
    return DH_FOREIGN_KEEP + (more < room ? more : room);
}

/* ---- recycling: retired pages become the producer's next ones -----------
 *
 * A thread that only produces (its blocks retired by the threads that free
 * them) would otherwise take every page fresh from the kernel, which must
 * fault it in and zero it, while the consumer gives as many back.  Where
 * the kernel can move pages (userfaultfd's UFFDIO_MOVE), the consumer
 * instead zeroes a run of completed spans and moves its pages to the
 * producer's range, just above what the producer has carved and below
 * what it has committed: memory it will carve next.  No address changes,
 * and no content either: those pages read zero, as fresh pages do.  The
 * producer then finds its next pages present, and the physical memory is
 * the same pages going round.  A destination page the producer touched
 * first ends the move there (the kernel never replaces a present page);
 * the rest of the run is decommitted as before.  Claims are made with a
 * compare-and-swap on the destination heap's prefill mark, so two movers
 * never pick the same pages.  The page moves are the consumer's work, and
 * memory stays bounded as before: at most DH_PREFILL_MAX waits above the
 * producer's carved data. */
enum { MOVE_UNTRIED = -2, MOVE_OPENING = -3 };
/* At most this much memory waits above a heap's carved data. */
#define DH_PREFILL_MAX ((uintptr_t)2 << 20)
static _Atomic int move_fd = MOVE_UNTRIED;

/* A forked child has the descriptor too, but it would still move the
 * pages of the parent's address space: the child never uses it (nor opens
 * one of its own: its pages are shared with the parent's anyway). */
void dh_proc_after_fork_child(void) {
    atomic_store(&move_fd, -1);
    atomic_store(&heap_pid, dh_os_pid());
    atomic_store(&exit_done, false);
}

/* The page-moving descriptor, or -1 (also while another thread opens it,
 * with DETHEAP_RECYCLE=off, in a forked child, and always under valgrind,
 * which does not know the call). */
static int move_descriptor(void) {
    int fd = atomic_load_explicit(&move_fd, memory_order_acquire);
    if (DH_LIKELY(fd >= -1)) return fd;
    if (fd == MOVE_OPENING) return -1;
    if (!atomic_compare_exchange_strong(&move_fd, &fd, MOVE_OPENING))
        return -1;
    fd = DH_UNDER_VALGRIND || options.recycle_off ? -1 : dh_os_move_open();
    atomic_store_explicit(&move_fd, fd, memory_order_release);
    return fd;
}

/* Whether pages may be moved into r's data: set up by the first mover. */
static bool move_target(int fd, dh_heap_t *r) {
    uint8_t *state = &dh_ph(r)->move_state;
    uint8_t m = __atomic_load_n(state, __ATOMIC_ACQUIRE);
    if (DH_LIKELY(m >= 2)) return m == 2;
    if (m == 1 || !__atomic_compare_exchange_n(state, &m, 1, false,
                                               __ATOMIC_ACQ_REL,
                                               __ATOMIC_RELAXED))
        return false;
    uintptr_t end = r->limit & ~(uintptr_t)(r->os_page - 1);
    m = dh_os_move_allow(fd, r->data_start, end - r->data_start) ? 2 : 3;
    __atomic_store_n(state, m, __ATOMIC_RELEASE);
    return m == 2;
}

/* Claim up to len bytes of r's committed, not yet carved data for pages
 * moved there; returns the start (0 if none) and sets *got. */
static uintptr_t prefill_claim(dh_heap_t *r, uintptr_t len, uintptr_t *got) {
    uintptr_t page = r->os_page;
    uintptr_t committed = __atomic_load_n(&r->commit_end, __ATOMIC_ACQUIRE);
    uintptr_t *mark = &dh_ph(r)->prefill;
    uintptr_t cur = __atomic_load_n(mark, __ATOMIC_RELAXED);
    for (;;) {
        uintptr_t from = (dh_high_water(r) + page - 1) & ~(page - 1);
        uintptr_t end = from + DH_PREFILL_MAX < committed
                            ? from + DH_PREFILL_MAX : committed;
        if (from < cur) from = cur;
        if (from >= end) return 0;
        uintptr_t n = end - from < len ? end - from : len;
        if (__atomic_compare_exchange_n(mark, &cur, from + n, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            *got = n;
            return from;
        }
    }
}

/* Move as much of the retired run [start, end) of r as fits into r's next
 * pages, zeroed; returns how many bytes from start on went. */
static uintptr_t recycle_run(dh_heap_t *h, dh_heap_t *r, uintptr_t start,
                             uintptr_t end) {
    int fd = move_descriptor();
    if (fd < 0 || !move_target(fd, r)) return 0;
    uintptr_t len;
    uintptr_t dst = prefill_claim(r, end - start, &len);
    if (dst == 0) return 0;
    DH_MEM_ACCESS((void *)start, len); /* every block retired: nobody's */
    memset((void *)start, 0, len);
    uintptr_t moved = dh_os_move_pages(fd, dst, start, len);
    dh_ph(h)->recycled_bytes += moved;
    return moved;
}

/* Sort v[0..n) (n is small: insertion sort). */
static void sort_addresses(uintptr_t *v, uint32_t n) {
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            uintptr_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}

/* Give h's pending pages of retired spans' state bytes back, sorted,
 * adjacent ones in one call.  A span's state bytes are one page; spans
 * that complete one after the other are seldom neighbours (the classes'
 * spans interleave), their state pages more often are, once enough of
 * them wait. */
static void state_flush(dh_heap_t *h) {
    uintptr_t *v = dh_ph(h)->state_pages;
    uint32_t n = dh_ph(h)->state_pending;
    dh_ph(h)->state_pending = 0;
    sort_addresses(v, n);
    uintptr_t page = h->os_page;
    for (uint32_t i = 0; i < n;) {
        uint32_t j = i + 1;
        while (j < n && v[j] == v[j - 1] + page) j++;
        dh_os_decommit((void *)v[i], v[j - 1] + page - v[i]);
        i = j;
    }
}

/* Give a run [start, end) of retired spans of range r back: their data
 * (moved to r's next pages where it can be, else decommitted), the whole
 * pages of their state bytes (in batches of their own), and the mark that
 * tells a check the spans' state bytes may read zero. */
static void decommit_run(dh_heap_t *h, dh_heap_t *r, uintptr_t start,
                         uintptr_t end) {
    uintptr_t moved = recycle_run(h, r, start, end);
    if (start + moved < end)
        dh_os_decommit((void *)(start + moved), end - start - moved);
    uintptr_t page = r->os_page;
    uintptr_t st = ((uintptr_t)dh_state_at(r, start) + page - 1) & ~(page - 1);
    uintptr_t st_end = (uintptr_t)dh_state_at(r, end) & ~(page - 1);
    for (; st < st_end; st += page) {
        dh_ph(h)->state_pages[dh_ph(h)->state_pending++] = st;
        if (dh_ph(h)->state_pending == DH_STATE_BATCH) state_flush(h);
    }
    for (uintptr_t span = start; span < end; span += DH_SPAN) {
        uint32_t *word;
        dh_span_of(r, span, &word);
        if (word != NULL)
            __atomic_fetch_or(word, DH_SPAN_DECOMMITTED, __ATOMIC_RELEASE);
    }
}

/* Give h's pending retired spans back, sorted, adjacent ones together. */
static void decommit_flush(dh_heap_t *h) {
    uintptr_t *v = dh_ph(h)->decommit_spans;
    uint32_t n = dh_ph(h)->decommit_pending;
    dh_ph(h)->decommit_pending = 0;
    sort_addresses(v, n);
    for (uint32_t i = 0; i < n;) {
        dh_heap_t *r = dh_region_lookup(v[i]);
        uint32_t j = i + 1;
        while (j < n && v[j] == v[j - 1] + DH_SPAN &&
               dh_region_lookup(v[j]) == r)
            j++;
        decommit_run(h, r, v[i], v[j - 1] + DH_SPAN);
        i = j;
    }
}

static void retire_class(dh_heap_t *h, dh_heap_t *r, uintptr_t p,
                         uint8_t *st, int c) {
    size_t size = dh_class_bytes(h, c);
    h->bins[c].frees++;
    dh_ph(h)->retired_blocks++;
    dh_ph(h)->retired_bytes += size;
    DH_BLOCK_FREE((void *)p, size);
    dh_st_store(st, (uint8_t)(DH_ST_RETIRED + c));
    uint32_t *word;
    uintptr_t span = dh_span_of(r, p, &word);
    if (word == NULL) return;
    uint32_t old = __atomic_fetch_add(word, 1, __ATOMIC_ACQ_REL);
    if ((old & DH_SPAN_COUNT_MASK) + 1 != DH_SPAN / size) return;
    /* the last block of the span: nobody holds any of it now.  Spans a
     * producer carved one after the other come here close together: they
     * go back in batches, one system call (and one TLB shoot-down on the
     * other threads) per run of adjacent spans instead of per span. */
    dh_ph(h)->decommit_spans[dh_ph(h)->decommit_pending++] = span;
    if (dh_ph(h)->decommit_pending == DH_DECOMMIT_BATCH) decommit_flush(h);
}

static void retire_large(dh_heap_t *h, dh_heap_t *r, uintptr_t p) {
    uint64_t bytes = dh_large_pages(r, p) << DH_PAGE_SHIFT;
    DH_BLOCK_FREE((void *)p, bytes);
    h->large_frees++;
    h->large_live_count--;
    h->large_live_bytes -= bytes;
    h->live_bytes -= bytes;
    dh_ph(h)->retired_blocks++;
    dh_ph(h)->retired_bytes += bytes;
    dh_os_decommit((void *)p, bytes);
    dh_st_store(dh_state_at(r, p), DH_ST_RETIRED_LARGE);
}

/* ---- giving freed large blocks' pages back ----------------------------------
 *
 * A freed large block stays in its heap's tree for reuse, and so did its
 * pages: a program that frees big buffers and then asks for a bigger one,
 * which the holes cannot hold, held both (ImageMagick: 136 MB where glibc,
 * which unmaps big blocks, needs 76).  So the last DH_DIRTY_MAX blocks of
 * at least DH_PURGE_MIN that a heap's thread freed are remembered, and
 * when that thread asks for a large block bigger than one of them that is
 * still free, that one's pages go back (but the first, which holds its
 * tree node): it could not have served the request, and the heap is about
 * to take fresh pages instead.  A program that frees and takes the same
 * size again reuses the block as it is, with no system call and no page
 * fault; one that frees many big blocks gives the oldest back as the list
 * overflows.  When pages go back depends only on the heap's own calls, so
 * a reused block reads zero there in every run alike. */
#define DH_PURGE_MIN ((uintptr_t)1 << 20)

/* The pages of the free block q of h but its first, if it still begins a
 * free block there and holds less than `below` bytes (0: any size). */
static bool purge_block(dh_heap_t *h, uintptr_t q, uintptr_t below) {
    if (!dh_in_data(h, q) || dh_st_load(dh_state_at(h, q)) != DH_ST_FREE_LARGE)
        return true; /* reused or merged: forgotten */
    uintptr_t bytes = (uintptr_t)dh_large_pages(h, q) << DH_PAGE_SHIFT;
    if (below != 0 && bytes >= below) return false; /* it may serve */
    if (bytes > h->os_page)
        dh_os_decommit((void *)(q + h->os_page), bytes - h->os_page);
    return true;
}

/* A large request of n bytes on h: the remembered blocks too small for it
 * give their pages back. */
static void purge_smaller(dh_heap_t *h, size_t n) {
    dh_proc_heap_t *ph = dh_ph(h);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < ph->ndirty; i++)
        if (!purge_block(h, ph->dirty[i], n)) ph->dirty[kept++] = ph->dirty[i];
    ph->ndirty = kept;
}

/* h's own live large block p (its thread frees it). */
static void large_release(dh_heap_t *h, uintptr_t p) {
    uintptr_t bytes = (uintptr_t)dh_large_pages(h, p) << DH_PAGE_SHIFT;
    p = dh_large_free(h, p); /* the free block it is now part of */
    if (bytes < DH_PURGE_MIN || p == 0) return; /* small, or the top */
    dh_proc_heap_t *ph = dh_ph(h);
    for (uint32_t i = 0; i < ph->ndirty; i++)
        if (ph->dirty[i] == p) return; /* remembered already */
    if (ph->ndirty == DH_DIRTY_MAX) { /* the oldest goes back now */
        purge_block(h, ph->dirty[0], 0);
        memmove(ph->dirty, ph->dirty + 1, (DH_DIRTY_MAX - 1) * sizeof *ph->dirty);
        ph->ndirty--;
    }
    ph->dirty[ph->ndirty++] = p;
}

/* Release the live block p (state byte s) of heap `owner` from thread heap
 * h, in the mode in force: back to the owner (owner mode), kept on h's
 * lists, or retired (keep mode, past what h keeps of other ranges). */
DH_INLINE void release_block(dh_heap_t *h, dh_heap_t *owner, uintptr_t p,
                             uint8_t s) {
    if (DH_LIKELY(owner == h)) {
        if (DH_LIKELY(dh_st_is_live_class(s)))
            dh_heap_release(h, p, s);
        else
            large_release(h, p); /* s: DH_ST_LIVE_LARGE */
    } else if (options.remote_owner) {
        remote_return(h, owner, p, s);
    } else if (DH_LIKELY(dh_st_is_live_class(s))) {
        /* Every process heap has the drop-in's class set, so the size comes
         * from h's own bins: the owner's share cache lines that its thread
         * writes on every call, and reading them made this path miss. */
        int c = s - DH_ST_LIVE;
        DH_ASSERT("I1", h->class_set == owner->class_set);
        uint8_t *st = dh_state_at(owner, p);
        if (h->foreign_bytes + dh_class_bytes(h, c) <= foreign_keep(h))
            dh_fast_free(h, p, st, c);
        else
            retire_class(h, owner, p, st, c);
    } else if (h->foreign_bytes + dh_block_size(owner, p, s) <=
               DH_FOREIGN_KEEP) {
        dh_heap_release(h, p, s);
    } else {
        retire_large(h, owner, p);
    }
}

/* A free that the override's fast path did not take is most often a live
 * class block of another thread's heap (or one that came back to this
 * thread from its foreign list).  With a lean heap, that is validated as
 * the general path would (a process heap other than the system heap, a
 * granule of its carved data, a live class byte) and released at once.
 * Returns false for everything else. */
DH_INLINE bool lean_class_free(dh_heap_t *h, uintptr_t p) {
    dh_heap_t *owner = dh_region_lookup(p);
    if (owner == NULL || !owner->process ||
        owner == __atomic_load_n(&sys_heap, __ATOMIC_RELAXED))
        return false;
    uint8_t s = dh_live_state(owner, p);
    if (!dh_st_is_live_class(s)) return false;
    release_block(h, owner, p, s);
    return true;
}

/* Kept out of line, so that the lean path needs no stack frame. */
static __attribute__((noinline)) void proc_free_slow(uintptr_t p,
                                                     const char *call) {
    dh_heap_t *owner;
    uint8_t s = proc_live(p, &owner);
    call_t c;
    if (!call_begin(&c, owner)) return;
    if (s == 0) {
        reject(c.h, owner, p, call);
    } else {
        if (c.observed)
            dh_observe_op(c.h, DH_OP_FREE, dh_block_size(owner, p, s), 0, p,
                          0);
        if (c.locked)
            dh_heap_release(c.h, p, s);
        else
            release_block(c.h, owner, p, s);
    }
    call_end(&c);
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
    call_t c;
    if (!call_begin(&c, owner)) return NULL;
    void *q = NULL;
    uint64_t old_usable = 0; /* for the counts (dh_count_op) */
    if (s != 0)
        old_usable = dh_block_size(owner, p, s) |
                     (dh_st_is_live_class(s) ? 0 : DH_COUNT_LARGE);
    if (ptr == NULL) {
        q = dh_heap_malloc(c.h, n);
        if (q == NULL) q = overflow_alloc(&c, heap_malloc2, n, 0, n);
    } else if (s == 0) {
        reject(c.h, owner, p, call);
        errno = EINVAL;
    } else if (owner == c.h || c.locked) {
        q = dh_realloc_block(c.h, p, s, n);
    } else {
        /* another heap's block: moved into this thread's heap, and the old
         * block released as free would release it */
        size_t old = dh_block_size(owner, p, s);
        if (n == 0) {
            release_block(c.h, owner, p, s);
        } else if (dh_st_is_live_class(s) &&
                   dh_class_keeps(c.h, s - DH_ST_LIVE, n)) {
            q = ptr; /* the class still fits: it stays where it is */
        } else if ((q = dh_realloc_new(c.h, s, old, n)) != NULL) {
            memcpy(q, ptr, old < n ? old : n);
            release_block(c.h, owner, p, s);
        }
    }
    if (c.observed && (ptr == NULL || s != 0))
        dh_observe_op(c.h, DH_OP_REALLOC, n, old_usable, p, (uintptr_t)q);
    call_end(&c);
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

dh_class_set_t dh_proc_class_set(void) { return options.classes; }

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
        dh_heap_t *h = slot_get(s);
        if (h == NULL) continue;
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
    out->peak_live_bytes = dh_observe ? peak : 0;
    out->class_set = options.classes;
    out->class_count = (uint32_t)dh_class_set_count(options.classes);
    memset(out->classes, 0, sizeof out->classes);
    for (uint32_t c = 0; c < out->class_count; c++) {
        dh_class_stats_t *cs = &out->by_class[c];
        cs->size = dh_class_set_size(options.classes, (int)c);
        cs->live = cs->allocs - cs->frees;
        cs->free = cs->carved - cs->live;
        out->live_bytes += cs->live * cs->size;
        dh_stats_fold(out, cs);
    }
}

/* ---- checking every heap of the process -------------------------------------- */

static void census_add(dh_census_t *sum, const dh_census_t *one) {
    uint64_t *d = (uint64_t *)(void *)sum;
    const uint64_t *a = (const uint64_t *)(const void *)one;
    for (size_t i = 0; i < sizeof *sum / sizeof(uint64_t); i++) d[i] += a[i];
}
_Static_assert(sizeof(dh_census_t) % sizeof(uint64_t) == 0,
               "census_add sums a census as an array of uint64_t");

/* DETHEAP_REMOTE_FREE=owner: blocks other threads returned to h wait in
 * its inbox, free and on no list until h's thread takes them: count them
 * as listed (class blocks) or held (large blocks).  The other threads are
 * parked (see detheap.h), so the list stands still. */
static void inbox_census(const dh_heap_t *h, dh_census_t *sum) {
    uint64_t n = 0;
    for (void *p = __atomic_load_n(&dh_ph(h)->inbox, __ATOMIC_ACQUIRE); p != NULL;
         p = DH_LINK_READ(p)) {
        uint8_t s = dh_st_load(dh_state_at(h, (uintptr_t)p));
        if (++n > h->size >> DH_GRANULE_SHIFT) return; /* a cycle: damaged */
        if (dh_st_is_free_class(s))
            sum->listed[s - DH_ST_FREE]++;
        else if (s == DH_ST_FREE_FOREIGN)
            sum->tree_nodes++;
        DH_MEM_NOACCESS(p, sizeof(void *));
    }
}

int dh_process_check(void) {
    if (dh_self.heap == NULL && dh_proc_heap_slow() == NULL) return DH_CHECK_OK;
    dh_census_t sum;
    memset(&sum, 0, sizeof sum);
    uint64_t carved[DH_MAX_CLASSES] = {0}, live[DH_MAX_CLASSES] = {0};
    uint64_t large_live = 0, abandoned[DH_MAX_CLASSES] = {0};
    int nc = dh_class_set_count(options.classes);
    bool bound = false; /* some abandoned count is an upper bound */
    dh_proc_lock(); /* no heap changes hands meanwhile */
    int r = DH_CHECK_OK;
    for (uint32_t s = 0; s < map.count && r == DH_CHECK_OK; s++) {
        dh_heap_t *h = slot_get(s);
        if (h == NULL) continue;
        dh_census_t one;
        r = dh_heap_check_part(h, &one);
        census_add(&sum, &one);
        for (int c = 0; c < nc; c++) {
            carved[c] += h->bins[c].carved;
            live[c] += h->bins[c].allocs - h->bins[c].frees;
            abandoned[c] += h->abandoned[c];
        }
        bound |= h->class_abandoned;
        large_live += h->large_live_count;
        inbox_census(h, &sum);
    }
    dh_proc_unlock();
    if (r != DH_CHECK_OK) return r;
    for (int c = 0; c < nc; c++) /* I3, I4 over the process */
        if (bound ? sum.listed[c] > sum.free[c]
                  : sum.listed[c] + abandoned[c] != sum.free[c])
            return DH_CHECK_I3;
    for (int c = 0; c < nc; c++)
        if (carved[c] != sum.live[c] + sum.free[c] + sum.retired[c] ||
            live[c] != sum.live[c])
            return DH_CHECK_I4;
    if (sum.tree_nodes != sum.large_free) return DH_CHECK_I7;
    if (large_live != sum.large_live) return DH_CHECK_I9;
    return DH_CHECK_OK;
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
        dh_heap_t *h = slot_get(s);
        if (h == NULL || dh_ph(h)->ops == 0) continue;
        fp = mix(fp ^ mix(s + 1) ^ dh_ph(h)->fingerprint);
    }
    return fp;
}

void dh_observe_op(dh_heap_t *h, dh_op_t op, uint64_t a, uint64_t b,
                   uintptr_t in, uintptr_t out) {
    uint64_t fp = dh_ph(h)->fingerprint;
    fp = mix(fp ^ ((uint64_t)op << 56) ^ a);
    /* realloc's b is for the counts (dh_count_op), not the call's identity */
    fp = mix(fp ^ (op == DH_OP_REALLOC ? 0 : b) ^ ((uint64_t)in << 1));
    fp = mix(fp ^ out);
    dh_ph(h)->fingerprint = fp;
    dh_ph(h)->ops++;
    dh_count_op(op, a, b, in, out);
    if (options.trace && !dh_self.in_hook) dh_trace_record(h, op, a, b, in, out);
}

/* At exit (the destructor below) or _exit (the preload library's
 * interposer, override/exit.c): finish the trace and print the
 * statistics, once.  It lives here, in the file every user of the process
 * heap links, so that a static link gets it too. */
void dh_proc_exit_work(void) {
    if (dh_self.heap == NULL) return; /* the process heap was never used */
    if (dh_os_pid() != atomic_load(&heap_pid) ||
        atomic_exchange(&exit_done, true))
        return;
    const dh_options_t *o = dh_proc_options();
    if (o->trace) dh_trace_finish();
    if (!o->stats) return;
    int fd = 2;
    if (o->stats_file) { /* the name copied at start, %p: this process */
        char name[4096];
        dh_file_name(name, sizeof name, o->stats_file);
        fd = dh_os_open_write(name);
        if (fd < 0) {
            const char *msg[] = {"detheap: cannot open DETHEAP_STATS_FILE ",
                                 name, "; the statistics go to stderr\n"};
            dh_say_parts(msg, 3);
            fd = 2;
        }
    }
    dh_proc_report(fd, o->stats_json);
    if (fd != 2) dh_os_close(fd);
}

__attribute__((destructor)) static void at_exit(void) { dh_proc_exit_work(); }
