/*
 * sites.c - allocation sites (see sites.h).
 */
#include "sites.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ptrmap.h"

/* The address ranges of detheap's own libraries in the image's map. */
static void find_own(dh_sites_t *s, const dh_tdb_image_t *im) {
    const char *p = im->maps, *end = im->maps ? im->maps + im->maps_len : NULL;
    while (p && p < end && s->nown < 8) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        char line[4608];
        size_t len = (size_t)(e - p);
        if (len < sizeof line) {
            memcpy(line, p, len);
            line[len] = 0;
            unsigned long long lo, hi;
            const char *slash = strrchr(line, '/');
            if (slash && strncmp(slash + 1, "libdetheap", 10) == 0 &&
                sscanf(line, "%llx-%llx", &lo, &hi) == 2) {
                s->own_lo[s->nown] = lo;
                s->own_hi[s->nown++] = hi;
            }
        }
        p = e + 1;
    }
}

void dh_sites_init(dh_sites_t *s, const dh_tdb_image_t *im, unsigned depth) {
    memset(s, 0, sizeof *s);
    s->depth = depth;
    find_own(s, im);
}

static bool own(const dh_sites_t *s, uint64_t ra) {
    for (int i = 0; i < s->nown; i++)
        if (ra >= s->own_lo[i] && ra < s->own_hi[i]) return true;
    return false;
}

unsigned dh_sites_program_frames(const dh_sites_t *s, const uint64_t *frames,
                                 unsigned n, const uint64_t **out) {
    unsigned i = 0;
    while (i < n && own(s, frames[i])) i++;
    *out = frames + i;
    unsigned k = n - i;
    return k < s->depth ? k : s->depth;
}

static uint64_t hash_frames(const uint64_t *f, unsigned n) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (unsigned i = 0; i < n; i++) {
        h ^= f[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h;
}

static bool grow_index(dh_sites_t *s) {
    size_t cap = s->icap ? s->icap * 2 : 1024;
    uint32_t *ix = calloc(cap, sizeof *ix);
    if (ix == NULL) return false;
    for (size_t i = 0; i < s->n; i++) {
        size_t j = s->v[i].hash & (cap - 1);
        while (ix[j]) j = (j + 1) & (cap - 1);
        ix[j] = (uint32_t)i + 1;
    }
    free(s->index);
    s->index = ix;
    s->icap = cap;
    return true;
}

long dh_sites_of(dh_sites_t *s, const dh_tdb_image_t *im,
                 const dh_tdb_call_t *c) {
    unsigned nf;
    const uint64_t *all = dh_tdb_frames(im, c, &nf), *f = NULL;
    unsigned n = all ? dh_sites_program_frames(s, all, nf, &f) : 0;
    uint64_t h = hash_frames(f, n);
    if ((s->n + 1) * 2 > s->icap && !grow_index(s)) return -1;
    size_t j = h & (s->icap - 1);
    for (; s->index[j]; j = (j + 1) & (s->icap - 1)) {
        const dh_site_t *t = &s->v[s->index[j] - 1];
        if (t->hash == h && t->n == n &&
            (n == 0 || memcmp(t->frames, f, n * 8) == 0))
            return s->index[j] - 1;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        dh_site_t *v = realloc(s->v, cap * sizeof *v);
        if (v == NULL) return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n] = (dh_site_t){f, n, h, 0, 0, 0, 0};
    s->index[j] = (uint32_t)++s->n;
    return (long)s->n - 1;
}

bool dh_sites_is_alloc(const dh_tdb_call_t *c, uint64_t *bytes) {
    if ((c->flags & 1) || c->c == 0) return false;
    switch (c->op) {
    case DH_TR_MALLOC:
    case DH_TR_ALIGNED:
    case DH_TR_REALLOC:
        *bytes = c->a;
        return true;
    case DH_TR_CALLOC:
        *bytes = c->a * c->b;
        return true;
    default:
        return false;
    }
}

int dh_sites_replay(dh_sites_t *s, const dh_tdb_image_t *im) {
    size_t n;
    const dh_tdb_call_t **order = dh_tdb_order(im, &n);
    if (order == NULL) return -1;
    dh_ptrmap_t live = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const dh_tdb_call_t *c = order[i];
        uint64_t site, bytes;
        bool failed = c->flags & 1;
        /* the block a free or a (successful) realloc gives up */
        if ((c->op == DH_TR_FREE ||
             (c->op == DH_TR_REALLOC && !(failed && c->a != 0))) &&
            c->b && dh_ptrmap_take(&live, c->b, &site, &bytes)) {
            s->v[site].live_blocks--;
            s->v[site].live_bytes -= bytes;
        }
        if (!dh_sites_is_alloc(c, &bytes)) continue;
        long k = dh_sites_of(s, im, c);
        if (k < 0 || !dh_ptrmap_put(&live, c->c, (uint64_t)k, bytes)) {
            rc = -1;
            break;
        }
        dh_site_t *t = &s->v[k];
        t->calls++;
        t->bytes += bytes;
        t->live_blocks++;
        t->live_bytes += bytes;
    }
    dh_ptrmap_free(&live);
    free(order);
    return rc;
}

static const dh_sites_t *sort_sites;
static char sort_key;
static uint64_t key_of(size_t i) {
    const dh_site_t *t = &sort_sites->v[i];
    return sort_key == 'c' ? t->calls : sort_key == 'l' ? t->live_bytes
                                                        : t->bytes;
}
static int cmp_sites(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    uint64_t kx = key_of(x), ky = key_of(y);
    if (kx != ky) return kx < ky ? 1 : -1;
    return (x > y) - (x < y); /* ties: first seen first */
}

size_t *dh_sites_sorted(const dh_sites_t *s, char key) {
    size_t *v = malloc((s->n + 1) * sizeof *v);
    if (v == NULL) return NULL;
    for (size_t i = 0; i < s->n; i++) v[i] = i;
    sort_sites = s;
    sort_key = key;
    qsort(v, s->n, sizeof *v, cmp_sites);
    return v;
}

void dh_sites_print_stack(FILE *f, dh_symbolizer_t *sym,
                          const uint64_t *frames, unsigned n,
                          const char *prefix) {
    if (n == 0) {
        fprintf(f, "%s(no stack recorded)\n", prefix);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        char line[1024];
        bool in_detheap;
        dh_sym_describe(sym, frames[i], line, sizeof line, &in_detheap);
        fprintf(f, "%s#%u %s\n", prefix, i, line);
    }
}

static const char *const misuse_names[] = {
    "no error", "double free", "not the start of a block",
    "pointer not from detheap", "misaligned pointer", "block of another heap"};

void dh_sites_print_misuse(FILE *f, const dh_tdb_image_t *im,
                           dh_symbolizer_t *sym, const dh_sites_t *s,
                           const char *prefix) {
    for (size_t i = 0; i < im->nmisuse; i++) {
        const dh_tdb_misuse_t *m = &im->misuse[i];
        char where[128];
        dh_tdb_slot_label(im, m->slot, where, sizeof where);
        int code = m->code;
        const char *why = code >= 0 && code < 6 ? misuse_names[code]
                                                : "heap metadata corrupted";
        fprintf(f, "%smisuse: pointer 0x%" PRIx64 " rejected (%s), heap %s, "
                "after its call %zu, at:\n", prefix, m->ptr, why, where,
                m->calls);
        const uint64_t *fr = NULL;
        unsigned n = m->nframes
            ? dh_sites_program_frames(s, im->frames + m->frame_at,
                                      m->nframes, &fr)
            : 0;
        char pre[64];
        snprintf(pre, sizeof pre, "%s    ", prefix);
        dh_sites_print_stack(f, sym, fr, n, pre);
    }
}

void dh_sites_free(dh_sites_t *s) {
    free(s->v);
    free(s->index);
    memset(s, 0, sizeof *s);
}
