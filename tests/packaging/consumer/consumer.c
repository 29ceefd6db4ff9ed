/*
 * consumer.c - a program written the way a user of the installed library
 * would write it: only <detheap.h>, only the public API.  It exercises each
 * API family once, validates the heap, and prints one line the packaging
 * test looks for.  Exit status 0 means every check passed.
 */
#include <detheap.h>

#include <stdio.h>
#include <string.h>

#define CHECK(cond)                                                   \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "consumer: check failed: %s\n", #cond);   \
            return 1;                                                 \
        }                                                             \
    } while (0)

int main(void) {
    /* A library built from another version than the header would break
     * the struct_size contracts; catch it first. */
    CHECK(dh_version() == DH_VERSION);

    dh_heap_t *heap = dh_heap_create(NULL);
    CHECK(heap != NULL);

    void *blocks[64];
    for (int i = 0; i < 64; i++) {
        blocks[i] = dh_heap_malloc(heap, (size_t)(i + 1) * 24);
        CHECK(blocks[i] != NULL);
        memset(blocks[i], i, (size_t)(i + 1) * 24);
    }
    for (int i = 0; i < 64; i += 2) dh_free(blocks[i]);

    dh_handle_t h = dh_alloc(heap, 100);
    CHECK(h.id != 0);
    CHECK(dh_write(heap, h, "detheap", 8));
    size_t len = 0;
    const char *text = dh_get(heap, h, &len);
    CHECK(text != NULL && len >= 100 && strcmp(text, "detheap") == 0);
    dh_free(heap, h);
    CHECK(dh_get(heap, h, NULL) == NULL);

    CHECK(dh_heap_check(heap) == DH_CHECK_OK);
    dh_stats_t stats;
    CHECK(dh_heap_stats(heap, &stats, sizeof stats));
    CHECK(stats.live_count == 32);
    CHECK(stats.alloc_count == 65);

    printf("detheap consumer ok: version %u.%u.%u live=%llu allocs=%llu\n",
           (unsigned)(dh_version() >> 16), (unsigned)(dh_version() >> 8 & 0xff),
           (unsigned)(dh_version() & 0xff),
           (unsigned long long)stats.live_count,
           (unsigned long long)stats.alloc_count);
    dh_heap_destroy(heap);
    return 0;
}
