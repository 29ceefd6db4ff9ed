/*
 * fastpath.h - the class-block fast paths, inline so that both the heap API
 * (heap.c) and the malloc override (override/malloc.c) compile them into
 * their callers: a free-list pop or push, one state byte, a few counters.
 *
 *   alloc:  p = bin.head; check p (in the data, aligned, state[p] = FREE + c);
 *           bin.head = *p; *p = 0; state[p] = LIVE + c
 *   free:   s = state[p] (validates p and names its class);
 *           state[p] = FREE + c; *p = bin.head; bin.head = p
 *
 * These "counting" paths also keep live bytes and peaks, for the heap API's
 * statistics.  The malloc override has leaner, table-driven copies that
 * keep only the per-class counts (override/malloc.c, bin_by_size and
 * bin_by_state in internal.h).
 */
#ifndef DH_FASTPATH_H
#define DH_FASTPATH_H

#include "internal.h"

#include <errno.h>

/* Allocate a block of class c from h: O(1). */
DH_INLINE void *dh_fast_alloc(dh_heap_t *h, int c) {
    dh_bin_t *b = &h->bins[c];
    void **p = b->head;
    if (DH_LIKELY(p != NULL) &&
        DH_UNLIKELY(dh_free_head_ok(h, p, b->free_state) == NULL)) {
        dh_list_corrupted(h, h->process ? "malloc" : "dh_heap_malloc",
                          dh_class_sizes[c], c, false, p);
        p = NULL; /* the list is gone: carve */
    }
    if (DH_LIKELY(p != NULL)) {
        b->head = DH_LINK_READ(p);
        *p = NULL; /* the link is not left for the caller to see */
    } else {
        p = dh_bin_alloc_slow(h, c);
        if (DH_UNLIKELY(p == NULL)) {
            h->failed_allocs++;
            errno = ENOMEM;
            return NULL;
        }
    }
    dh_st_store(dh_state_at(h, (uintptr_t)p), (uint8_t)(DH_ST_LIVE + c));
    DH_BLOCK_ALLOC(p, dh_class_sizes[c]);
    b->allocs++;
    h->live_bytes += dh_class_sizes[c];
    if (h->live_bytes > h->peak_live_bytes) h->peak_live_bytes = h->live_bytes;
    return p;
}

/* Free the class-c block p (its state byte st said LIVE + c) into h: onto
 * the main list if p lies in h's range, else onto the foreign list. */
DH_INLINE void dh_fast_free(dh_heap_t *h, uintptr_t p, uint8_t *st, int c) {
    dh_bin_t *b = &h->bins[c];
    void **list = &b->head;
    if (DH_UNLIKELY(!dh_owns(h, p))) {
        list = &b->foreign;
        h->foreign_bytes += dh_class_sizes[c];
    }
    dh_st_store(st, (uint8_t)(DH_ST_FREE + c));
    *(void **)p = *list;
    *list = (void *)p;
    DH_BLOCK_FREE((void *)p, dh_class_sizes[c]);
    b->frees++;
    h->live_bytes -= dh_class_sizes[c];
}

#endif /* DH_FASTPATH_H */
