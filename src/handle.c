/*
 * handle.c - the handle API of the original design over a heap.  A handle
 * is a block's offset from the heap base divided by 16, so it is found from
 * a pointer and back in O(1) with no table, and a block reused through its
 * class's LIFO free list gets the same handle again, as the original
 * design's block indices did.  A handle is live when its state byte says a
 * live block starts there; every other handle is simply not live.
 *
 * Cost: the class paths are compiled in here from fastpath.h, and a handle
 * is validated with one unsigned compare (it names a granule of the carved
 * data) and one state byte load, so dh_alloc, dh_free_handle, dh_get and
 * dh_write make no call but for large blocks (and dh_write's memcpy).
 */
#include "fastpath.h"

#include <string.h>

/* The state byte of the granule a handle names if a live block starts
 * there (its address in *addr, its state byte's address in *st), else 0.
 * Granule g of the data is handle data_start_granule + g; handle 0,
 * handles below the data and handles at or above the high water all give
 * a g that fails the one compare. */
DH_INLINE uint8_t handle_live(const dh_heap_t *h, dh_handle_t handle,
                              uintptr_t *addr, uint8_t **st) {
    uint64_t g = handle.id - ((h->data_start - h->base) >> DH_GRANULE_SHIFT);
    if (g >= (dh_high_water(h) - h->data_start) >> DH_GRANULE_SHIFT) return 0;
    uint8_t s = dh_st_load(h->data_state + g);
    if (!dh_st_is_live_class(s) && s != DH_ST_LIVE_LARGE) return 0;
    *addr = h->data_start + ((uintptr_t)g << DH_GRANULE_SHIFT);
    *st = h->data_state + g;
    return s;
}

static dh_handle_t handle_at(const dh_heap_t *h, uintptr_t p) {
    dh_handle_t handle = {(p - h->base) >> DH_GRANULE_SHIFT};
    return handle;
}

dh_handle_t dh_alloc(dh_heap_t *h, size_t size) {
    int c = dh_heap_class_of(h, size);
    void *p = DH_LIKELY(c >= 0) ? dh_fast_alloc(h, c)
                                : dh_large_alloc(h, size, 0);
    return p ? handle_at(h, (uintptr_t)p) : DH_HANDLE_NULL;
}

void dh_free_handle(dh_heap_t *h, dh_handle_t handle) {
    uintptr_t p;
    uint8_t *st;
    uint8_t s = handle_live(h, handle, &p, &st);
    if (DH_UNLIKELY(s == 0)) {
        h->rejected_handle_frees++;
        return;
    }
    if (DH_LIKELY(dh_st_is_live_class(s)))
        dh_fast_free(h, p, st, s - DH_ST_LIVE);
    else
        dh_heap_release(h, p, s);
}

void *dh_get(const dh_heap_t *h, dh_handle_t handle, size_t *len) {
    uintptr_t p;
    uint8_t *st;
    uint8_t s = handle_live(h, handle, &p, &st);
    if (s == 0) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = dh_block_size(h, p, s);
    return (void *)p;
}

bool dh_write(dh_heap_t *h, dh_handle_t handle, const void *data, size_t len) {
    uintptr_t p;
    uint8_t *st;
    uint8_t s = handle_live(h, handle, &p, &st);
    if (s == 0) return false;
    size_t size = dh_block_size(h, p, s);
    if (len > 0) memcpy((void *)p, data, len < size ? len : size);
    return true;
}

dh_handle_t dh_handle_of(const void *ptr) {
    uintptr_t p = (uintptr_t)ptr;
    dh_heap_t *h = dh_region_lookup(p);
    if (h == NULL || dh_live_state(h, p) == 0) return DH_HANDLE_NULL;
    return handle_at(h, p);
}

void *dh_ptr_of(const dh_heap_t *h, dh_handle_t handle) {
    return dh_get(h, handle, NULL);
}
