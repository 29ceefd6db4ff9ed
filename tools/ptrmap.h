/*
 * ptrmap.h - a hash map from a traced pointer (nonzero u64) to two u64
 * values, for the tool's models of a traced heap (live blocks in report and
 * run --stats, old-to-new pointers in replay).  Linear probing with
 * backward-shift deletion, so no tombstones pile up on long traces.
 */
#ifndef DH_TOOLS_PTRMAP_H
#define DH_TOOLS_PTRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dh_ptrmap_slot {
    uint64_t key; /* 0 = empty */
    uint64_t v1, v2;
} dh_ptrmap_slot_t;

typedef struct dh_ptrmap {
    dh_ptrmap_slot_t *slots;
    size_t cap;   /* a power of two, or 0 */
    size_t count; /* keys present */
} dh_ptrmap_t;

/* Insert or overwrite key (nonzero).  Returns false when out of memory. */
bool dh_ptrmap_put(dh_ptrmap_t *m, uint64_t key, uint64_t v1, uint64_t v2);

/* Look key up; on success fill *v1, *v2 (either may be NULL). */
bool dh_ptrmap_get(const dh_ptrmap_t *m, uint64_t key, uint64_t *v1,
                   uint64_t *v2);

/* Remove key, filling *v1, *v2 with its values; false if absent. */
bool dh_ptrmap_take(dh_ptrmap_t *m, uint64_t key, uint64_t *v1, uint64_t *v2);

void dh_ptrmap_free(dh_ptrmap_t *m);

#endif
