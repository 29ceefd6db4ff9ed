/*
 * sizeclass.c - the 13 size classes of the original design and the O(1)
 * map from a request size to its class: a 65-entry table for sizes up to
 * 1 KiB (indexed by size / 16, rounded up), the bit length of the size for
 * 1 KiB .. 16 KiB, and one class for 16 KiB .. 64 KiB.
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

size_t dh_class_size(int c) {
    return (c >= 0 && c < DH_NUM_CLASSES) ? dh_class_sizes[c] : 0;
}

int dh_size_class(size_t n) { return dh_class_of(n); }

uint32_t dh_version(void) { return DH_VERSION; }
