/*
 * ops.c - the op-script runner.  One operation a line:
 *   a SIZE        allocate; print the handle
 *   f K           free the K-th allocation's handle; print "ok"
 *   w K LEN B     write LEN bytes (B + i) & 0xff; print true/false
 *   r K LEN       print the FNV-1a 64 of the first LEN bytes, or "none"
 *   s             print "alloc=A free=F live=L blocks=T freeblocks=B"
 * Blank lines and lines starting with '#' are skipped.  K is the ordinal
 * of an `a` line; it names that allocation's handle even after it was
 * freed, so a script can free twice or use a stale handle on purpose.
 */
#include "ops.h"

#include <detheap.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    dh_handle_t *v;
    size_t n, cap;
} handles_t;

static int push(handles_t *hs, dh_handle_t h) {
    if (hs->n == hs->cap) {
        size_t cap = hs->cap ? hs->cap * 2 : 1024;
        dh_handle_t *v = realloc(hs->v, cap * sizeof *v);
        if (v == NULL) return -1;
        hs->v = v;
        hs->cap = cap;
    }
    hs->v[hs->n++] = h;
    return 0;
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Parse a decimal unsigned number; advances *s.  Returns false if none. */
static bool number(const char **s, uint64_t *out) {
    const char *p = *s;
    while (*p == ' ' || *p == '\t') p++;
    if (*p < '0' || *p > '9') return false;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10) return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *s = p;
    *out = v;
    return true;
}

static bool at_end(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    return *s == 0;
}

typedef struct {
    dh_heap_t *heap;
    handles_t hs;
    FILE *out;
    uint8_t *buf;
    size_t buf_cap;
} runner_t;

static const char *op_write(runner_t *r, dh_handle_t h, uint64_t len,
                            uint64_t b) {
    if (len > r->buf_cap) {
        uint8_t *nb = realloc(r->buf, len);
        if (nb == NULL) return "out of memory";
        r->buf = nb;
        r->buf_cap = len;
    }
    for (uint64_t i = 0; i < len; i++) r->buf[i] = (uint8_t)(b + i);
    fputs(dh_write(r->heap, h, r->buf, len) ? "true\n" : "false\n", r->out);
    return NULL;
}

static void op_read(runner_t *r, dh_handle_t h, uint64_t len) {
    size_t size;
    const uint8_t *p = dh_get(r->heap, h, &size);
    if (p == NULL) {
        fputs("none\n", r->out);
        return;
    }
    fprintf(r->out, "%016" PRIx64 "\n", fnv1a(p, len < size ? len : size));
}

static void op_stats(runner_t *r) {
    dh_stats_t s;
    dh_heap_stats(r->heap, &s, sizeof s);
    fprintf(r->out,
            "alloc=%" PRIu64 " free=%" PRIu64 " live=%" PRIu64
            " blocks=%" PRIu64 " freeblocks=%" PRIu64 "\n",
            s.alloc_count, s.free_count, s.live_count, s.total_blocks,
            s.free_block_count);
}

/* Run one line; returns NULL or the reason it is malformed. */
static const char *op_line(runner_t *r, const char *line) {
    const char *s = line + 1;
    uint64_t k, len, b;
    switch (line[0]) {
    case 'a': {
        if (!number(&s, &len) || !at_end(s)) return "expected: a SIZE";
        dh_handle_t h = dh_alloc(r->heap, len);
        if (h.id == 0) return strerror(errno);
        if (push(&r->hs, h) != 0) return "out of memory";
        fprintf(r->out, "%" PRIu64 "\n", h.id);
        return NULL;
    }
    case 'f':
        if (!number(&s, &k) || !at_end(s)) return "expected: f K";
        if (k >= r->hs.n) return "K names no allocation yet";
        dh_free(r->heap, r->hs.v[k]);
        fputs("ok\n", r->out);
        return NULL;
    case 'w':
        if (!number(&s, &k) || !number(&s, &len) || !number(&s, &b) ||
            !at_end(s))
            return "expected: w K LEN B";
        if (k >= r->hs.n) return "K names no allocation yet";
        return op_write(r, r->hs.v[k], len, b);
    case 'r':
        if (!number(&s, &k) || !number(&s, &len) || !at_end(s))
            return "expected: r K LEN";
        if (k >= r->hs.n) return "K names no allocation yet";
        op_read(r, r->hs.v[k], len);
        return NULL;
    case 's':
        if (!at_end(s)) return "expected: s";
        op_stats(r);
        return NULL;
    default:
        return "unknown operation (expected a, f, w, r or s)";
    }
}

int dh_ops_run(FILE *in, FILE *out, FILE *err, const char *name) {
    runner_t r = {.out = out};
    r.heap = dh_heap_create(NULL);
    if (r.heap == NULL) {
        fprintf(err, "detheap ops: cannot create a heap: %s\n",
                strerror(errno));
        return 1;
    }
    char line[256];
    unsigned long lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof line, in) != NULL) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(in)) {
            fprintf(err, "%s:%lu: line too long\n", name, lineno);
            rc = 2;
            break;
        }
        if (line[0] == '#' || at_end(line)) continue;
        const char *why = op_line(&r, line);
        if (why != NULL) {
            fprintf(err, "%s:%lu: %s\n", name, lineno, why);
            rc = 2;
            break;
        }
    }
    if (rc == 0 && ferror(in)) {
        fprintf(err, "%s: read error\n", name);
        rc = 2;
    }
    free(r.hs.v);
    free(r.buf);
    dh_heap_destroy(r.heap);
    return rc;
}
