/*
 * ptrmap.c - the pointer map (see ptrmap.h).  Kept at most half full.
 */
#include "ptrmap.h"

#include <stdlib.h>

static size_t hash(uint64_t k, size_t cap) {
    k ^= k >> 29;
    k *= 0xbf58476d1ce4e5b9ull;
    k ^= k >> 32;
    return (size_t)k & (cap - 1);
}

static bool grow(dh_ptrmap_t *m) {
    size_t cap = m->cap ? m->cap * 2 : 1024;
    dh_ptrmap_slot_t *s = calloc(cap, sizeof *s);
    if (s == NULL) return false;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == 0) continue;
        size_t j = hash(m->slots[i].key, cap);
        while (s[j].key != 0) j = (j + 1) & (cap - 1);
        s[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = s;
    m->cap = cap;
    return true;
}

static size_t find(const dh_ptrmap_t *m, uint64_t key) {
    if (m->cap == 0) return SIZE_MAX;
    for (size_t j = hash(key, m->cap);; j = (j + 1) & (m->cap - 1)) {
        if (m->slots[j].key == key) return j;
        if (m->slots[j].key == 0) return SIZE_MAX;
    }
}

bool dh_ptrmap_put(dh_ptrmap_t *m, uint64_t key, uint64_t v1, uint64_t v2) {
    size_t j = find(m, key);
    if (j == SIZE_MAX) {
        if ((m->count + 1) * 2 > m->cap && !grow(m)) return false;
        j = hash(key, m->cap);
        while (m->slots[j].key != 0) j = (j + 1) & (m->cap - 1);
        m->count++;
    }
    m->slots[j] = (dh_ptrmap_slot_t){key, v1, v2};
    return true;
}

bool dh_ptrmap_get(const dh_ptrmap_t *m, uint64_t key, uint64_t *v1,
                   uint64_t *v2) {
    size_t j = find(m, key);
    if (j == SIZE_MAX) return false;
    if (v1) *v1 = m->slots[j].v1;
    if (v2) *v2 = m->slots[j].v2;
    return true;
}

bool dh_ptrmap_take(dh_ptrmap_t *m, uint64_t key, uint64_t *v1, uint64_t *v2) {
    size_t j = find(m, key);
    if (j == SIZE_MAX) return false;
    if (v1) *v1 = m->slots[j].v1;
    if (v2) *v2 = m->slots[j].v2;
    /* backward shift: move later members of the probe run into the hole
     * when their home position does not lie between the hole and them */
    size_t mask = m->cap - 1, hole = j;
    for (size_t k = (j + 1) & mask; m->slots[k].key != 0; k = (k + 1) & mask) {
        size_t home = hash(m->slots[k].key, m->cap);
        if (((k - home) & mask) >= ((k - hole) & mask)) {
            m->slots[hole] = m->slots[k];
            hole = k;
        }
    }
    m->slots[hole].key = 0;
    m->count--;
    return true;
}

void dh_ptrmap_free(dh_ptrmap_t *m) {
    free(m->slots);
    *m = (dh_ptrmap_t){0};
}
