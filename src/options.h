/*
 * options.h - the DETHEAP_* environment options of the process heap, read
 * once from the environment without allocating (they may be read from
 * inside the first malloc of the process).  docs/OPTIONS.md has the table.
 */
#ifndef DH_OPTIONS_H
#define DH_OPTIONS_H

#include "internal.h"

typedef struct dh_options {
    uintptr_t base;          /* DETHEAP_BASE: where slot 0 lives */
    uint64_t reserve;        /* DETHEAP_RESERVE: bytes of the main thread's
                                heap, and of every heap created before the
                                first thread (pow2) */
    uint64_t thread_reserve; /* DETHEAP_THREAD_RESERVE: bytes of each other
                                thread's heap (pow2) */
    dh_on_error_t on_error;  /* DETHEAP_ON_ERROR */
    bool stats;              /* DETHEAP_STATS: report at exit */
    bool stats_json;         /* DETHEAP_STATS=json */
    const char *stats_file;  /* DETHEAP_STATS_FILE: where the report goes
                                (a copy made when the options are read) */
    const char *trace;       /* DETHEAP_TRACE: file name template or NULL
                                (a copy, likewise) */
    bool stacks;             /* DETHEAP_STACKS: capture call stacks */
    uint16_t stack_depth;    /* DETHEAP_STACKS=N: frames of the program to
                                record (1 means 32) */
    bool trace_log;          /* DETHEAP_TRACE_LOG=FD:DEV:INO is set: say
                                on FD whether this process's trace could
                                be opened and written (for the tool) */
    int trace_log_fd;
    uint64_t trace_log_dev, trace_log_ino;
    bool remote_owner;       /* DETHEAP_REMOTE_FREE=owner: bounded memory */
    bool recycle_off;        /* DETHEAP_RECYCLE=off: retired pages are
                                decommitted, never moved (process.c) */
    dh_thp_t thp;            /* DETHEAP_THP: huge-page policy of each heap */
    dh_class_set_t classes;  /* DETHEAP_CLASSES: every heap's class set
                                (default fine) */
} dh_options_t;

#define DH_DEFAULT_BASE ((uintptr_t)0x200000000000ull) /* 32 TiB */
#define DH_DEFAULT_STACK_DEPTH 32 /* DETHEAP_STACKS=1 */
#define DH_MAX_STACK_DEPTH 240    /* with detheap's own frames, at most the
                                     256 a trace reader accepts */
#define DH_DEFAULT_THREAD_RESERVE ((uint64_t)4 << 30)   /* 4 GiB */

/* Parse the environment into *o.  Malformed values keep the default and
 * are named once on stderr.  Never allocates. */
DH_HIDDEN void dh_options_read(dh_options_t *o);

/* Parse "1234", "0x1f", "64G", "1T" (K, M, G, T: powers of 1024).
 * Returns false if s is not such a number or overflows.  Exposed for the
 * option fuzzer. */
DH_HIDDEN bool dh_parse_size(const char *s, uint64_t *out);

/* A message of n parts on stderr, in one write(2) where it fits, so that
 * two processes' messages never mix within a line. */
DH_HIDDEN void dh_say_parts(const char *const *parts, size_t n);

#endif /* DH_OPTIONS_H */
