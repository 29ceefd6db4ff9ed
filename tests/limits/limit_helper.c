/*
 * limit_helper.c - a program run with libdetheap.so preloaded under an
 * address-space limit (RLIMIT_AS, set by test_limits.c before exec).  It
 * is linked against libc only.
 *
 *   limit_helper fill          malloc 1 MiB blocks until malloc fails, then
 *                              free eight and malloc eight again, then
 *                              free one and malloc 100 bytes; prints
 *                              "fill BYTES errno NAME again N hash H" (BYTES
 *                              allocated before the failure, NAME ENOMEM or
 *                              "other", N the blocks had again, H over every
 *                              address returned; N is -1 if the 100 bytes
 *                              failed)
 *   limit_helper threadfill    the same as fill, in a thread of its own
 *   limit_helper threads N     N threads alive at once, each allocating;
 *                              prints "threads N started S ok K" (S created,
 *                              K whose allocations all succeeded)
 *   limit_helper addrs         a fixed sequence of calls of the malloc
 *                              family in the main thread, then in threads
 *                              (ordered: created in a fixed order, each
 *                              within its heap); prints "addrs M T": M
 *                              over the main thread's addresses, T over
 *                              the threads' (each thread's in turn)
 *   limit_helper clobber       allocate, then overwrite every string of the
 *                              environment in place and clear it (as redis
 *                              does to show its title), then exit: options
 *                              must not be read from the environment at
 *                              exit
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB ((size_t)1 << 20)
#define MAX_BLOCKS 8192

static uint64_t hash = 0xcbf29ce484222325ull;

static void note(const void *p) {
    hash = (hash ^ (uint64_t)(uintptr_t)p) * 0x100000001b3ull;
}

static int usage(void) {
    fprintf(stderr, "usage: limit_helper fill | threadfill | threads N | addrs | "
                    "clobber\n");
    return 2;
}

static int fill(void) {
    static char *block[MAX_BLOCKS];
    size_t n = 0;
    errno = 0;
    while (n < MAX_BLOCKS) {
        char *p = malloc(MIB);
        if (p == NULL) break;
        p[0] = 1; /* one page of each is touched */
        note(p);
        block[n++] = p;
    }
    int err = errno;
    if (n < 16) {
        printf("fill %zu errno %s again 0 hash 0\n", n * MIB,
               err == ENOMEM ? "ENOMEM" : "other");
        return 1;
    }
    for (size_t i = n - 8; i < n; i++) free(block[i]);
    int again = 0;
    for (size_t i = n - 8; i < n; i++) {
        block[i] = malloc(MIB);
        if (block[i] != NULL) {
            again++;
            note(block[i]);
        }
    }
    free(block[n - 1]); /* room for a class block's span */
    block[n - 1] = NULL;
    void *small = malloc(100);
    if (small == NULL) again = -1;
    free(small);
    printf("fill %zu errno %s again %d hash %016" PRIx64 "\n", n * MIB,
           err == ENOMEM ? "ENOMEM" : "other", again, hash);
    for (size_t i = 0; i < n; i++) free(block[i]);
    return 0;
}

static void *fill_thread(void *arg) {
    *(int *)arg = fill();
    return NULL;
}

static int threadfill(void) {
    pthread_t t;
    int rc = 1;
    if (pthread_create(&t, NULL, fill_thread, &rc) != 0) return 1;
    pthread_join(t, NULL);
    return rc;
}

static pthread_barrier_t all_started;

static void *worker(void *arg) {
    (void)arg;
    int ok = 1;
    void *p[32];
    for (int i = 0; i < 32; i++) {
        p[i] = malloc((size_t)(i * 97 % 3000) + 1);
        if (p[i] == NULL) ok = 0;
    }
    pthread_barrier_wait(&all_started);
    for (int i = 0; i < 32; i++) free(p[i]);
    return ok ? (void *)1 : NULL;
}

static int threads(int n) {
    if (n < 1 || n > 4096) return usage();
    pthread_t *t = calloc((size_t)n, sizeof *t);
    if (t == NULL) return 1;
    pthread_barrier_init(&all_started, NULL, (unsigned)n + 1);
    int started = 0, ok = 0;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&t[i], NULL, worker, NULL) != 0) break;
        started++;
    }
    if (started == n) pthread_barrier_wait(&all_started);
    for (int i = 0; i < started; i++) {
        void *r = NULL;
        pthread_join(t[i], &r);
        ok += r != NULL;
    }
    free(t);
    printf("threads %d started %d ok %d\n", n, started, ok);
    return started == n && ok == n ? 0 : 1;
}

/* A fixed mix of sizes, some freed, into *h: with `large`, one call in
 * nine is a large block of 70..350 KB (a thread keeps under 1 MiB). */
static void sequence(int rounds, bool large, uint64_t *h) {
    void *keep[64] = {0};
    for (int i = 0; i < rounds; i++) {
        size_t n = large && i % 9 == 0 ? (size_t)(i % 5 + 1) * 70000
                                       : (size_t)(i * 37 % 2000) + 1;
        void *p = i % 4 == 0 ? calloc(1, n) : malloc(n);
        *h = (*h ^ (uint64_t)(uintptr_t)p) * 0x100000001b3ull;
        int k = i % 64;
        free(keep[k]);
        keep[k] = i % 3 ? p : realloc(p, n + 500);
        if (i % 3 == 0) *h = (*h ^ (uint64_t)(uintptr_t)keep[k]) * 0x100000001b3ull;
    }
    for (int k = 0; k < 64; k++) free(keep[k]);
}

static uint64_t thread_hash[10];

static void *sequence_thread(void *arg) {
    int i = (int)(intptr_t)arg;
    thread_hash[i] = 0xcbf29ce484222325ull;
    sequence(1000 + 100 * i, false, &thread_hash[i]);
    return NULL;
}

static int addrs(void) {
    sequence(5000, true, &hash);
    for (int i = 0; i < 4; i++) { /* one at a time: the joined heap again */
        pthread_t t;
        if (pthread_create(&t, NULL, sequence_thread, (void *)(intptr_t)i) != 0)
            return 1;
        pthread_join(t, NULL);
    }
    pthread_t t[6];
    for (int i = 0; i < 6; i++) /* side by side: slots by creation order */
        if (pthread_create(&t[i], NULL, sequence_thread,
                           (void *)(intptr_t)(4 + i)) != 0)
            return 1;
    for (int i = 0; i < 6; i++) pthread_join(t[i], NULL);
    sequence(3000, true, &hash);
    uint64_t threads = 0xcbf29ce484222325ull;
    for (int i = 0; i < 10; i++) threads = (threads ^ thread_hash[i]) * 0x100000001b3ull;
    printf("addrs %016" PRIx64 " %016" PRIx64 "\n", hash, threads);
    return 0;
}

extern char **environ;

static int clobber(void) {
    char *volatile p = malloc(1000); /* the process heap starts here */
    if (p == NULL) return 1;
    p[0] = 1;
    for (char **e = environ; *e != NULL; e++) memset(*e, 'x', strlen(*e));
    clearenv();
    setenv("DETHEAP_STATS_FILE", "/nonexistent-dir/late", 1);
    free(p);
    printf("clobbered\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "clobber") == 0) return clobber();
    if (argc >= 2 && strcmp(argv[1], "fill") == 0) return fill();
    if (argc >= 3 && strcmp(argv[1], "threads") == 0) return threads(atoi(argv[2]));
    if (argc == 2 && strcmp(argv[1], "threadfill") == 0) return threadfill();
    if (argc >= 2 && strcmp(argv[1], "addrs") == 0) return addrs();
    return usage();
}
