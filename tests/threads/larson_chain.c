/*
 * larson_chain.c - a larson-like detached chain.  CHAINS chains run at
 * once; each thread of a chain holds an array of LIVE live blocks of
 * 8..1000 bytes, replaces random ones REPLACE times, then creates its
 * successor with a detached attribute, hands it the array (the successor
 * frees blocks it did not allocate, and the array itself) and exits.
 * After GENS generations the last thread frees everything and tells main,
 * which exits once every chain has finished.
 *
 * Every block carries a tag that whoever frees it checks; a pthread_create
 * that fails is reported with its chain and generation.
 *
 * Usage: larson_chain [GENS]   (default 400)
 * Exit status: 0; 1 if a create failed or a block was found corrupted.
 */
#include "thread_common.h"

#include <stdatomic.h>

#define CHAINS 2
#define LIVE 1000
#define REPLACE 5000

static long gens = 400;

typedef struct baton {
    int chain;
    long gen;
    th_blk_t *blocks; /* LIVE of them, allocated by an earlier generation */
    th_rng_t rng;
} baton_t;

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static int chains_done;
static atomic_long corrupt;
static atomic_int create_failed;
static pthread_attr_t detached;

static void chain_done(void) {
    pthread_mutex_lock(&done_lock);
    chains_done++;
    pthread_cond_signal(&done_cond);
    pthread_mutex_unlock(&done_lock);
}

static void new_block(baton_t *b, th_blk_t *k) {
    k->n = (uint32_t)th_range(&b->rng, 8, 1000);
    k->p = th_malloc(k->n);
    if (k->p == NULL) {
        fprintf(stderr, "FAIL: chain %d gen %ld: malloc(%u) failed\n",
                b->chain, b->gen, k->n);
        exit(1);
    }
    th_mark(k, (unsigned char)th_next(&b->rng));
}

static void drop_block(th_blk_t *k) {
    if (!th_marked(k)) atomic_fetch_add(&corrupt, 1);
    th_free(k->p);
    k->p = NULL;
}

static void *generation(void *arg) {
    baton_t *b = arg;
    /* the array of the generation before: checked, and moved to a new
     * array of this thread's, the old one freed here */
    th_blk_t *mine = th_malloc(LIVE * sizeof *mine);
    if (mine == NULL) {
        fprintf(stderr, "FAIL: chain %d gen %ld: malloc of the array failed\n",
                b->chain, b->gen);
        exit(1);
    }
    if (b->blocks == NULL) {
        for (int i = 0; i < LIVE; i++) new_block(b, &mine[i]);
    } else {
        memcpy(mine, b->blocks, LIVE * sizeof *mine);
        th_free(b->blocks);
    }
    b->blocks = mine;
    for (int r = 0; r < REPLACE; r++) {
        th_blk_t *k = &mine[th_next(&b->rng) % LIVE];
        drop_block(k);
        new_block(b, k);
    }
    if (b->gen + 1 == gens) {
        for (int i = 0; i < LIVE; i++) drop_block(&mine[i]);
        th_free(mine);
        th_free(b);
        chain_done();
        return NULL;
    }
    baton_t *next = th_malloc(sizeof *next);
    if (next == NULL) {
        fprintf(stderr, "FAIL: chain %d gen %ld: malloc of the baton failed\n",
                b->chain, b->gen);
        exit(1);
    }
    *next = (baton_t){b->chain, b->gen + 1, mine, b->rng};
    th_free(b);
    char what[48];
    snprintf(what, sizeof what, "chain %d generation", next->chain);
    pthread_t tid;
    if (th_create(&tid, &detached, generation, next, what, next->gen) != 0) {
        atomic_store(&create_failed, 1);
        chain_done(); /* main must not wait for it for ever */
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) gens = atol(argv[1]) > 0 ? atol(argv[1]) : 1;
    printf("allocator: %s\n", th_allocator());
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    for (int c = 0; c < CHAINS; c++) {
        baton_t *b = th_malloc(sizeof *b);
        if (b == NULL) {
            fprintf(stderr, "FAIL: malloc of chain %d's baton failed\n", c);
            return 1;
        }
        *b = (baton_t){c, 0, NULL, th_rng(1000 + (uint64_t)c)};
        pthread_t tid;
        if (th_create(&tid, &detached, generation, b, "chain root", c) != 0)
            return 1;
    }
    pthread_mutex_lock(&done_lock);
    while (chains_done < CHAINS) pthread_cond_wait(&done_cond, &done_lock);
    pthread_mutex_unlock(&done_lock);
    long bad = atomic_load(&corrupt);
    if (bad != 0) fprintf(stderr, "FAIL: %ld corrupted blocks\n", bad);
    if (atomic_load(&create_failed)) return 1;
    printf("larson_chain: %d chains x %ld generations done\n", CHAINS, gens);
    return bad != 0;
}
