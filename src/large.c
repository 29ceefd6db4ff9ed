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

/* The 8 tag bytes of a page count: byte i holds bits 6i..6i+5 (the
 * 48-bit count spread to 6 bits a byte: 24 bits a word half, 12 a
 * quarter, 6 a byte). */
static uint64_t tag_bytes(uint64_t pages) {
    uint64_t x = pages & 0xffffffffffffull;
    x = (x & 0xffffffull) | ((x & 0xffffff000000ull) << 8);
    x = (x & 0x00000fff00000fffull) | ((x & 0x00fff00000fff000ull) << 4);
    x = (x & 0x003f003f003f003full) | ((x & 0x0fc00fc00fc00fc0ull) << 2);
    return x | 0x0101010101010101ull * DH_ST_TAG;
}

static void tag_write(uint8_t *tag, uint64_t pages) {
    uint64_t v = tag_bytes(pages);
    memcpy(tag, &v, DH_TAG_BYTES); /* little-endian: the low bytes */
}

/* The tail tag: the 8 state bytes of a block's last 8 granules, which form
 * one aligned word because blocks end on a page. */
static uint64_t *tail_word(dh_heap_t *h, uintptr_t end) {
    return (uint64_t *)(void *)(dh_state_at(h, end) - DH_TAIL_BYTES);
}

/* The same word found from the block's head state bytes st, for a block of
 * `pages` pages (no state-map lookup). */
static uint64_t *tail_word_at(uint8_t *st, uint64_t pages) {
    uintptr_t g = pages_bytes(pages) >> DH_GRANULE_SHIFT;
    return (uint64_t *)(void *)(st + g - DH_TAIL_BYTES);
}

static void tail_write(uint64_t *w, uint64_t pages) {
    __atomic_store_n(w, tag_bytes(pages), __ATOMIC_RELAXED);
}

uint64_t dh_tail_read(const uint64_t *w) {
    return dh_tag_pages(__atomic_load_n(w, __ATOMIC_RELAXED));
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

static inline uint64_t large_pages(const dh_heap_t *h, uintptr_t p) {
    return dh_tag_read(dh_state_at(h, p) + 1);
}

uint64_t dh_large_pages(const dh_heap_t *h, uintptr_t p) {
    return large_pages(h, p);
}

/* ---- the AVL tree of free blocks ----------------------------------------- */

/* The tree's nodes live in free blocks, which a buggy program may write
 * after freeing them or overflow into from the block before: every node is
 * checked before it is read (its address, its state byte, its page count
 * against the tag in the state map, its height) and no path is followed
 * deeper than an AVL tree of 2^64 nodes could be.  A failed check marks the
 * walk bad; the entry point then abandons the whole tree (abandon below).
 * Integrity is O(1) per node, so every step stays O(log F). */
#define TREE_MAX_DEPTH 96

typedef dh_large_node_t node_t;

typedef struct tree {
    dh_heap_t *h;
    const char *call; /* the API call, for the report */
    size_t n;         /* the bytes it asked for */
    const void *bad;  /* the first node that failed its check, or NULL */
} tree_t;

/* n if it is NULL or a valid free large block of T's tree, else NULL with
 * T->bad set (and NULL from then on: a bad walk stops). */
bool dh_large_node_ok(const dh_heap_t *h, const dh_large_node_t *n) {
    uintptr_t a = (uintptr_t)n;
    const dh_heap_t *in = h;
    uint8_t want = DH_ST_FREE_LARGE;
    if (!dh_owns(h, a)) { /* a block of another range, freed here */
        in = dh_region_lookup(a);
        want = DH_ST_FREE_FOREIGN;
        if (in == NULL || !in->process || !h->process) return false;
    }
    if ((a & (DH_PAGE - 1)) || !dh_in_data(in, a)) return false;
    const uint8_t *st = dh_state_at(in, a);
    return dh_st_load(st) == want && dh_tag_read(st + 1) == n->pages;
}

static node_t *node(tree_t *T, node_t *n) {
    if (T->bad != NULL || n == NULL) return NULL;
    if (!dh_large_node_ok(T->h, n) || n->height < 1 ||
        n->height > TREE_MAX_DEPTH) {
        T->bad = n;
        return NULL;
    }
    return n;
}

static node_t *left(tree_t *T, node_t *n) { return node(T, n->left); }
static node_t *right(tree_t *T, node_t *n) { return node(T, n->right); }
static int32_t height(const node_t *n) { return n ? n->height : 0; }

static bool key_less(const node_t *a, const node_t *b) {
    return a->pages < b->pages || (a->pages == b->pages && a < b);
}

static void fix_height(tree_t *T, node_t *n) {
    int32_t l = height(left(T, n)), r = height(right(T, n));
    n->height = (l > r ? l : r) + 1;
}

static node_t *rotate_right(tree_t *T, node_t *n) {
    node_t *l = left(T, n);
    if (l == NULL) return n;
    n->left = right(T, l);
    l->right = n;
    fix_height(T, n);
    fix_height(T, l);
    return l;
}

static node_t *rotate_left(tree_t *T, node_t *n) {
    node_t *r = right(T, n);
    if (r == NULL) return n;
    n->right = left(T, r);
    r->left = n;
    fix_height(T, n);
    fix_height(T, r);
    return r;
}

static node_t *balance(tree_t *T, node_t *n) {
    if (T->bad != NULL) return n;
    fix_height(T, n);
    node_t *l = left(T, n), *r = right(T, n);
    int32_t bf = height(r) - height(l);
    if (bf == 2) {
        if (height(right(T, r)) < height(left(T, r)))
            n->right = rotate_right(T, r);
        return rotate_left(T, n);
    }
    if (bf == -2) {
        if (height(left(T, l)) < height(right(T, l)))
            n->left = rotate_left(T, l);
        return rotate_right(T, n);
    }
    return n;
}

static node_t *tree_insert(tree_t *T, node_t *t, node_t *n, int depth) {
    t = node(T, t);
    if (T->bad != NULL) return NULL;
    if (t == NULL) return n;
    if (depth > TREE_MAX_DEPTH) {
        T->bad = t;
        return t;
    }
    if (key_less(n, t))
        t->left = tree_insert(T, t->left, n, depth + 1);
    else
        t->right = tree_insert(T, t->right, n, depth + 1);
    return balance(T, t);
}

static node_t *remove_min(tree_t *T, node_t *t, int depth) {
    node_t *l = left(T, t);
    if (T->bad != NULL) return t;
    if (depth > TREE_MAX_DEPTH) {
        T->bad = t;
        return t;
    }
    if (l == NULL) return right(T, t);
    t->left = remove_min(T, l, depth + 1);
    return balance(T, t);
}

static node_t *tree_min(tree_t *T, node_t *t) {
    for (int depth = 0; T->bad == NULL; depth++) {
        node_t *l = left(T, t);
        if (l == NULL) break;
        if (depth > TREE_MAX_DEPTH) T->bad = l;
        t = l;
    }
    return t;
}

/* Remove n (already checked) from the subtree t; n must be in it. */
static node_t *tree_remove(tree_t *T, node_t *t, node_t *n, int depth) {
    t = node(T, t);
    if (T->bad != NULL) return t;
    if (t == NULL || depth > TREE_MAX_DEPTH) { /* n is not where its key
                                                  says: the tree is damaged */
        T->bad = t != NULL ? (const void *)t : (const void *)n;
        return t;
    }
    if (t != n) {
        if (key_less(n, t))
            t->left = tree_remove(T, t->left, n, depth + 1);
        else
            t->right = tree_remove(T, t->right, n, depth + 1);
        return balance(T, t);
    }
    node_t *l = left(T, t), *r = right(T, t);
    if (r == NULL) return l;
    node_t *m = tree_min(T, r);
    if (T->bad != NULL) return t;
    m->right = remove_min(T, r, depth + 1);
    m->left = l;
    return balance(T, m);
}

/* The smallest node with at least `pages` pages (lowest address on ties). */
static node_t *tree_best_fit(tree_t *T, node_t *t, uint64_t pages) {
    node_t *best = NULL;
    t = node(T, t);
    for (int depth = 0; t != NULL; depth++) {
        if (depth > TREE_MAX_DEPTH) {
            T->bad = t;
            return NULL;
        }
        if (t->pages >= pages) {
            best = t;
            t = left(T, t);
        } else {
            t = right(T, t);
        }
    }
    return T->bad != NULL ? NULL : best;
}

/* ---- free blocks ---------------------------------------------------------- */

/* The tree was found damaged (T->bad): abandon it.  Its blocks are leaked
 * and counted: those of this range are marked retired (on no list, never
 * merged nor handed out), found by a walk of the data, on this error path
 * only; those of other ranges keep their foreign mark, which their own
 * heap never touches.  Then the corruption is reported.  The walk may come
 * in the middle of a free, where the block being given back has no state
 * bytes yet: a page whose state byte starts neither a span (a class byte)
 * nor a large block is stepped over page by page, so every block start is
 * met (spans and large blocks start on pages). */
static void abandon(tree_t *T) {
    dh_heap_t *h = T->h;
    for (uintptr_t p = h->data_start; p < h->top;) {
        uint8_t *st = dh_state_at(h, p);
        uint8_t s = dh_st_load(st);
        if (s == DH_ST_LIVE_LARGE || s == DH_ST_FREE_LARGE ||
            s == DH_ST_FREE_FOREIGN || s == DH_ST_RETIRED_LARGE) {
            uint64_t pages = dh_tag_read(st + 1);
            if (pages == 0) break; /* the state map itself is damaged */
            if (s == DH_ST_FREE_LARGE) dh_st_store(st, DH_ST_RETIRED_LARGE);
            p += pages_bytes(pages);
        } else if (dh_st_is_live_class(s) || dh_st_is_free_class(s) ||
                   dh_st_is_retired_class(s)) {
            p += DH_SPAN;
        } else {
            p += DH_PAGE;
        }
    }
    h->abandoned[DH_LARGE_INDEX] += h->large_free_count;
    h->abandoned_bytes += h->large_free_bytes;
    h->large_root = NULL;
    h->large_free_count = 0;
    h->large_free_bytes = 0;
    const void *at = T->bad;
    T->bad = NULL;
    dh_tree_corrupted(h, T->call, T->n, at);
}

/* Insert a free block into h's tree.  A block in another heap's range
 * (freed here by another thread) is marked foreign, so that the heap whose
 * range it is in never merges it into its own free blocks.  If the walk
 * down finds the tree damaged, the tree is abandoned and the block becomes
 * its only node. */
static void free_insert(tree_t *T, uintptr_t p, uint64_t pages) {
    dh_heap_t *h = T->h;
    node_t *n = (node_t *)p;
    bool own = dh_owns(h, p);
    DH_MEM_ACCESS(n, sizeof *n);
    n->left = n->right = NULL;
    n->pages = pages;
    n->height = 1;
    uint8_t head = own ? DH_ST_FREE_LARGE : DH_ST_FREE_FOREIGN;
    dh_large_set(h, p, pages, head); /* before the walk: n is checked too */
    node_t *root = tree_insert(T, h->large_root, n, 0);
    if (T->bad != NULL) {
        abandon(T); /* which retired n too: n alone is the new tree */
        dh_st_store(dh_state_at(h, p), head);
        n->left = n->right = NULL;
        n->height = 1;
        root = n;
    }
    if (!own) h->foreign_bytes += pages_bytes(pages);
    h->large_root = root;
    h->large_free_count++;
    h->large_free_bytes += pages_bytes(pages);
}

/* Take the free block p (its node checked) out of h's tree.  Returns false
 * if the tree was found damaged (and abandoned: p is then leaked). */
static bool free_remove(tree_t *T, uintptr_t p) {
    dh_heap_t *h = T->h;
    node_t *n = (node_t *)p;
    node_t *root = tree_remove(T, h->large_root, n, 0);
    if (T->bad != NULL) {
        abandon(T);
        return false;
    }
    h->large_root = root;
    h->large_free_count--;
    h->large_free_bytes -= pages_bytes(n->pages);
    if (!dh_owns(h, p)) h->foreign_bytes -= pages_bytes(n->pages);
    large_clear(h, p, n->pages);
    /* the node's links are addresses: never leave them in memory that is
     * handed out again (inside a merged block, or the block itself) */
    memset(n, 0, sizeof *n);
    DH_MEM_NOACCESS(n, sizeof *n);
    return true;
}

/* The free large block of h's own range at q, checked, or NULL. */
static node_t *own_free(tree_t *T, uintptr_t q) {
    if (head_read(dh_state_at(T->h, q)) != DH_ST_FREE_LARGE) return NULL;
    node_t *n = node(T, (node_t *)q);
    if (T->bad != NULL) abandon(T);
    return n;
}

/* Give [p, p + pages) back: merge with free neighbours and the top.  A
 * block of another heap's range is kept as it is, never merged.  Returns
 * the start of the free block it is now part of, or 0 if that is the top. */
static uintptr_t give_back(tree_t *T, uintptr_t p, uint64_t pages) {
    dh_heap_t *h = T->h;
    if (!dh_owns(h, p)) {
        free_insert(T, p, pages);
        return p;
    }
    if (p > h->data_start) {
        uint64_t *tail = tail_word(h, p);
        uint64_t below = dh_tail_read(tail);
        /* a span's last granules are never tags; a tag word is all tags */
        if (below != 0 && (__atomic_load_n(tail, __ATOMIC_RELAXED) &
                           0xc0c0c0c0c0c0c0c0ull) == 0x8080808080808080ull &&
            pages_bytes(below) <= p - h->data_start) {
            uintptr_t q = p - pages_bytes(below);
            node_t *left_free = own_free(T, q);
            if (left_free != NULL) {
                uint64_t qpages = left_free->pages;
                if (free_remove(T, q)) {
                    p = q;
                    pages += qpages;
                }
            }
        }
    }
    uintptr_t end = p + pages_bytes(pages);
    if (end == h->top) {
        h->top = p;
        return 0;
    }
    node_t *right_free = own_free(T, end);
    if (right_free != NULL) {
        uint64_t more = right_free->pages;
        if (free_remove(T, end)) pages += more;
    }
    free_insert(T, p, pages);
    return p;
}

/* Take `pages` pages: best fit from the tree, else carve from the top.
 * Returns the start, with no state bytes set, or 0 when out of memory. */
static uintptr_t take_pages(tree_t *T, uint64_t pages) {
    dh_heap_t *h = T->h;
    node_t *n = tree_best_fit(T, h->large_root, pages);
    if (T->bad != NULL) abandon(T); /* and carve instead */
    if (n != NULL) {
        uintptr_t p = (uintptr_t)n;
        uint64_t have = n->pages;
        if (free_remove(T, p)) { /* which zeroes the node */
            DH_MEM_ACCESS(n, sizeof *n);
            if (have > pages)
                free_insert(T, p + pages_bytes(pages), have - pages);
            return p;
        }
    }
    uintptr_t p = h->top;
    if (pages > (h->limit - p) >> DH_PAGE_SHIFT) return 0;
    if (!dh_region_grow(h, p + pages_bytes(pages))) return 0;
    return p;
}

/* ---- entry points --------------------------------------------------------- */

/* The tree context of a call named `call` (malloc or the heap API's
 * name) asking for n bytes. */
static tree_t tree_of(dh_heap_t *h, const char *proc_call,
                      const char *heap_call, size_t n) {
    tree_t T = {h, h->process ? proc_call : heap_call, n, NULL};
    return T;
}

void *dh_span_take(dh_heap_t *h, size_t n) {
    tree_t T = tree_of(h, "malloc", "dh_heap_malloc", n);
    uintptr_t p = take_pages(&T, DH_SPAN_PAGES);
    if (p == 0) errno = ENOMEM;
    return (void *)p;
}

void dh_span_release(dh_heap_t *h, uintptr_t p) {
    tree_t T = tree_of(h, "malloc", "dh_heap_malloc", DH_SPAN);
    give_back(&T, p, DH_SPAN_PAGES);
}

void *dh_large_alloc(dh_heap_t *h, size_t n, size_t align) {
    uint64_t pages = dh_pages_for(n);
    uint64_t extra = align > DH_PAGE ? (align >> DH_PAGE_SHIFT) - 1 : 0;
    uintptr_t old_top = h->top;
    tree_t T = tree_of(h, "malloc", "dh_heap_malloc", n);
    uintptr_t p = pages ? take_pages(&T, pages + extra) : 0;
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
        if (aend < end) give_back(&T, aend, (end - aend) >> DH_PAGE_SHIFT);
        if (a > p) give_back(&T, p, (a - p) >> DH_PAGE_SHIFT);
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

uintptr_t dh_large_free(dh_heap_t *h, uintptr_t p) {
    uint64_t pages = large_pages(h, p);
    DH_BLOCK_FREE((void *)p, pages_bytes(pages));
    h->large_frees++;
    h->large_live_count--;
    h->large_live_bytes -= pages_bytes(pages);
    h->live_bytes -= pages_bytes(pages);
    large_clear(h, p, pages);
    tree_t T = tree_of(h, "free", "dh_free", pages_bytes(pages));
    return give_back(&T, p, pages);
}

bool dh_large_resize_other(dh_heap_t *h, uintptr_t p, size_t n) {
    return dh_large_pages(h, p) == dh_pages_for(n);
}

bool dh_large_repage(dh_heap_t *h, uintptr_t p, uint8_t *st, uint64_t have,
                     uint64_t want, size_t n) {
    if (want == 0 || DH_ANNOTATING) return false;
    uintptr_t end = p + pages_bytes(have);
    tree_t T = tree_of(h, "realloc", "dh_heap_realloc", n);
    node_t *next;
    if (want > have) {
        uint64_t more = want - have;
        if (end == h->top) {
            if (more > (h->limit - end) >> DH_PAGE_SHIFT ||
                !dh_region_grow(h, end + pages_bytes(more)))
                return false;
        } else if ((next = own_free(&T, end)) != NULL &&
                   next->pages >= more) {
            uint64_t next_pages = next->pages;
            if (!free_remove(&T, end)) return false;
            if (next_pages > more)
                free_insert(&T, end + pages_bytes(more), next_pages - more);
        } else {
            return false;
        }
    }
    /* the head stays live; the tags move to the new end */
    __atomic_store_n(tail_word_at(st, have), (uint64_t)0, __ATOMIC_RELAXED);
    tag_write(st + 1, want);
    tail_write(tail_word_at(st, want), want);
    if (want < have) give_back(&T, p + pages_bytes(want), have - want);
    h->large_live_bytes += pages_bytes(want) - pages_bytes(have);
    h->live_bytes += pages_bytes(want) - pages_bytes(have);
    if (h->live_bytes > h->peak_live_bytes) h->peak_live_bytes = h->live_bytes;
    return true;
}
