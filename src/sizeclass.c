/*
 * sizeclass.c - the class sets and the O(1) map from a request size to its
 * class in each.
 *
 * The spec set (the original design's 13 classes): a 65-entry table for
 * sizes up to 1 KiB (indexed by size / 16, rounded up), the bit length of
 * the size for 1 KiB .. 16 KiB, and one class for 16 KiB .. 64 KiB.
 *
 * The fine set (59 classes): 16-byte steps up to 256 B, 8 classes per
 * doubling up to 2 KiB, 4 up to 4 KiB, then 65536 / k rounded down to 16
 * bytes for k = 15 .. 1 blocks per span (4368, 4672, .. 21840, 32768,
 * 65536 B), so that a span of those classes wastes less than 16 bytes a
 * block.  One table indexed by size / 16 (rounded up) for sizes up to
 * 16 KiB, three compares above.  Each size takes the smallest class that
 * holds it, but two ranges: 10,913..12,288 bytes take the 16 KiB class and
 * 16,385..20,480 the 32 KiB one.  Those classes' blocks are page-aligned,
 * and pages of a block that the program never writes are never backed by
 * memory, so such a request costs its whole pages (3 or 5), less than the
 * next class (13,104 or 21,840 bytes, whose blocks share pages with their
 * neighbours).  Worst case, a request of n bytes with 128 < n <= 2048 gets
 * a block of at most 1.125 n, with 2048 < n <= 16384 about 1.25 n of
 * memory (2049 -> 2560; 13105 -> 16384 is 1.2502 n; 10913 -> 12288 bytes
 * of pages, 1.126 n, in a block of 16384, 1.5 n of address space), above
 * 16 KiB 2 n (32769 -> 65536; the spec set: 4 n, 16385 -> 65536).
 */
#include "internal.h"

const uint32_t dh_class_sizes[DH_NUM_CLASSES] = {
    16, 32, 48, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536,
};

#define R4(c) c, c, c, c
#define R8(c) R4(c), R4(c)
#define R16(c) R8(c), R8(c)
#define R32(c) R16(c), R16(c)
const uint8_t dh_small_class[65] = {
    0,      /* 0 bytes: the smallest class */
    0,      /* 1..16 */
    1,      /* 17..32 */
    2,      /* 33..48 */
    3,      /* 49..64 */
    R4(4),  /* 65..128 */
    R8(5),  /* 129..256 */
    R16(6), /* 257..512 */
    R32(7), /* 513..1024 */
};

const uint32_t dh_fine_sizes[DH_FINE_CLASSES] = {
    16, 32, 48, 64, 80, 96, 112, 128, 144, 160,
    176, 192, 208, 224, 240, 256, 288, 320, 352, 384,
    416, 448, 480, 512, 576, 640, 704, 768, 832, 896,
    960, 1024, 1152, 1280, 1408, 1536, 1664, 1792, 1920, 2048,
    2560, 3072, 3584, 4096, 4368, 4672, 5040, 5456, 5952, 6544,
    7280, 8192, 9360, 10912, 13104, 16384, 21840, 32768, 65536,
};

/* The fine class of n <= 16 KiB, by (n + 15) / 16 (GNU range designators:
 * each line is one class and the sizes it serves, in 16-byte units). */
const uint8_t dh_fine_class[DH_FINE_TABLE] = {
    [0 ... 1] = 0, [2] = 1, [3] = 2, [4] = 3,
    [5] = 4, [6] = 5, [7] = 6, [8] = 7,
    [9] = 8, [10] = 9, [11] = 10, [12] = 11,
    [13] = 12, [14] = 13, [15] = 14, [16] = 15,
    [17 ... 18] = 16, [19 ... 20] = 17, [21 ... 22] = 18, [23 ... 24] = 19,
    [25 ... 26] = 20, [27 ... 28] = 21, [29 ... 30] = 22, [31 ... 32] = 23,
    [33 ... 36] = 24, [37 ... 40] = 25, [41 ... 44] = 26, [45 ... 48] = 27,
    [49 ... 52] = 28, [53 ... 56] = 29, [57 ... 60] = 30, [61 ... 64] = 31,
    [65 ... 72] = 32, [73 ... 80] = 33, [81 ... 88] = 34, [89 ... 96] = 35,
    [97 ... 104] = 36, [105 ... 112] = 37, [113 ... 120] = 38, [121 ... 128] = 39,
    [129 ... 160] = 40, [161 ... 192] = 41, [193 ... 224] = 42, [225 ... 256] = 43,
    [257 ... 273] = 44, [274 ... 292] = 45, [293 ... 315] = 46, [316 ... 341] = 47,
    [342 ... 372] = 48, [373 ... 409] = 49, [410 ... 455] = 50, [456 ... 512] = 51,
    [513 ... 585] = 52, [586 ... 682] = 53, [683 ... 768] = 55, [769 ... 819] = 54, [820 ... 1024] = 55,
    /* 683 .. 768: 10,913..12,288 B take the 16 KiB class, not 13,104 */
};

size_t dh_class_size(int c) {
    return (c >= 0 && c < DH_NUM_CLASSES) ? dh_class_sizes[c] : 0;
}

int dh_size_class(size_t n) { return dh_class_of(n); }

int dh_class_set_count(dh_class_set_t set) {
    return set == DH_CLASSES_SPEC   ? DH_NUM_CLASSES
           : set == DH_CLASSES_FINE ? DH_FINE_CLASSES
                                    : 0;
}

size_t dh_class_set_size(dh_class_set_t set, int c) {
    if (c < 0 || c >= dh_class_set_count(set)) return 0;
    return set == DH_CLASSES_FINE ? dh_fine_sizes[c] : dh_class_sizes[c];
}

int dh_class_set_of(dh_class_set_t set, size_t n) {
    if (set == DH_CLASSES_FINE) return dh_fine_class_of(n);
    return set == DH_CLASSES_SPEC ? dh_class_of(n) : -1;
}

uint32_t dh_version(void) { return DH_VERSION; }
