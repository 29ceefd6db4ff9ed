/*
 * tracedb.h - a trace file loaded for analysis: its calls grouped by
 * program image (a process, and each program it ran exec into) and by heap
 * slot, with their stacks, the heaps' threads and the misuse records.
 * `check`, `top` and `report` share it.
 *
 * Records of one slot are in call order; records of different slots
 * interleave by buffer (docs/TRACE.md).  dh_tdb_order puts every call of
 * an image into one causal order: each slot's calls in their own order,
 * and a free (or realloc) of a block only after the call that returned it,
 * whichever thread made that call, so that live sets and peaks computed in
 * that order never count a block freed by another thread as still live.
 */
#ifndef DH_TOOLS_TRACEDB_H
#define DH_TOOLS_TRACEDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace_read.h"

typedef struct dh_tdb_call {
    uint8_t op, flags;
    uint16_t nframes;
    uint32_t frame_at; /* index into dh_tdb_image_t.frames */
    uint64_t a, b, c;  /* as in the record */
} dh_tdb_call_t;

typedef struct dh_tdb_slot {
    dh_tdb_call_t *v;
    size_t n, cap;
    bool have_thread;  /* a THREAD record was seen */
    bool unordered;
    uint64_t tid;      /* kernel id of the (last) thread on this heap */
    char name[17];     /* its name, "" if none was recorded */
} dh_tdb_slot_t;

typedef struct dh_tdb_misuse {
    uint32_t slot;
    int code;          /* dh_error_code_t */
    uint64_t ptr;
    size_t calls;      /* calls of that slot before it */
    uint16_t nframes;
    uint32_t frame_at;
} dh_tdb_misuse_t;

typedef struct dh_tdb_image {
    uint64_t pid, ppid, flags; /* flags: DH_TRACE_FLAG_* */
    int exec_no;               /* 0: the process's first program; k: after
                                  its k-th exec */
    dh_tdb_slot_t *slots;      /* DH_TRACE_MAX_SLOTS of them */
    uint32_t nslots;           /* 1 + the highest slot used */
    uint64_t *frames;
    size_t nframes, frames_cap;
    const char *maps;          /* inside the mapped file, or NULL */
    size_t maps_len;
    bool have_end;
    uint64_t fingerprint;      /* the process fingerprint of the END */
    dh_tdb_misuse_t *misuse;
    size_t nmisuse;
} dh_tdb_image_t;

typedef struct dh_tdb {
    dh_tdb_image_t **images;
    int n;
    dh_trace_file_t file;      /* maps point into it */
} dh_tdb_t;

/* Load a trace file.  Returns 0; -1 with "offset N: why" or "PATH: why"
 * in err for a malformed or unreadable file; 1 when out of memory. */
int dh_tdb_load(const char *path, dh_tdb_t *db, char *err, size_t errlen);
void dh_tdb_free(dh_tdb_t *db);

/* Calls of an image, all slots. */
size_t dh_tdb_calls(const dh_tdb_image_t *im);

/* The frames of a call (innermost first), or NULL with *n = 0. */
const uint64_t *dh_tdb_frames(const dh_tdb_image_t *im,
                              const dh_tdb_call_t *c, unsigned *n);

/* Every call of the image in a causal order (see above), as pointers into
 * the slots' arrays; *n is their count.  malloc'd, NULL when out of
 * memory. */
const dh_tdb_call_t **dh_tdb_order(const dh_tdb_image_t *im, size_t *n);

/* "slot 3 (thread 1234 'worker')" or "slot 0 (thread 1230)" into out. */
void dh_tdb_slot_label(const dh_tdb_image_t *im, uint32_t slot, char *out,
                       size_t cap);

#endif
