/*
 * fuzz_corrupt.c - the integrity checks under attack.  A private heap
 * (error policy CALLBACK) serves malloc, free and realloc while the input
 * also writes words of its choice into blocks it has freed - into class
 * blocks' free-list links and into free large blocks' tree nodes, as a
 * program with a use-after-free or an overflow does.  A shadow of the live
 * blocks is the oracle: whatever the damage, every outcome must be a report
 * or a block that lies in the heap, overlaps no live block, and every live
 * block's contents stay as written.  A crash, an ASan report, an overlap or
 * a damaged live block is a finding.
 *
 * Input: a sequence of ops, op byte % 4:
 *   0 SIZE16 SHIFT8      malloc((SIZE16 << (SHIFT8 % 5)) + 1)
 *   1 SLOT8              free live block SLOT8 % live
 *   2 SLOT8 SIZE16       realloc it to SIZE16 * 17
 *   3 DEAD8 OFF8 KIND8 X32  write a word into freed block DEAD8 % dead at
 *                        offset (OFF8 % 8) * 8: KIND8 % 6 picks a live
 *                        block, a freed block + X32 % 64, a global, X32
 *                        spread over 64 bits, NULL or the heap base + X32
 */
#include "detheap.h"
#include "fuzz_input.h"
#include "../tests/scribble.h"

#include <stdlib.h>
#include <string.h>

#define MAX_LIVE 256
#define MAX_DEAD 256

typedef struct {
    unsigned char *p;
    size_t n;      /* usable size */
    unsigned char tag;
} blk_t;

static blk_t live[MAX_LIVE];
static int nlive;
static blk_t dead[MAX_DEAD]; /* freed, not handed out again since */
static int ndead;
static int reports;
static char a_global[64] __attribute__((aligned(16)));

static void on_error(const dh_error_t *e, void *user) {
    (void)user;
    FUZZ_CHECK(e->message != NULL && e->message[0] != 0);
    reports++;
}

/* What a live block must hold: its tag in its first and last 64 bytes. */
static void fill(blk_t *b) {
    size_t k = b->n < 64 ? b->n : 64;
    memset(b->p, b->tag, k);
    memset(b->p + b->n - k, b->tag, k);
}

static void verify(const blk_t *b) {
    size_t k = b->n < 64 ? b->n : 64;
    for (size_t i = 0; i < k; i++) {
        FUZZ_CHECK(b->p[i] == b->tag);
        FUZZ_CHECK(b->p[b->n - k + i] == b->tag);
    }
}

/* A block just handed out: in the heap, overlapping nothing live; freed
 * blocks it overlaps are no longer free to write into. */
static void handed_out(dh_heap_t *h, unsigned char *p, size_t want,
                       unsigned char tag) {
    FUZZ_CHECK(dh_heap_of(p) == h);
    size_t n = dh_usable_size(p);
    FUZZ_CHECK(n >= want);
    uintptr_t a = (uintptr_t)p, e = a + n;
    for (int i = 0; i < nlive; i++) {
        uintptr_t b = (uintptr_t)live[i].p, f = b + live[i].n;
        FUZZ_CHECK(!(a < f && b < e));
    }
    for (int i = 0; i < ndead;) {
        uintptr_t b = (uintptr_t)dead[i].p, f = b + dead[i].n;
        if (a < f && b < e)
            dead[i] = dead[--ndead];
        else
            i++;
    }
    blk_t blk = {p, n, tag};
    fill(&blk);
    live[nlive++] = blk;
}

static void died(blk_t b) {
    if (ndead == MAX_DEAD) dead[0] = dead[--ndead];
    dead[ndead++] = b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.reserve = (uint64_t)1 << 28;
    cfg.on_error = DH_ON_ERROR_CALLBACK;
    cfg.error_callback = on_error;
    dh_heap_t *h = dh_heap_create(&cfg);
    if (h == NULL) return 0;
    fuzz_in_t in = {data, size, false};
    nlive = ndead = reports = 0;
    unsigned char tag = 1;
    for (int steps = 0; !in.done && steps < 4000; steps++) {
        switch (fin_u8(&in) % 4) {
        case 0: {
            size_t n = ((size_t)fin_u16(&in) << (fin_u8(&in) % 5)) + 1;
            if (nlive == MAX_LIVE) break;
            unsigned char *p = dh_heap_malloc(h, n);
            if (p != NULL) handed_out(h, p, n, tag++);
            break;
        }
        case 1: {
            if (nlive == 0) break;
            int i = fin_u8(&in) % nlive;
            blk_t b = live[i];
            verify(&b);
            live[i] = live[--nlive];
            dh_heap_free(h, b.p);
            died(b);
            break;
        }
        case 2: {
            if (nlive == 0) break;
            int i = fin_u8(&in) % nlive;
            size_t n = (size_t)fin_u16(&in) * 17 + 1;
            blk_t b = live[i];
            verify(&b);
            live[i] = live[--nlive];
            unsigned char *q = dh_heap_realloc(h, b.p, n);
            if (q == NULL) { /* ENOMEM: the block is untouched and live */
                live[nlive++] = b;
                break;
            }
            size_t kept = b.n < n ? b.n : n, k = kept < 64 ? kept : 64;
            for (size_t j = 0; j < k; j++) FUZZ_CHECK(q[j] == b.tag);
            if (q != b.p) {
                blk_t old = b;
                died(old);
            }
            handed_out(h, q, n, tag++);
            break;
        }
        case 3: {
            if (ndead == 0) break;
            blk_t *d = &dead[fin_u8(&in) % ndead];
            size_t off = (size_t)(fin_u8(&in) % 8) * 8;
            uint8_t kind = fin_u8(&in) % 6;
            uint32_t x = fin_u32(&in);
            if (off + 8 > d->n) break;
            uintptr_t v = 0;
            if (kind == 0 && nlive > 0) v = (uintptr_t)live[x % nlive].p;
            if (kind == 1) v = (uintptr_t)dead[x % ndead].p + x % 64;
            if (kind == 2) v = (uintptr_t)a_global;
            if (kind == 3) v = (uintptr_t)x * 0x9e3779b97f4a7c15ull;
            if (kind == 5) v = dh_heap_base(h) + x;
            scribble(d->p + off, &v, sizeof v); /* the write after free */
            break;
        }
        }
        tag = tag ? tag : 1;
    }
    for (int i = 0; i < nlive; i++) verify(&live[i]);
    dh_heap_destroy(h);
    return 0;
}
