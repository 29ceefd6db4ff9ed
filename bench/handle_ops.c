/*
 * handle_ops.c - throughput of the handle API (dh_alloc, dh_free, dh_get,
 * dh_write) on an op script (the conformance format: a SIZE, f K, w K LEN B,
 * r K LEN, s).  Its twin, handle_ops.rs, runs the same scripts on the
 * original Rust design, so the two figures compare like with like:
 *
 *   - the script is parsed into an array before any timing;
 *   - each repetition starts from an empty heap: one heap is created
 *     before the first repetition and dh_heap_reset between repetitions,
 *     both outside the clock, so a repetition reuses the memory the one
 *     before it touched, as the Rust twin's new BinnedAllocator reuses the
 *     memory glibc got back from the previous repetition's (the first
 *     repetition of either side runs on fresh memory);
 *   - `w K LEN B` writes bytes (B + i) & 0xff, taken from one precomputed
 *     pattern buffer (pattern[j] = j & 0xff, so the data is pattern + B);
 *   - `r K LEN` hashes the bytes with FNV-1a 64, `s` reads the statistics;
 *   - results are folded into a checksum instead of being printed.
 *
 *   handle_ops FILE [MIN_SECONDS]   repeat until MIN_SECONDS (default 0.3)
 *                                   of timed work and at least 3 runs;
 *                                   print "BEST_OPS_PER_S MEDIAN_OPS_PER_S
 *                                   OPS RUNS"
 *   handle_ops --print FILE         run once and print what
 *                                   `detheap ops FILE` prints (a check
 *                                   that the driver runs the script right)
 */
#include "bench_common.h"

#include <detheap.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char op;      /* a, f, w, r or s */
    uint32_t k;   /* ordinal of the allocation (f, w, r) */
    uint32_t len; /* size (a) or byte count (w, r) */
    uint32_t b;   /* first byte value (w), 0..255 */
} op_t;

typedef struct {
    op_t *ops;
    size_t n, cap;
    size_t n_alloc; /* number of `a` lines */
    size_t max_len; /* largest LEN of a `w` line */
} script_t;

static void die(const char *what) {
    fprintf(stderr, "handle_ops: %s\n", what);
    exit(1);
}

static void parse(const char *path, script_t *sc) {
    FILE *f = fopen(path, "r");
    if (f == NULL) die("cannot open the script");
    char line[256];
    while (fgets(line, sizeof line, f) != NULL) {
        if (line[0] == '#' || line[0] == '\n' || line[0] == '\0') continue;
        op_t o = {line[0], 0, 0, 0};
        unsigned long x = 0, y = 0, z = 0;
        int got = 0;
        switch (o.op) {
        case 'a': got = sscanf(line + 1, "%lu", &x) == 1; o.len = (uint32_t)x; break;
        case 'f': got = sscanf(line + 1, "%lu", &x) == 1; o.k = (uint32_t)x; break;
        case 'w':
            got = sscanf(line + 1, "%lu %lu %lu", &x, &y, &z) == 3;
            o.k = (uint32_t)x, o.len = (uint32_t)y, o.b = (uint32_t)(z & 0xff);
            break;
        case 'r':
            got = sscanf(line + 1, "%lu %lu", &x, &y) == 2;
            o.k = (uint32_t)x, o.len = (uint32_t)y;
            break;
        case 's': got = 1; break;
        default: break;
        }
        if (!got) die("malformed line in the script");
        if (o.op != 'a' && o.op != 's' && o.k >= sc->n_alloc)
            die("K names no allocation yet");
        if (o.op == 'a') sc->n_alloc++;
        if (o.op == 'w' && o.len > sc->max_len) sc->max_len = o.len;
        if (sc->n == sc->cap) {
            sc->cap = sc->cap ? 2 * sc->cap : 4096;
            sc->ops = realloc(sc->ops, sc->cap * sizeof *sc->ops);
            if (sc->ops == NULL) die("out of memory");
        }
        sc->ops[sc->n++] = o;
    }
    fclose(f);
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Run the script on heap; fold every result into the returned checksum,
 * and print the results when out is not NULL. */
static uint64_t run(dh_heap_t *heap, const script_t *sc, dh_handle_t *hs,
                    const uint8_t *pattern, FILE *out) {
    uint64_t sum = 0;
    size_t n_alloc = 0;
    for (size_t i = 0; i < sc->n; i++) {
        const op_t *o = &sc->ops[i];
        switch (o->op) {
        case 'a': {
            dh_handle_t h = dh_alloc(heap, o->len);
            if (h.id == 0) die("dh_alloc failed");
            hs[n_alloc++] = h;
            sum += h.id;
            if (out) fprintf(out, "%" PRIu64 "\n", h.id);
            break;
        }
        case 'f':
            dh_free(heap, hs[o->k]);
            sum++;
            if (out) fputs("ok\n", out);
            break;
        case 'w': {
            bool live = dh_write(heap, hs[o->k], pattern + o->b, o->len);
            sum += live;
            if (out) fputs(live ? "true\n" : "false\n", out);
            break;
        }
        case 'r': {
            size_t size;
            const uint8_t *p = dh_get(heap, hs[o->k], &size);
            if (p == NULL) {
                sum += 7;
                if (out) fputs("none\n", out);
            } else {
                uint64_t h = fnv1a(p, o->len < size ? o->len : size);
                sum ^= h;
                if (out) fprintf(out, "%016" PRIx64 "\n", h);
            }
            break;
        }
        default: { /* 's' */
            dh_stats_t s;
            dh_heap_stats(heap, &s, sizeof s);
            sum += s.alloc_count + s.free_count + s.live_count +
                   s.total_blocks + s.free_block_count;
            if (out)
                fprintf(out,
                        "alloc=%" PRIu64 " free=%" PRIu64 " live=%" PRIu64
                        " blocks=%" PRIu64 " freeblocks=%" PRIu64 "\n",
                        s.alloc_count, s.free_count, s.live_count,
                        s.total_blocks, s.free_block_count);
            break;
        }
        }
    }
    return sum;
}

int main(int argc, char **argv) {
    bool print = argc == 3 && strcmp(argv[1], "--print") == 0;
    if (!print && (argc < 2 || argc > 3)) {
        fprintf(stderr, "usage: handle_ops FILE [MIN_SECONDS] | handle_ops --print FILE\n");
        return 2;
    }
    script_t sc = {0};
    parse(print ? argv[2] : argv[1], &sc);
    double min_seconds = (!print && argc == 3) ? strtod(argv[2], NULL) : 0.3;

    uint8_t *pattern = malloc(256 + sc.max_len + 1);
    dh_handle_t *hs = malloc((sc.n_alloc + 1) * sizeof *hs);
    if (pattern == NULL || hs == NULL) die("out of memory");
    for (size_t j = 0; j < 256 + sc.max_len + 1; j++) pattern[j] = (uint8_t)j;

    enum { MAX_RUNS = 1000 };
    static double rate[MAX_RUNS];
    size_t runs = 0;
    double total = 0;
    uint64_t check = 0;
    dh_heap_t *heap = dh_heap_create(NULL);
    if (heap == NULL) die("dh_heap_create failed");
    while (runs < MAX_RUNS && (runs < 3 || total < min_seconds)) {
        if (runs > 0 && !dh_heap_reset(heap)) die("dh_heap_reset failed");
        double t0 = bench_now();
        uint64_t sum = run(heap, &sc, hs, pattern, print ? stdout : NULL);
        double t = bench_now() - t0;
        if (print) return 0;
        if (runs > 0 && sum != check) die("the checksum changed between runs");
        check = sum;
        rate[runs++] = (double)sc.n / t;
        total += t;
    }
    qsort(rate, runs, sizeof rate[0], bench_cmp_double);
    printf("%.0f %.0f %zu %zu\n", rate[runs - 1], rate[(runs - 1) / 2], sc.n,
           runs);
    dh_heap_destroy(heap);
    free(pattern);
    free(hs);
    free(sc.ops);
    return 0;
}
