/*
 * config.h - every compile-time knob of detheap, with its default, and the
 * static assertions that tie the knobs together.  Override a knob with
 * -DNAME=value; the asserts say which combinations are allowed.
 *
 * Determinism note: none of these depend on the machine.  In particular
 * DH_PAGE is a fixed 4 KiB, not the OS page size, so that large blocks are
 * carved at the same offsets on every machine; the OS page size only decides
 * how commits are rounded.
 */
#ifndef DH_CONFIG_H
#define DH_CONFIG_H

#include <assert.h>
#include <stdint.h>

/* Bytes per granule: the alignment of every block and the unit of the
 * state map (one state byte per granule). */
#ifndef DH_GRANULE_SHIFT
#define DH_GRANULE_SHIFT 4
#endif
#define DH_GRANULE ((uintptr_t)1 << DH_GRANULE_SHIFT)

/* Large blocks are carved in pages of this size. */
#ifndef DH_PAGE_SHIFT
#define DH_PAGE_SHIFT 12
#endif
#define DH_PAGE ((uintptr_t)1 << DH_PAGE_SHIFT)

/* A span: the unit carved from the range for one size class. */
#ifndef DH_SPAN_SHIFT
#define DH_SPAN_SHIFT 16
#endif
#define DH_SPAN ((uintptr_t)1 << DH_SPAN_SHIFT)
#define DH_SPAN_PAGES (DH_SPAN >> DH_PAGE_SHIFT)

/* Heaps are aligned to, and registered in the heap map at, this
 * granularity (must equal DH_HEAP_ALIGN in detheap.h). */
#ifndef DH_HEAP_ALIGN_SHIFT
#define DH_HEAP_ALIGN_SHIFT 32
#endif

/* The user address space the heap map covers (x86-64: 47 bits). */
#ifndef DH_ADDRESS_BITS
#define DH_ADDRESS_BITS 47
#endif
#define DH_HEAP_MAP_SIZE ((size_t)1 << (DH_ADDRESS_BITS - DH_HEAP_ALIGN_SHIFT))

/* The CPU's cache line (x86-64, most ARM cores). */
#ifndef DH_CACHE_LINE
#define DH_CACHE_LINE 64u
#endif

/* At most this much data a process heap commits ahead of its use
 * (region.c, commit_to). */
#ifndef DH_COMMIT_AHEAD
#define DH_COMMIT_AHEAD ((uintptr_t)16 << 20)
#endif
/* Data is committed in steps of at least this many bytes. */
#ifndef DH_COMMIT_STEP
#define DH_COMMIT_STEP ((uintptr_t)1 << 20)
#endif

/* Huge pages (DETHEAP_THP=auto, dh_region_set_thp): data past the first
 * DH_HUGE_AFTER bytes of a heap is advised to be backed by huge pages of
 * DH_HUGE_PAGE bytes, and committed in whole, aligned huge pages there, so
 * that a small program keeps a small resident set and a big one takes one
 * page fault per 2 MiB instead of 512.  Physical backing changes no
 * address and no content. */
#ifndef DH_HUGE_PAGE
#define DH_HUGE_PAGE ((uintptr_t)1 << 21)
#endif
#ifndef DH_HUGE_AFTER
#define DH_HUGE_AFTER ((uintptr_t)64 << 20)
#endif

/* Bytes at the start of every heap's range that hold the heap header. */
#ifndef DH_HEADER_SIZE
#define DH_HEADER_SIZE DH_SPAN
#endif

/* Smallest reserve a heap may have. */
#ifndef DH_MIN_RESERVE
#define DH_MIN_RESERVE ((uint64_t)1 << 20)
#endif

/* Internal O(1) assertions (tier 2): on in debug builds. */
#ifndef DH_DEBUG
#ifdef NDEBUG
#define DH_DEBUG 0
#else
#define DH_DEBUG 1
#endif
#endif

static_assert(DH_GRANULE_SHIFT == 4, "classes are multiples of 16 bytes");
static_assert(DH_PAGE_SHIFT >= 12 && DH_PAGE_SHIFT <= DH_SPAN_SHIFT,
              "a span is a whole number of pages");
static_assert(DH_SPAN_SHIFT == 16, "the largest class (64 KiB) fills a span");
static_assert(DH_HEAP_ALIGN_SHIFT == 32, "must match DH_HEAP_ALIGN");
static_assert(DH_COMMIT_STEP % DH_SPAN == 0, "commit whole spans");
static_assert(DH_HEADER_SIZE % DH_SPAN == 0, "data starts span-aligned");
static_assert((DH_PAGE >> DH_GRANULE_SHIFT) >= 16,
              "a large block has room for its head and tail tags");

static_assert((DH_HUGE_PAGE & (DH_HUGE_PAGE - 1)) == 0 &&
                  DH_HUGE_PAGE % DH_COMMIT_STEP == 0,
              "a huge page is a power of two and a whole number of steps");

#endif /* DH_CONFIG_H */
