/*
 * trace_read.c - the strict trace reader (see trace_read.h).
 *
 * The file is a 64-byte header and 32-byte records.  Two records carry a
 * payload in the records that follow them: FRAMES (extra = n frames, then
 * ceil(n / 4) records of four u64 return addresses) and MAPS (a = text
 * length L, then ceil(L / 32) records of text).  Every count is checked
 * against the bytes left before anything is read, with divisions rather
 * than sums so that a huge count cannot overflow the check.
 */
#include "trace_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen,
                                                     size_t offset,
                                                     const char *fmt, ...) {
    if (errlen == 0) return -1;
    int n = snprintf(err, errlen, "offset %zu: ", offset);
    if (n < 0 || (size_t)n >= errlen) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

const char *dh_trace_op_name(unsigned op) {
    switch (op) {
    case DH_TR_MALLOC: return "malloc";
    case DH_TR_CALLOC: return "calloc";
    case DH_TR_REALLOC: return "realloc";
    case DH_TR_FREE: return "free";
    case DH_TR_ALIGNED: return "aligned_alloc";
    case DH_TR_THREAD: return "thread";
    case DH_TR_FRAMES: return "frames";
    case DH_TR_MAPS: return "maps";
    case DH_TR_END: return "end";
    case DH_TR_NAME: return "name";
    case DH_TR_EXEC: return "exec";
    case DH_TR_MISUSE: return "misuse";
    default: return "?";
    }
}

int dh_trace_is_call(unsigned op) {
    return op >= DH_TR_MALLOC && op <= DH_TR_ALIGNED;
}

static int parse_header(const uint8_t *d, size_t len, dh_trace_header_t *h,
                        char *err, size_t errlen) {
    if (len < DH_TRACE_HEADER_SIZE)
        return fail(err, errlen, len,
                    "truncated header (%zu of %u bytes); not a complete "
                    "detheap trace", len, DH_TRACE_HEADER_SIZE);
    if (memcmp(d, "DHTRACE1", 8) != 0)
        return fail(err, errlen, 0, "not a detheap trace (bad magic)");
    h->version = le32(d + 8);
    if (h->version != 1 && h->version != 2)
        return fail(err, errlen, 8, "unsupported trace version %u",
                    h->version);
    uint32_t rs = le32(d + 12);
    if (rs != DH_TRACE_RECORD_SIZE)
        return fail(err, errlen, 12, "record size %u, expected %u", rs,
                    DH_TRACE_RECORD_SIZE);
    h->pid = le64(d + 16);
    h->ppid = le64(d + 24);
    h->base = le64(d + 32);
    h->reserve = le64(d + 40);
    h->flags = le64(d + 48);
    if (h->flags & ~(uint64_t)(DH_TRACE_FLAG_STACKS | DH_TRACE_FLAG_OWNER | DH_TRACE_FLAG_FINE))
        return fail(err, errlen, 48, "unknown header flags 0x%llx",
                    (unsigned long long)h->flags);
    if (le64(d + 56) != 0)
        return fail(err, errlen, 56, "reserved header field is not 0");
    return 0;
}

/* Validate the fixed fields of the record at off; fill *r. */
static int parse_record(const uint8_t *d, size_t len, size_t off,
                        dh_trace_rec_t *r, char *err, size_t errlen) {
    if (len - off < DH_TRACE_RECORD_SIZE)
        return fail(err, errlen, off, "truncated record (%zu of %u bytes)",
                    len - off, DH_TRACE_RECORD_SIZE);
    const uint8_t *p = d + off;
    memset(r, 0, sizeof *r);
    r->op = p[0];
    r->flags = p[1];
    r->extra = (uint16_t)(p[2] | p[3] << 8);
    r->slot = le32(p + 4);
    r->a = le64(p + 8);
    r->b = le64(p + 16);
    r->c = le64(p + 24);
    r->offset = off;
    if (!dh_trace_is_call(r->op) && r->op != DH_TR_THREAD &&
        r->op != DH_TR_FRAMES && r->op != DH_TR_MAPS && r->op != DH_TR_END &&
        r->op != DH_TR_NAME && r->op != DH_TR_EXEC && r->op != DH_TR_MISUSE)
        return fail(err, errlen, off, "record of unknown op %u", r->op);
    if (r->flags & ~1u)
        return fail(err, errlen, off + 1, "%s record with unknown flags 0x%x",
                    dh_trace_op_name(r->op), r->flags);
    if (r->slot >= DH_TRACE_MAX_SLOTS)
        return fail(err, errlen, off + 4, "%s record of slot %u (max %u)",
                    dh_trace_op_name(r->op), r->slot, DH_TRACE_MAX_SLOTS - 1);
    if (r->op == DH_TR_EXEC &&
        r->c & ~(uint64_t)(DH_TRACE_FLAG_STACKS | DH_TRACE_FLAG_OWNER | DH_TRACE_FLAG_FINE))
        return fail(err, errlen, off + 24, "exec record with unknown flags");
    if (r->op != DH_TR_FRAMES && r->op != DH_TR_MISUSE && r->extra != 0)
        return fail(err, errlen, off + 2, "%s record with extra field %u",
                    dh_trace_op_name(r->op), r->extra);
    return 0;
}

int dh_trace_parse(const uint8_t *data, size_t len,
                   const dh_trace_visitor_t *v, char *err, size_t errlen) {
    if (errlen) err[0] = 0;
    dh_trace_header_t h;
    if (parse_header(data, len, &h, err, errlen) != 0) return -1;
    int rc;
    if (v && v->header && (rc = v->header(&h, v->user)) != 0) return rc;
    uint64_t frames[DH_TRACE_MAX_FRAMES];
    size_t off = DH_TRACE_HEADER_SIZE;
    while (off < len) {
        dh_trace_rec_t r;
        if (parse_record(data, len, off, &r, err, errlen) != 0) return -1;
        size_t next = off + DH_TRACE_RECORD_SIZE;
        size_t left = len - next; /* payload bytes available */
        if (r.op == DH_TR_FRAMES) {
            if (r.extra == 0 || r.extra > DH_TRACE_MAX_FRAMES)
                return fail(err, errlen, off + 2,
                            "frames record with %u frames (1..%u)", r.extra,
                            DH_TRACE_MAX_FRAMES);
            size_t nrec = ((size_t)r.extra + 3) / 4;
            if (left / DH_TRACE_RECORD_SIZE < nrec)
                return fail(err, errlen, off,
                            "frames record announces %u frames but the file "
                            "ends at offset %zu", r.extra, len);
            for (unsigned i = 0; i < r.extra; i++)
                frames[i] = le64(data + next + 8 * (size_t)i);
            r.frames = frames;
            r.nframes = r.extra;
            next += nrec * DH_TRACE_RECORD_SIZE;
        } else if (r.op == DH_TR_MAPS) {
            if (r.a > left)
                return fail(err, errlen, off + 8,
                            "maps record announces %llu bytes of text but "
                            "only %zu follow", (unsigned long long)r.a, left);
            size_t tl = (size_t)r.a;
            size_t padded = (tl + DH_TRACE_RECORD_SIZE - 1) /
                            DH_TRACE_RECORD_SIZE * DH_TRACE_RECORD_SIZE;
            if (padded > left)
                return fail(err, errlen, len,
                            "maps text is not padded to a whole record");
            r.text = (const char *)data + next;
            r.text_len = tl;
            next += padded;
        }
        if (v && v->record && (rc = v->record(&r, v->user)) != 0) return rc;
        off = next;
    }
    return 0;
}

int dh_trace_map(const char *path, dh_trace_file_t *f, char *err,
                 size_t errlen) {
    f->data = NULL;
    f->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    f->len = (size_t)st.st_size;
    if (f->len == 0) { /* mmap refuses 0 bytes; the parser reports it */
        close(fd);
        f->data = (const uint8_t *)"";
        return 0;
    }
    void *m = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    f->data = m;
    return 0;
}

void dh_trace_unmap(dh_trace_file_t *f) {
    if (f->len) munmap((void *)(uintptr_t)f->data, f->len);
    f->data = NULL;
    f->len = 0;
}
