/*
 * tree_det.c - per-thread determinism over a wide, deep creation tree.
 * The thread structure is fixed:
 *
 *   main                 creates m.0 .. m.299 (joinable), then the chain
 *   m.I                  every 10th (I = 9, 19, .. 299) creates m.I.0 .. m.I.19
 *   m.300 -> m.300.0 -> m.300.0.0 -> ...   a chain 8 deep, each level
 *                        creating the next and joining it
 *
 * 909 threads, running concurrently.  Every thread makes a deterministic
 * sequence of malloc/calloc/realloc/posix_memalign/free calls of sizes 1 ..
 * 200000, seeded from its path only (never from timing), before, between
 * and after creating its children, and hashes (FNV-1a) the operations, the
 * sizes and the absolute addresses it got.  Main prints one line
 * "PATH HASH" per thread, after every thread has been joined (so that
 * stdio's buffer is main's, allocated after its own work).  With a
 * deterministic allocator the output is the same in every run, ASLR or
 * not; with glibc's malloc and ASLR it is not.
 *
 * Exit status: 0; 1 if a create failed or a block lost its contents.
 */
#include "thread_common.h"

#define WIDE 300       /* main's children m.0 .. m.299 */
#define EVERY 10       /* every 10th of them ... */
#define SUB 20         /* ... creates 20 */
#define DEPTH 8        /* the chain m.300 -> ... */
#define PARENTS (WIDE / EVERY)
#define NODES (1 + WIDE + PARENTS * SUB + DEPTH)
#define SLOTS 24

typedef struct node {
    char path[40];
    int index;  /* in nodes[] */
    int wide;   /* m.I: I, else -1 */
    int level;  /* chain level 1..DEPTH, else 0 */
    th_rng_t rng;
    uint64_t hash;
    long ops;
    int bad;
    th_blk_t live[SLOTS];
} node_t;

static node_t nodes[NODES];

static node_t *node_at(int index, const char *path) {
    node_t *n = &nodes[index];
    size_t len = strlen(path); /* cut to fit, without a truncating format */
    if (len >= sizeof n->path) len = sizeof n->path - 1;
    memcpy(n->path, path, len);
    n->path[len] = 0;
    n->index = index;
    n->wide = -1;
    n->rng = th_rng(th_hash_str(path));
    n->hash = TH_FNV_INIT;
    return n;
}

enum { OP_MALLOC = 1, OP_CALLOC, OP_REALLOC, OP_MEMALIGN, OP_FREE };

static void trace(node_t *n, unsigned op, size_t size, const void *p) {
    n->hash = th_hash(th_hash(th_hash(n->hash, op), size),
                      (uint64_t)(uintptr_t)p);
    n->ops++;
}

/* Sizes as programs ask: mostly small, some of every class, a few large. */
static size_t pick_size(node_t *n) {
    uint64_t r = th_next(&n->rng) % 100;
    if (r < 65) return (size_t)th_range(&n->rng, 1, 512);
    if (r < 90) return (size_t)th_range(&n->rng, 513, 16384);
    if (r < 97) return (size_t)th_range(&n->rng, 16385, 65536);
    return (size_t)th_range(&n->rng, 65537, 200000);
}

static void *alloc_any(node_t *n, size_t size) {
    void *p = NULL;
    switch (th_next(&n->rng) % 4) {
    case 0:
        p = malloc(size);
        trace(n, OP_MALLOC, size, p);
        break;
    case 1:
        p = calloc(1, size);
        trace(n, OP_CALLOC, size, p);
        if (p != NULL && (((unsigned char *)p)[0] || ((unsigned char *)p)[size - 1]))
            n->bad++;
        break;
    case 2: {
        size_t align = (size_t)16 << (th_next(&n->rng) % 8); /* 16 .. 2048 */
        if (posix_memalign(&p, align, size) != 0) p = NULL;
        trace(n, OP_MEMALIGN, size ^ (align << 32), p);
        if ((uintptr_t)p & (align - 1)) n->bad++;
        break;
    }
    default:
        p = realloc(NULL, size);
        trace(n, OP_REALLOC, size, p);
    }
    if (p == NULL) {
        fprintf(stderr, "FAIL: %s: allocation of %zu bytes failed\n", n->path, size);
        exit(1);
    }
    return p;
}

static void drop(node_t *n, th_blk_t *b) {
    if (!th_marked(b)) n->bad++;
    trace(n, OP_FREE, b->n, b->p);
    free(b->p);
    b->p = NULL;
}

/* ops random operations on the node's table of live blocks. */
static void work(node_t *n, int ops) {
    for (int i = 0; i < ops; i++) {
        th_blk_t *b = &n->live[th_next(&n->rng) % SLOTS];
        if (b->p == NULL) {
            b->n = (uint32_t)pick_size(n);
            b->p = alloc_any(n, b->n);
            th_mark(b, (unsigned char)th_next(&n->rng));
        } else if (th_next(&n->rng) % 2) {
            drop(n, b);
        } else {
            size_t size = pick_size(n);
            if (!th_marked(b)) n->bad++;
            unsigned char *q = realloc(b->p, size);
            trace(n, OP_REALLOC, size, q);
            if (q == NULL) {
                fprintf(stderr, "FAIL: %s: realloc to %zu bytes failed\n", n->path, size);
                exit(1);
            }
            b->p = q;
            b->n = (uint32_t)size;
            th_mark(b, (unsigned char)th_next(&n->rng));
        }
    }
}

static void finish(node_t *n) {
    for (int i = 0; i < SLOTS; i++)
        if (n->live[i].p != NULL) drop(n, &n->live[i]);
}

static void start(pthread_t *tid, void *(*fn)(void *), node_t *child) {
    if (th_create(tid, NULL, fn, child, child->path, child->index) != 0)
        exit(1);
}

static void join(pthread_t tid, const node_t *child) {
    int rc = pthread_join(tid, NULL);
    if (rc != 0) {
        fprintf(stderr, "FAIL: pthread_join of %s: %s\n", child->path, strerror(rc));
        exit(1);
    }
}

static void *leaf(void *arg) {
    node_t *n = arg;
    work(n, 200);
    finish(n);
    return NULL;
}

/* m.I with I % 10 == 9: 20 children. */
static void *parent(void *arg) {
    node_t *n = arg;
    work(n, 150);
    pthread_t tid[SUB];
    node_t *kids[SUB];
    int first = 1 + WIDE + (n->wide / EVERY) * SUB;
    char path[sizeof n->path + 8];
    for (int j = 0; j < SUB; j++) {
        snprintf(path, sizeof path, "%s.%d", n->path, j);
        kids[j] = node_at(first + j, path);
        start(&tid[j], leaf, kids[j]);
        work(n, 10);
    }
    for (int j = 0; j < SUB; j++) join(tid[j], kids[j]);
    work(n, 100);
    finish(n);
    return NULL;
}

/* Chain level n->level: creates the next level and joins it. */
static void *chain(void *arg) {
    node_t *n = arg;
    work(n, 150);
    if (n->level < DEPTH) {
        char path[sizeof n->path + 8];
        snprintf(path, sizeof path, "%s.0", n->path);
        node_t *next = node_at(1 + WIDE + PARENTS * SUB + n->level, path);
        next->level = n->level + 1;
        pthread_t tid;
        start(&tid, chain, next);
        work(n, 20);
        join(tid, next);
    }
    work(n, 100);
    finish(n);
    return NULL;
}

int main(void) {
    node_t *m = node_at(0, "main");
    work(m, 100);
    pthread_t tid[WIDE + 1];
    char path[16];
    for (int i = 0; i < WIDE; i++) {
        snprintf(path, sizeof path, "m.%d", i);
        node_t *c = node_at(1 + i, path);
        c->wide = i;
        start(&tid[i], i % EVERY == EVERY - 1 ? parent : leaf, c);
        work(m, 2);
    }
    node_t *root = node_at(1 + WIDE + PARENTS * SUB, "m.300");
    root->level = 1;
    start(&tid[WIDE], chain, root);
    for (int i = 0; i <= WIDE; i++) join(tid[i], i < WIDE ? &nodes[1 + i] : root);
    work(m, 100);
    finish(m);

    int bad = 0;
    for (int i = 0; i < NODES; i++) {
        if (nodes[i].ops == 0) {
            fprintf(stderr, "FAIL: node %d never ran\n", i);
            bad = 1;
        }
        if (nodes[i].bad) {
            fprintf(stderr, "FAIL: %s: %d blocks lost their contents\n",
                    nodes[i].path, nodes[i].bad);
            bad = 1;
        }
        printf("%s %016llx\n", nodes[i].path, (unsigned long long)nodes[i].hash);
    }
    printf("allocator: %s\n", th_allocator()); /* after main's own work */
    return bad;
}
