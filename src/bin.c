/*
 * bin.c - carving class blocks.  Each class has a current span (64 KiB from
 * the range, see large.c) cut into blocks of the class size in address
 * order, one block per call, exactly as the original design carves one new
 * block from fresh storage when a free list is empty.  Before carving, the
 * class's foreign list (blocks of other thread heaps freed by this heap's
 * thread) is used, LIFO.  Each span's class is written to the span map of
 * the range it lies in (internal.h), for the blocks of it that other
 * threads retire (process.c).  The pops, the carve and the pushes are
 * inline in fastpath.h, the one copy every entry point uses.
 *
 *   span: | blk 0 | blk 1 | blk 2 | ... | blk k-1 | waste |
 *                           ^ carve                ^ carve_end
 *   k = 65536 / class size; waste = 65536 mod class size (16 B for 48).
 */
#include "fastpath.h"

void dh_bins_init(dh_heap_t *h, dh_class_set_t set) {
    h->class_set = (uint8_t)set;
    h->nclasses = (uint8_t)dh_class_set_count(set);
    for (int c = 0; c < h->nclasses; c++) {
        h->bins[c].carve = h->bins[c].carve_end = 0;
        h->bins[c].live_state = (uint8_t)(DH_ST_LIVE + c);
        h->bins[c].free_state = (uint8_t)(DH_ST_FREE + c);
        h->bins[c].granules =
            (uint16_t)(dh_class_set_size(set, c) >> DH_GRANULE_SHIFT);
        h->bin_by_state[DH_ST_LIVE + c] = &h->bins[c];
    }
    for (unsigned i = 0; i < DH_SMALL_INDEXES; i++)
        h->bin_by_size[i] =
            &h->bins[dh_heap_class_of(h, (size_t)i << DH_GRANULE_SHIFT)];
}

uint8_t *dh_foreign_free_ok(const dh_heap_t *h, const void *p, uint8_t want) {
    uintptr_t a = (uintptr_t)p;
    const dh_heap_t *r = dh_region_lookup(a);
    if (r == NULL || r == h || !r->process || (a & (DH_GRANULE - 1)) ||
        !dh_in_data(r, a))
        return NULL;
    uint8_t *st = dh_state_at(r, a);
    return dh_st_load(st) == want ? st : NULL;
}

/* ---- giving whole free spans back (the fine class set) -------------------
 *
 * The spec set keeps the original design's rule: a span, once a class's,
 * stays that class's.  A heap of the fine set also gives back the spans
 * all of whose blocks wait on one class's free list, so that memory freed
 * in one class serves another (a program that fills one class, frees it,
 * then fills another).  When a class needs a span, the class with the
 * most free bytes is swept first if its list holds at least SWEEP_SPANS
 * spans' worth of blocks and a quarter of what it carved, and half of them
 * were freed since its last sweep (so a sweep, O(its free blocks), is paid
 * for by as many frees; a working set whose few free blocks come and go is
 * never swept):
 *
 *   1. check the list as a pop would (a damaged one is abandoned instead);
 *   2. mark each listed block's state byte NONE (this thread holds them;
 *      a block of the range freed by another thread onto its own list
 *      keeps its byte FREE + c, so its span is never taken);
 *   3. a span this heap carved in its own range (DH_SPAN_OWN), not its
 *      current one, whose first block is listed and all of whose blocks
 *      are marked is taken (at most SWEEP_MAX per sweep);
 *   4. the list is rebuilt in its order without the taken spans' blocks,
 *      their bytes set back to FREE + c;
 *   5. the taken spans' words are cleared and their pages go back to the
 *      heap's free pages (large.c), merged with neighbours or the top.
 *
 * Every decision is a function of the heap's own calls: addresses stay
 * deterministic (and differ from a spec heap's, as the sets do anyway). */
#define SWEEP_MAX 64
/* A class is swept only when its list holds at least this many spans'
 * worth of blocks, and a quarter of all it carved: a class whose few free
 * blocks come and go (a working set) is not worth it. */
#define SWEEP_SPANS 16

/* The link of the free block p, read and made inaccessible again. */
static void *link_next(void *p) {
    void *next = DH_LINK_READ(p);
    DH_MEM_NOACCESS(p, sizeof(void *));
    return next;
}

/* The free blocks of class c on h's main list, by the bin's counts (an
 * estimate for a process heap, see sweep_list_ok; a deterministic one in
 * keep mode, where the counts are the heap's own calls). */
static uint64_t listed_free(const dh_heap_t *h, int c) {
    const dh_bin_t *b = &h->bins[c];
    return b->carved - (b->allocs - b->frees) - h->abandoned[c];
}

/* Step 1: the list is intact (every entry a free class-c block of h's own
 * range, and no more of them than its data could hold: a cycle is damage
 * too); else it is abandoned and reported, as a pop would.  (The bin's
 * counts bound a private heap's list exactly, but not a process heap's:
 * there frees count the blocks of other ranges freed here, and in owner
 * mode other threads' frees return blocks to this list.) */
static bool sweep_list_ok(dh_heap_t *h, dh_bin_t *b, int c) {
    uint64_t n = 0, limit = (h->commit_end - h->data_start) / dh_bin_size(b);
    for (void *p = b->head; p != NULL; p = link_next(p)) {
        uintptr_t g = dh_own_granule(h, p);
        if (n++ >= limit || g >= h->fast_granules ||
            dh_st_load(h->data_state + g) != b->free_state) {
            dh_list_corrupted(h, dh_malloc_name(h), SIZE_MAX, c, false, p);
            return false;
        }
    }
    return true;
}

/* Steps 2..5 for class c; returns the spans given back. */
static unsigned sweep(dh_heap_t *h, int c) {
    dh_bin_t *b = &h->bins[c];
    h->swept_frees[c] = b->frees;
    if (!sweep_list_ok(h, b, c)) return 0;
    uintptr_t size = dh_bin_size(b), per = DH_SPAN / size;
    for (void *p = b->head; p != NULL; p = link_next(p))
        dh_st_store(dh_state_at(h, (uintptr_t)p), DH_ST_NONE);
    uintptr_t taken[SWEEP_MAX];
    unsigned k = 0;
    for (void *p = b->head; p != NULL && k < SWEEP_MAX; p = link_next(p)) {
        uint32_t *word;
        uintptr_t a = (uintptr_t)p;
        /* a span of this heap's own carving, not its current one: another
         * thread heap may be carving a span of this range (from a free
         * block of it that it held), whose uncarved blocks read NONE too */
        if (dh_span_of(h, a, &word) != a || b->carve - a < DH_SPAN ||
            !(__atomic_load_n(word, __ATOMIC_RELAXED) & DH_SPAN_OWN))
            continue;
        uintptr_t q = a;
        while (q < a + per * size &&
               dh_st_load(dh_state_at(h, q)) == DH_ST_NONE)
            q += size;
        if (q == a + per * size) taken[k++] = a;
    }
    /* rebuild: the kept blocks in their order, their bytes restored */
    void *first = NULL, *last = NULL;
    for (void *p = b->head; p != NULL;) {
        void *next = link_next(p);
        uint32_t *word;
        uintptr_t a = (uintptr_t)p, span = dh_span_of(h, a, &word);
        bool gone = false;
        for (unsigned i = 0; i < k && !gone; i++) gone = taken[i] == span;
        if (!gone) {
            dh_st_store(dh_state_at(h, a), b->free_state);
            if (last != NULL) DH_LINK_WRITE(last, p);
            else first = p;
            last = p;
        }
        p = next;
    }
    if (last != NULL) DH_LINK_WRITE(last, NULL);
    b->head = first;
    for (unsigned i = 0; i < k; i++) {
        uint32_t *word;
        dh_span_of(h, taken[i], &word);
        __atomic_store_n(word, 0u, __ATOMIC_RELAXED);
        dh_span_release(h, taken[i]);
    }
    b->carved -= (uint64_t)k * per;
    b->spans -= k;
    return k;
}

/* Before class `need` takes a span: sweep the class with the most free
 * bytes, if it is worth it (above). */
static void sweep_some(dh_heap_t *h, int need) {
    int best = -1;
    uint64_t best_bytes = 0;
    for (int c = 0; c < h->nclasses; c++) {
        const dh_bin_t *b = &h->bins[c];
        uint64_t free = listed_free(h, c), per = DH_SPAN / dh_bin_size(b);
        if (c == need || free < SWEEP_SPANS * per || 4 * free < b->carved ||
            2 * (b->frees - h->swept_frees[c]) < free)
            continue;
        if (free * dh_bin_size(b) > best_bytes) {
            best = c;
            best_bytes = free * dh_bin_size(b);
        }
    }
    if (best >= 0) sweep(h, best);
}

/* A fresh span for bin b, or false (ENOMEM). */
static bool bin_refill(dh_heap_t *h, dh_bin_t *b) {
    uintptr_t size = dh_bin_size(b);
    if (h->class_set == DH_CLASSES_FINE)
        sweep_some(h, b->live_state - DH_ST_LIVE);
    uintptr_t span = (uintptr_t)dh_span_take(h, size);
    if (span == 0) return false;
    DH_MEM_NOACCESS((void *)span, DH_SPAN); /* carved block by block */
    b->carve = span;
    b->carve_end = span + (DH_SPAN / size) * size;
    b->spans++;
    /* the span's class, for the blocks other threads retire from it
     * (per-thread heaps) and for the sweep (the fine set) */
    if (h->process || h->class_set == DH_CLASSES_FINE)
        __atomic_store_n(dh_span_word(h, span),
                         dh_span_word_make(b->live_state - DH_ST_LIVE, span) |
                             (dh_owns(h, span) ? DH_SPAN_OWN : 0),
                         __ATOMIC_RELAXED);
    return true;
}

void *dh_bin_miss(size_t n, dh_bin_t *b, void *head) {
    dh_heap_t *h = dh_bin_heap(b);
    if (head != NULL) /* not empty: damaged */
        dh_list_corrupted(h, dh_malloc_name(h), n,
                          b->live_state - DH_ST_LIVE, false, head);
    void *p = dh_bin_pop_foreign(h, b, n);
    if (p == NULL) p = dh_bin_carve(h, b);
    if (p == NULL && bin_refill(h, b)) p = dh_bin_carve(h, b);
    if (DH_UNLIKELY(p == NULL)) {
        h->failed_allocs++;
        errno = ENOMEM;
    }
    return p;
}
