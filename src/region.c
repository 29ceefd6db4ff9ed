/*
 * region.c - a heap's reserved range: creating it, committing it as the
 * carved part grows, and the heap map that finds a heap from any address.
 *
 * The range's size is a power of two and it is aligned to that size, so the
 * state byte of any address is found from the address alone (internal.h).
 * It is also aligned to DH_HEAP_ALIGN (4 GiB) and takes a whole number of
 * such granules, so that each granule belongs to at most one heap: the heap
 * map, one atomic pointer per 4 GiB of the address space, then finds the
 * heap of a pointer in O(1) (but see "Address-space limits" below).  The range is never moved
 * and nothing is returned to the OS before dh_heap_destroy.
 *
 * Commit: the data is committed in steps of DH_COMMIT_STEP as `top` rises,
 * state map first, so that a failed commit leaves the heap as it was.
 *
 * Address-space limits (the process layer's layout under RLIMIT_AS,
 * dh_region_create_in): a range may end below base + size (only the bytes
 * up to its end are reserved; size still gives its alignment and the
 * place of its state map), and a range at a fixed base may be reserved as
 * it grows: its header at creation, then each part of the state map and
 * the data when it is first committed (dh_os_map_fixed, which never takes
 * another mapping's place).  A growing range remembers the commit the OS
 * refused and does not ask again for as much or more.
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

/* The heap whose granule holds p, or NULL. */
static dh_heap_t *granule_heap(uintptr_t p) {
    size_t idx = (size_t)(p >> DH_HEAP_ALIGN_SHIFT);
    if (idx >= DH_HEAP_MAP_SIZE) return NULL;
    return atomic_load_explicit(&heap_map[idx], memory_order_acquire);
}

static uintptr_t round_up(uintptr_t v, uintptr_t a) {
    return (v + a - 1) & ~(a - 1);
}

dh_heap_t *dh_region_lookup(uintptr_t p) {
    dh_heap_t *h = granule_heap(p);
    if (h == NULL || p - h->base >= h->limit - h->base) return NULL;
    return h;
}

uintptr_t dh_region_mask(uintptr_t p) {
    dh_heap_t *h = granule_heap(p);
    DH_ASSERT("I1", h != NULL);
    return h ? h->mask : DH_HEAP_ALIGN - 1;
}

uint32_t *dh_span_word_any(uintptr_t p) {
    dh_heap_t *h = dh_region_lookup(p);
    DH_ASSERT("I2", h != NULL && dh_in_data(h, p));
    return &h->span_map[(p - h->data_start) >> DH_SPAN_SHIFT];
}

/* Enter h (or NULL) for [base, base + bytes): every granule it touches. */
static void map_set(uintptr_t base, uintptr_t bytes, dh_heap_t *h) {
    for (uintptr_t a = base; a - base < bytes; a += DH_HEAP_ALIGN) {
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
    if (dh_class_set_count(cfg->classes) == 0) return false;
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
                   uintptr_t end, uintptr_t mapped, const dh_config_t *cfg) {
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
    h->limit = base + end;
    h->span_map = (uint32_t *)(h->state_commit_end - span_map_bytes(h));
    h->os_page = dh_os_page_size();
    h->data_state = dh_state_at(h, h->data_start);
    dh_bins_init(h, cfg->classes);
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
    policy.classes = (dh_class_set_t)keep.class_set;
    layout(h, keep.base, keep.size, keep.limit - keep.base, keep.mapped,
           &policy);
    h->grows = keep.grows;
    h->refused_at = keep.refused_at;
    h->commit_end = keep.commit_end;
    h->state_commit_end = keep.state_commit_end;
    h->fast_granules = keep.fast_granules;
    h->ext = keep.ext;
    h->ext.root = NULL;
}

/* What all growing ranges together may reserve (dh_region_set_grow_budget;
 * the process layer's share of an address-space limit), and what they
 * hold.  A reservation past it fails as the OS's would (ENOMEM). */
static uintptr_t grow_budget = UINTPTR_MAX;
static _Atomic uintptr_t grown;

void dh_region_set_grow_budget(uintptr_t bytes) { grow_budget = bytes; }

static bool grow_charge(uintptr_t n) {
    uintptr_t cur = atomic_load_explicit(&grown, memory_order_relaxed);
    do {
        if (n > grow_budget || cur > grow_budget - n) return false;
    } while (!atomic_compare_exchange_weak(&grown, &cur, cur + n));
    return true;
}

static void grow_refund(uintptr_t n) { atomic_fetch_sub(&grown, n); }

/* Give back what a range holds of the address space: all of it, or for a
 * growing range its header and the parts of the map and data taken. */
static void release_range(uintptr_t base, uintptr_t mapped, bool grows,
                          uintptr_t map_from, uintptr_t map_end,
                          uintptr_t data_from, uintptr_t data_end) {
    dh_os_release((void *)base, mapped);
    if (!grows) return;
    grow_refund(mapped);
    if (map_end > map_from) {
        dh_os_release((void *)map_from, map_end - map_from);
        grow_refund(map_end - map_from);
    }
    if (data_end > data_from) {
        dh_os_release((void *)data_from, data_end - data_from);
        grow_refund(data_end - data_from);
    }
}

static bool take(dh_heap_t *h, uintptr_t p, uintptr_t n) {
    if (h->ext.commit_hook != NULL) return h->ext.commit_hook(h, p, n);
    if (!h->grows) return dh_os_commit((void *)p, n);
    if (!grow_charge(n)) return false;
    if (dh_os_map_fixed(p, n)) return true;
    grow_refund(n);
    return false;
}

/* Give back a range's first reservation (and, growing, its charge). */
static void unreserve(void *p, uintptr_t mapped, bool grow) {
    dh_os_release(p, mapped);
    if (grow) grow_refund(mapped);
}

dh_heap_t *dh_region_create_in(const dh_config_t *cfg, uintptr_t end,
                               bool grow, unsigned color) {
    dh_config_t defaults = DH_CONFIG_INIT;
    if (cfg == NULL) cfg = &defaults;
    if (!config_valid(cfg)) {
        errno = EINVAL;
        return NULL;
    }
    uintptr_t size =
        pow2_at_least(cfg->reserve ? cfg->reserve : DH_DEFAULT_RESERVE);
    if (end == 0 || end > size) end = size;
    uintptr_t align = size > DH_HEAP_ALIGN ? size : DH_HEAP_ALIGN;
    if (cfg->base % align != 0) {
        errno = EINVAL;
        return NULL;
    }
    grow = grow && cfg->base != 0;
    /* A whole range takes its whole granules, as the state map of a full
     * one is committed a little past its end (the state byte of its end
     * is found as that of the next range's start); one that ends sooner
     * (the process layer's under an address-space limit) takes only up to
     * its end, and a growing one only its header for now. */
    uintptr_t mapped = grow          ? DH_HEADER_SIZE
                       : end < size  ? end
                                     : round_up(size, DH_HEAP_ALIGN);
    if (grow && !grow_charge(mapped)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = dh_os_reserve(mapped, align, cfg->base);
    if (p == NULL) { /* errno from the OS layer */
        if (grow) grow_refund(mapped);
        return NULL;
    }
    uintptr_t base = (uintptr_t)p;
    uintptr_t offset = (uintptr_t)(color % DH_COLORS) * DH_CACHE_LINE;
    size_t header = round_up(offset + sizeof(dh_heap_t), dh_os_page_size());
    if (!dh_os_commit(p, header)) {
        unreserve(p, mapped, grow);
        errno = ENOMEM;
        return NULL;
    }
    dh_heap_t *h = (dh_heap_t *)(base + offset);
    layout(h, base, size, end, mapped, cfg);
    h->grows = grow;
    h->ext.fixed_base = cfg->base != 0;
    if (h->data_start + DH_SPAN > h->limit) { /* cannot hold one span */
        unreserve(p, mapped, grow);
        errno = EINVAL;
        return NULL;
    }
    uintptr_t map = (uintptr_t)h->span_map;
    if (!take(h, map, span_map_bytes(h))) {
        unreserve(p, mapped, grow);
        errno = ENOMEM;
        return NULL;
    }
    map_set(base, end, h);
    return h;
}

void dh_region_layout_of(dh_heap_t *out, uintptr_t base, uintptr_t size,
                         uintptr_t end, dh_class_set_t classes) {
    dh_config_t defaults = DH_CONFIG_INIT;
    defaults.classes = classes;
    layout(out, base, size, end, end < size ? end : round_up(size, DH_HEAP_ALIGN),
           &defaults);
}

bool dh_region_adopt(dh_heap_t *h) {
    for (uintptr_t a = h->base; a - h->base < h->limit - h->base;
         a += DH_HEAP_ALIGN) {
        size_t idx = (size_t)(a >> DH_HEAP_ALIGN_SHIFT);
        if (idx >= DH_HEAP_MAP_SIZE || atomic_load(&heap_map[idx]) != NULL)
            return false;
    }
    map_set(h->base, h->limit - h->base, h);
    return true;
}

dh_heap_t *dh_region_create(const dh_config_t *cfg) {
    return dh_region_create_in(cfg, 0, false, 0);
}

void dh_region_destroy(dh_heap_t *h) {
    dh_heap_t keep = *h;
    map_set(keep.base, keep.limit - keep.base, NULL);
    h->magic = 0;
    release_range(keep.base, keep.mapped, keep.grows,
                  (uintptr_t)keep.span_map, keep.state_commit_end,
                  keep.data_start, keep.commit_end);
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

static bool commit_parts(dh_heap_t *h, uintptr_t target, bool huge);

/* Commit state map and data so that [data_start, new_top) is usable. */
static bool commit_to(dh_heap_t *h, uintptr_t new_top) {
    uintptr_t used = new_top - h->data_start;
    /* A heap of the process heap that is not reserved as it grows commits
     * an eighth ahead of what it uses (up to DH_COMMIT_AHEAD): fewer
     * system calls for a heap that grows for long, and room just above
     * the carved data for the pages other threads recycle there
     * (process.c).  Committing backs nothing: pages still come on touch. */
    uintptr_t ahead = h->process && !h->grows ? used / 8 : 0;
    if (ahead > DH_COMMIT_AHEAD) ahead = DH_COMMIT_AHEAD;
    uintptr_t target = h->data_start + round_up(used + ahead, DH_COMMIT_STEP);
    bool huge = target > h->huge_from;
    if (huge) target = round_up(target, DH_HUGE_PAGE); /* whole huge pages */
    if (target > h->limit) target = h->limit;
    if (h->refused_at != 0 && target >= h->refused_at) return false;
    if (!commit_parts(h, target, huge)) {
        if (h->grows) h->refused_at = target; /* not asked again */
        return false;
    }
    return true;
}

/* commit_to's work: the state map, then the data, up to target. */
static bool commit_parts(dh_heap_t *h, uintptr_t target, bool huge) {
    if (huge && !h->huge_advised) advise_huge(h);
    uintptr_t st_end = round_up((uintptr_t)dh_state_at(h, target), h->os_page);
    if (huge) { /* whole huge pages of the map too, up to its end */
        uintptr_t st_huge = round_up(st_end, DH_HUGE_PAGE);
        if (st_huge > h->data_start) st_huge = h->data_start;
        if (st_huge > st_end) st_end = st_huge;
    }
    if (st_end > h->state_commit_end) {
        if (!take(h, h->state_commit_end, st_end - h->state_commit_end))
            return false;
        h->state_commit_end = st_end;
    }
    if (!take(h, h->commit_end, target - h->commit_end)) return false;
    /* read by the threads that move pages into the range (process.c) */
    __atomic_store_n(&h->commit_end, target, __ATOMIC_RELEASE);
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
