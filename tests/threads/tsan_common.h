/*
 * tsan_common.h - what the two TSan programs (tsan_heap.c: the dh_* paths
 * of the static library; tsan_override.c: the drop-in's own code under
 * renamed symbols) share: a block record whose ends carry a tag, a
 * xorshift generator, and a bounded ring under a mutex for handing blocks
 * from one thread to another.  The includer defines RING (its length).
 */
#ifndef DH_TSAN_COMMON_H
#define DH_TSAN_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct blk {
    unsigned char *p;
    size_t n;
    unsigned char tag;
} blk_t;

static inline uint64_t rnd_next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

static inline void mark(blk_t *b, unsigned char tag) {
    size_t k = b->n < 16 ? b->n : 16;
    b->tag = tag;
    memset(b->p, tag, k);
    memset(b->p + b->n - k, tag, k);
}

static inline bool marked(const blk_t *b) {
    size_t k = b->n < 16 ? b->n : 16;
    for (size_t i = 0; i < k; i++)
        if (b->p[i] != b->tag || b->p[b->n - 1 - i] != b->tag) return false;
    return true;
}

static blk_t ring[RING];
static unsigned long ring_head, ring_tail; /* under ring_lock */
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ring_nonempty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t ring_nonfull = PTHREAD_COND_INITIALIZER;

static inline void put(blk_t b) {
    pthread_mutex_lock(&ring_lock);
    while (ring_tail - ring_head == RING)
        pthread_cond_wait(&ring_nonfull, &ring_lock);
    ring[ring_tail++ % RING] = b;
    pthread_cond_signal(&ring_nonempty);
    pthread_mutex_unlock(&ring_lock);
}

static inline blk_t take(void) {
    pthread_mutex_lock(&ring_lock);
    while (ring_tail == ring_head)
        pthread_cond_wait(&ring_nonempty, &ring_lock);
    blk_t b = ring[ring_head++ % RING];
    pthread_cond_signal(&ring_nonfull);
    pthread_mutex_unlock(&ring_lock);
    return b;
}

#endif /* DH_TSAN_COMMON_H */
