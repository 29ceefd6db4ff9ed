/*
 * large.c - blocks of whole 4 KiB pages: requests over 64 KiB, over-aligned
 * requests, and the spans that the size classes take.
 *
 * Free large blocks are coalesced with free neighbours at once and kept in
 * an AVL tree ordered by (pages, address), whose nodes live in the free
 * blocks themselves.  Allocation takes the best fit - the smallest free
 * block that is large enough, the lowest address among equals - and gives
 * the unused tail back; if nothing fits, it carves from the top.  A free
 * block that reaches the top is merged into it.  Every step is O(log F),
 * F = free large blocks, and depends only on the sequence of calls.
 *
 * Per-thread heaps: a block freed by a thread other than the one whose
 * range it lies in goes to the freeing thread's tree, marked foreign, and
 * is never coalesced, so no heap's carving depends on another's timing.
 *
 * A block's size is kept out of line, in the state map (internal.h):
 *
 *   granule:  p     p+1 .. p+6         ...   end-8 .. end-1
 *   state:   head   head tag (pages)         tail tag (pages, one word)
 *
 * The tail tag lets a block being freed find its left neighbour's start:
 * the granule just below it is the neighbour's tail tag, or not a tag at
 * all (a span's last granule never is).
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

static uintptr_t pages_bytes(uint64_t pages) {
    return (uintptr_t)pages << DH_PAGE_SHIFT;
}

/* ---- tags ----------------------------------------------------------------- */

static void tag_write(uint8_t *tag, uint64_t pages) {
    for (int i = 0; i < DH_TAG_BYTES; i++, pages >>= 6)
        tag[i] = (uint8_t)(DH_ST_TAG | (pages & 63));
}

uint64_t dh_tag_read(const uint8_t *tag) {
    uint64_t pages = 0;
    for (int i = DH_TAG_BYTES - 1; i >= 0; i--)
        pages = (pages << 6) | (tag[i] & 63);
    return pages;
}

/* The tail tag: the 8 state bytes of a block's last 8 granules, which form
 * one aligned word because blocks end on a page. */
static uint64_t *tail_word(dh_heap_t *h, uintptr_t end) {
    return (uint64_t *)(void *)(dh_state_at(h, end) - DH_TAIL_BYTES);
}

static void tail_write(uint64_t *w, uint64_t pages) {
    uint64_t v = 0;
    for (int i = 0; i < DH_TAIL_BYTES; i++, pages >>= 6)
        v |= (uint64_t)(DH_ST_TAG | (pages & 63)) << (8 * i);
    __atomic_store_n(w, v, __ATOMIC_RELAXED);
}

uint64_t dh_tail_read(const uint64_t *w) {
    uint64_t v = __atomic_load_n(w, __ATOMIC_RELAXED), pages = 0;
    for (int i = DH_TAIL_BYTES - 1; i >= 0; i--)
        pages = (pages << 6) | ((v >> (8 * i)) & 63);
    return pages;
}

/* Head state bytes of large blocks may be read by the thread whose range
 * the block is in while the thread holding it changes them. */
static uint8_t head_read(const uint8_t *st) { return dh_st_load(st); }

void dh_large_set(dh_heap_t *h, uintptr_t p, uint64_t pages, uint8_t head) {
    uint8_t *st = dh_state_at(h, p);
    tag_write(st + 1, pages);
    tail_write(tail_word(h, p + pages_bytes(pages)), pages);
    dh_st_store(st, head);
}

static void large_clear(dh_heap_t *h, uintptr_t p, uint64_t pages) {
    uint8_t *st = dh_state_at(h, p);
    dh_st_store(st, 0);
    memset(st + 1, 0, DH_TAG_BYTES);
    __atomic_store_n(tail_word(h, p + pages_bytes(pages)), (uint64_t)0,
                     __ATOMIC_RELAXED);
}

uint64_t dh_large_pages(const dh_heap_t *h, uintptr_t p) {
    return dh_tag_read(dh_state_at(h, p) + 1);
}

/* ---- the AVL tree of free blocks ----------------------------------------- */

typedef dh_large_node_t node_t;

static int32_t height(const node_t *n) { return n ? n->height : 0; }

static bool key_less(const node_t *a, const node_t *b) {
    return a->pages < b->pages || (a->pages == b->pages && a < b);
}

static void fix_height(node_t *n) {
    int32_t l = height(n->left), r = height(n->right);
    n->height = (l > r ? l : r) + 1;
}

static node_t *rotate_right(node_t *n) {
    node_t *l = n->left;
    n->left = l->right;
    l->right = n;
    fix_height(n);
    fix_height(l);
    return l;
}

static node_t *rotate_left(node_t *n) {
    node_t *r = n->right;
    n->right = r->left;
    r->left = n;
    fix_height(n);
    fix_height(r);
    return r;
}

static node_t *balance(node_t *n) {
    fix_height(n);
    int32_t bf = height(n->right) - height(n->left);
    if (bf == 2) {
        if (height(n->right->right) < height(n->right->left))
            n->right = rotate_right(n->right);
        return rotate_left(n);
    }
    if (bf == -2) {
        if (height(n->left->left) < height(n->left->right))
            n->left = rotate_left(n->left);
        return rotate_right(n);
    }
    return n;
}

static node_t *tree_insert(node_t *t, node_t *n) {
    if (t == NULL) return n;
    if (key_less(n, t))
        t->left = tree_insert(t->left, n);
    else
        t->right = tree_insert(t->right, n);
    return balance(t);
}

static node_t *tree_min(node_t *t) {
    while (t->left) t = t->left;
    return t;
}

static node_t *remove_min(node_t *t) {
    if (t->left == NULL) return t->right;
    t->left = remove_min(t->left);
    return balance(t);
}

static node_t *tree_remove(node_t *t, node_t *n) {
    DH_ASSERT("I7", t != NULL);
    if (t != n) {
        if (key_less(n, t))
            t->left = tree_remove(t->left, n);
        else
            t->right = tree_remove(t->right, n);
        return balance(t);
    }
    node_t *l = t->left, *r = t->right;
    if (r == NULL) return l;
    node_t *m = tree_min(r);
    m->right = remove_min(r);
    m->left = l;
    return balance(m);
}

/* The smallest node with at least `pages` pages (lowest address on ties). */
static node_t *tree_best_fit(node_t *t, uint64_t pages) {
    node_t *best = NULL;
    while (t) {
        if (t->pages >= pages) {
            best = t;
            t = t->left;
        } else {
            t = t->right;
        }
    }
    return best;
}

/* ---- free blocks ---------------------------------------------------------- */

/* Insert a free block into h's tree.  A block in another heap's range
 * (freed here by another thread) is marked foreign, so that the heap whose
 * range it is in never merges it into its own free blocks. */
static void free_insert(dh_heap_t *h, uintptr_t p, uint64_t pages) {
    node_t *n = (node_t *)p;
    DH_MEM_ACCESS(n, sizeof *n);
    n->left = n->right = NULL;
    n->pages = pages;
    n->height = 1;
    bool own = dh_owns(h, p);
    dh_large_set(h, p, pages, own ? DH_ST_FREE_LARGE : DH_ST_FREE_FOREIGN);
    if (!own) h->foreign_bytes += pages_bytes(pages);
    h->large_root = tree_insert(h->large_root, n);
    h->large_free_count++;
    h->large_free_bytes += pages_bytes(pages);
}

static void free_remove(dh_heap_t *h, uintptr_t p) {
    node_t *n = (node_t *)p;
    h->large_root = tree_remove(h->large_root, n);
    h->large_free_count--;
    h->large_free_bytes -= pages_bytes(n->pages);
    if (!dh_owns(h, p)) h->foreign_bytes -= pages_bytes(n->pages);
    large_clear(h, p, n->pages);
    /* the node's links are addresses: never leave them in memory that is
     * handed out again (inside a merged block, or the block itself) */
    memset(n, 0, sizeof *n);
    DH_MEM_NOACCESS(n, sizeof *n);
}

/* Give [p, p + pages) back: merge with free neighbours and the top.  A
 * block of another heap's range is kept as it is, never merged. */
static void give_back(dh_heap_t *h, uintptr_t p, uint64_t pages) {
    if (!dh_owns(h, p)) {
        free_insert(h, p, pages);
        return;
    }
    if (p > h->data_start) {
        uint64_t *tail = tail_word(h, p);
        uint64_t below = dh_tail_read(tail);
        /* a span's last granules are never tags; a tag word is all tags */
        if (below != 0 && (__atomic_load_n(tail, __ATOMIC_RELAXED) &
                           0x8080808080808080ull) == 0x8080808080808080ull &&
            pages_bytes(below) <= p - h->data_start) {
            uintptr_t q = p - pages_bytes(below);
            if (head_read(dh_state_at(h, q)) == DH_ST_FREE_LARGE) {
                uint64_t qpages = ((node_t *)q)->pages;
                free_remove(h, q);
                p = q;
                pages += qpages;
            }
        }
    }
    uintptr_t end = p + pages_bytes(pages);
    if (end == h->top) {
        h->top = p;
        return;
    }
    if (head_read(dh_state_at(h, end)) == DH_ST_FREE_LARGE) {
        pages += ((node_t *)end)->pages;
        free_remove(h, end);
    }
    free_insert(h, p, pages);
}

/* Take `pages` pages: best fit from the tree, else carve from the top.
 * Returns the start, with no state bytes set, or 0 when out of memory. */
static uintptr_t take_pages(dh_heap_t *h, uint64_t pages) {
    node_t *n = tree_best_fit(h->large_root, pages);
    if (n != NULL) {
        uintptr_t p = (uintptr_t)n;
        uint64_t have = n->pages;
        free_remove(h, p); /* which zeroes the node */
        DH_MEM_ACCESS(n, sizeof *n);
        if (have > pages) free_insert(h, p + pages_bytes(pages), have - pages);
        return p;
    }
    uintptr_t p = h->top;
    if (pages > (h->limit - p) >> DH_PAGE_SHIFT) return 0;
    if (!dh_region_grow(h, p + pages_bytes(pages))) return 0;
    return p;
}

/* ---- entry points --------------------------------------------------------- */

void *dh_span_take(dh_heap_t *h) {
    uintptr_t p = take_pages(h, DH_SPAN_PAGES);
    if (p == 0) errno = ENOMEM;
    return (void *)p;
}

/* Pages for n bytes, or 0 if n is too large to ever fit. */
static uint64_t pages_for(size_t n) {
    if (n > ((uint64_t)1 << (DH_ADDRESS_BITS - 1))) return 0;
    uint64_t pages = ((uint64_t)n + DH_PAGE - 1) >> DH_PAGE_SHIFT;
    return pages ? pages : 1;
}

void *dh_large_alloc(dh_heap_t *h, size_t n, size_t align) {
    uint64_t pages = pages_for(n);
    uint64_t extra = align > DH_PAGE ? (align >> DH_PAGE_SHIFT) - 1 : 0;
    uintptr_t old_top = h->top;
    uintptr_t p = pages ? take_pages(h, pages + extra) : 0;
    if (p == 0) {
        h->failed_allocs++;
        errno = ENOMEM;
        return NULL;
    }
    if (extra) { /* trim to the aligned part; both ends go back */
        uintptr_t a = (p + align - 1) & ~(uintptr_t)(align - 1);
        uintptr_t end = p + pages_bytes(pages + extra);
        uintptr_t aend = a + pages_bytes(pages);
        /* mark the kept part live first, so give_back never merges it */
        dh_large_set(h, a, pages, DH_ST_LIVE_LARGE);
        if (aend < end) give_back(h, aend, (end - aend) >> DH_PAGE_SHIFT);
        if (a > p) give_back(h, p, (a - p) >> DH_PAGE_SHIFT);
        p = a;
    } else {
        dh_large_set(h, p, pages, DH_ST_LIVE_LARGE);
    }
    DH_BLOCK_ALLOC((void *)p, pages_bytes(pages));
    if (p >= old_top) h->large_carved++;
    h->large_allocs++;
    h->large_live_count++;
    h->large_live_bytes += pages_bytes(pages);
    h->live_bytes += pages_bytes(pages);
    if (h->live_bytes > h->peak_live_bytes) h->peak_live_bytes = h->live_bytes;
    return (void *)p;
}

void dh_large_free(dh_heap_t *h, uintptr_t p) {
    uint64_t pages = dh_large_pages(h, p);
    DH_BLOCK_FREE((void *)p, pages_bytes(pages));
    h->large_frees++;
    h->large_live_count--;
    h->large_live_bytes -= pages_bytes(pages);
    h->live_bytes -= pages_bytes(pages);
    large_clear(h, p, pages);
    give_back(h, p, pages);
}

/* Resize a live large block in place to hold n (> 64 KiB) bytes: shrink
 * by giving the tail back, grow into the top or a free right neighbour.
 * Returns false, changing nothing, when it cannot. */
bool dh_large_resize(dh_heap_t *h, uintptr_t p, size_t n) {
    uint64_t want = pages_for(n), have = dh_large_pages(h, p);
    if (want == 0 || (want != have && (!dh_owns(h, p) || DH_ANNOTATING)))
        return false;
    if (want == have) return true;
    uintptr_t end = p + pages_bytes(have);
    if (want > have) {
        uint64_t more = want - have;
        if (end == h->top) {
            if (more > (h->limit - end) >> DH_PAGE_SHIFT ||
                !dh_region_grow(h, end + pages_bytes(more)))
                return false;
        } else if (head_read(dh_state_at(h, end)) == DH_ST_FREE_LARGE &&
                   ((node_t *)end)->pages >= more) {
            uint64_t next = ((node_t *)end)->pages;
            free_remove(h, end);
            if (next > more)
                free_insert(h, end + pages_bytes(more), next - more);
        } else {
            return false;
        }
    }
    large_clear(h, p, have);
    dh_large_set(h, p, want, DH_ST_LIVE_LARGE);
    if (want < have) give_back(h, p + pages_bytes(want), have - want);
    h->large_live_bytes += pages_bytes(want) - pages_bytes(have);
    h->live_bytes += pages_bytes(want) - pages_bytes(have);
    if (h->live_bytes > h->peak_live_bytes) h->peak_live_bytes = h->live_bytes;
    return true;
}
