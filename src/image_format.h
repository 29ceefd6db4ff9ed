/*
 * image_format.h - the on-disk format of a heap image (docs/IMAGE.md) and
 * the hash that checks it.  Header-only, so that the fuzzer and the tests
 * that forge images use the very definitions the library reads.
 *
 * File layout (every part starts on a 4 KiB boundary; a page that is zero
 * in memory is a hole in the file):
 *
 *   0           image header (this struct, one 4 KiB page)
 *   table_off   data hashes: one 64-bit hash per 1 MiB chunk of data,
 *               room for the whole range's data
 *   header_off  the heap header: header_len bytes from base (struct dh_heap)
 *   body_off    the range from state_start (the span map, then the state
 *               map) to data_end, byte for byte, so that growth of a shared
 *               image only extends the file:
 *                 [state_start, state_end)   committed state map (saved)
 *                 [state_end, data_start)    not committed: a hole
 *                 [data_start, data_end)     committed data (saved)
 *
 * Integers are little-endian (x86-64's own order); addresses are the
 * saving process's, which is why an image maps only at its base.
 */
#ifndef DH_IMAGE_FORMAT_H
#define DH_IMAGE_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The layout of struct dh_heap as an image stores it.  Bump it whenever
 * a field of struct dh_heap (src/internal.h) is added, removed, moved or
 * changes meaning: dh_heap_open refuses an image of another layout
 * (ENOEXEC), as it refuses one whose recorded sizeof(struct dh_heap)
 * differs. */
#define DH_IMAGE_LAYOUT 2u

#define DH_IMG_MAGIC "DHIMAGE" /* 8 bytes with its NUL */
#define DH_IMG_PAGE 4096u      /* the file's page; the OS page must be it */
#define DH_IMG_CHUNK ((uint64_t)1 << 20) /* bytes of data per data hash */
#define DH_IMG_MAX_CLASSES 64u

/* flags */
#define DH_IMG_SEALED 1u      /* the hashes below are those of the file */
#define DH_IMG_DATA_HASHED 2u /* the data hash table is current */

/* Hash seeds, one per part, so that parts cannot stand in for each
 * other; a chunk's seed adds its index. */
enum {
    DH_IMG_SEED_HEADER = 1,
    DH_IMG_SEED_HEAP,
    DH_IMG_SEED_STATE,
    DH_IMG_SEED_TABLE,
    DH_IMG_SEED_CHUNK
};

typedef struct dh_img_header {
    char magic[8];             /* DH_IMG_MAGIC */
    uint32_t format;           /* DH_IMAGE_FORMAT (detheap.h) */
    uint32_t header_bytes;     /* sizeof(dh_img_header_t) */
    uint32_t layout;           /* DH_IMAGE_LAYOUT */
    uint32_t heap_struct;      /* sizeof(struct dh_heap) */
    uint32_t page;             /* DH_IMG_PAGE */
    uint32_t granule_shift;    /* DH_GRANULE_SHIFT, DH_PAGE_SHIFT, */
    uint32_t page_shift;       /* DH_SPAN_SHIFT of the library that */
    uint32_t span_shift;       /* wrote it */
    uint32_t flags;            /* DH_IMG_SEALED | DH_IMG_DATA_HASHED */
    uint32_t class_count;      /* size classes of the heap */
    uint32_t class_sizes[DH_IMG_MAX_CLASSES];
    uint64_t library_version;  /* DH_VERSION of the writer */
    uint64_t base;             /* the range: where the image maps */
    uint64_t size;             /* its size (a power of two) */
    uint64_t limit;            /* its end */
    uint64_t mapped;           /* bytes reserved at base */
    uint64_t table_off;        /* data hash table */
    uint64_t table_bytes;      /* its room (for the whole range's data) */
    uint64_t header_off;       /* the heap header */
    uint64_t header_len;
    uint64_t body_off;         /* the file offset of state_start */
    uint64_t state_start;      /* committed state map (span map first) */
    uint64_t state_end;
    uint64_t data_start;       /* committed data */
    uint64_t data_end;
    uint64_t high_water;       /* carved data ends here */
    uint64_t root;             /* dh_heap_root */
    uint64_t file_bytes;       /* the file's length */
    uint64_t heap_hash;        /* of the heap header's header_len bytes */
    uint64_t state_hash;       /* of [state_start, state_end) */
    uint64_t table_hash;       /* of the table's used entries */
    uint64_t header_hash;      /* of the whole first page, this field 0 */
} dh_img_header_t;

_Static_assert(sizeof(dh_img_header_t) <= DH_IMG_PAGE,
               "the image header fits its page");
_Static_assert(sizeof(dh_img_header_t) % 8 == 0, "no tail padding");

/* Bytes of data hash table an image of this geometry has room for. */
static inline uint64_t dh_img_table_bytes(uint64_t data_start,
                                          uint64_t limit) {
    uint64_t chunks = (limit - data_start + DH_IMG_CHUNK - 1) / DH_IMG_CHUNK;
    return (chunks * 8 + DH_IMG_PAGE - 1) / DH_IMG_PAGE * DH_IMG_PAGE;
}

/* ---- the hash --------------------------------------------------------------
 *
 * Four independent 64-bit lanes take one word each per 32 bytes (xor,
 * rotate, multiply by an odd constant: a bijection of the lane for each
 * word, so that a changed word always changes its lane), the tail is
 * padded with zeros, and the lanes, the length and the seed are folded
 * through a 64-bit finaliser.  About 7 bytes per cycle; not a MAC: it
 * finds damage, not a forger. */

static inline uint64_t dh_img_rotl(uint64_t x, unsigned r) {
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t dh_img_fold(uint64_t x) {
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dull;
    x ^= x >> 33;
    return x;
}

static inline uint64_t dh_img_word(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

static inline uint64_t dh_img_hash(uint64_t seed, const void *data,
                                   uint64_t n) {
    static const uint64_t k[4] = {0xa0761d6478bd642full, 0xe7037ed1a0b428dbull,
                                  0x8ebc6af09c88c6e3ull, 0x589965cc75374cc3ull};
    const unsigned char *p = data;
    uint64_t a = seed ^ k[0], b = seed + k[1], c = ~seed ^ k[2],
             d = dh_img_rotl(seed, 32) ^ k[3];
    uint64_t left = n;
    for (; left >= 32; left -= 32, p += 32) {
        a = dh_img_rotl(a ^ dh_img_word(p), 23) * k[0];
        b = dh_img_rotl(b ^ dh_img_word(p + 8), 29) * k[1];
        c = dh_img_rotl(c ^ dh_img_word(p + 16), 31) * k[2];
        d = dh_img_rotl(d ^ dh_img_word(p + 24), 37) * k[3];
    }
    unsigned char tail[32] = {0};
    memcpy(tail, p, (size_t)left);
    a = dh_img_rotl(a ^ dh_img_word(tail), 23) * k[0];
    b = dh_img_rotl(b ^ dh_img_word(tail + 8), 29) * k[1];
    c = dh_img_rotl(c ^ dh_img_word(tail + 16), 31) * k[2];
    d = dh_img_rotl(d ^ dh_img_word(tail + 24), 37) * k[3];
    uint64_t h = dh_img_fold(a) ^ dh_img_rotl(dh_img_fold(b), 16) ^
                 dh_img_rotl(dh_img_fold(c), 32) ^
                 dh_img_rotl(dh_img_fold(d), 48);
    return dh_img_fold(h ^ n * k[1] ^ seed);
}

/* The header hash: of the first page with header_hash read as 0. */
static inline uint64_t dh_img_header_hash(const void *page) {
    unsigned char copy[DH_IMG_PAGE];
    memcpy(copy, page, DH_IMG_PAGE);
    memset(copy + offsetof(dh_img_header_t, header_hash), 0, 8);
    return dh_img_hash(DH_IMG_SEED_HEADER, copy, DH_IMG_PAGE);
}

#endif /* DH_IMAGE_FORMAT_H */
