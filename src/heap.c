/*
 * heap.c - the dh_heap_* entry points: dispatch between class blocks (the
 * LIFO free lists, whose fast paths are inline in fastpath.h) and large
 * blocks; free with pointer validation; realloc, calloc, aligned
 * allocation; statistics.
 *
 * Cost: a class allocation is a table look-up, a free-list pop (or a carve
 * from the class's span), one state byte store and a few counters.  A free
 * is one state byte load that both validates the pointer and names its
 * class, one store, and a push.  Everything else is on the slow paths.
 */
#include "fastpath.h"
#include "image.h"

#include <errno.h>
#include <string.h>

/* ---- releasing a live block --------------------------------------------- */

/* Free a block known to be live, whose state byte is s. */
void dh_heap_release(dh_heap_t *h, uintptr_t p, uint8_t s) {
    if (DH_LIKELY(dh_st_is_live_class(s))) {
        dh_fast_free(h, p, dh_state_at(h, p), s - DH_ST_LIVE);
        return;
    }
    DH_ASSERT("I1", s == DH_ST_LIVE_LARGE);
    dh_large_free(h, p);
}

/* ---- lifetime --------------------------------------------------------------- */

void dh_config_init(dh_config_t *cfg) {
    if (cfg == NULL) return;
    dh_config_t d = DH_CONFIG_INIT;
    *cfg = d;
}

dh_heap_t *dh_heap_create(const dh_config_t *cfg) {
    return dh_region_create(cfg);
}

void dh_heap_destroy(dh_heap_t *h) {
    if (h == NULL || h->magic != DH_HEAP_MAGIC) return;
    dh_snapshot_detach(h);
    if (h->ext.image_mode != 0)
        dh_image_destroy(h); /* unmaps, seals a shared image */
    else
        dh_region_destroy(h);
}

/* Tell a memory checker that a live block found by the walk is gone. */
static bool forget_live(const dh_block_info_t *b, void *user) {
    (void)user;
    if (b->live) DH_BLOCK_FREE(b->ptr, b->size);
    return true;
}

/* Return h to the state dh_heap_create left it in, but for its committed
 * memory, which it keeps: the header is laid out afresh by the code that
 * laid it out at creation (dh_region_relayout), and the carved data and its
 * state bytes are zeroed, as fresh pages are. */
bool dh_heap_reset(dh_heap_t *h) {
    if (h == NULL || h->magic != DH_HEAP_MAGIC) {
        errno = EINVAL;
        return false;
    }
    if (h->process) {
        errno = EPERM;
        return false;
    }
    if (DH_ANNOTATING) dh_heap_walk(h, forget_live, NULL);
    uintptr_t used = dh_high_water(h) - h->data_start;
    DH_MEM_ACCESS((void *)h->data_start, used);
    memset((void *)h->data_start, 0, used);
    memset(h->data_state, 0, used >> DH_GRANULE_SHIFT);
    memset(h->span_map, 0, (used >> DH_SPAN_SHIFT) * sizeof(uint32_t));
    dh_region_relayout(h);
    return true;
}

dh_heap_t *dh_heap_of(const void *ptr) {
    return dh_region_lookup((uintptr_t)ptr);
}

uintptr_t dh_heap_base(const dh_heap_t *h) { return h ? h->base : 0; }

dh_class_set_t dh_heap_class_set(const dh_heap_t *h) {
    return h ? (dh_class_set_t)h->class_set : DH_CLASSES_SPEC;
}

/* ---- pointer API ------------------------------------------------------------ */

void *dh_heap_malloc(dh_heap_t *h, size_t n) {
    int c = dh_heap_class_of(h, n);
    if (DH_LIKELY(c >= 0)) return dh_fast_alloc(h, c);
    return dh_large_alloc(h, n, 0);
}

void *dh_heap_calloc(dh_heap_t *h, size_t count, size_t size) {
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        h->failed_allocs++;
        errno = ENOMEM;
        return NULL;
    }
    uintptr_t fresh = h->high_water; /* this range is zero from here up */
    void *p = dh_heap_malloc(h, n);
    if (p == NULL) return NULL;
    uintptr_t a = (uintptr_t)p;
    if (!dh_owns(h, a)) { /* another thread heap's block, freed here */
        memset(p, 0, n);
        return p;
    }
    size_t cleared = a >= fresh ? 0 : a + n <= fresh ? n : fresh - a;
    memset(p, 0, cleared);
    /* the rest was never carved: fresh zero pages, defined */
    DH_MEM_DEFINED((char *)p + cleared, n - cleared);
    return p;
}

void *dh_heap_aligned_alloc(dh_heap_t *h, size_t align, size_t n) {
    if (align == 0 || (align & (align - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    if (align <= DH_GRANULE) return dh_heap_malloc(h, n);
    /* Spans are 4 KiB aligned and cut from their start, so the blocks of
     * a class whose size is a multiple of align (<= 4 KiB) are aligned to
     * it: the first such class that holds n serves.  (Power-of-two sizes
     * up to 4 KiB are aligned to their size; the spec's 48 and most fine
     * classes only to 16.)  At most one step per class. */
    if (align <= DH_PAGE && n <= DH_MAX_CLASS_SIZE) {
        int c = dh_heap_class_of(h, n > align ? n : align);
        while (c < h->nclasses && dh_class_bytes(h, c) % align != 0) c++;
        if (c < h->nclasses) return dh_fast_alloc(h, c);
    }
    return dh_large_alloc(h, n, align);
}

/* Free p, which is claimed to belong to h, on behalf of `call`. */
void dh_heap_free_in(dh_heap_t *h, uintptr_t p, const char *call) {
    uint8_t s = dh_live_state(h, p);
    if (DH_LIKELY(s != 0)) {
        dh_heap_release(h, p, s);
        return;
    }
    int c;
    dh_error_code_t code = dh_classify(h, p, &c);
    dh_report(h, call, (void *)p, code, c);
}

/* Report a pointer that is not in h's range: a live block of another
 * heap, another heap's bad pointer (classified there), or foreign. */
static void reject_outside(dh_heap_t *h, uintptr_t p, const char *call) {
    dh_heap_t *other = dh_region_lookup(p);
    int c = -1;
    dh_error_code_t code = DH_ERR_FOREIGN;
    if (other != NULL)
        code = dh_live_state(other, p) ? DH_ERR_WRONG_HEAP
                                       : dh_classify(other, p, &c);
    dh_report(h, call, (void *)p, code, c);
}

void dh_heap_free(dh_heap_t *h, void *ptr) {
    if (ptr == NULL) return;
    uintptr_t p = (uintptr_t)ptr;
    if (p - h->base >= h->size) {
        reject_outside(h, p, "dh_heap_free");
        return;
    }
    dh_heap_free_in(h, p, "dh_heap_free");
}

size_t dh_usable_size(const void *ptr) {
    uintptr_t p = (uintptr_t)ptr;
    dh_heap_t *h = dh_region_lookup(p);
    if (h == NULL) return 0;
    uint8_t s = dh_live_state(h, p);
    return s ? dh_block_size(h, p, s) : 0;
}

/* The block of h that realloc moves a live block (state byte s, `old`
 * usable bytes) to when it must hold n bytes and cannot stay. */
void *dh_realloc_new(dh_heap_t *h, uint8_t s, size_t old, size_t n) {
    if (dh_st_is_live_class(s) ? dh_realloc_to_large(old, n)
                               : dh_realloc_stays_large(n))
        return dh_large_alloc(h, n, 0);
    return dh_heap_malloc(h, dh_st_is_live_class(s) ? dh_realloc_want(old, n)
                                                    : n);
}

/* Resize the live block p (state byte s); h is the heap that allocates a
 * new block if one is needed and takes the old one back. */
void *dh_realloc_block(dh_heap_t *h, uintptr_t p, uint8_t s, size_t n) {
    if (n == 0) {
        dh_heap_release(h, p, s);
        return NULL;
    }
    if (dh_st_is_live_class(s)) {
        if (dh_class_keeps(h, s - DH_ST_LIVE, n))
            return (void *)p;
    } else if (dh_realloc_stays_large(n) && dh_large_resize(h, p, n)) {
        return (void *)p;
    }
    size_t old = dh_block_size(h, p, s);
    void *q = dh_realloc_new(h, s, old, n);
    if (q == NULL) return NULL;
    memcpy(q, (void *)p, old < n ? old : n);
    dh_heap_release(h, p, s);
    return q;
}

void *dh_heap_realloc(dh_heap_t *h, void *ptr, size_t n) {
    if (ptr == NULL) return dh_heap_malloc(h, n);
    uintptr_t p = (uintptr_t)ptr;
    if (p - h->base >= h->size) {
        reject_outside(h, p, "dh_heap_realloc");
        errno = EINVAL;
        return NULL;
    }
    uint8_t s = dh_live_state(h, p);
    if (s == 0) {
        int c;
        dh_error_code_t code = dh_classify(h, p, &c);
        dh_report(h, "dh_heap_realloc", ptr, code, c);
        errno = EINVAL;
        return NULL;
    }
    return dh_realloc_block(h, p, s, n);
}

/* ---- statistics ------------------------------------------------------------- */

/* Live bytes of h.  A process heap's blocks are also counted by malloc's
 * lean fast paths, which count blocks, not bytes: derive them. */
uint64_t dh_heap_live_bytes(const dh_heap_t *h) {
    if (!h->process) return h->live_bytes;
    uint64_t bytes = h->large_live_bytes;
    for (int c = 0; c < h->nclasses; c++)
        bytes += (h->bins[c].allocs - h->bins[c].frees) * dh_class_bytes(h, c);
    return bytes;
}

void dh_stats_fold(dh_stats_t *s, const dh_class_stats_t *cs) {
    int spec = dh_class_of(cs->size);
    dh_class_stats_t *k = &s->classes[spec];
    k->size = dh_class_sizes[spec];
    k->allocs += cs->allocs;
    k->frees += cs->frees;
    k->live += cs->live;
    k->free += cs->free;
    k->carved += cs->carved;
    k->spans += cs->spans;
}

bool dh_heap_stats(const dh_heap_t *h, dh_stats_t *out, size_t out_size) {
    if (h == NULL || out == NULL || out_size < 2 * sizeof(uint32_t)) {
        errno = EINVAL;
        return false;
    }
    dh_stats_t s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.version = DH_STATS_VERSION;
    s.class_set = h->class_set;
    s.class_count = h->nclasses;
    for (int c = 0; c < h->nclasses; c++) {
        const dh_bin_t *b = &h->bins[c];
        dh_class_stats_t *cs = &s.by_class[c];
        cs->size = dh_class_bytes(h, c);
        cs->allocs = b->allocs;
        cs->frees = b->frees;
        cs->live = b->allocs - b->frees;
        cs->carved = b->carved;
        cs->free = b->carved - cs->live - h->abandoned[c];
        cs->spans = b->spans;
        dh_stats_fold(&s, cs);
        s.alloc_count += b->allocs;
        s.free_count += b->frees;
        s.live_count += cs->live;
        s.total_blocks += b->carved;
        s.free_block_count += cs->free;
    }
    s.alloc_count += h->large_allocs;
    s.free_count += h->large_frees;
    s.live_count += h->large_live_count;
    s.total_blocks += h->large_carved;
    s.free_block_count += h->large_free_count;
    s.storage_bytes = h->high_water - h->data_start;
    s.live_bytes = dh_heap_live_bytes(h);
    s.peak_live_bytes = h->peak_live_bytes > s.live_bytes ? h->peak_live_bytes
                                                          : s.live_bytes;
    s.committed_bytes =
        (h->commit_end - h->data_start) +
        (h->state_commit_end - (uintptr_t)dh_state_at(h, h->data_start));
    s.reserved_bytes = h->limit - h->base; /* the range up to its end */
    s.failed_allocs = h->failed_allocs;
    s.large_allocs = h->large_allocs;
    s.large_frees = h->large_frees;
    s.large_live_count = h->large_live_count;
    s.large_live_bytes = h->large_live_bytes;
    s.large_free_count = h->large_free_count;
    s.large_free_bytes = h->large_free_bytes;
    for (int i = 0; i < DH_ERR_COUNT; i++) {
        s.rejected_by_code[i] = h->rejected_by_code[i];
        s.rejected_frees += h->rejected_by_code[i];
    }
    s.rejected_handle_frees = h->rejected_handle_frees;
    s.corruptions = h->corruptions;
    for (int c = 0; c < h->nclasses; c++) s.abandoned_blocks += h->abandoned[c];
    s.abandoned_blocks += h->abandoned[DH_LARGE_INDEX];
    s.abandoned_bytes = h->abandoned_bytes;
    memcpy(out, &s, out_size < sizeof s ? out_size : sizeof s);
    return true;
}
