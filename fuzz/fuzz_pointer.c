/*
 * fuzz_pointer.c - the pointer API, used well and misused, against a model.
 *
 * The input is a program of malloc, calloc, realloc, aligned_alloc, free
 * (dh_free and dh_heap_free), usable_size, with odd sizes and alignments
 * 1 .. 1 MiB (invalid ones too), and misuse: double free, interior and
 * misaligned pointers, pointers into the heap's header and beyond its top,
 * foreign pointers, and blocks of a second heap handed to the first.  The
 * heap's error policy is DH_ON_ERROR_CALLBACK, counting what is reported.
 *
 * The model is the set of live blocks with their requested size and fill
 * byte, and the set of addresses ever handed out.  After every step
 * dh_heap_check must pass and:
 *   - each misuse is reported exactly once, with the code it must have, and
 *     changes nothing (the statistics are unchanged but for the rejected
 *     counters, and every block keeps its bytes);
 *   - each valid call behaves: alignment, usable size >= request, no
 *     overlap with any live block, calloc memory zero, realloc keeps
 *     min(old, new) bytes, invalid alignments fail with EINVAL, overflowing
 *     calloc with ENOMEM, and nothing is reported.
 */
#include "fuzz_input.h"

#include <detheap.h>
#include <errno.h>
#include <string.h>

enum {
    MAX_LIVE = 256,
    MAX_STALE = 64,
    LIVE_BUDGET = 4 << 20,  /* bytes the live blocks may occupy: the
                               check after each step walks them */
    HEAP_RESERVE = 256 << 20,
};

typedef struct {
    uint8_t *p;
    size_t n;      /* requested (and filled) */
    size_t usable;
    uint8_t fill;
    bool is_class; /* a class block, whose address stays a class block */
    dh_heap_t *heap;
} blk_t;

typedef struct {
    uintptr_t p;
    bool is_class;
} stale_t;

typedef struct {
    unsigned calls;
    dh_error_code_t code;
    const void *ptr;
} reports_t;

static struct {
    dh_heap_t *h, *h2;
    blk_t live[MAX_LIVE];
    size_t nlive;
    stale_t stale[MAX_STALE]; /* recently freed addresses, a ring */
    size_t nstale, stale_at;
    uint64_t live_bytes;
    uint8_t next_fill;
    reports_t rep, rep2, rep_global;
} S;

static uint8_t foreign_buf[256]; /* memory of no heap */

static void on_error(const dh_error_t *err, void *user) {
    reports_t *r = user;
    r->calls++;
    r->code = err->code;
    r->ptr = err->ptr;
}

/* ---- the model --------------------------------------------------------- */

static int find_live(uintptr_t p) {
    for (size_t i = 0; i < S.nlive; i++)
        if ((uintptr_t)S.live[i].p == p) return (int)i;
    return -1;
}

/* n bytes at p all equal `byte`: compared a chunk at a time, because a
 * byte loop is slow under the fuzzer's comparison tracing. */
static bool all_equal(const uint8_t *p, size_t n, uint8_t byte) {
    static uint8_t chunk[4096];
    memset(chunk, byte, sizeof chunk);
    for (size_t at = 0; at < n; at += sizeof chunk) {
        size_t k = n - at < sizeof chunk ? n - at : sizeof chunk;
        if (memcmp(p + at, chunk, k) != 0) return false;
    }
    return true;
}

static void verify(const blk_t *b) { FUZZ_CHECK(all_equal(b->p, b->n, b->fill)); }

static void verify_all(void) {
    for (size_t i = 0; i < S.nlive; i++) verify(&S.live[i]);
}

/* A new block from heap `heap`: alignment, size, no overlap; then track it. */
static void adopt(dh_heap_t *heap, uint8_t *p, size_t n, size_t align,
                  bool is_class) {
    FUZZ_CHECK(p != NULL);
    FUZZ_CHECK(((uintptr_t)p & 15) == 0 && ((uintptr_t)p & (align - 1)) == 0);
    FUZZ_CHECK(dh_heap_of(p) == heap);
    size_t usable = dh_usable_size(p);
    FUZZ_CHECK(usable >= n && usable >= 16);
    FUZZ_CHECK(is_class ? usable <= 65536 : usable % 4096 == 0);
    FUZZ_CHECK(dh_handle_of(p).id == ((uintptr_t)p - dh_heap_base(heap)) >> 4);
    for (size_t i = 0; i < S.nlive; i++) {
        const blk_t *o = &S.live[i];
        FUZZ_CHECK((uintptr_t)p + usable <= (uintptr_t)o->p ||
                   (uintptr_t)o->p + o->usable <= (uintptr_t)p);
    }
    blk_t *b = &S.live[S.nlive++];
    b->p = p;
    b->n = n;
    b->usable = usable;
    b->fill = (uint8_t)(++S.next_fill | 1);
    b->is_class = is_class;
    b->heap = heap;
    memset(p, b->fill, n);
    S.live_bytes += usable;
}

static void remember_freed(const blk_t *b) {
    if (b->heap != S.h) return;
    S.stale[S.stale_at] = (stale_t){(uintptr_t)b->p, b->is_class};
    S.stale_at = (S.stale_at + 1) % MAX_STALE;
    if (S.nstale < MAX_STALE) S.nstale++;
}

/* Block i is no longer live (freed, or being resized). */
static void drop(size_t i) {
    S.live_bytes -= S.live[i].usable;
    S.live[i] = S.live[--S.nlive];
}

static void forget(size_t i) {
    remember_freed(&S.live[i]);
    drop(i);
}

static uint64_t live_in(dh_heap_t *heap) {
    uint64_t n = 0;
    for (size_t i = 0; i < S.nlive; i++) n += S.live[i].heap == heap;
    return n;
}

static void check_heaps(void) {
    FUZZ_CHECK(dh_heap_check(S.h) == DH_CHECK_OK);
    FUZZ_CHECK(dh_heap_check(S.h2) == DH_CHECK_OK);
    dh_stats_t s;
    FUZZ_CHECK(dh_heap_stats(S.h, &s, sizeof s));
    FUZZ_CHECK(s.live_count == live_in(S.h));
    FUZZ_CHECK(dh_heap_stats(S.h2, &s, sizeof s));
    FUZZ_CHECK(s.live_count == live_in(S.h2));
}

/* ---- valid calls ---------------------------------------------------------- */

static size_t pick_size(fuzz_in_t *in) {
    uint8_t k = fin_u8(in);
    switch (k % 8) {
    case 0: case 1: case 2: return fin_u8(in);
    case 3: return fin_u16(in) % 1025;
    case 4: return fin_u16(in) % 65537;
    case 5: return (size_t)16 << (k / 8 % 13); /* a power of two, 16..64K */
    case 6: return 65536 + (size_t)(k / 8 % 3) - 1;
    default: return 65537 + (size_t)fin_u16(in) * (1 + k / 8 % 16);
    }
}

static bool room_for(size_t n) {
    return S.nlive < MAX_LIVE && S.live_bytes + n + 4096 <= LIVE_BUDGET;
}

static void op_malloc(fuzz_in_t *in, dh_heap_t *heap) {
    size_t n = pick_size(in);
    if (!room_for(n)) return;
    uint8_t *p = dh_heap_malloc(heap, n);
    adopt(heap, p, n, 16, n <= 65536);
    dh_class_set_t set = dh_heap_class_set(heap);
    if (n <= 65536)
        FUZZ_CHECK(dh_usable_size(p) ==
                   dh_class_set_size(set, dh_class_set_of(set, n)));
}

static void op_calloc(fuzz_in_t *in) {
    uint8_t k = fin_u8(in);
    size_t count = fin_u16(in) % 300, size = fin_u16(in) % 600;
    if (k % 8 == 0) { /* count * size overflows */
        count = SIZE_MAX / 2 + k;
        size = 2 + k % 5;
        dh_stats_t before, after;
        FUZZ_CHECK(dh_heap_stats(S.h, &before, sizeof before));
        errno = 0;
        FUZZ_CHECK(dh_heap_calloc(S.h, count, size) == NULL && errno == ENOMEM);
        FUZZ_CHECK(dh_heap_stats(S.h, &after, sizeof after));
        FUZZ_CHECK(after.failed_allocs == before.failed_allocs + 1);
        FUZZ_CHECK(after.live_count == before.live_count);
        return;
    }
    size_t n = count * size;
    if (!room_for(n)) return;
    uint8_t *p = dh_heap_calloc(S.h, count, size);
    FUZZ_CHECK(p != NULL);
    FUZZ_CHECK(all_equal(p, n, 0));
    adopt(S.h, p, n, 16, n <= 65536);
}

static void op_aligned(fuzz_in_t *in) {
    uint8_t k = fin_u8(in);
    size_t n = pick_size(in);
    size_t align = (size_t)1 << (k % 21); /* 1 .. 1 MiB */
    if (k & 0x80) { /* not a power of two: 0, or two bits set */
        align = (k & 0x40) ? 0 : align | (align << (1 + k % 3)) | 1u << 3;
        if ((align & (align - 1)) != 0 || align == 0) {
            errno = 0;
            FUZZ_CHECK(dh_heap_aligned_alloc(S.h, align, n) == NULL);
            FUZZ_CHECK(errno == EINVAL);
            return;
        }
    }
    if (!room_for(n + align)) return;
    uint8_t *p = dh_heap_aligned_alloc(S.h, align, n);
    adopt(S.h, p, n, align, n <= 65536 && align <= 4096);
}

static void op_realloc(fuzz_in_t *in) {
    if (S.nlive == 0) return;
    size_t i = fin_u8(in) % S.nlive;
    blk_t b = S.live[i];
    size_t n = pick_size(in);
    if (b.heap != S.h) return;
    verify(&b);
    if (fin_u8(in) % 8 == 0 || n == 0) { /* realloc(p, 0) frees */
        FUZZ_CHECK(dh_heap_realloc(S.h, b.p, 0) == NULL);
        forget(i);
        return;
    }
    if (!room_for(n)) return;
    drop(i);
    uint8_t *q = dh_heap_realloc(S.h, b.p, n);
    FUZZ_CHECK(q != NULL);
    size_t keep = b.n < n ? b.n : n;
    FUZZ_CHECK(all_equal(q, keep, b.fill));
    if (q != b.p) remember_freed(&b);
    /* a class block grown to 4 KiB or more becomes a large block, and a
     * large block resized to 2 KiB or more stays one (docs/DESIGN.md) */
    bool large = b.is_class ? n > b.usable && n >= 4096 : n >= 2048;
    adopt(S.h, q, n, 16, n <= 65536 && !large);
}

static void op_free(fuzz_in_t *in) {
    if (S.nlive == 0) return;
    uint8_t k = fin_u8(in);
    size_t i = k % S.nlive;
    blk_t b = S.live[i];
    verify(&b);
    if (k & 0x80) dh_free(b.p); /* finds the heap itself */
    else if (b.heap == S.h) dh_heap_free(S.h, b.p);
    else dh_heap_free(S.h2, b.p);
    forget(i);
}

/* ---- misuse ------------------------------------------------------------------ */

/* Hand p to a freeing call that must reject it with `want` (or, when
 * `alt` is not DH_ERR_NONE, with either).  Nothing else may change. */
static void expect_rejected(int how, void *p, dh_error_code_t want,
                            dh_error_code_t alt) {
    dh_stats_t before, after;
    FUZZ_CHECK(dh_heap_stats(S.h, &before, sizeof before));
    S.rep.calls = 0;
    /* not a live block start (except, in the other heap, WRONG_HEAP's) */
    FUZZ_CHECK((dh_usable_size(p) == 0) == (want != DH_ERR_WRONG_HEAP));
    FUZZ_CHECK(S.rep.calls == 0);
    if (how == 0) {
        dh_heap_free(S.h, p);
    } else if (how == 1) {
        errno = 0;
        FUZZ_CHECK(dh_heap_realloc(S.h, p, 100) == NULL && errno == EINVAL);
    } else {
        dh_free(p); /* only for pointers inside S.h */
    }
    FUZZ_CHECK(S.rep.calls == 1 && S.rep.ptr == p);
    FUZZ_CHECK(S.rep.code == want || (alt != DH_ERR_NONE && S.rep.code == alt));
    FUZZ_CHECK(dh_heap_stats(S.h, &after, sizeof after));
    FUZZ_CHECK(after.rejected_by_code[S.rep.code] ==
               before.rejected_by_code[S.rep.code] + 1);
    FUZZ_CHECK(after.rejected_frees == before.rejected_frees + 1);
    FUZZ_CHECK(after.alloc_count == before.alloc_count &&
               after.free_count == before.free_count &&
               after.live_count == before.live_count &&
               after.live_bytes == before.live_bytes &&
               after.free_block_count == before.free_block_count &&
               after.storage_bytes == before.storage_bytes &&
               after.failed_allocs == before.failed_allocs);
}

static void op_misuse(fuzz_in_t *in) {
    uint8_t k = fin_u8(in), sel = fin_u8(in);
    int how = k / 8 % 3;
    uintptr_t base = dh_heap_base(S.h);
    switch (k % 8) {
    case 0: { /* a freed address, not live again */
        if (S.nstale == 0) return;
        stale_t st = S.stale[sel % S.nstale];
        if (find_live(st.p) >= 0) return;
        /* a class block's address stays a (free) class block in a spec
         * heap; a large block's may have been merged into a neighbour or
         * the top, and so may a fine heap's class block (its span given
         * back) */
        bool stays = st.is_class && dh_heap_class_set(S.h) == DH_CLASSES_SPEC;
        expect_rejected(how, (void *)st.p, DH_ERR_DOUBLE_FREE,
                        stays ? DH_ERR_NONE : DH_ERR_NOT_A_BLOCK);
        break;
    }
    case 1: { /* inside a live block, on a granule */
        if (S.nlive == 0) return;
        blk_t *b = &S.live[sel % S.nlive];
        if (b->heap != S.h || b->usable < 32) return;
        size_t off = 16 * (1 + fin_u16(in) % (b->usable / 16 - 1));
        expect_rejected(how, b->p + off, DH_ERR_NOT_A_BLOCK, DH_ERR_NONE);
        break;
    }
    case 2: { /* misaligned */
        if (S.nlive == 0) return;
        blk_t *b = &S.live[sel % S.nlive];
        if (b->heap != S.h) return;
        size_t off = 1 + fin_u8(in) % 15 + 16 * (fin_u8(in) % (b->usable / 16));
        expect_rejected(how, b->p + off, DH_ERR_MISALIGNED, DH_ERR_NONE);
        break;
    }
    case 3: /* the heap's own header, or beyond anything carved */
        if (sel & 1)
            expect_rejected(how, (void *)(base + 16 * (sel >> 1)),
                            DH_ERR_NOT_A_BLOCK, DH_ERR_NONE);
        else
            expect_rejected(how, (void *)(base + HEAP_RESERVE - 16 * (1 + sel)),
                            DH_ERR_NOT_A_BLOCK, DH_ERR_NONE);
        break;
    case 4: { /* memory of no heap: through dh_heap_free, this heap reports */
        if (how == 2) {
            unsigned before = S.rep_global.calls;
            uint64_t count = dh_foreign_frees();
            dh_free(foreign_buf + sel % 128);
            FUZZ_CHECK(S.rep_global.calls == before + 1);
            FUZZ_CHECK(S.rep_global.code == DH_ERR_FOREIGN);
            FUZZ_CHECK(dh_foreign_frees() == count + 1);
        } else {
            expect_rejected(how, foreign_buf + sel % 128, DH_ERR_FOREIGN,
                            DH_ERR_NONE);
        }
        break;
    }
    case 5: { /* a live block of the second heap, named with the first */
        for (size_t i = 0; i < S.nlive; i++) {
            blk_t *b = &S.live[(i + sel) % S.nlive];
            if (b->heap != S.h2) continue;
            expect_rejected(how == 2 ? 0 : how, b->p, DH_ERR_WRONG_HEAP,
                            DH_ERR_NONE);
            verify(b);
            break;
        }
        break;
    }
    case 6: { /* NULL: no-op, nothing reported */
        S.rep.calls = 0;
        dh_heap_free(S.h, NULL);
        dh_free(NULL);
        FUZZ_CHECK(S.rep.calls == 0 && dh_usable_size(NULL) == 0);
        break;
    }
    default: { /* the same block freed twice in a row */
        if (S.nlive == 0) return;
        size_t i = sel % S.nlive;
        blk_t b = S.live[i];
        if (b.heap != S.h) return;
        dh_heap_free(S.h, b.p);
        forget(i);
        expect_rejected(how, b.p, DH_ERR_DOUBLE_FREE,
                        b.is_class ? DH_ERR_NONE : DH_ERR_NOT_A_BLOCK);
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool once;
    if (!once) {
        once = true;
        FUZZ_CHECK(dh_set_default_error_policy(DH_ON_ERROR_CALLBACK, on_error,
                                               &S.rep_global));
    }
    memset(&S, 0, sizeof S);
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.reserve = HEAP_RESERVE;
    cfg.on_error = DH_ON_ERROR_CALLBACK;
    cfg.error_callback = on_error;
    cfg.error_user = &S.rep;
    /* the input's length picks the class set: odd lengths the fine one */
    cfg.classes = size % 2 ? DH_CLASSES_FINE : DH_CLASSES_SPEC;
    S.h = dh_heap_create(&cfg);
    cfg.reserve = 16 << 20;
    cfg.error_user = &S.rep2;
    S.h2 = dh_heap_create(&cfg);
    FUZZ_CHECK(S.h != NULL && S.h2 != NULL);

    fuzz_in_t in = {data, size, false};
    while (!in.done) {
        uint8_t op = fin_u8(&in);
        if (in.done) break;
        switch (op % 10) {
        case 0: case 1: op_malloc(&in, S.h); break;
        case 2: op_calloc(&in); break;
        case 3: op_aligned(&in); break;
        case 4: op_realloc(&in); break;
        case 5: case 6: op_free(&in); break;
        case 7: op_malloc(&in, S.h2); break;
        default: op_misuse(&in); break;
        }
        check_heaps();
        FUZZ_CHECK(S.rep2.calls == 0);
    }
    verify_all();
    while (S.nlive) {
        dh_free(S.live[S.nlive - 1].p);
        forget(S.nlive - 1);
    }
    check_heaps();
    FUZZ_CHECK(S.rep2.calls == 0);
    dh_heap_destroy(S.h2);
    dh_heap_destroy(S.h);
    return 0;
}
