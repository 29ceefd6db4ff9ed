/*
 * heapmodel.c - the trace-driven heap model (see heapmodel.h).
 */
#include "heapmodel.h"

#include <string.h>

#define PAGE 4096u

const char *dh_model_class_name(int c) {
    static const char *const names[DH_MODEL_CLASSES] = {
        "16", "32", "48", "64", "128", "256", "512", "1K", "2K",
        "4K", "8K", "16K", "64K", "large"};
    return c >= 0 && c < DH_MODEL_CLASSES ? names[c] : "?";
}

int dh_model_class_of(uint64_t usable) {
    int c = usable <= DH_MAX_CLASS_SIZE ? dh_size_class((size_t)usable) : -1;
    return c < 0 ? DH_MODEL_LARGE : c;
}

/* The usable size the library gives a request of n bytes aligned to align
 * (as the block would be counted; alignment above 16 may be served from a
 * bigger class or a large block). */
static uint64_t usable_of(const dh_model_t *m, uint64_t n, uint64_t align) {
    uint64_t need = align <= 16 || n > align ? n : align;
    if (need <= DH_MAX_CLASS_SIZE && align <= 4096) {
        int c = dh_class_set_of(m->set, (size_t)need);
        while (dh_class_set_size(m->set, c) % align != 0) c++;
        if (c < dh_class_set_count(m->set)) return dh_class_set_size(m->set, c);
    }
    return (n + PAGE - 1) / PAGE * PAGE;
}

static bool add(dh_model_t *m, uint64_t ptr, uint64_t usable, uint64_t req) {
    if (!dh_ptrmap_put(&m->blocks, ptr, usable, req)) return false;
    dh_model_class_t *k = &m->cls[dh_model_class_of(usable)];
    k->allocs++;
    k->live++;
    k->live_bytes += usable;
    k->requested += req;
    if (k->live > k->peak) k->peak = k->live;
    if (k->live_bytes > k->peak_bytes) k->peak_bytes = k->live_bytes;
    m->live_bytes += usable;
    if (m->live_bytes > m->peak_bytes) m->peak_bytes = m->live_bytes;
    return true;
}

static void drop(dh_model_t *m, uint64_t ptr) {
    uint64_t usable, req;
    if (!dh_ptrmap_take(&m->blocks, ptr, &usable, &req)) {
        m->unknown_frees++;
        return;
    }
    dh_model_class_t *k = &m->cls[dh_model_class_of(usable)];
    k->frees++;
    k->live--;
    k->live_bytes -= usable;
    k->requested -= req;
    m->live_bytes -= usable;
}

bool dh_model_apply(dh_model_t *m, const dh_trace_rec_t *r) {
    if (!dh_trace_is_call(r->op)) return true;
    m->calls++;
    bool failed = (r->flags & 1) != 0;
    if (failed) m->failed++;
    switch (r->op) {
    case DH_TR_MALLOC:
        return failed || add(m, r->c, usable_of(m, r->a, 16), r->a);
    case DH_TR_CALLOC: {
        uint64_t n = r->a * r->b;
        return failed || add(m, r->c, usable_of(m, n, 16), n);
    }
    case DH_TR_ALIGNED:
        return failed || add(m, r->c, usable_of(m, r->a, r->b), r->a);
    case DH_TR_FREE:
        if (r->b) drop(m, r->b);
        return true;
    case DH_TR_REALLOC:
        if (failed && r->a != 0) return true; /* the old block stays */
        if (r->b) drop(m, r->b);
        return r->c == 0 || add(m, r->c, usable_of(m, r->a, 16), r->a);
    default:
        return true;
    }
}

void dh_model_free(dh_model_t *m) {
    dh_class_set_t set = m->set;
    dh_ptrmap_free(&m->blocks);
    memset(m, 0, sizeof *m);
    m->set = set;
}
