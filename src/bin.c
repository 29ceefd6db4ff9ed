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

/* A fresh span for bin b, or false (ENOMEM). */
static bool bin_refill(dh_heap_t *h, dh_bin_t *b) {
    uintptr_t size = dh_bin_size(b);
    uintptr_t span = (uintptr_t)dh_span_take(h, size);
    if (span == 0) return false;
    DH_MEM_NOACCESS((void *)span, DH_SPAN); /* carved block by block */
    b->carve = span;
    b->carve_end = span + (DH_SPAN / size) * size;
    b->spans++;
    /* the span's class, for the blocks other threads retire from it
     * (per-thread heaps only: a private heap has no other thread) */
    if (h->process)
        __atomic_store_n(dh_span_word(h, span),
                         dh_span_word_make(b->live_state - DH_ST_LIVE, span),
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
