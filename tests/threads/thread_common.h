/*
 * thread_common.h - what the threads-at-scale programs share: a seeded
 * PRNG, FNV-1a hashing, tagged blocks (a block handed out twice, or
 * written by the allocator while live, loses its tag), pthread_create with
 * the failure reported (which thread, which error), and the peak RSS as
 * the kernel counts it.  Header-only: each program stays one file.
 *
 * The programs are built against libc's malloc and run with or without
 * libdetheap.so preloaded.  Built with -DTH_DH_NAMES they call the process
 * heap through its dh_ names instead (dh_malloc ... dh_free, the static
 * library linked in), for ThreadSanitizer builds, where the library cannot
 * be preloaded (tests/threads/CMakeLists.txt says why).
 */
#ifndef DH_THREAD_COMMON_H
#define DH_THREAD_COMMON_H

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#ifdef TH_DH_NAMES
#include "detheap.h"
#define th_malloc dh_malloc
#define th_calloc dh_calloc
#define th_realloc dh_realloc
#define th_free(p) dh_free(p)
#else
#define th_malloc malloc
#define th_calloc calloc
#define th_realloc realloc
#define th_free(p) free(p)
#endif

/* Which allocator serves this program's malloc: "detheap" when a block
 * from malloc belongs to a detheap heap (libdetheap.so preloaded), else
 * "libc".  The programs print it ("allocator: NAME") so that a driver can
 * tell a run on detheap from one where the preload silently did not take. */
static inline const char *th_allocator(void) {
#ifdef TH_DH_NAMES
    return "detheap (dh_ names, static library)";
#else
    void *(*heap_of)(const void *) =
        (void *(*)(const void *))dlsym(RTLD_DEFAULT, "dh_heap_of");
    void *p = malloc(24);
    int ours = heap_of != NULL && p != NULL && heap_of(p) != NULL;
    free(p);
    return ours ? "detheap" : "libc";
#endif
}

/* xorshift64*: fully determined by its seed (never 0). */
typedef struct {
    uint64_t s;
} th_rng_t;

static inline th_rng_t th_rng(uint64_t seed) {
    th_rng_t r = {seed * 0x9e3779b97f4a7c15ull | 1};
    return r;
}

static inline uint64_t th_next(th_rng_t *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dull;
}

/* Uniform in [lo, hi]. */
static inline uint64_t th_range(th_rng_t *r, uint64_t lo, uint64_t hi) {
    return lo + th_next(r) % (hi - lo + 1);
}

#define TH_FNV_INIT 0xcbf29ce484222325ull

/* FNV-1a over the 8 bytes of v. */
static inline uint64_t th_hash(uint64_t h, uint64_t v) {
    for (int i = 0; i < 8; i++, v >>= 8)
        h = (h ^ (v & 0xff)) * 0x100000001b3ull;
    return h;
}

static inline uint64_t th_hash_str(const char *s) {
    uint64_t h = TH_FNV_INIT;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* A tagged block: its first and last min(n, 16) bytes hold the tag. */
typedef struct {
    unsigned char *p;
    uint32_t n;
    unsigned char tag;
} th_blk_t;

static inline void th_mark(th_blk_t *b, unsigned char tag) {
    size_t k = b->n < 16 ? b->n : 16;
    b->tag = tag;
    memset(b->p, tag, k);
    memset(b->p + b->n - k, tag, k);
}

static inline int th_marked(const th_blk_t *b) {
    size_t k = b->n < 16 ? b->n : 16;
    for (size_t i = 0; i < k; i++)
        if (b->p[i] != b->tag || b->p[b->n - 1 - i] != b->tag) return 0;
    return 1;
}

/* pthread_create; on failure says which thread (what, index) and why on
 * stderr, and returns the error. */
static inline int th_create(pthread_t *tid, const pthread_attr_t *attr,
                            void *(*fn)(void *), void *arg, const char *what,
                            long index) {
    int rc = pthread_create(tid, attr, fn, arg);
    if (rc != 0)
        fprintf(stderr, "FAIL: pthread_create of %s #%ld failed: %d (%s)\n",
                what, index, rc, strerror(rc));
    return rc;
}

/* malloc(n) for the i-th block of a producer, which must not fail (the
 * program ends with a message if it does); *dirty counts the blocks that
 * did not read zero, as fresh memory does. */
static inline unsigned char *th_fresh_block(size_t n, long i, long *dirty) {
    unsigned char *p = th_malloc(n);
    if (p == NULL) {
        fprintf(stderr, "FAIL: malloc(%zu) #%ld failed\n", n, i);
        exit(1);
    }
    for (size_t k = 0; k < n; k++)
        if (p[k] != 0) {
            ++*dirty;
            break;
        }
    return p;
}

/* The process's peak resident set in KiB: VmHWM from /proc/self/status,
 * else getrusage's ru_maxrss (the same counter). */
static inline long th_peak_rss_kb(void) {
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f != NULL) {
        char line[256];
        while (fgets(line, sizeof line, f) != NULL)
            if (sscanf(line, "VmHWM: %ld", &kb) == 1) break;
        fclose(f);
    }
    if (kb < 0) {
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) == 0) kb = ru.ru_maxrss;
    }
    return kb;
}

/* The current resident set in KiB (/proc/self/statm), or -1.  Reads with
 * read(2): no stdio buffer is allocated, so it may be called often. */
static inline long th_rss_kb(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    long pages, resident;
    if (sscanf(buf, "%ld %ld", &pages, &resident) != 2) return -1;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

#endif /* DH_THREAD_COMMON_H */
