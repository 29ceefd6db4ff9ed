/*
 * fuzz_handle.c - the handle API against a model of the original design.
 *
 * The input is a program of handle operations (alloc of 0..64 KiB and of
 * large sizes, free, double free, free of never-issued handles, write,
 * read, stats) run on a fresh heap.  Beside it runs a model written from
 * the original design's definition: a registry of blocks with an in-use
 * flag, a LIFO free list of block indices per class, a block carved when
 * its class's list is empty, double free and any use of a block that is
 * not live a harmless no-op, and the counters alloc/free/live/total/free
 * blocks.
 *
 * After every operation the two must agree, and dh_heap_check must pass:
 *   - handles are equal up to a renaming: model index i always maps to the
 *     same handle, and no two indices share one (a bijection built as
 *     blocks are carved, so LIFO reuse must give back exactly the handle
 *     the model reuses);
 *   - dh_get is NULL exactly when the model says "not live", and a live
 *     block has its class's size and the bytes last written to it (with
 *     detheap's documented difference: a reused block's first 8 bytes,
 *     its old free-list link, read as zero);
 *   - the statistics equal the model's counters.
 * Blocks over 64 KiB are where detheap deliberately differs (best fit and
 * coalescing instead of one overflow list), so for them only what is
 * defined either way is compared: liveness while live, contents, counts.
 * A stale large handle may name a new block later, so it is never reused.
 *
 * Any divergence traps, so libFuzzer keeps the input.
 */
#include "fuzz_input.h"

#include <detheap.h>
#include <stdlib.h>
#include <string.h>

enum {
    MAX_BLOCKS = 2048,             /* model block indices per input */
    MAX_LARGE = 64,                /* live large blocks */
    SHADOW_MAX = 4096,             /* bytes of each block that are tracked */
    HASH_CAP = 8192,               /* handle -> model index, open addressing */
    STORAGE_BUDGET = 4 << 20,      /* bytes the program may occupy: the
                                      check after each step walks them */
    FULL_COMPARE_EVERY = 64,
};

static const size_t class_size[13] = {16,   32,   48,   64,   128,  256,  512,
                                      1024, 2048, 4096, 8192, 16384, 65536};

typedef struct {
    uint64_t handle; /* the detheap handle this index is renamed to */
    int cls;
    bool in_use;
    uint8_t *shadow; /* the first min(size, SHADOW_MAX) bytes */
    size_t shadow_len;
} mblock_t;

typedef struct {
    uint64_t handle;
    size_t size;
    uint8_t *shadow;
    size_t shadow_len;
} mlarge_t;

typedef struct {
    dh_heap_t *h;
    mblock_t blocks[MAX_BLOCKS];
    size_t nblocks;
    int flist[13][MAX_BLOCKS]; /* LIFO free lists of model indices */
    size_t flen[13];
    uint64_t hkeys[HASH_CAP];
    int hvals[HASH_CAP];
    mlarge_t large[MAX_LARGE];
    size_t nlarge;
    uint64_t alloc_count, free_count, live, rejected;
    uint64_t allocs[13], frees[13], carved[13];
    uint64_t storage;  /* class carving plus live large bytes */
    bool dirty;        /* a large block was freed: carved memory may hold
                          old bytes, so fresh blocks are not known zero */
} model_t;

static model_t M;

/* ---- handle -> index map ------------------------------------------------- */

static size_t hslot(uint64_t key) {
    size_t i = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 51) & (HASH_CAP - 1);
    while (M.hkeys[i] != 0 && M.hkeys[i] != key) i = (i + 1) & (HASH_CAP - 1);
    return i;
}
static int hfind(uint64_t key) {
    size_t i = hslot(key);
    return M.hkeys[i] == key ? M.hvals[i] : -1;
}
static void hput(uint64_t key, int val) {
    size_t i = hslot(key);
    M.hkeys[i] = key;
    M.hvals[i] = val;
}

static int ref_class(size_t n) {
    for (int c = 0; c < 13; c++)
        if (n <= class_size[c]) return c;
    return -1;
}

static int large_find(uint64_t handle) {
    for (size_t j = 0; j < M.nlarge; j++)
        if (M.large[j].handle == handle) return (int)j;
    return -1;
}

/* ---- comparisons ------------------------------------------------------------ */

static void compare_stats(void) {
    dh_stats_t s;
    FUZZ_CHECK(dh_heap_stats(M.h, &s, sizeof s));
    FUZZ_CHECK(s.alloc_count == M.alloc_count);
    FUZZ_CHECK(s.free_count == M.free_count);
    FUZZ_CHECK(s.live_count == M.live);
    FUZZ_CHECK(s.large_live_count == M.nlarge);
    FUZZ_CHECK(s.rejected_handle_frees == M.rejected);
    FUZZ_CHECK(s.rejected_frees == 0 && s.failed_allocs == 0);
    uint64_t carved = 0, free_blocks = 0;
    for (int c = 0; c < 13; c++) {
        const dh_class_stats_t *cs = &s.classes[c];
        FUZZ_CHECK(cs->size == class_size[c]);
        FUZZ_CHECK(cs->allocs == M.allocs[c] && cs->frees == M.frees[c]);
        FUZZ_CHECK(cs->carved == M.carved[c] && cs->free == M.flen[c]);
        FUZZ_CHECK(cs->live == M.allocs[c] - M.frees[c]);
        carved += M.carved[c];
        free_blocks += M.flen[c];
    }
    /* the class part of the original design's totals */
    FUZZ_CHECK(s.total_blocks >= carved);
    FUZZ_CHECK(s.free_block_count - s.large_free_count == free_blocks);
    FUZZ_CHECK(dh_heap_check(M.h) == DH_CHECK_OK);
}

static void compare_block(size_t i) {
    mblock_t *b = &M.blocks[i];
    dh_handle_t hd = {b->handle};
    size_t len = 12345;
    uint8_t *p = dh_get(M.h, hd, &len);
    FUZZ_CHECK((p != NULL) == b->in_use);
    if (!b->in_use) {
        FUZZ_CHECK(len == 0 && dh_ptr_of(M.h, hd) == NULL);
        return;
    }
    FUZZ_CHECK(len == class_size[b->cls]);
    FUZZ_CHECK((uintptr_t)p == dh_heap_base(M.h) + (b->handle << 4));
    FUZZ_CHECK(dh_handle_of(p).id == b->handle);
    FUZZ_CHECK(memcmp(p, b->shadow, b->shadow_len) == 0);
}

static void compare_large(size_t j) {
    mlarge_t *l = &M.large[j];
    size_t len = 0;
    uint8_t *p = dh_get(M.h, (dh_handle_t){l->handle}, &len);
    FUZZ_CHECK(p != NULL && len >= l->size && len % 4096 == 0);
    FUZZ_CHECK(memcmp(p, l->shadow, l->shadow_len) == 0);
}

static void compare_all(void) {
    for (size_t i = 0; i < M.nblocks; i++) compare_block(i);
    for (size_t j = 0; j < M.nlarge; j++) compare_large(j);
}

/* ---- operations -------------------------------------------------------------- */

static size_t pick_size(fuzz_in_t *in) {
    uint8_t k = fin_u8(in);
    switch (k % 8) {
    case 4: return fin_u16(in) % 65537;
    case 5: { /* a class boundary: size - 1, size, size + 1 */
        size_t s = class_size[fin_u8(in) % 13];
        return s + (size_t)(k / 8 % 3) - 1;
    }
    case 6: return fin_u16(in) % 4097;
    case 7: return 65537 + (size_t)fin_u16(in) * (1 + k / 8 % 4);
    default: return fin_u8(in);
    }
}

static uint8_t *snapshot(const void *p, size_t n) {
    uint8_t *s = malloc(n ? n : 1);
    FUZZ_CHECK(s != NULL);
    memcpy(s, p, n);
    return s;
}

static void op_alloc(size_t n) {
    int c = ref_class(n);
    if (c < 0) {
        if (M.nlarge == MAX_LARGE || M.storage + n > STORAGE_BUDGET) return;
        dh_handle_t hd = dh_alloc(M.h, n);
        FUZZ_CHECK(hd.id != 0);
        FUZZ_CHECK(hfind(hd.id) < 0 && large_find(hd.id) < 0);
        size_t len = 0;
        uint8_t *p = dh_get(M.h, hd, &len);
        FUZZ_CHECK(p != NULL && len >= n && ((uintptr_t)p & 4095) == 0);
        mlarge_t *l = &M.large[M.nlarge++];
        l->handle = hd.id;
        l->size = n;
        l->shadow_len = n < SHADOW_MAX ? n : SHADOW_MAX;
        l->shadow = snapshot(p, l->shadow_len);
        M.storage += len;
        M.alloc_count++;
        M.live++;
        return;
    }
    bool reuse = M.flen[c] > 0;
    if (!reuse && (M.nblocks == MAX_BLOCKS ||
                   M.storage + class_size[c] > STORAGE_BUDGET))
        return;
    dh_handle_t hd = dh_alloc(M.h, n);
    FUZZ_CHECK(hd.id != 0);
    mblock_t *b;
    if (reuse) { /* the original design pops its LIFO list */
        b = &M.blocks[M.flist[c][--M.flen[c]]];
        FUZZ_CHECK(hd.id == b->handle);
        memset(b->shadow, 0, b->shadow_len < 8 ? b->shadow_len : 8);
    } else { /* ... or carves a new block: a handle never seen before */
        FUZZ_CHECK(hfind(hd.id) < 0 && large_find(hd.id) < 0);
        b = &M.blocks[M.nblocks];
        hput(hd.id, (int)M.nblocks++);
        b->handle = hd.id;
        b->cls = c;
        b->shadow_len = class_size[c] < SHADOW_MAX ? class_size[c] : SHADOW_MAX;
        if (M.dirty) {
            b->shadow = snapshot(dh_ptr_of(M.h, hd), b->shadow_len);
        } else {
            b->shadow = calloc(1, b->shadow_len);
            FUZZ_CHECK(b->shadow != NULL);
        }
        M.carved[c]++;
        M.storage += class_size[c];
    }
    b->in_use = true;
    M.allocs[c]++;
    M.alloc_count++;
    M.live++;
    compare_block((size_t)(b - M.blocks));
}

/* Free model index i (live or not): the original design's free. */
static void op_free_index(size_t i) {
    mblock_t *b = &M.blocks[i];
    dh_free(M.h, (dh_handle_t){b->handle});
    if (!b->in_use) {
        M.rejected++;
    } else {
        b->in_use = false;
        M.flist[b->cls][M.flen[b->cls]++] = (int)i;
        M.frees[b->cls]++;
        M.free_count++;
        M.live--;
    }
    compare_block(i);
}

static void op_free_large(size_t j) {
    dh_free(M.h, (dh_handle_t){M.large[j].handle});
    size_t len = 0;
    FUZZ_CHECK(dh_get(M.h, (dh_handle_t){M.large[j].handle}, &len) == NULL);
    free(M.large[j].shadow);
    M.storage -= (M.large[j].size + 4095) & ~(size_t)4095;
    M.large[j] = M.large[--M.nlarge];
    M.free_count++;
    M.live--;
    M.dirty = true;
}

/* A handle no block was ever given: every use is a no-op. */
static void op_never_issued(fuzz_in_t *in) {
    uint64_t id;
    switch (fin_u8(in) % 4) {
    case 0: id = 0; break;
    case 1: id = UINT64_MAX - fin_u8(in); break;
    case 2: id = (uint64_t)1 << (fin_u8(in) % 64); break;
    default: id = fin_u32(in) % ((256u << 20) >> 4); break;
    }
    if (hfind(id) >= 0 || large_find(id) >= 0) return; /* issued after all */
    dh_handle_t hd = {id};
    size_t len = 7;
    FUZZ_CHECK(dh_get(M.h, hd, &len) == NULL && len == 0);
    uint8_t byte = 0xa5;
    FUZZ_CHECK(!dh_write(M.h, hd, &byte, 1));
    dh_free(M.h, hd);
    M.rejected++;
}

static void op_write(fuzz_in_t *in, bool large) {
    static uint8_t data[SHADOW_MAX + 64];
    uint8_t how = fin_u8(in), seed = fin_u8(in);
    uint64_t handle;
    size_t size;
    uint8_t *shadow = NULL;
    bool live;
    if (large) {
        if (M.nlarge == 0) return;
        mlarge_t *l = &M.large[fin_u8(in) % M.nlarge];
        handle = l->handle;
        size = l->size; /* the tracked part; the block may be bigger */
        shadow = l->shadow;
        live = true;
    } else {
        if (M.nblocks == 0) return;
        mblock_t *b = &M.blocks[fin_u16(in) % M.nblocks];
        handle = b->handle;
        size = class_size[b->cls];
        shadow = b->shadow;
        live = b->in_use;
    }
    size_t len;
    switch (how % 4) {
    case 0: len = how / 4; break;
    case 1: len = size; break;
    case 2: len = size + 1 + how / 16; break; /* too long: truncated */
    default: len = fin_u16(in) % (SHADOW_MAX + 1); break;
    }
    if (size > SHADOW_MAX && len > SHADOW_MAX) len = SHADOW_MAX;
    if (large && len > size) len = size; /* its true size is not modelled */
    if (len > sizeof data) len = sizeof data;
    for (size_t k = 0; k < len; k++) data[k] = (uint8_t)(seed + k * 31);
    FUZZ_CHECK(dh_write(M.h, (dh_handle_t){handle}, data, len) == live);
    size_t copied = len < size ? len : size;
    if (live) memcpy(shadow, data, copied < SHADOW_MAX ? copied : SHADOW_MAX);
}

static void run(fuzz_in_t *in) {
    for (unsigned step = 1; !in->done; step++) {
        uint8_t op = fin_u8(in);
        if (in->done) break;
        switch (op % 12) {
        case 0: case 1: case 2: case 3:
            op_alloc(pick_size(in));
            break;
        case 4: case 5:
            if (op & 0x80) {
                if (M.nlarge) op_free_large(fin_u8(in) % M.nlarge);
            } else if (M.nblocks) {
                op_free_index(fin_u16(in) % M.nblocks);
            }
            break;
        case 6: /* double free */
            if (M.nblocks) {
                size_t i = fin_u16(in) % M.nblocks;
                op_free_index(i);
                op_free_index(i);
            }
            break;
        case 7:
            op_never_issued(in);
            break;
        case 8: case 9:
            op_write(in, (op & 0x80) != 0);
            break;
        case 10:
            if (M.nblocks) compare_block(fin_u16(in) % M.nblocks);
            if (M.nlarge) compare_large(fin_u8(in) % M.nlarge);
            break;
        default: { /* alloc exactly a class size, the original's own sizes */
            op_alloc(class_size[fin_u8(in) % 13]);
            break;
        }
        }
        compare_stats();
        if (step % FULL_COMPARE_EVERY == 0) compare_all();
    }
    compare_all();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    memset(&M, 0, sizeof M);
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.reserve = (uint64_t)256 << 20;
    M.h = dh_heap_create(&cfg);
    FUZZ_CHECK(M.h != NULL);
    fuzz_in_t in = {data, size, false};
    run(&in);
    /* Free everything, in index order, and the heap must be empty. */
    for (size_t i = 0; i < M.nblocks; i++)
        if (M.blocks[i].in_use) op_free_index(i);
    while (M.nlarge) op_free_large(M.nlarge - 1);
    compare_stats();
    dh_stats_t s;
    FUZZ_CHECK(dh_heap_stats(M.h, &s, sizeof s) && s.live_count == 0 &&
               s.live_bytes == 0);
    for (size_t i = 0; i < M.nblocks; i++) free(M.blocks[i].shadow);
    dh_heap_destroy(M.h);
    return 0;
}
