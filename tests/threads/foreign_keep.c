/*
 * foreign_keep.c - two threads that free each other's blocks and reuse
 * them, in lockstep.  Run with libdetheap.so preloaded
 * (check_foreign_keep.sh).
 *
 * In each of ROUNDS rounds, each of the two workers allocates BLOCKS
 * blocks of 16..1024 bytes (the same sizes, in the same order, in every
 * round and in both workers: about 2 MiB), marks them, and waits at a
 * barrier; then each frees the other's blocks (checking their marks) and
 * waits again.  From the second round on, a worker's allocations are
 * served by the blocks of the other's range it freed the round before (its
 * own main lists stay empty: it never frees its own blocks).  Every call's
 * order is fixed by the barriers, so each worker's addresses are
 * deterministic.
 *
 * Prints "allocator: NAME", "peak_rss_kb N" and "bad N" (blocks whose
 * mark had changed).  Usage: foreign_keep [ROUNDS]  (default 40).
 * Exit status: 0; 1 if a block was corrupted.
 */
#include "thread_common.h"

#define BLOCKS 4096

static th_blk_t blocks[2][BLOCKS];
static size_t sizes[BLOCKS];
static pthread_barrier_t barrier;
static long rounds = 40;
static long bad[2];

static void *worker(void *arg) {
    int me = (int)(intptr_t)arg;
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < BLOCKS; i++) {
            th_blk_t *b = &blocks[me][i];
            b->n = (uint32_t)sizes[i];
            b->p = th_malloc(b->n);
            if (b->p == NULL) {
                bad[me]++;
                continue;
            }
            th_mark(b, (unsigned char)(r * 2 + me));
        }
        pthread_barrier_wait(&barrier);
        for (int i = 0; i < BLOCKS; i++) {
            th_blk_t *b = &blocks[1 - me][i];
            if (b->p == NULL) continue;
            if (!th_marked(b)) bad[me]++;
            th_free(b->p);
            b->p = NULL;
        }
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) rounds = strtol(argv[1], NULL, 10);
    th_rng_t rng = th_rng(0x5eed);
    for (int i = 0; i < BLOCKS; i++) sizes[i] = th_range(&rng, 16, 1024);
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_t t[2];
    for (int w = 0; w < 2; w++)
        if (th_create(&t[w], NULL, worker, (void *)(intptr_t)w, "worker",
                      w) != 0)
            return 1;
    for (int w = 0; w < 2; w++) pthread_join(t[w], NULL);
    printf("allocator: %s\n", th_allocator());
    printf("peak_rss_kb %ld\n", th_peak_rss_kb());
    printf("bad %ld\n", bad[0] + bad[1]);
    return bad[0] + bad[1] != 0;
}
