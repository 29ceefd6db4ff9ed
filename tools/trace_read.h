/*
 * trace_read.h - a strict reader of DETHEAP_TRACE files (docs/TRACE.md).
 *
 * Trace files are untrusted: every subcommand that reads one goes through
 * dh_trace_parse, which checks each length, op and count before handing a
 * record on, and on the first malformed byte stops with a message naming
 * its offset ("offset 4160: record of unknown op 77").  It never reads
 * outside [data, data + len) and allocates nothing, so a fuzzer can call it
 * directly.
 */
#ifndef DH_TOOLS_TRACE_READ_H
#define DH_TOOLS_TRACE_READ_H

#include <stddef.h>
#include <stdint.h>

#define DH_TRACE_HEADER_SIZE 64u
#define DH_TRACE_RECORD_SIZE 32u
#define DH_TRACE_MAX_SLOTS 32768u /* the library's DH_MAX_SLOTS (process.h) */
/* The library records at most 248 frames (240 of the program's and 8 of
 * its own); a corrupt count beyond this is rejected. */
#define DH_TRACE_MAX_FRAMES 256u

enum {
    DH_TR_MALLOC = 1,
    DH_TR_CALLOC = 2,
    DH_TR_REALLOC = 3,
    DH_TR_FREE = 4,
    DH_TR_ALIGNED = 5,
    DH_TR_THREAD = 8,
    DH_TR_FRAMES = 9,
    DH_TR_MAPS = 10,
    DH_TR_END = 11,
    DH_TR_NAME = 12,   /* version 2: a = tid, b..c = the thread's name */
    DH_TR_EXEC = 13,   /* version 2: a new program (exec) starts here */
    DH_TR_MISUSE = 14  /* version 2: extra = error code, a = pointer */
};

/* Header flags (and an EXEC record's c). */
#define DH_TRACE_FLAG_STACKS 1u
#define DH_TRACE_FLAG_OWNER 2u /* DETHEAP_REMOTE_FREE=owner */
#define DH_TRACE_FLAG_FINE 4u  /* DETHEAP_CLASSES=fine */

typedef struct dh_trace_header {
    uint32_t version;     /* 1 or 2 */
    uint64_t pid, ppid;   /* the traced process and its parent */
    uint64_t base;        /* DETHEAP_BASE in force */
    uint64_t reserve;     /* DETHEAP_RESERVE in force */
    uint64_t flags;       /* DH_TRACE_FLAG_* */
} dh_trace_header_t;

/* One record as the reader hands it on.  For FRAMES, `frames` points at
 * `nframes` return addresses (innermost first) copied into a buffer owned
 * by the parser; for MAPS, `text`/`text_len` is the memory map text inside
 * the caller's data.  Both are valid only during the callback. */
typedef struct dh_trace_rec {
    uint8_t op, flags;
    uint16_t extra;
    uint32_t slot;
    uint64_t a, b, c;
    size_t offset;            /* byte offset of the record in the file */
    const uint64_t *frames;   /* FRAMES only */
    unsigned nframes;
    const char *text;         /* MAPS only */
    size_t text_len;
} dh_trace_rec_t;

/* Callbacks; either may be NULL.  A callback returning nonzero stops the
 * parse, which then returns that value (the callback writes its own error
 * message, if any). */
typedef struct dh_trace_visitor {
    int (*header)(const dh_trace_header_t *h, void *user);
    int (*record)(const dh_trace_rec_t *r, void *user);
    void *user;
} dh_trace_visitor_t;

/* Parse a whole trace held in memory.  Returns 0 when every byte was valid
 * and visited; -1 after writing "offset N: reason" into err (always
 * NUL-terminated when errlen > 0) for the first malformed byte; or a
 * callback's nonzero value.  O(len), no allocation, never reads outside
 * the buffer. */
int dh_trace_parse(const uint8_t *data, size_t len,
                   const dh_trace_visitor_t *v, char *err, size_t errlen);

/* Name of a call op ("malloc", ...), or "?" */
const char *dh_trace_op_name(unsigned op);

/* Whether op is one of the five calls (malloc .. aligned). */
int dh_trace_is_call(unsigned op);

/* A read-only mapping of a whole file; errors are written to err.
 * Returns 0, or -1 with "PATH: reason" in err. */
typedef struct dh_trace_file {
    const uint8_t *data;
    size_t len;
} dh_trace_file_t;
int dh_trace_map(const char *path, dh_trace_file_t *f, char *err,
                 size_t errlen);
void dh_trace_unmap(dh_trace_file_t *f);

#endif
