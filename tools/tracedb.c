/*
 * tracedb.c - a trace loaded for analysis (see tracedb.h).
 */
#include "tracedb.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptrmap.h"

typedef struct {
    dh_tdb_t *db;
    dh_tdb_image_t *cur;
    uint64_t pid, ppid, flags;
    /* what the last record of each slot was, for its FRAMES: a call (1) or
     * a misuse (2) */
    uint8_t *last_kind;
} loader_t;

static dh_tdb_image_t *new_image(loader_t *l, uint64_t pid, uint64_t ppid,
                                 uint64_t flags) {
    dh_tdb_t *db = l->db;
    dh_tdb_image_t **v = realloc(db->images, (size_t)(db->n + 1) * sizeof *v);
    if (v == NULL) return NULL;
    db->images = v;
    dh_tdb_image_t *im = calloc(1, sizeof *im);
    if (im == NULL) return NULL;
    im->slots = calloc(DH_TRACE_MAX_SLOTS, sizeof *im->slots);
    if (im->slots == NULL) {
        free(im);
        return NULL;
    }
    im->pid = pid;
    im->ppid = ppid;
    im->flags = flags;
    im->exec_no = l->cur ? l->cur->exec_no + 1 : 0;
    db->images[db->n++] = im;
    l->cur = im;
    memset(l->last_kind, 0, DH_TRACE_MAX_SLOTS);
    return im;
}

static int on_header(const dh_trace_header_t *h, void *user) {
    loader_t *l = user;
    return new_image(l, h->pid, h->ppid, h->flags) ? 0 : 1;
}

static bool grow_frames(dh_tdb_image_t *im, unsigned n) {
    if (im->nframes + n <= im->frames_cap) return true;
    size_t cap = (im->frames_cap + n) * 2;
    uint64_t *f = realloc(im->frames, cap * sizeof *f);
    if (f == NULL) return false;
    im->frames = f;
    im->frames_cap = cap;
    return true;
}

static int add_call(dh_tdb_image_t *im, const dh_trace_rec_t *r) {
    dh_tdb_slot_t *s = &im->slots[r->slot];
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        dh_tdb_call_t *v = realloc(s->v, cap * sizeof *v);
        if (v == NULL) return 1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (dh_tdb_call_t){r->op, r->flags, 0, 0, r->a, r->b, r->c};
    if (r->slot >= im->nslots) im->nslots = r->slot + 1;
    return 0;
}

static int add_frames(loader_t *l, const dh_trace_rec_t *r) {
    dh_tdb_image_t *im = l->cur;
    uint8_t kind = l->last_kind[r->slot];
    if (kind == 0) return 0;
    if (!grow_frames(im, r->nframes)) return 1;
    uint32_t at = (uint32_t)im->nframes;
    memcpy(im->frames + im->nframes, r->frames, r->nframes * 8);
    im->nframes += r->nframes;
    if (kind == 1) {
        dh_tdb_slot_t *s = &im->slots[r->slot];
        s->v[s->n - 1].frame_at = at;
        s->v[s->n - 1].nframes = (uint16_t)r->nframes;
    } else {
        im->misuse[im->nmisuse - 1].frame_at = at;
        im->misuse[im->nmisuse - 1].nframes = (uint16_t)r->nframes;
    }
    return 0;
}

static int add_misuse(dh_tdb_image_t *im, const dh_trace_rec_t *r) {
    dh_tdb_misuse_t *m =
        realloc(im->misuse, (im->nmisuse + 1) * sizeof *im->misuse);
    if (m == NULL) return 1;
    im->misuse = m;
    m[im->nmisuse++] = (dh_tdb_misuse_t){r->slot, r->extra, r->a,
                                         im->slots[r->slot].n, 0, 0};
    return 0;
}

static int on_record(const dh_trace_rec_t *r, void *user) {
    loader_t *l = user;
    dh_tdb_image_t *im = l->cur;
    dh_tdb_slot_t *s = &im->slots[r->slot];
    uint8_t kind = 0;
    int rc = 0;
    switch (r->op) {
    case DH_TR_FRAMES:
        rc = add_frames(l, r);
        break;
    case DH_TR_THREAD:
        s->have_thread = true;
        s->unordered = r->flags & 1;
        if (r->c) s->tid = r->c;
        if (r->slot >= im->nslots) im->nslots = r->slot + 1;
        break;
    case DH_TR_NAME:
        s->tid = r->a;
        memcpy(s->name, &r->b, 8);
        memcpy(s->name + 8, &r->c, 8);
        s->name[16] = 0;
        break;
    case DH_TR_MAPS:
        im->maps = r->text;
        im->maps_len = r->text_len;
        break;
    case DH_TR_END:
        if (r->slot == 0 || !im->have_end) {
            im->have_end = true;
            im->fingerprint = r->c;
        }
        break;
    case DH_TR_EXEC:
        if (new_image(l, r->a, r->b, r->c) == NULL) rc = 1;
        break;
    case DH_TR_MISUSE:
        rc = add_misuse(im, r);
        kind = 2;
        break;
    default:
        if (dh_trace_is_call(r->op)) {
            rc = add_call(im, r);
            kind = 1;
        }
    }
    if (r->op != DH_TR_FRAMES && r->op != DH_TR_EXEC)
        l->last_kind[r->slot] = kind;
    return rc;
}

int dh_tdb_load(const char *path, dh_tdb_t *db, char *err, size_t errlen) {
    memset(db, 0, sizeof *db);
    if (dh_trace_map(path, &db->file, err, errlen) != 0) return -1;
    loader_t l = {db, NULL, 0, 0, 0, calloc(DH_TRACE_MAX_SLOTS, 1)};
    if (l.last_kind == NULL) return 1;
    dh_trace_visitor_t v = {on_header, on_record, &l};
    int rc = dh_trace_parse(db->file.data, db->file.len, &v, err, errlen);
    free(l.last_kind);
    if (rc != 0) dh_tdb_free(db);
    return rc;
}

void dh_tdb_free(dh_tdb_t *db) {
    for (int i = 0; i < db->n; i++) {
        dh_tdb_image_t *im = db->images[i];
        for (unsigned s = 0; s < DH_TRACE_MAX_SLOTS; s++) free(im->slots[s].v);
        free(im->slots);
        free(im->frames);
        free(im->misuse);
        free(im);
    }
    free(db->images);
    dh_trace_unmap(&db->file);
    memset(db, 0, sizeof *db);
}

size_t dh_tdb_calls(const dh_tdb_image_t *im) {
    size_t n = 0;
    for (uint32_t s = 0; s < im->nslots; s++) n += im->slots[s].n;
    return n;
}

const uint64_t *dh_tdb_frames(const dh_tdb_image_t *im,
                              const dh_tdb_call_t *c, unsigned *n) {
    *n = c->nframes;
    return c->nframes ? im->frames + c->frame_at : NULL;
}

/* Whether c may come now: the block it frees is live, the block it
 * returns is not. */
static bool ready(const dh_ptrmap_t *live, const dh_tdb_call_t *c) {
    bool failed = c->flags & 1;
    if ((c->op == DH_TR_FREE || c->op == DH_TR_REALLOC) && c->b &&
        !dh_ptrmap_get(live, c->b, NULL, NULL))
        return false;
    if (c->op != DH_TR_FREE && !failed && c->c && !(c->op == DH_TR_REALLOC &&
                                                    c->c == c->b) &&
        dh_ptrmap_get(live, c->c, NULL, NULL))
        return false;
    return true;
}

static bool apply(dh_ptrmap_t *live, const dh_tdb_call_t *c) {
    bool failed = c->flags & 1;
    switch (c->op) {
    case DH_TR_FREE:
        if (c->b) dh_ptrmap_take(live, c->b, NULL, NULL);
        return true;
    case DH_TR_REALLOC:
        if (failed && c->a != 0) return true; /* the old block stays */
        if (c->b) dh_ptrmap_take(live, c->b, NULL, NULL);
        return c->c == 0 || dh_ptrmap_put(live, c->c, 0, 0);
    default:
        return failed || c->c == 0 || dh_ptrmap_put(live, c->c, 0, 0);
    }
}

const dh_tdb_call_t **dh_tdb_order(const dh_tdb_image_t *im, size_t *n) {
    size_t total = dh_tdb_calls(im), k = 0;
    const dh_tdb_call_t **out = malloc((total + 1) * sizeof *out);
    size_t *cur = calloc(im->nslots + 1, sizeof *cur);
    /* the slots that made calls: slot numbers run to 32767, and a pass
     * over all of them per step would cost more than the calls */
    uint32_t *used = calloc(im->nslots + 1, sizeof *used), nused = 0;
    dh_ptrmap_t live = {0};
    bool ok = out && cur && used;
    for (uint32_t s = 0; ok && s < im->nslots; s++)
        if (im->slots[s].n > 0) used[nused++] = s;
    while (ok && k < total) {
        bool moved = false;
        for (uint32_t u = 0; u < nused && ok; u++) {
            uint32_t s = used[u];
            const dh_tdb_slot_t *sl = &im->slots[s];
            while (cur[s] < sl->n && ready(&live, &sl->v[cur[s]])) {
                ok = apply(&live, &sl->v[cur[s]]);
                out[k++] = &sl->v[cur[s]++];
                moved = true;
            }
        }
        if (moved || !ok) continue;
        /* nothing can come: a record is missing (a lost buffer); take
         * the first waiting call as it is */
        for (uint32_t u = 0; u < nused; u++) {
            uint32_t s = used[u];
            if (cur[s] < im->slots[s].n) {
                ok = apply(&live, &im->slots[s].v[cur[s]]);
                out[k++] = &im->slots[s].v[cur[s]++];
                break;
            }
        }
    }
    free(used);
    free(cur);
    dh_ptrmap_free(&live);
    if (!ok) {
        free(out);
        return NULL;
    }
    *n = k;
    return out;
}

void dh_tdb_slot_label(const dh_tdb_image_t *im, uint32_t slot, char *out,
                       size_t cap) {
    const dh_tdb_slot_t *s = &im->slots[slot];
    if (s->tid == 0)
        snprintf(out, cap, "slot %" PRIu32, slot);
    else if (s->name[0])
        snprintf(out, cap, "slot %" PRIu32 " (thread %" PRIu64 " '%s')", slot,
                 s->tid, s->name);
    else
        snprintf(out, cap, "slot %" PRIu32 " (thread %" PRIu64 ")", slot,
                 s->tid);
}
