/*
 * scribble.h - the write after free that the integrity tests commit on
 * purpose.  In an ASan build detheap poisons free blocks, so ASan would
 * stop the test at its own (intended) bug: each 8-byte word is unpoisoned
 * for the write and poisoned again if it was, so that what detheap then
 * finds is exactly what a buggy program leaves.  The bytes are written one
 * by one through a volatile pointer, so no memcpy interceptor sees them.
 */
#ifndef DH_TESTS_SCRIBBLE_H
#define DH_TESTS_SCRIBBLE_H

#include <stddef.h>
#include <stdint.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(__SANITIZE_ADDRESS__)
#define __SANITIZE_ADDRESS__ 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

static inline void scribble(void *dst, const void *src, size_t n) {
    volatile unsigned char *d = dst;
    const unsigned char *s = src;
    for (size_t i = 0; i < n; i += 8) {
        size_t k = n - i < 8 ? n - i : 8;
#if defined(__SANITIZE_ADDRESS__)
        int was = __asan_address_is_poisoned((const void *)(d + i));
        ASAN_UNPOISON_MEMORY_REGION((void *)(d + i), k);
#endif
        for (size_t j = 0; j < k; j++) d[i + j] = s[i + j];
#if defined(__SANITIZE_ADDRESS__)
        if (was) ASAN_POISON_MEMORY_REGION((void *)(d + i), k);
#endif
    }
}

#endif /* DH_TESTS_SCRIBBLE_H */
