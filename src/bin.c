/*
 * bin.c - carving class blocks.  Each class has a current span (64 KiB from
 * the range, see large.c) cut into blocks of the class size in address
 * order, one block per call, exactly as the original design carves one new
 * block from fresh storage when a free list is empty.  Before carving, the
 * class's foreign list (blocks of other thread heaps freed by this heap's
 * thread) is used, LIFO.  Each span's class is written to the span map of
 * the range it lies in (internal.h), for the blocks of it that other
 * threads retire (process.c).  The main LIFO free lists are handled inline in
 * fastpath.h and override/malloc.c, where the fast paths live.
 *
 *   span: | blk 0 | blk 1 | blk 2 | ... | blk k-1 | waste |
 *                           ^ carve                ^ carve_end
 *   k = 65536 / class size; waste = 65536 mod class size (16 B for 48).
 */
#include "internal.h"

void dh_bins_init(dh_heap_t *h) {
    for (int c = 0; c < DH_NUM_CLASSES; c++) {
        h->bins[c].carve = h->bins[c].carve_end = 0;
        h->bins[c].live_state = (uint8_t)(DH_ST_LIVE + c);
        h->bins[c].free_state = (uint8_t)(DH_ST_FREE + c);
        h->bin_by_state[DH_ST_LIVE + c] = &h->bins[c];
    }
    for (unsigned i = 0; i < DH_SMALL_INDEXES; i++)
        h->bin_by_size[i] = &h->bins[dh_small_class[i]];
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

void *dh_bin_alloc_slow(dh_heap_t *h, int c) {
    dh_bin_t *b = &h->bins[c];
    uintptr_t size = dh_class_sizes[c];
    if (b->foreign != NULL) { /* blocks of other heaps, freed here */
        void **p = b->foreign;
        if (DH_UNLIKELY(dh_foreign_free_ok(h, p, b->free_state) == NULL)) {
            dh_list_corrupted(h, h->process ? "malloc" : "dh_heap_malloc",
                              size, c, true, p);
        } else {
            b->foreign = DH_LINK_READ(p);
            *p = NULL;
            h->foreign_bytes -= size;
            return p;
        }
    }
    if (b->carve_end - b->carve < size) {
        uintptr_t span = (uintptr_t)dh_span_take(h, size);
        if (span == 0) return NULL;
        DH_MEM_NOACCESS((void *)span, DH_SPAN); /* carved block by block */
        b->carve = span;
        b->carve_end = span + (DH_SPAN / size) * size;
        b->spans++;
        /* the span's class, for the blocks other threads retire from it
         * (per-thread heaps only: a private heap has no other thread) */
        if (h->process)
            __atomic_store_n(dh_span_word(h, span), dh_span_word_make(c, span),
                             __ATOMIC_RELAXED);
    }
    uintptr_t p = b->carve;
    b->carve += size;
    b->carved++;
    /* a span may be memory a freed large block used: the first word is
     * zeroed like a reused block's link, the rest is what the program
     * wrote there (fresh memory is zero anyway) */
    DH_MEM_ACCESS((void *)p, sizeof(void *));
    *(void **)p = NULL;
    return (void *)p;
}
