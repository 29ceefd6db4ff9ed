/*
 * region.c - a heap's reserved range: creating it, committing it as the
 * carved part grows, and the heap map that finds a heap from any address.
 *
 * The range's size is a power of two and it is aligned to that size, so the
 * state byte of any address is found from the address alone (internal.h).
 * It is also aligned to DH_HEAP_ALIGN (4 GiB) and takes a whole number of
 * such granules, so that each granule belongs to at most one heap: the heap
 * map, one atomic pointer per 4 GiB of the address space, then finds the
 * heap of a pointer in O(1).  The range is never moved
 * and nothing is returned to the OS before dh_heap_destroy.
 *
 * Commit: the data is committed in steps of DH_COMMIT_STEP as `top` rises,
 * state map first, so that a failed commit leaves the heap as it was.
 *
 * Huge pages (off unless asked for: dh_region_set_thp): once the data
 * passes huge_from (DH_HUGE_AFTER bytes above data_start in mode auto,
 * rounded up to a huge page), the rest of the range and its state map are
 * advised to be backed by huge pages, once, and from there on both are
 * committed up to huge-page boundaries, so that
 * a fresh huge page lies wholly inside committed memory when it is first
 * touched (the kernel backs only such pages with a huge page):
 *
 *   data_start          huge_from            commit_end           limit
 *   | base pages, 1 MiB   | whole 2 MiB pages  |  reserved, advised   |
 *   | steps               | (advised huge)     |  huge                |
 *
 * Small heaps never get there, so their resident set is unchanged.  The
 * advice is a request: if the OS refuses it nothing else changes, and no
 * address or content depends on how memory is backed.
 */
#include "internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

static _Atomic(dh_heap_t *) heap_map[DH_HEAP_MAP_SIZE];

static uintptr_t round_up(uintptr_t v, uintptr_t a) {
    return (v + a - 1) & ~(a - 1);
}

dh_heap_t *dh_region_lookup(uintptr_t p) {
    size_t idx = (size_t)(p >> DH_HEAP_ALIGN_SHIFT);
    if (idx >= DH_HEAP_MAP_SIZE) return NULL;
    dh_heap_t *h = atomic_load_explicit(&heap_map[idx], memory_order_acquire);
    if (h == NULL || p - h->base >= h->size) return NULL;
    return h;
}

uintptr_t dh_region_mask(uintptr_t p) {
    size_t idx = (size_t)(p >> DH_HEAP_ALIGN_SHIFT);
    dh_heap_t *h = idx < DH_HEAP_MAP_SIZE
                       ? atomic_load_explicit(&heap_map[idx],
                                              memory_order_acquire)
                       : NULL;
    DH_ASSERT("I1", h != NULL);
    return h ? h->mask : DH_HEAP_ALIGN - 1;
}

uint32_t *dh_span_word_any(uintptr_t p) {
    dh_heap_t *h = dh_region_lookup(p);
    DH_ASSERT("I2", h != NULL && dh_in_data(h, p));
    return &h->span_map[(p - h->data_start) >> DH_SPAN_SHIFT];
}

static void map_set(uintptr_t base, uintptr_t mapped, dh_heap_t *h) {
    for (uintptr_t a = base; a - base < mapped; a += DH_HEAP_ALIGN) {
        size_t idx = (size_t)(a >> DH_HEAP_ALIGN_SHIFT);
        if (idx < DH_HEAP_MAP_SIZE)
            atomic_store_explicit(&heap_map[idx], h, memory_order_release);
    }
}

static uintptr_t pow2_at_least(uintptr_t v) {
    uintptr_t p = 1;
    while (p < v) p <<= 1;
    return p;
}

static bool config_valid(const dh_config_t *cfg) {
    if (cfg->struct_size != sizeof(dh_config_t)) return false;
    if (cfg->reserve != 0 &&
        (cfg->reserve < DH_MIN_RESERVE ||
         cfg->reserve > ((uint64_t)1 << (DH_ADDRESS_BITS - 1))))
        return false;
    if (cfg->base % DH_HEAP_ALIGN != 0) return false;
    if ((uint64_t)cfg->base >> DH_ADDRESS_BITS) return false;
    if ((unsigned)cfg->on_error > DH_ON_ERROR_CALLBACK) return false;
    if (cfg->on_error == DH_ON_ERROR_CALLBACK && !cfg->error_callback)
        return false;
    return true;
}

/* The span map: one word per span of the data, in the state bytes that
 * would describe the header and the state map itself (never a block),
 * right below the state bytes of the data so that both are committed as
 * one run:
 *
 *   base+64K                                    state of data_start
 *   | state of the header and the map (unused)  |span map| state of data..
 */
static uintptr_t span_map_bytes(const dh_heap_t *h) {
    uintptr_t spans = (h->limit - h->data_start) >> DH_SPAN_SHIFT;
    return round_up(spans * sizeof(uint32_t), dh_os_page_size());
}

/* Lay out the header, state map and data of a fresh range. */
static void layout(dh_heap_t *h, uintptr_t base, uintptr_t size,
                   uintptr_t mapped, const dh_config_t *cfg) {
    memset(h, 0, sizeof *h);
    h->magic = DH_HEAP_MAGIC;
    h->base = base;
    h->size = size;
    h->mask = size - 1;
    h->mapped = mapped;
    h->state = (uint8_t *)(base + DH_HEADER_SIZE);
    h->data_start =
        base + DH_HEADER_SIZE + round_up(size >> DH_GRANULE_SHIFT, DH_SPAN);
    h->top = h->high_water = h->commit_end = h->data_start;
    h->state_commit_end = (uintptr_t)dh_state_at(h, h->data_start);
    h->limit = base + size;
    h->span_map = (uint32_t *)(h->state_commit_end - span_map_bytes(h));
    h->os_page = dh_os_page_size();
    h->data_state = dh_state_at(h, h->data_start);
    h->state_bias =
        (uintptr_t)h->data_state - (h->data_start >> DH_GRANULE_SHIFT);
    dh_bins_init(h);
    h->on_error = cfg->on_error;
    h->error_callback = cfg->error_callback;
    h->error_user = cfg->error_user;
    dh_region_set_thp(h, DH_THP_OFF);
}

void dh_region_relayout(dh_heap_t *h) {
    dh_heap_t keep = *h;
    dh_config_t policy = DH_CONFIG_INIT;
    policy.on_error = keep.on_error;
    policy.error_callback = keep.error_callback;
    policy.error_user = keep.error_user;
    layout(h, keep.base, keep.size, keep.mapped, &policy);
    h->commit_end = keep.commit_end;
    h->state_commit_end = keep.state_commit_end;
    h->fast_granules = keep.fast_granules;
}

dh_heap_t *dh_region_create(const dh_config_t *cfg) {
    dh_config_t defaults = DH_CONFIG_INIT;
    if (cfg == NULL) cfg = &defaults;
    if (!config_valid(cfg)) {
        errno = EINVAL;
        return NULL;
    }
    uintptr_t size =
        pow2_at_least(cfg->reserve ? cfg->reserve : DH_DEFAULT_RESERVE);
    uintptr_t mapped = round_up(size, DH_HEAP_ALIGN);
    uintptr_t align = size > DH_HEAP_ALIGN ? size : DH_HEAP_ALIGN;
    if (cfg->base % align != 0) {
        errno = EINVAL;
        return NULL;
    }
    void *p = dh_os_reserve(mapped, align, cfg->base);
    if (p == NULL) return NULL; /* errno from the OS layer */
    uintptr_t base = (uintptr_t)p;
    size_t header = round_up(sizeof(dh_heap_t), dh_os_page_size());
    if (!dh_os_commit(p, header)) {
        dh_os_release(p, mapped);
        errno = ENOMEM;
        return NULL;
    }
    dh_heap_t *h = p;
    layout(h, base, size, mapped, cfg);
    if (h->data_start + DH_SPAN > h->limit) { /* cannot hold one span */
        dh_os_release(p, mapped);
        errno = EINVAL;
        return NULL;
    }
    if (!dh_os_commit(h->span_map, span_map_bytes(h))) {
        dh_os_release(p, mapped);
        errno = ENOMEM;
        return NULL;
    }
    map_set(base, mapped, h);
    return h;
}

void dh_region_destroy(dh_heap_t *h) {
    uintptr_t base = h->base, mapped = h->mapped;
    map_set(base, mapped, NULL);
    h->magic = 0;
    dh_os_release((void *)base, mapped);
}

void dh_region_set_thp(dh_heap_t *h, dh_thp_t mode) {
    DH_ASSERT("I8", h->commit_end == h->data_start);
    h->huge_advised = false;
    h->huge_from = UINTPTR_MAX;
    if (mode == DH_THP_OFF) return;
    if (mode == DH_THP_NEVER) {
        /* base pages only, even where the system's default is huge pages:
         * the state map and the data, committed or not */
        uintptr_t st = h->base + DH_HEADER_SIZE;
        dh_os_advise_huge((void *)st, h->limit - st, false);
        return;
    }
    uintptr_t after = mode == DH_THP_ALWAYS ? 0 : DH_HUGE_AFTER;
    if (after < h->limit - h->data_start) {
        uintptr_t from = round_up(h->data_start + after, DH_HUGE_PAGE);
        if (from < h->limit) h->huge_from = from;
    }
}

/* The first commit past huge_from: advise huge pages for the data from
 * there to the limit and for the state map that describes it.  Once is
 * enough, since the advice covers memory committed there later; whether
 * the OS takes it changes nothing else. */
static void advise_huge(dh_heap_t *h) {
    h->huge_advised = true;
    uintptr_t st = (uintptr_t)dh_state_at(h, h->huge_from) & ~(h->os_page - 1);
    dh_os_advise_huge((void *)st, h->data_start - st, true);
    dh_os_advise_huge((void *)h->huge_from, h->limit - h->huge_from, true);
}

/* Commit state map and data so that [data_start, new_top) is usable. */
static bool commit_to(dh_heap_t *h, uintptr_t new_top) {
    uintptr_t target = h->data_start +
                       round_up(new_top - h->data_start, DH_COMMIT_STEP);
    bool huge = target > h->huge_from;
    if (huge) target = round_up(target, DH_HUGE_PAGE); /* whole huge pages */
    if (target > h->limit) target = h->limit;
    if (huge && !h->huge_advised) advise_huge(h);
    uintptr_t st_end = round_up((uintptr_t)dh_state_at(h, target), h->os_page);
    if (huge) { /* whole huge pages of the map too, up to its end */
        uintptr_t st_huge = round_up(st_end, DH_HUGE_PAGE);
        if (st_huge > h->data_start) st_huge = h->data_start;
        if (st_huge > st_end) st_end = st_huge;
    }
    if (st_end > h->state_commit_end) {
        if (!dh_os_commit((void *)h->state_commit_end,
                          st_end - h->state_commit_end))
            return false;
        h->state_commit_end = st_end;
    }
    if (!dh_os_commit((void *)h->commit_end, target - h->commit_end))
        return false;
    h->commit_end = target;
    h->fast_granules = (target - h->data_start) >> DH_GRANULE_SHIFT;
    return true;
}

bool dh_region_grow(dh_heap_t *h, uintptr_t new_top) {
    DH_ASSERT("I8", new_top >= h->top && new_top <= h->limit);
    if (new_top > h->commit_end && !commit_to(h, new_top)) {
        errno = ENOMEM;
        return false;
    }
    h->top = new_top;
    if (new_top > h->high_water)
        __atomic_store_n(&h->high_water, new_top, __ATOMIC_RELAXED);
    return true;
}
