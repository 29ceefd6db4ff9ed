/*
 * fastpath.h - the class-block paths, the one copy that every entry point
 * (the heap API in heap.c and handle.c, the process layer in process.c, the
 * malloc override in override/malloc.c, the slow path in bin.c) inlines:
 * a checked free-list pop, a carve from the current span, a checked pop
 * from the foreign list, a push.
 *
 *   pop:    p = bin.head; check p (in the committed data, 16-byte aligned,
 *           state[p] = FREE + c; NULL fails too); bin.head = *p; hand out
 *   hand out: *p = 0; state[p] = LIVE + c; allocs++
 *   push:   state[p] = FREE + c; *p = list; list = p; frees++
 *
 * A pop that fails its check calls the caller's `miss` function with the
 * head it found: NULL (the list is empty: carve, or take a foreign block)
 * or a damaged link (dh_list_corrupted abandons the list and reports).
 * The counting paths of the heap API also keep live bytes and peaks; the
 * malloc override's lean paths keep only the per-class counts.
 */
#ifndef DH_FASTPATH_H
#define DH_FASTPATH_H

#include "internal.h"

#include <errno.h>
#include <stddef.h>

/* The heap whose bin b is. */
DH_INLINE dh_heap_t *dh_bin_heap(const dh_bin_t *b) {
    const dh_bin_t *first = b - (b->live_state - DH_ST_LIVE);
    return (dh_heap_t *)((uintptr_t)first - offsetof(dh_heap_t, bins));
}

DH_INLINE size_t dh_bin_size(const dh_bin_t *b) {
    return (size_t)b->granules << DH_GRANULE_SHIFT;
}

/* Hand out the free block p of bin b, whose state byte is st. */
DH_INLINE void *dh_bin_hand_out(dh_bin_t *b, void **p, uint8_t *st) {
    *p = NULL; /* no free-list link is left for the caller */
    dh_st_store(st, b->live_state);
    DH_BLOCK_ALLOC(p, dh_bin_size(b));
    b->allocs++;
    return p;
}

/* What a pop does when the head is not a block it may hand out: called
 * with the request's size, the bin and that head (NULL: empty). */
typedef void *(*dh_miss_fn)(size_t n, dh_bin_t *b, void *head);

/* Pop b's main list (blocks of h's own range only), checked. */
DH_INLINE void *dh_bin_pop(dh_heap_t *h, dh_bin_t *b, size_t n,
                           dh_miss_fn miss) {
    void **p = b->head;
    uintptr_t g = dh_own_granule(h, p);
    if (DH_UNLIKELY(g >= h->fast_granules)) return miss(n, b, p);
    uint8_t *st = h->data_state + g;
    if (DH_UNLIKELY(dh_st_load(st) != b->free_state)) return miss(n, b, p);
    b->head = DH_LINK_READ(p);
    return dh_bin_hand_out(b, p, st);
}

/* Carve b's next block from its current span, or NULL if the span is used
 * up.  The span may lie in another thread heap's range (made from a large
 * block freed here), so its state byte is found the general way.  A span
 * may be memory a freed large block used: the first word is zeroed like a
 * reused block's link, the rest is what the program wrote there (fresh
 * memory is zero anyway). */
DH_INLINE void *dh_bin_carve(dh_heap_t *h, dh_bin_t *b) {
    uintptr_t size = dh_bin_size(b);
    if (b->carve_end - b->carve < size) return NULL;
    void **p = (void **)b->carve;
    b->carve += size;
    b->carved++;
    DH_MEM_ACCESS(p, sizeof(void *));
    return dh_bin_hand_out(b, p, dh_state_at(h, (uintptr_t)p));
}

/* Pop b's foreign list (free blocks of other heaps' ranges, freed here),
 * checked; NULL if it is empty or was found damaged (and abandoned). */
DH_INLINE void *dh_bin_pop_foreign(dh_heap_t *h, dh_bin_t *b, size_t n) {
    void **p = b->foreign;
    if (p == NULL) return NULL;
    uint8_t *st = dh_foreign_free_ok(h, p, b->free_state);
    if (DH_UNLIKELY(st == NULL)) {
        dh_list_corrupted(h, dh_malloc_name(h), n,
                          b->live_state - DH_ST_LIVE, true, p);
        return NULL;
    }
    b->foreign = DH_LINK_READ(p);
    h->foreign_bytes -= dh_bin_size(b);
    h->foreign_reused += dh_bin_size(b);
    return dh_bin_hand_out(b, p, st);
}

/* Push the live class block p (state byte st) onto *list, a list of b. */
DH_INLINE void dh_bin_push(dh_bin_t *b, void **list, void *p, uint8_t *st) {
    dh_st_store(st, b->free_state);
    *(void **)p = *list;
    *list = p;
    DH_BLOCK_FREE(p, dh_bin_size(b));
    b->frees++;
}

/* The heap API's miss: a damaged list is abandoned; then the foreign
 * list, then carving (bin.c). */
DH_HIDDEN void *dh_bin_miss(size_t n, dh_bin_t *b, void *head);

/* Allocate a block of class c from h, counting live bytes: O(1). */
DH_INLINE void *dh_fast_alloc(dh_heap_t *h, int c) {
    size_t size = dh_class_bytes(h, c);
    void *p = dh_bin_pop(h, &h->bins[c], size, dh_bin_miss);
    if (DH_UNLIKELY(p == NULL)) return NULL; /* ENOMEM, counted */
    h->live_bytes += size;
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
        h->foreign_bytes += dh_bin_size(b);
    }
    dh_bin_push(b, list, (void *)p, st);
    h->live_bytes -= dh_bin_size(b);
}

#endif /* DH_FASTPATH_H */
