/*
 * handle.c - the handle API of the original design over a heap.  A handle
 * is a block's offset from the heap base divided by 16, so it is found from
 * a pointer and back in O(1) with no table, and a block reused through its
 * class's LIFO free list gets the same handle again, as the original
 * design's block indices did.  A handle is live when its state byte says a
 * live block starts there; every other handle is simply not live.
 */
#include "internal.h"

#include <string.h>

/* The address a handle names, or 0 if it is outside the heap's data. */
static uintptr_t handle_addr(const dh_heap_t *h, dh_handle_t handle) {
    if (handle.id == 0 || handle.id >= (h->size >> DH_GRANULE_SHIFT)) return 0;
    return h->base + ((uintptr_t)handle.id << DH_GRANULE_SHIFT);
}

static dh_handle_t handle_at(const dh_heap_t *h, uintptr_t p) {
    dh_handle_t handle = {(p - h->base) >> DH_GRANULE_SHIFT};
    return handle;
}

dh_handle_t dh_alloc(dh_heap_t *h, size_t size) {
    void *p = dh_heap_malloc(h, size);
    return p ? handle_at(h, (uintptr_t)p) : DH_HANDLE_NULL;
}

void dh_free_handle(dh_heap_t *h, dh_handle_t handle) {
    uintptr_t p = handle_addr(h, handle);
    uint8_t s = p ? dh_live_state(h, p) : 0;
    if (s == 0) {
        h->rejected_handle_frees++;
        return;
    }
    dh_heap_release(h, p, s);
}

void *dh_get(const dh_heap_t *h, dh_handle_t handle, size_t *len) {
    uintptr_t p = handle_addr(h, handle);
    uint8_t s = p ? dh_live_state(h, p) : 0;
    if (len) *len = s ? dh_block_size(h, p, s) : 0;
    return s ? (void *)p : NULL;
}

bool dh_write(dh_heap_t *h, dh_handle_t handle, const void *data, size_t len) {
    size_t size;
    void *p = dh_get(h, handle, &size);
    if (p == NULL) return false;
    if (len > 0) memcpy(p, data, len < size ? len : size);
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
