/*
 * fuzz_trace.c - the tool's trace reader (tools/trace_read.c) on arbitrary
 * bytes.  It must never crash or read outside the input (ASan), and its
 * answer must be consistent:
 *   - malformed input gives -1 and a message "offset N: reason" with
 *     N <= the input length;
 *   - accepted input is a 64-byte header with the right magic, version and
 *     record size, followed by whole 32-byte records, every record handed on
 *     lies inside the input, in increasing order, and frame and map-text
 *     pointers stay inside the input or the reader's own buffer;
 *   - a record callback that returns nonzero stops the parse with that
 *     value, whatever comes after it;
 *   - parsing is a pure function of the bytes (a second parse agrees).
 */
#include "fuzz_input.h"
#include "trace_read.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t len;
    unsigned headers;
    size_t records;
    size_t last_offset;
    uint64_t hash;     /* of everything handed on, to compare two parses */
    size_t stop_at;    /* return STOP_VALUE at this record (0: never) */
} seen_t;

enum { STOP_VALUE = 42 };

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

static int on_header(const dh_trace_header_t *h, void *user) {
    seen_t *s = user;
    s->headers++;
    FUZZ_CHECK(h->version == 1 || h->version == 2);
    s->hash = mix(mix(mix(s->hash, h->pid), h->base), h->reserve);
    return 0;
}

static int on_record(const dh_trace_rec_t *r, void *user) {
    seen_t *s = user;
    FUZZ_CHECK(s->headers == 1);
    FUZZ_CHECK(r->offset >= DH_TRACE_HEADER_SIZE);
    FUZZ_CHECK(r->offset + DH_TRACE_RECORD_SIZE <= s->len);
    FUZZ_CHECK(s->records == 0 || r->offset > s->last_offset);
    FUZZ_CHECK(r->op == s->data[r->offset]);
    if (r->op == DH_TR_FRAMES) {
        FUZZ_CHECK(r->nframes <= DH_TRACE_MAX_FRAMES);
        uint64_t sum = 0;
        for (unsigned i = 0; i < r->nframes; i++) sum += r->frames[i];
        s->hash = mix(s->hash, sum);
    }
    if (r->op == DH_TR_MAPS && r->text_len > 0) {
        FUZZ_CHECK(r->text >= (const char *)s->data);
        FUZZ_CHECK(r->text + r->text_len <= (const char *)s->data + s->len);
        s->hash = mix(s->hash, (uint8_t)r->text[r->text_len - 1]);
    }
    s->last_offset = r->offset;
    s->records++;
    s->hash = mix(mix(mix(mix(s->hash, r->op), r->a), r->b), r->c);
    if (s->stop_at != 0 && s->records == s->stop_at) return STOP_VALUE;
    return 0;
}

static int parse(const uint8_t *data, size_t len, seen_t *s, size_t stop_at,
                 char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    s->data = data;
    s->len = len;
    s->stop_at = stop_at;
    dh_trace_visitor_t v = {on_header, on_record, s};
    return dh_trace_parse(data, len, &v, err, errlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A copy of exactly `size` bytes, so ASan catches a read one past the
     * end (the fuzzer's own buffer may be larger). */
    uint8_t *buf = malloc(size ? size : 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);

    char err[256];
    seen_t first, again, stopped;
    int rc = parse(buf, size, &first, 0, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc == -1) {
        FUZZ_CHECK(strncmp(err, "offset ", 7) == 0);
        char *end;
        unsigned long long off = strtoull(err + 7, &end, 10);
        FUZZ_CHECK(end != err + 7 && strncmp(end, ": ", 2) == 0);
        FUZZ_CHECK(off <= size);
    } else {
        FUZZ_CHECK(size >= DH_TRACE_HEADER_SIZE);
        FUZZ_CHECK(memcmp(buf, "DHTRACE1", 8) == 0);
        FUZZ_CHECK((size - DH_TRACE_HEADER_SIZE) % DH_TRACE_RECORD_SIZE == 0);
        FUZZ_CHECK(first.headers == 1);
    }
    if (size < DH_TRACE_HEADER_SIZE || memcmp(buf, "DHTRACE1", 8) != 0)
        FUZZ_CHECK(rc == -1 && first.headers == 0 && first.records == 0);

    char err2[256];
    int rc2 = parse(buf, size, &again, 0, err2, sizeof err2);
    FUZZ_CHECK(rc2 == rc && again.records == first.records &&
               again.hash == first.hash);
    if (rc == -1) FUZZ_CHECK(strcmp(err, err2) == 0);

    if (first.records > 0) {
        size_t k = 1 + size % first.records;
        int rc3 = parse(buf, size, &stopped, k, err2, sizeof err2);
        FUZZ_CHECK(rc3 == STOP_VALUE && stopped.records == k);
    }

    /* A tiny error buffer must still be NUL-terminated and never overrun. */
    char small[5];
    memset(small, 'x', sizeof small);
    seen_t quiet;
    FUZZ_CHECK(parse(buf, size, &quiet, 0, small, sizeof small) == rc);
    if (rc == -1) FUZZ_CHECK(memchr(small, 0, sizeof small) != NULL);
    free(buf);
    return 0;
}
