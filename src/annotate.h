/*
 * annotate.h - telling memory checkers what detheap hands out.  With
 * -DDETHEAP_VALGRIND=ON (valgrind's client requests, headers from Debian's
 * valgrind package) memcheck sees detheap's blocks as heap blocks; in an
 * ASan build (__SANITIZE_ADDRESS__) free blocks are poisoned.  Either way a
 * use after free, or an overflow into a free or uncarved neighbour, is
 * reported.  Otherwise every hook compiles to nothing.
 *
 *   DH_BLOCK_ALLOC(p, n)     p..p+n becomes a live block
 *   DH_BLOCK_FREE(p, n)      p..p+n is free: no access
 *   DH_MEM_ACCESS(p, n)      the allocator itself is about to use p..p+n
 *                            (a free-list link, a tree node)
 *   DH_MEM_NOACCESS(p, n)    ... and is done with it
 *   DH_MEM_DEFINED(p, n)     p..p+n holds defined bytes (fresh memory
 *                            calloc hands out without clearing: zero)
 *
 * The first 32 bytes of a free large block (its tree node) stay
 * accessible, because the tree walks them; a stray write there is not
 * reported.  While annotating, large blocks are never resized in place.
 */
#ifndef DH_ANNOTATE_H
#define DH_ANNOTATE_H

/* DH_UNDER_VALGRIND: the valgrind build's test for running under it (0
 * elsewhere). */
#if defined(DETHEAP_VALGRIND)
#include <valgrind/memcheck.h>
#define DH_ANNOTATING 1
#define DH_UNDER_VALGRIND RUNNING_ON_VALGRIND
#define DH_BLOCK_ALLOC(p, n) VALGRIND_MALLOCLIKE_BLOCK((p), (n), 0, 0)
#define DH_BLOCK_FREE(p, n) VALGRIND_FREELIKE_BLOCK((p), 0)
#define DH_MEM_ACCESS(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))
#define DH_MEM_NOACCESS(p, n) VALGRIND_MAKE_MEM_NOACCESS((p), (n))
#define DH_MEM_DEFINED(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))
#elif defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define DH_ANNOTATING 1
#define DH_BLOCK_ALLOC(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define DH_BLOCK_FREE(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define DH_MEM_ACCESS(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define DH_MEM_NOACCESS(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define DH_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#else
#define DH_ANNOTATING 0
#define DH_BLOCK_ALLOC(p, n) ((void)(p), (void)(n))
#define DH_BLOCK_FREE(p, n) ((void)(p), (void)(n))
#define DH_MEM_ACCESS(p, n) ((void)(p), (void)(n))
#define DH_MEM_NOACCESS(p, n) ((void)(p), (void)(n))
#define DH_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#endif
#ifndef DH_UNDER_VALGRIND
#define DH_UNDER_VALGRIND 0
#endif

/* Pop the first link of a free list whose head is p: returns the next. */
#define DH_LINK_READ(p) (DH_MEM_ACCESS((p), sizeof(void *)), *(void **)(p))
/* Write a free block's link, leaving the block inaccessible again. */
#define DH_LINK_WRITE(p, next)                   \
    do {                                         \
        DH_MEM_ACCESS((p), sizeof(void *));      \
        *(void **)(p) = (next);                  \
        DH_MEM_NOACCESS((p), sizeof(void *));    \
    } while (0)

#endif /* DH_ANNOTATE_H */
