/*
 * heapmodel.h - the heap as seen through a trace: which blocks are live,
 * in which size class, and how the per-class live bytes evolve.  `report`
 * plots it, `run --stats` takes per-class peaks and internal waste from it
 * (the library's own statistics have neither).
 *
 * The model replays call records in file order.  Usable sizes are the
 * class sizes of the trace's class set (its header says which); the model's
 * classes are the spec set's 13, each holding the blocks whose usable size
 * it would serve (a fine class falls in one of them); a large block (class
 * index DH_MODEL_LARGE) counts its request rounded up to whole pages.  With several threads the records of
 * different heaps interleave by buffer, so peaks are then approximate.
 */
#ifndef DH_TOOLS_HEAPMODEL_H
#define DH_TOOLS_HEAPMODEL_H

#include <detheap.h>

#include "ptrmap.h"
#include "trace_read.h"

#define DH_MODEL_LARGE DH_NUM_CLASSES
#define DH_MODEL_CLASSES (DH_NUM_CLASSES + 1)

typedef struct dh_model_class {
    uint64_t allocs, frees;
    uint64_t live, live_bytes;     /* blocks and usable bytes in use */
    uint64_t peak, peak_bytes;     /* the largest live / live_bytes seen */
    uint64_t requested;            /* bytes asked for by the live blocks */
} dh_model_class_t;

typedef struct dh_model {
    dh_class_set_t set;              /* the trace's class set (set it first) */
    dh_model_class_t cls[DH_MODEL_CLASSES];
    uint64_t live_bytes, peak_bytes; /* all classes */
    uint64_t calls;                  /* call records seen */
    uint64_t unknown_frees;          /* frees of pointers not seen allocated */
    uint64_t failed;                 /* calls that returned NULL */
    dh_ptrmap_t blocks;              /* live pointer -> usable, requested */
} dh_model_t;

/* Apply one record (non-call records are ignored).  Returns false when
 * out of memory. */
bool dh_model_apply(dh_model_t *m, const dh_trace_rec_t *r);

/* The model's class index of a usable size (DH_MODEL_LARGE above 64 KiB). */
int dh_model_class_of(uint64_t usable);

/* Display name of a model class: "16", ..., "64K", "large". */
const char *dh_model_class_name(int c);

/* Free the model's memory and empty it (its class set stays). */
void dh_model_free(dh_model_t *m);

#endif
