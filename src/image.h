/*
 * image.h - heap images and snapshots (image.c, snapshot.c): what the rest
 * of the library calls.  heap.c destroys heaps through these; nothing
 * below heap.c knows about images but for the commit hook and the fields
 * of struct dh_heap's `ext` (internal.h).
 */
#ifndef DH_IMAGE_H
#define DH_IMAGE_H

#include "internal.h"

/* Destroy h, a heap mapped from an image: a shared one is sealed first
 * (its checksums rewritten for the next process), then the range is
 * unmapped and the file closed (image.c). */
DH_HIDDEN void dh_image_destroy(dh_heap_t *h);

/* h is going away: its snapshot, if any, forgets it (snapshot.c). */
DH_HIDDEN void dh_snapshot_detach(dh_heap_t *h);

/* Memory checkers: the whole committed data of h becomes accessible, so
 * that it can be read or written wholesale (save, snapshot, rollback). */
DH_HIDDEN void dh_image_expose(const dh_heap_t *h);
/* ... and afterwards, or after the contents changed under the checker
 * (open, rollback), every block is marked again as the heap has it: live
 * blocks accessible, free ones not (but for a free large block's node). */
DH_HIDDEN void dh_image_annotate(const dh_heap_t *h);

/* The committed bytes of h's header (the part of the range an image and
 * a snapshot keep from base). */
DH_HIDDEN uintptr_t dh_image_header_len(void);

#endif /* DH_IMAGE_H */
