/*
 * sites.h - allocation sites of a traced program image: allocations
 * grouped by their call stack (the first `depth` frames of the program,
 * detheap's own frames left out), with how many calls and bytes each
 * made and how many of its blocks were still live at exit.  `detheap top`
 * ranks them, `--leaks` lists the live ones, `report` plots the largest.
 */
#ifndef DH_TOOLS_SITES_H
#define DH_TOOLS_SITES_H

#include <stdio.h>

#include "symbolize.h"
#include "tracedb.h"

typedef struct dh_site {
    const uint64_t *frames; /* the program's frames, innermost first */
    unsigned n;             /* 0: no stack was recorded */
    uint64_t hash;
    uint64_t calls, bytes;             /* allocations and bytes requested */
    uint64_t live_blocks, live_bytes;  /* still live (at exit, after
                                          dh_sites_replay) */
} dh_site_t;

typedef struct dh_sites {
    dh_site_t *v;
    size_t n, cap;
    uint32_t *index;     /* hash table of site numbers + 1 (0 = empty) */
    size_t icap;
    unsigned depth;
    uint64_t own_lo[8], own_hi[8]; /* detheap's own libraries */
    int nown;
} dh_sites_t;

/* Prepare for an image's sites with stacks cut to depth frames. */
void dh_sites_init(dh_sites_t *s, const dh_tdb_image_t *im, unsigned depth);

/* The site of an allocation call (creating it): its index, or -1 when out
 * of memory. */
long dh_sites_of(dh_sites_t *s, const dh_tdb_image_t *im,
                 const dh_tdb_call_t *c);

/* Whether c allocated a block (returned one); *bytes = requested bytes. */
bool dh_sites_is_alloc(const dh_tdb_call_t *c, uint64_t *bytes);

/* Replay the image in causal order (dh_tdb_order): every allocation's
 * site counts, and what is live at exit.  0, or -1 when out of memory. */
int dh_sites_replay(dh_sites_t *s, const dh_tdb_image_t *im);

/* Site numbers sorted by key: 'b' bytes, 'c' calls, 'l' live bytes at
 * exit; malloc'd (n entries), NULL when out of memory. */
size_t *dh_sites_sorted(const dh_sites_t *s, char key);

/* The program frames of frames[0..n) (detheap's own skipped), at most
 * max, into out; returns how many. */
unsigned dh_sites_program_frames(const dh_sites_t *s, const uint64_t *frames,
                                 unsigned n, const uint64_t **out);

/* Print a stack, one "PREFIX#i description" line per frame. */
void dh_sites_print_stack(FILE *f, dh_symbolizer_t *sym,
                          const uint64_t *frames, unsigned n,
                          const char *prefix);

/* The image's misuse records, each as "PREFIXmisuse: pointer P rejected
 * (why), heap slot S (thread ...), after its call N, at:" and its stack. */
void dh_sites_print_misuse(FILE *f, const dh_tdb_image_t *im,
                           dh_symbolizer_t *sym, const dh_sites_t *s,
                           const char *prefix);

void dh_sites_free(dh_sites_t *s);

#endif
