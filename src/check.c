/*
 * check.c - the heap walker and the full validator (tier 3 of checking).
 *
 * Both read the heap through the state map alone: from data_start up to top
 * the carved storage is a sequence of spans and large blocks.  A large block
 * starts with a large head state and carries its size in its tags; anything
 * else is a span, whose first block is always carved and names the class.
 * dh_heap_check re-derives every counter from that walk, follows every free
 * list and the large tree, and compares; it reads only memory the heap owns
 * and never writes, so it is safe on a damaged heap.
 */
#include "internal.h"

#include <string.h>

/* What a walk finds, for the validator to compare with the counters. */
typedef dh_census_t census_t;

typedef struct walker {
    const dh_heap_t *h;
    dh_visit_fn visit; /* NULL when only checking */
    void *user;
    size_t visited;
    bool stopped;
    census_t n;
} walker_t;

static bool emit(walker_t *w, uintptr_t p, size_t size, int c, bool live) {
    if (w->stopped) return true;
    w->visited++;
    if (w->visit == NULL) return true;
    dh_block_info_t info = {(void *)p, size, c, live};
    if (!w->visit(&info, w->user)) w->stopped = true;
    return true;
}

static bool all_zero(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != DH_ST_NONE) return false;
    return true;
}

/* A large block at p: returns its end, or 0 with *bad set. */
static uintptr_t walk_large(walker_t *w, uintptr_t p, bool *prev_free,
                            dh_check_t *bad) {
    const dh_heap_t *h = w->h;
    const uint8_t *st = dh_state_at(h, p);
    uint64_t pages = dh_tag_read(st + 1);
    uintptr_t bytes = (uintptr_t)pages << DH_PAGE_SHIFT;
    if (pages == 0 || bytes > h->top - p) return *bad = DH_CHECK_I5, 0;
    size_t granules = bytes >> DH_GRANULE_SHIFT;
    for (int i = 1; i <= DH_TAG_BYTES; i++)
        if (!dh_st_is_tag(st[i])) return *bad = DH_CHECK_I5, 0;
    for (int i = 1; i <= DH_TAIL_BYTES; i++)
        if (!dh_st_is_tag(st[granules - i])) return *bad = DH_CHECK_I5, 0;
    const uint64_t *tail =
        (const uint64_t *)(const void *)(st + granules - DH_TAIL_BYTES);
    if (dh_tail_read(tail) != pages) return *bad = DH_CHECK_I5, 0;
    if (!all_zero(st + 1 + DH_TAG_BYTES,
                  granules - 1 - DH_TAG_BYTES - DH_TAIL_BYTES))
        return *bad = DH_CHECK_I1, 0;
    bool live = st[0] == DH_ST_LIVE_LARGE;
    bool mergeable = st[0] == DH_ST_FREE_LARGE;
    if (mergeable && (*prev_free || p + bytes == h->top))
        return *bad = DH_CHECK_I6, 0;
    *prev_free = mergeable;
    if (st[0] == DH_ST_RETIRED_LARGE) {
        w->n.large_retired++;
        return p + bytes;
    }
    if (live) {
        w->n.large_live++;
        w->n.large_live_bytes += bytes;
        w->n.live_bytes += bytes;
    } else {
        w->n.large_free++;
        w->n.large_free_bytes += bytes;
    }
    emit(w, p, bytes, -1, live);
    return p + bytes;
}

/* The class of the span at p from its span-map word, if all its blocks
 * were retired and its memory given back (its state bytes may read zero):
 * that class, else -1. */
static int decommitted_class(const dh_heap_t *h, uintptr_t p) {
    uintptr_t off = (p - h->data_start) & ~(DH_SPAN - 1);
    uint32_t v = __atomic_load_n(&h->span_map[off >> DH_SPAN_SHIFT],
                                 __ATOMIC_ACQUIRE);
    if (!(v & DH_SPAN_DECOMMITTED) ||
        dh_span_word_start(v, h->data_start + off) != p)
        return -1;
    return dh_span_word_class(v);
}

/* A span at p of the class named by its first block. */
static uintptr_t walk_span(walker_t *w, uintptr_t p, dh_check_t *bad) {
    const dh_heap_t *h = w->h;
    const uint8_t *st = dh_state_at(h, p);
    int gone = decommitted_class(h, p);
    if (gone >= 0 && gone < h->nclasses) {
        w->n.retired[gone] += DH_SPAN / dh_class_bytes(h, gone);
        return p + DH_SPAN;
    }
    int c = dh_st_is_live_class(st[0])      ? st[0] - DH_ST_LIVE
            : dh_st_is_free_class(st[0])    ? st[0] - DH_ST_FREE
            : dh_st_is_retired_class(st[0]) ? st[0] - DH_ST_RETIRED
                                            : -1;
    if (c < 0 || c >= h->nclasses || DH_SPAN > h->top - p)
        return *bad = DH_CHECK_I2, 0;
    size_t size = dh_class_bytes(h, c), g = size >> DH_GRANULE_SHIFT;
    bool carving = true;
    for (uintptr_t q = p; q < p + DH_SPAN; q += size) {
        const uint8_t *s = dh_state_at(h, q);
        size_t span_left = (p + DH_SPAN - q) >> DH_GRANULE_SHIFT;
        size_t n = g < span_left ? g : span_left;
        if (!all_zero(s + 1, n - 1)) return *bad = DH_CHECK_I2, 0;
        if (q + size > p + DH_SPAN || s[0] == DH_ST_NONE) {
            if (s[0] != DH_ST_NONE) return *bad = DH_CHECK_I2, 0;
            carving = false;
            continue;
        }
        bool live = s[0] == DH_ST_LIVE + c;
        bool retired = s[0] == DH_ST_RETIRED + c;
        if (!carving || (!live && !retired && s[0] != DH_ST_FREE + c))
            return *bad = DH_CHECK_I2, 0;
        if (retired) {
            w->n.retired[c]++;
            continue;
        }
        if (live) {
            w->n.live[c]++;
            w->n.live_bytes += size;
        } else {
            w->n.free[c]++;
        }
        emit(w, q, size, c, live);
    }
    return p + DH_SPAN;
}

static dh_check_t walk(walker_t *w) {
    const dh_heap_t *h = w->h;
    dh_check_t bad = DH_CHECK_OK;
    bool prev_free = false;
    for (uintptr_t p = h->data_start; p < h->top && !w->stopped;) {
        uint8_t s = *dh_state_at(h, p);
        if (s == DH_ST_LIVE_LARGE || s == DH_ST_FREE_LARGE ||
            s == DH_ST_FREE_FOREIGN || s == DH_ST_RETIRED_LARGE) {
            p = walk_large(w, p, &prev_free, &bad);
        } else {
            prev_free = false;
            p = walk_span(w, p, &bad);
        }
        if (p == 0) return bad;
    }
    return DH_CHECK_OK;
}

size_t dh_heap_walk(const dh_heap_t *h, dh_visit_fn visit, void *user) {
    if (h == NULL || visit == NULL) return 0;
    walker_t w = {.h = h, .visit = visit, .user = user};
    walk(&w);
    return w.visited;
}

/* ---- the validator -------------------------------------------------------- */

static dh_check_t check_bounds(const dh_heap_t *h) {
    if (h->magic != DH_HEAP_MAGIC) return DH_CHECK_I8;
    if (!(h->data_start <= h->top && h->top <= h->high_water &&
          h->high_water <= h->commit_end && h->commit_end <= h->limit))
        return DH_CHECK_I8;
    if (h->state_commit_end < (uintptr_t)dh_state_at(h, h->commit_end))
        return DH_CHECK_I8;
    return DH_CHECK_OK;
}

/* Follow a free list of class c: every entry a free class-c block of h's
 * range (or, foreign, of another process heap's), at most `limit` of them.
 * Returns the length, or UINT64_MAX if an entry is bad. */
static uint64_t list_length(const dh_heap_t *h, const void *head, int c,
                            bool foreign, uint64_t limit) {
    uint64_t n = 0;
    uint8_t want = (uint8_t)(DH_ST_FREE + c);
    for (const void *p = head; p != NULL;) {
        uintptr_t a = (uintptr_t)p;
        bool ok = foreign ? dh_foreign_free_ok(h, p, want) != NULL
                          : !(a & (DH_GRANULE - 1)) && dh_in_data(h, a) &&
                                *dh_state_at(h, a) == want;
        if (n++ >= limit || !ok) return UINT64_MAX;
        p = DH_LINK_READ(p);
        DH_MEM_NOACCESS((void *)a, sizeof(void *));
    }
    return n;
}

/* Bin c's free lists.  A heap on its own has no foreign blocks and its main
 * list holds exactly the `expect` free blocks its walk found; a process
 * heap's lists are counted into the census, for dh_process_check to add
 * up over the process. */
static dh_check_t check_free_list(const dh_heap_t *h, int c, uint64_t expect,
                                  census_t *n) {
    const dh_bin_t *b = &h->bins[c];
    uint64_t cap = h->process ? UINT64_MAX - 1 : expect;
    uint64_t main = list_length(h, b->head, c, false, cap);
    uint64_t foreign = h->process ? list_length(h, b->foreign, c, true, cap)
                       : b->foreign != NULL ? UINT64_MAX : 0;
    if (main == UINT64_MAX || foreign == UINT64_MAX) return DH_CHECK_I3;
    n->listed[c] = main + foreign;
    /* blocks of an abandoned (overwritten) list are on no list */
    if (!h->process && main + h->abandoned[c] != expect) return DH_CHECK_I3;
    return DH_CHECK_OK;
}

/* The fast paths' tables (I3): each bin carries its live state byte, size
 * index i leads to the bin of i's class, and state byte s to bin c exactly
 * when s is LIVE + c. */
static dh_check_t check_tables(const dh_heap_t *h) {
    dh_class_set_t set = (dh_class_set_t)h->class_set;
    if (h->nclasses != dh_class_set_count(set)) return DH_CHECK_I3;
    for (int c = 0; c < h->nclasses; c++)
        if (h->bins[c].live_state != DH_ST_LIVE + c ||
            h->bins[c].free_state != DH_ST_FREE + c ||
            dh_class_bytes(h, c) != dh_class_set_size(set, c))
            return DH_CHECK_I3;
    for (unsigned i = 0; i < DH_SMALL_INDEXES; i++)
        if (h->bin_by_size[i] !=
            &h->bins[dh_class_set_of(set, (size_t)i << DH_GRANULE_SHIFT)])
            return DH_CHECK_I3;
    for (unsigned s = 0; s < 256; s++) {
        const dh_bin_t *want = (uint8_t)(s - DH_ST_LIVE) < h->nclasses
                                   ? &h->bins[s - DH_ST_LIVE]
                                   : NULL;
        if (h->bin_by_state[s] != want) return DH_CHECK_I3;
    }
    return DH_CHECK_OK;
}

/* In-order walk of the large tree; returns the height or -1 if bad. */
static int check_tree(const dh_heap_t *h, const dh_large_node_t *t,
                      const dh_large_node_t **prev, uint64_t *count,
                      uint64_t limit) {
    if (t == NULL) return 0;
    if (++*count > limit || !dh_large_node_ok(h, t)) return -1;
    int l = check_tree(h, t->left, prev, count, limit);
    if (l < 0) return -1;
    const dh_large_node_t *p = *prev;
    if (p && !(p->pages < t->pages || (p->pages == t->pages && p < t)))
        return -1;
    *prev = t;
    int r = check_tree(h, t->right, prev, count, limit);
    if (r < 0 || l - r > 1 || r - l > 1) return -1;
    int height = (l > r ? l : r) + 1;
    return height == t->height ? height : -1;
}

/* Every check that holds for h on its own; the counts that only add up
 * over all the heaps of the process (blocks freed by another thread are
 * counted by that thread's heap) go into *out for dh_process_check. */
dh_check_t dh_heap_check_part(const dh_heap_t *h, census_t *out) {
    dh_check_t r = check_bounds(h);
    if (r != DH_CHECK_OK) return r;
    walker_t w = {.h = h};
    r = walk(&w);
    if (r != DH_CHECK_OK) return r;
    r = check_tables(h);
    if (r != DH_CHECK_OK) return r;
    for (int c = 0; c < h->nclasses; c++) {
        const dh_bin_t *b = &h->bins[c];
        if (!h->process && (b->carved != w.n.live[c] + w.n.free[c] ||
                            b->allocs - b->frees != w.n.live[c]))
            return DH_CHECK_I4;
        r = check_free_list(h, c, w.n.free[c], &w.n);
        if (r != DH_CHECK_OK) return r;
    }
    const dh_large_node_t *prev = NULL;
    uint64_t nodes = 0, cap = h->process ? UINT64_MAX : w.n.large_free;
    if (check_tree(h, h->large_root, &prev, &nodes, cap) < 0 ||
        nodes != h->large_free_count ||
        (!h->process && (nodes != w.n.large_free ||
                         w.n.large_free_bytes != h->large_free_bytes)))
        return DH_CHECK_I7;
    w.n.tree_nodes = nodes;
    if (!h->process &&
        (w.n.large_live != h->large_live_count ||
         w.n.large_live_bytes != h->large_live_bytes ||
         w.n.live_bytes != dh_heap_live_bytes(h) ||
         h->live_bytes > h->peak_live_bytes))
        return DH_CHECK_I9;
    if (out != NULL) *out = w.n;
    return DH_CHECK_OK;
}

uint64_t dh_count_free_class(const dh_heap_t *h, int c) {
    walker_t w = {.h = h};
    walk(&w);
    return w.n.free[c];
}

dh_check_t dh_heap_check(const dh_heap_t *h) {
    if (h == NULL) return DH_CHECK_I8;
    return dh_heap_check_part(h, NULL);
}

/* ---- the cheap tier ------------------------------------------------------ */

/* Bin c's carve range: none, or a run of whole blocks inside one span of
 * the carved data. */
static bool carve_ok(const dh_heap_t *h, const dh_bin_t *b, int c) {
    if (b->carve == 0 && b->carve_end == 0) return true;
    return h->data_start <= b->carve && b->carve <= b->carve_end &&
           b->carve_end <= h->top && b->carve_end - b->carve <= DH_SPAN &&
           (b->carve_end - b->carve) % dh_class_bytes(h, c) == 0;
}

dh_check_t dh_heap_check_cheap(const dh_heap_t *h) {
    if (h == NULL) return DH_CHECK_I8;
    dh_check_t r = check_bounds(h);
    if (r != DH_CHECK_OK) return r;
    if (h->state_commit_end > h->data_start) return DH_CHECK_I8;
    r = check_tables(h);
    if (r != DH_CHECK_OK) return r;
    for (int c = 0; c < h->nclasses; c++) {
        const dh_bin_t *b = &h->bins[c];
        uintptr_t head = (uintptr_t)b->head;
        if (b->free_state != DH_ST_FREE + c || !carve_ok(h, b, c) ||
            (b->foreign != NULL && !h->process))
            return DH_CHECK_I3;
        if (head != 0 && ((head & (DH_GRANULE - 1)) || !dh_in_data(h, head) ||
                          *dh_state_at(h, head) != DH_ST_FREE + c))
            return DH_CHECK_I3;
    }
    if (h->large_root != NULL && !dh_large_node_ok(h, h->large_root))
        return DH_CHECK_I7;
    return DH_CHECK_OK;
}
