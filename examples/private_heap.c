/*
 * private_heap.c - detheap as a private, deterministic heap for one part of
 * a program (a parser, a simulation step, a request): build a data
 * structure in it, read the statistics, and throw everything away at once
 * by destroying the heap.
 *
 * It also shows the determinism contract: a second heap that receives the
 * same calls hands out the same offsets from its base, whatever the OS
 * chose for the bases.  The program exits non-zero if that ever fails.
 *
 *   build/examples/private_heap
 */
#include <detheap.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A word list built in the heap. */
typedef struct word {
    struct word *next;
    size_t len;
    char text[]; /* len + 1 bytes */
} word_t;

static const char *const words[] = {
    "deterministic", "allocator", "size", "classes", "lifo", "free", "lists",
    "handles", "reused", "large", "blocks", "best", "fit", "no", "aslr"};
enum { NWORDS = sizeof words / sizeof words[0] };

/* Build the list (most recent first), drop every other word, and record
 * each surviving node's offset from the heap base in offsets[]. */
static size_t build(dh_heap_t *heap, uint64_t *offsets) {
    word_t *head = NULL;
    for (int i = 0; i < NWORDS; i++) {
        size_t len = strlen(words[i]);
        word_t *w = dh_heap_malloc(heap, sizeof *w + len + 1);
        if (w == NULL) return 0;
        w->len = len;
        memcpy(w->text, words[i], len + 1);
        w->next = head;
        head = w;
    }
    for (word_t *w = head; w != NULL && w->next != NULL; w = w->next) {
        word_t *gone = w->next;
        w->next = gone->next;
        dh_heap_free(heap, gone);
    }
    size_t n = 0;
    for (word_t *w = head; w != NULL; w = w->next)
        offsets[n++] = (uint64_t)((uintptr_t)w - dh_heap_base(heap));
    return n;
}

int main(void) {
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.reserve = (uint64_t)1 << 30;     /* 1 GiB is plenty here */
    cfg.on_error = DH_ON_ERROR_WARN;     /* say so if we misuse it */

    dh_heap_t *a = dh_heap_create(&cfg);
    dh_heap_t *b = dh_heap_create(&cfg);
    if (a == NULL || b == NULL) {
        perror("dh_heap_create");
        return 1;
    }
    uint64_t off_a[NWORDS], off_b[NWORDS];
    size_t na = build(a, off_a), nb = build(b, off_b);

    printf("heap A at %#" PRIxPTR ", heap B at %#" PRIxPTR "\n",
           dh_heap_base(a), dh_heap_base(b));
    for (size_t i = 0; i < na; i++)
        printf("  node %2zu  offset A %#8" PRIx64 "  offset B %#8" PRIx64 "\n",
               i, off_a[i], off_b[i]);

    dh_stats_t s;
    if (!dh_heap_stats(a, &s, sizeof s)) return 1;
    printf("live %" PRIu64 " blocks (%" PRIu64 " bytes), %" PRIu64
           " free for reuse, %" PRIu64 " bytes carved\n",
           s.live_count, s.live_bytes, s.free_block_count, s.storage_bytes);

    int same = na > 0 && na == nb && memcmp(off_a, off_b, na * sizeof *off_a) == 0;
    int valid = dh_heap_check(a) == DH_CHECK_OK && dh_heap_check(b) == DH_CHECK_OK;
    printf("same offsets in both heaps: %s; invariants: %s\n",
           same ? "yes" : "NO", valid ? "ok" : "BROKEN");

    /* No per-node frees needed: the heap goes, and everything in it. */
    dh_heap_destroy(a);
    dh_heap_destroy(b);
    return same && valid ? 0 : 1;
}
