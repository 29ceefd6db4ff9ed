/*
 * snapshot.c - snapshots of a private heap and rollback to them.
 *
 * A snapshot is a copy of the heap's three committed parts (its header,
 * its state map with the span map, its data), taken once, plus the
 * kernel's record of which of their pages have been written since:
 * asynchronous userfaultfd write protection (os.h, wp_*), which lets every
 * write through at once and marks the page, with no handler and no
 * signal.  Rollback asks which pages were written (PAGEMAP_SCAN), copies
 * just those back from the copy, protects them again, and gives back the
 * memory the heap committed since the snapshot (it reads as zero again,
 * as uncommitted memory does when it is committed).  So a rollback costs
 * O(pages written) copies plus one page-table scan of the parts (about
 * 0.6 ms per GiB), whatever the heap's size.
 *
 *   snapshot mapping:  | struct | header copy | state copy | data copy |
 *                        page     (pages that were zero are never written:
 *                                  they stay untouched zero pages)
 *
 * Why this tracker (docs/IMAGE.md has the measurements): soft-dirty bits
 * are process-wide (clearing them for one heap clears them for all, and
 * for anyone else using them) and missing from kernels built without
 * CONFIG_MEM_SOFT_DIRTY, as the one this was written on; mprotect and a
 * SIGSEGV handler take the program's signal handler, fail system calls
 * that write into a protected page (EFAULT instead of a fault) and cost a
 * signal per first write.  Where the kernel has no asynchronous write
 * protection, a rollback copies every part back whole: the same result,
 * at O(committed bytes).
 */
#include "image.h"

#include <errno.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define SNAP_MAGIC 0x70616e73746564ull /* "detsnap" */
#define SNAP_PARTS 3

typedef struct part {
    uintptr_t addr, len; /* the heap's pages */
    size_t off;          /* where their copy is in the snapshot mapping */
} part_t;

struct dh_snapshot {
    uint64_t magic;       /* SNAP_MAGIC while it exists */
    dh_heap_t *heap;      /* the heap it was taken of; NULL once destroyed */
    size_t bytes;         /* of the mapping this struct begins */
    bool tracked;         /* writes are tracked (wp holds the tracker) */
    int wp[2];
    part_t part[SNAP_PARTS]; /* header, state map, data */
};

#define SNAP_HEAD 4096u
_Static_assert(sizeof(struct dh_snapshot) <= SNAP_HEAD, "fits its page");

static bool page_zero(const unsigned char *p, size_t n) {
    uint64_t acc = 0;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, sizeof w);
        acc |= w;
    }
    return acc == 0;
}

/* Copy the non-zero pages of [from, from + n) to `to` (zero already). */
static void copy_nonzero(unsigned char *to, const unsigned char *from,
                         size_t n, size_t page) {
    for (size_t i = 0; i < n; i += page)
        if (!page_zero(from + i, page)) memcpy(to + i, from + i, page);
}

dh_snapshot_t *dh_heap_snapshot(dh_heap_t *h) {
    if (h == NULL || h->magic != DH_HEAP_MAGIC ||
        h->ext.image_mode == DH_OPEN_SHARED) {
        errno = EINVAL;
        return NULL;
    }
    if (h->process) {
        errno = EPERM;
        return NULL;
    }
    if (h->ext.snapshot != NULL) {
        errno = EBUSY;
        return NULL;
    }
    part_t part[SNAP_PARTS] = {
        {h->base, dh_image_header_len(), 0},
        {(uintptr_t)h->span_map, h->state_commit_end - (uintptr_t)h->span_map, 0},
        {h->data_start, h->commit_end - h->data_start, 0},
    };
    size_t bytes = SNAP_HEAD;
    for (int i = 0; i < SNAP_PARTS; i++) {
        part[i].off = bytes;
        bytes += part[i].len;
    }
    dh_snapshot_t *s = dh_os_reserve(bytes, SNAP_HEAD, 0);
    if (s == NULL || !dh_os_commit(s, bytes)) {
        if (s != NULL) dh_os_release(s, bytes);
        errno = ENOMEM;
        return NULL;
    }
    /* huge pages for the copy: a rollback's copies then take one TLB
     * miss (the heap's page) instead of two; only what is written is
     * backed (a part that is zero stays unbacked). */
    dh_os_advise_huge(s, bytes, true);
    s->magic = SNAP_MAGIC;
    s->heap = h;
    s->bytes = bytes;
    memcpy(s->part, part, sizeof part);
    s->tracked = dh_os_wp_open(s->wp);
    for (int i = 0; s->tracked && i < SNAP_PARTS; i++)
        if (part[i].len != 0 && !dh_os_wp_track(s->wp, part[i].addr, part[i].len)) {
            dh_os_wp_close(s->wp); /* which undoes the tracking */
            s->tracked = false;
        }
    h->ext.snapshot = s; /* before the header is copied: kept by rollback */
    dh_image_expose(h);
    for (int i = 0; i < SNAP_PARTS; i++)
        copy_nonzero((unsigned char *)s + part[i].off,
                     (const unsigned char *)part[i].addr, part[i].len,
                     h->os_page);
    dh_image_annotate(h);
    return s;
}

/* Copy whole pages back from the snapshot: non-temporal stores where the
 * machine has them, so the heap's pages are not read in first only to be
 * overwritten (a rollback's pages are scattered: their lines are seldom
 * in any cache). */
static void copy_back(void *to, const void *from, size_t n) {
#if defined(__SSE2__)
    if (((uintptr_t)to & 15) != 0 || (n & 63) != 0) {
        memcpy(to, from, n);
        return;
    }
    __m128i *d = to;
    const __m128i *s = from;
    for (size_t i = 0; i < n / sizeof *d; i += 4) {
        __m128i a = _mm_loadu_si128(s + i), b = _mm_loadu_si128(s + i + 1),
                c = _mm_loadu_si128(s + i + 2), e = _mm_loadu_si128(s + i + 3);
        _mm_stream_si128(d + i, a);
        _mm_stream_si128(d + i + 1, b);
        _mm_stream_si128(d + i + 2, c);
        _mm_stream_si128(d + i + 3, e);
    }
    _mm_sfence();
#else
    memcpy(to, from, n);
#endif
}

/* Copy back the pages of part p written since the last scan, and protect
 * them again; everything, if a scan fails.  Each batch of runs is
 * protected right after it is copied (the copy itself writes the pages),
 * while the page tables just walked are still in the cache. */
static void restore_part(const dh_snapshot_t *s, const part_t *p) {
    const unsigned char *copy = (const unsigned char *)s + p->off;
    uintptr_t end = p->addr + p->len;
    dh_os_run_t runs[128];
    for (uintptr_t at = p->addr; s->tracked && at < end;) {
        uintptr_t next, q;
        long n = dh_os_wp_scan(s->wp, at, end, false, runs, 128, &next);
        if (n < 0 || next <= at) break;
        for (long i = 0; i < n; i++)
            copy_back((void *)runs[i].start, copy + (runs[i].start - p->addr),
                      runs[i].end - runs[i].start);
        for (q = at; q < next;) {
            uintptr_t done;
            if (dh_os_wp_scan(s->wp, q, next, true, runs, 128, &done) < 0 ||
                done <= q)
                break;
            q = done;
        }
        if (q < next) break;
        at = next;
        if (at >= end) return;
    }
    memcpy((void *)p->addr, copy, p->len); /* untracked, or a scan failed */
}

bool dh_heap_rollback(dh_heap_t *h, const dh_snapshot_t *s) {
    if (h == NULL || s == NULL || h->magic != DH_HEAP_MAGIC ||
        s->magic != SNAP_MAGIC || s->heap != h) {
        errno = EINVAL;
        return false;
    }
    /* what the heap committed since the snapshot, before the header (which
     * says how much is committed) is put back */
    uintptr_t state_end = h->state_commit_end, data_end = h->commit_end;
    dh_image_expose(h);
    restore_part(s, &s->part[2]);
    restore_part(s, &s->part[1]);
    restore_part(s, &s->part[0]); /* the header last: h is in it */
    uintptr_t snap_state_end = s->part[1].addr + s->part[1].len;
    uintptr_t snap_data_end = s->part[2].addr + s->part[2].len;
    if (state_end > snap_state_end)
        dh_os_decommit((void *)snap_state_end, state_end - snap_state_end);
    if (data_end > snap_data_end)
        dh_os_decommit((void *)snap_data_end, data_end - snap_data_end);
    dh_image_annotate(h);
    return true;
}

void dh_snapshot_detach(dh_heap_t *h) {
    dh_snapshot_t *s = h->ext.snapshot;
    if (s == NULL) return;
    if (s->magic == SNAP_MAGIC && s->heap == h) s->heap = NULL;
    h->ext.snapshot = NULL;
}

void dh_snapshot_free(dh_snapshot_t *s) {
    if (s == NULL || s->magic != SNAP_MAGIC) return;
    dh_heap_t *h = s->heap;
    if (h != NULL && h->magic == DH_HEAP_MAGIC && h->ext.snapshot == s)
        h->ext.snapshot = NULL;
    if (s->tracked) dh_os_wp_close(s->wp);
    s->magic = 0;
    dh_os_release(s, s->bytes);
}
