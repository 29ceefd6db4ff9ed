/*
 * corrupt_helper.c - a program run with libdetheap.so preloaded by
 * test_ov_corrupt: it damages the heap's metadata as a buggy program does
 * (docs/ERRORS.md, "Corrupted heap metadata"), then allocates.  Linked
 * against libc only; detheap's stats and check are found with dlsym.
 *
 *   corrupt_helper ROW   print "at 0x..." (the address the report must name,
 *                        or "at none"), allocate through the damage with a
 *                        shadow of the live blocks, and print
 *                        "continued corruptions=N overlaps=K check=C"
 *                        (K blocks handed out that overlapped a live one,
 *                        C the result of dh_process_check)
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detheap.h"
#include "scribble.h"

#define MAX_LIVE 4096
static void *live[MAX_LIVE];
static size_t live_n[MAX_LIVE];
static int nlive, overlaps;

static void *lookup(const char *name) {
    void *f = dlsym(RTLD_DEFAULT, name);
    if (f == NULL) {
        fprintf(stderr, "corrupt_helper: %s not found: not preloaded?\n", name);
        exit(3);
    }
    return f;
}

static size_t (*usable)(void *);

/* Hand-out check: the new block overlaps no block held live. */
static void *take(size_t n) {
    char *p = malloc(n);
    if (p == NULL) exit(4);
    uintptr_t a = (uintptr_t)p, e = a + usable(p);
    for (int i = 0; i < nlive; i++) {
        uintptr_t b = (uintptr_t)live[i], f = b + live_n[i];
        if (a < f && b < e) overlaps++;
    }
    if (nlive == MAX_LIVE) exit(5);
    live[nlive] = p;
    live_n[nlive++] = usable(p);
    return p;
}

static void drop(void *p) {
    for (int i = 0; i < nlive; i++)
        if (live[i] == p) {
            live[i] = live[--nlive];
            live_n[i] = live_n[nlive];
            free(p);
            return;
        }
    exit(6);
}

static char a_global[64] __attribute__((aligned(16)));

/* A 48-byte free list b -> c -> d; b's link aimed at `to` (NULL: into the
 * middle of the free block c). */
static void *aim_48(void *to) {
    take(48);
    void *b = take(48);
    char *c = take(48);
    void *d = take(48);
    drop(d);
    drop(c);
    drop(b);
    if (to == NULL) to = c + 16;
    scribble(b, &to, sizeof to); /* the write after free */
    return to;
}

static void *overflow(void) {
    void *victim = take(48);
    char *p = take(48);
    char *next = take(48);
    void *c = take(48);
    if (next != p + 48) exit(7);
    drop(c);
    drop(next);
    scribble(p + 48, &victim, sizeof victim); /* one word past p's end */
    return victim;
}

/* Blocks of another thread's heap, freed here: this thread's foreign list
 * x -> y -> z, x's link then aimed at a live block. */
static void *blocks3[3];
static void *make3(void *arg) {
    (void)arg;
    for (int i = 0; i < 3; i++) blocks3[i] = malloc(48);
    return NULL;
}
static void *foreign(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, make3, NULL) != 0) exit(8);
    pthread_join(t, NULL);
    void *victim = take(48);
    void *volatile first = blocks3[0]; /* the compiler must not see the
                                          write after free: it is the test */
    free(blocks3[2]);
    free(blocks3[1]);
    free(blocks3[0]);
    scribble(first, &victim, sizeof victim);
    return victim;
}

/* DETHEAP_REMOTE_FREE=owner: blocks of this thread's heap freed by
 * another thread come back through its inbox x <- y <- z; the newest one's
 * link then aimed at a live block. */
static void *inbox_blocks[3];
static void *free3(void *arg) {
    (void)arg;
    for (int i = 0; i < 3; i++) free(inbox_blocks[i]);
    return NULL;
}
static void *inbox(void) {
    void *victim = take(48);
    for (int i = 0; i < 3; i++) inbox_blocks[i] = malloc(48);
    void *volatile last = inbox_blocks[2];
    pthread_t t;
    if (pthread_create(&t, NULL, free3, NULL) != 0) exit(8);
    pthread_join(t, NULL);
    scribble(last, &victim, sizeof victim);
    return victim;
}

static void *large(int how) {
    take(1 << 20);
    char *big = take(1 << 20);
    void *mid = take(100000);
    void *small = take(300000);
    take(100000);
    drop(big);
    drop(small);
    if (how == 2) { /* the last 64 bytes: data, not metadata */
        unsigned char junk[64];
    memset(junk, 0xa5, sizeof junk);
    scribble(big + (1 << 20) - 64, junk, sizeof junk);
        return NULL;
    }
    void *words[8];
    for (int i = 0; i < 8; i++) words[i] = how == 0 ? mid : (void *)~(uintptr_t)0;
    scribble(big, words, sizeof words);
    return big;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    usable = lookup("malloc_usable_size");
    bool (*stats)(dh_stats_t *, size_t) = lookup("dh_process_stats");
    int (*check)(void) = lookup("dh_process_check");
    printf("start\n"); /* stdout's buffer exists before the damage */
    fflush(stdout);
    const char *row = argv[1];
    size_t size = 48;
    void *at;
    if (strcmp(row, "uaf-live") == 0) at = aim_48(take(48));
    else if (strcmp(row, "overflow-live") == 0) at = overflow();
    else if (strcmp(row, "uaf-global") == 0) at = aim_48(a_global);
    else if (strcmp(row, "uaf-nearby") == 0) at = aim_48((char *)take(48) + 8);
    else if (strcmp(row, "uaf-interior") == 0) at = aim_48(NULL);
    else if (strcmp(row, "uaf-other-class") == 0) {
        void *o = take(64);
        drop(o);
        at = aim_48(o);
    } else if (strcmp(row, "uaf-foreign") == 0) at = foreign();
    else if (strcmp(row, "uaf-inbox") == 0) at = inbox();
    else if (strncmp(row, "large-", 6) == 0) {
        size = 1 << 20;
        at = large(strcmp(row, "large-start-live") == 0     ? 0
                   : strcmp(row, "large-start-garbage") == 0 ? 1
                                                            : 2);
    } else
        return 2;
    if (at) printf("at %p\n", at);
    else printf("at none\n");
    fflush(stdout);
    for (int i = 0; i < 6; i++) take(size);
    /* the heap goes on working */
    for (int i = 0; i < 300; i++) take((size_t)(16 + (i * 37) % 3000));
    for (int i = 0; i < 8; i++) take((size_t)70000 + (size_t)i * 4096);
    while (nlive > 0) drop(live[nlive - 1]);
    dh_stats_t s;
    memset(&s, 0, sizeof s);
    if (!stats(&s, sizeof s)) return 9;
    printf("continued corruptions=%llu overlaps=%d check=%d\n",
           (unsigned long long)s.corruptions, overlaps, check());
    return 0;
}
