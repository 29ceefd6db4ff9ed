/*
 * threads_det.c - the per-thread determinism promise, seen from a program.
 *
 * Built against libc's malloc and run with libdetheap.so preloaded (or
 * without it, or with another allocator, to show that the check is real).
 * Several groups of threads run at the same time:
 *
 *   race0..race7          created in order, released together by a barrier,
 *                         each churning malloc/calloc/realloc/free/
 *                         posix_memalign with sizes 1..200000
 *   tree1, tree2          meet at a barrier and then each create three
 *                         children at the same moment (tree1.1 .. tree2.3)
 *   producer, consumer    blocks handed over, in a fixed order, through a
 *                         mutex+condvar ring; the consumer frees them and
 *                         allocates blocks of its own
 *   rounds, roundR.tI     a thread that creates four workers, joins them,
 *                         and creates four more (which inherit the joined
 *                         heaps), for several rounds
 *
 * Every logical thread hashes its own trace of (operation, size, returned
 * address) with FNV-1a, and checks the contents of its blocks.  The random
 * choices come from a seed derived from the logical name only, so each
 * thread's sequence of calls is the same in every run; only the
 * interleaving differs.  Main prints "name hash" per logical thread, sorted
 * by name, after every thread has been joined (so stdio's buffer is
 * allocated by main, never by a worker).  With detheap the output must be
 * identical from run to run, ASLR or not.
 *
 * Exit status: 0, or 1 if a block's contents were found corrupted.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RACERS 8
#define TREE_CHILDREN 3
#define ROUNDS 4
#define ROUND_WIDTH 4
#define MAX_THREADS 64
#define LIVE_SLOTS 256
#define QUEUE_SLOTS 64

/* Work per thread; `threads_det N` scales it (default 1). */
static int scale = 1;

/* One logical thread: its name, its random state, its trace hash. */
typedef struct logical {
    char name[24];
    uint64_t rng;
    uint64_t hash;
    uint64_t ops;
    int corrupt;
} logical_t;

static logical_t threads[MAX_THREADS];
static atomic_int nthreads;

static uint64_t fnv_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* A logical thread, registered by name; its seed depends only on it. */
static logical_t *logical(const char *name) {
    int i = atomic_fetch_add(&nthreads, 1);
    if (i >= MAX_THREADS) abort();
    logical_t *t = &threads[i];
    size_t n = strlen(name); /* cut to fit, without a truncating format */
    if (n >= sizeof t->name) n = sizeof t->name - 1;
    memcpy(t->name, name, n);
    t->name[n] = 0;
    t->rng = fnv_str(name) | 1;
    t->hash = 0xcbf29ce484222325ull;
    return t;
}

static uint64_t rnd(logical_t *t) {
    t->rng ^= t->rng >> 12;
    t->rng ^= t->rng << 25;
    t->rng ^= t->rng >> 27;
    return t->rng * 0x2545f4914f6cdd1dull;
}

/* FNV-1a over the bytes of (op, size, address). */
static void trace(logical_t *t, unsigned op, size_t size, const void *p) {
    uint64_t v[3] = {op, size, (uint64_t)(uintptr_t)p};
    const unsigned char *b = (const unsigned char *)v;
    for (size_t i = 0; i < sizeof v; i++)
        t->hash = (t->hash ^ b[i]) * 0x100000001b3ull;
    t->ops++;
}

enum { OP_MALLOC = 1, OP_CALLOC, OP_REALLOC, OP_FREE, OP_MEMALIGN };

/* Sizes 1..200000, mostly small, as programs ask. */
static size_t pick_size(logical_t *t) {
    uint64_t r = rnd(t) % 100;
    if (r < 60) return 1 + rnd(t) % 256;
    if (r < 85) return 257 + rnd(t) % 8000;
    if (r < 95) return 8257 + rnd(t) % 57000;
    return 65537 + rnd(t) % (200000 - 65537 + 1);
}

/* A block's marks: its first and last bytes carry a tag, so that a block
 * handed out twice, or moved wrongly by realloc, is noticed. */
typedef struct live {
    unsigned char *p;
    size_t n;
    unsigned char tag;
} live_t;

static void mark(live_t *b, unsigned char tag) {
    b->tag = tag;
    size_t k = b->n < 16 ? b->n : 16;
    memset(b->p, tag, k);
    memset(b->p + b->n - k, tag, k);
}

/* True when the first and last min(n, 16) bytes still carry the tag. */
static int marked(const unsigned char *p, size_t n, unsigned char tag) {
    size_t k = n < 16 ? n : 16;
    for (size_t i = 0; i < k; i++)
        if (p[i] != tag || p[n - 1 - i] != tag) return 0;
    return 1;
}

static void *alloc_any(logical_t *t, size_t n) {
    void *p = NULL;
    switch (rnd(t) % 4) {
    case 0:
        p = malloc(n);
        trace(t, OP_MALLOC, n, p);
        break;
    case 1:
        p = calloc(1, n);
        trace(t, OP_CALLOC, n, p);
        if (p != NULL && (((unsigned char *)p)[0] != 0 ||
                          ((unsigned char *)p)[n - 1] != 0))
            t->corrupt++;
        break;
    case 2: {
        size_t align = (size_t)16 << (rnd(t) % 9); /* 16 .. 4096 */
        if (posix_memalign(&p, align, n) != 0) p = NULL;
        trace(t, OP_MEMALIGN, n ^ (align << 32), p);
        if (((uintptr_t)p & (align - 1)) != 0) t->corrupt++;
        break;
    }
    default:
        p = realloc(NULL, n);
        trace(t, OP_REALLOC, n, p);
    }
    if (p == NULL) abort();
    return p;
}

static void free_one(logical_t *t, live_t *b) {
    if (!marked(b->p, b->n, b->tag)) t->corrupt++;
    trace(t, OP_FREE, b->n, b->p);
    free(b->p);
    b->p = NULL;
}

/* ops random operations on a table of live blocks; leave `keep` of them
 * allocated (a thread that ends with live blocks hands them on). */
static void churn(logical_t *t, long ops, int keep) {
    live_t live[LIVE_SLOTS] = {{0}};
    for (long i = 0; i < ops; i++) {
        live_t *b = &live[rnd(t) % LIVE_SLOTS];
        if (b->p == NULL) {
            b->n = pick_size(t);
            b->p = alloc_any(t, b->n);
            mark(b, (unsigned char)rnd(t));
        } else if (rnd(t) % 2) {
            free_one(t, b);
        } else {
            size_t n = pick_size(t);
            if (!marked(b->p, b->n, b->tag)) t->corrupt++;
            unsigned char *q = realloc(b->p, n);
            trace(t, OP_REALLOC, n, q);
            if (q == NULL) abort();
            /* the kept prefix must have moved with the block */
            size_t kept = b->n < n ? b->n : n;
            if (!marked(q, kept < 16 ? kept : 16, b->tag)) t->corrupt++;
            b->p = q;
            b->n = n;
            mark(b, (unsigned char)rnd(t));
        }
    }
    for (int i = keep; i < LIVE_SLOTS; i++)
        if (live[i].p != NULL) free_one(t, &live[i]);
}

static void start(pthread_t *tid, void *(*fn)(void *), void *arg) {
    if (pthread_create(tid, NULL, fn, arg) != 0) abort();
}

static void join(pthread_t tid) {
    if (pthread_join(tid, NULL) != 0) abort();
}

/* ---- (a) racing threads ---------------------------------------------------- */

static pthread_barrier_t race_barrier;

static void *racer(void *arg) {
    logical_t *t = arg;
    pthread_barrier_wait(&race_barrier);
    churn(t, 12000L * scale, 8);
    return NULL;
}

/* ---- (b) threads creating threads at the same time ---------------------------- */

static pthread_barrier_t tree_barrier;

static void *tree_child(void *arg) {
    churn(arg, 3000L * scale, 4);
    return NULL;
}

static void *tree(void *arg) {
    logical_t *t = arg;
    churn(t, 1000L * scale, 4);
    char name[sizeof t->name + 8];
    logical_t *kids[TREE_CHILDREN];
    for (int i = 0; i < TREE_CHILDREN; i++) {
        snprintf(name, sizeof name, "%s.%d", t->name, i + 1);
        kids[i] = logical(name);
    }
    pthread_barrier_wait(&tree_barrier);
    pthread_t tid[TREE_CHILDREN];
    for (int i = 0; i < TREE_CHILDREN; i++) {
        start(&tid[i], tree_child, kids[i]);
        churn(t, 200L * scale, 4); /* while the siblings run */
    }
    for (int i = 0; i < TREE_CHILDREN; i++) join(tid[i]);
    churn(t, 1000L * scale, 0);
    return NULL;
}

/* ---- (c) producer and consumer ---------------------------------------------- */

typedef struct item {
    unsigned char *p;
    size_t n;
    unsigned char tag;
} item_t;

static item_t queue[QUEUE_SLOTS];
static unsigned q_head, q_tail; /* under q_lock */
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_nonempty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t q_nonfull = PTHREAD_COND_INITIALIZER;

static void put(item_t it) {
    pthread_mutex_lock(&q_lock);
    while (q_tail - q_head == QUEUE_SLOTS)
        pthread_cond_wait(&q_nonfull, &q_lock);
    queue[q_tail++ % QUEUE_SLOTS] = it;
    pthread_cond_signal(&q_nonempty);
    pthread_mutex_unlock(&q_lock);
}

static item_t take(void) {
    pthread_mutex_lock(&q_lock);
    while (q_tail == q_head) pthread_cond_wait(&q_nonempty, &q_lock);
    item_t it = queue[q_head++ % QUEUE_SLOTS];
    pthread_cond_signal(&q_nonfull);
    pthread_mutex_unlock(&q_lock);
    return it;
}

static long handovers(void) { return 20000L * scale; }

static void *producer(void *arg) {
    logical_t *t = arg;
    live_t own[16] = {{0}};
    for (long i = 0; i < handovers(); i++) {
        /* mostly small blocks, one in 50 above 64 KiB */
        size_t n = i % 50 == 49 ? 65537 + rnd(t) % 100000 : 1 + rnd(t) % 600;
        item_t it = {alloc_any(t, n), n, (unsigned char)rnd(t)};
        memset(it.p, it.tag, n < 64 ? n : 64);
        put(it);
        live_t *b = &own[rnd(t) % 16]; /* and some of its own */
        if (b->p != NULL) {
            free_one(t, b);
        } else {
            b->n = pick_size(t);
            b->p = alloc_any(t, b->n);
            mark(b, (unsigned char)rnd(t));
        }
    }
    put((item_t){NULL, 0, 0});
    for (int i = 0; i < 16; i++)
        if (own[i].p != NULL) free_one(t, &own[i]);
    return NULL;
}

static void *consumer(void *arg) {
    logical_t *t = arg;
    live_t own[16] = {{0}};
    for (;;) {
        item_t it = take();
        if (it.p == NULL) break;
        for (size_t i = 0; i < (it.n < 64 ? it.n : 64); i++)
            if (it.p[i] != it.tag) {
                t->corrupt++;
                break;
            }
        trace(t, OP_FREE, it.n, it.p);
        free(it.p);
        live_t *b = &own[rnd(t) % 16];
        if (b->p != NULL) {
            free_one(t, b);
        } else {
            b->n = 1 + rnd(t) % 600; /* the sizes it just freed */
            b->p = alloc_any(t, b->n);
            mark(b, (unsigned char)rnd(t));
        }
    }
    for (int i = 0; i < 16; i++)
        if (own[i].p != NULL) free_one(t, &own[i]);
    return NULL;
}

/* ---- (d) threads joined and replaced ---------------------------------------- */

static void *round_worker(void *arg) {
    churn(arg, 1500L * scale, 6);
    return NULL;
}

static void *rounds(void *arg) {
    logical_t *t = arg;
    char name[24];
    for (int r = 0; r < ROUNDS; r++) {
        logical_t *w[ROUND_WIDTH];
        pthread_t tid[ROUND_WIDTH];
        for (int i = 0; i < ROUND_WIDTH; i++) {
            snprintf(name, sizeof name, "round%d.t%d", r, i);
            w[i] = logical(name);
        }
        for (int i = 0; i < ROUND_WIDTH; i++) start(&tid[i], round_worker, w[i]);
        churn(t, 300L * scale, 2);
        for (int i = 0; i < ROUND_WIDTH; i++) join(tid[i]);
    }
    churn(t, 300L * scale, 0);
    return NULL;
}

/* ---- main ---------------------------------------------------------------- */

static int by_name(const void *a, const void *b) {
    return strcmp(((const logical_t *)a)->name, ((const logical_t *)b)->name);
}

int main(int argc, char **argv) {
    if (argc > 1) scale = atoi(argv[1]) > 0 ? atoi(argv[1]) : 1;
    pthread_barrier_init(&race_barrier, NULL, RACERS);
    pthread_barrier_init(&tree_barrier, NULL, 2);

    /* Names are registered by their creators, in program order, before
     * the thread starts; the index in `threads` is never printed. */
    pthread_t tid[RACERS + 5];
    char name[24];
    int n = 0;
    for (int i = 0; i < RACERS; i++) {
        snprintf(name, sizeof name, "race%d", i);
        start(&tid[n++], racer, logical(name));
    }
    start(&tid[n++], tree, logical("tree1"));
    start(&tid[n++], tree, logical("tree2"));
    start(&tid[n++], producer, logical("producer"));
    start(&tid[n++], consumer, logical("consumer"));
    start(&tid[n++], rounds, logical("rounds"));
    for (int i = 0; i < n; i++) join(tid[i]);

    int total = atomic_load(&nthreads), corrupt = 0;
    qsort(threads, (size_t)total, sizeof threads[0], by_name);
    for (int i = 0; i < total; i++) {
        printf("%-12s %016llx\n", threads[i].name,
               (unsigned long long)threads[i].hash);
        if (threads[i].corrupt) {
            fprintf(stderr, "threads_det: %s: %d corrupted blocks\n",
                    threads[i].name, threads[i].corrupt);
            corrupt = 1;
        }
    }
    return corrupt;
}
