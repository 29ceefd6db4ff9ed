/*
 * options.c - reads the DETHEAP_* options from the environment into one
 * descriptor table, without allocating: getenv only walks environ.  Each
 * option has a name, a parser and a default; a malformed value keeps the
 * default and is reported once on stderr, naming the option.  They are read
 * once per process (process.c, at its first allocation); the file names are
 * copied then, so nothing here looks at the environment again.
 */
#include "options.h"

#include <stdlib.h>
#include <string.h>

bool dh_parse_size(const char *s, uint64_t *out) {
    if (s == NULL || *s == 0) return false;
    uint64_t v = 0;
    unsigned base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        if (*s == 0) return false;
    }
    const char *digits = s;
    for (; *s; s++) {
        unsigned d;
        char c = *s;
        if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
        else if (base == 16 && c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
        else if (base == 16 && c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
        else break;
        if (v > (UINT64_MAX - d) / base) return false;
        v = v * base + d;
    }
    if (s == digits) return false; /* a suffix needs a number before it */
    unsigned shift = 0;
    if (*s && base == 10) {
        switch (*s) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        case 't': case 'T': shift = 40; break;
        default: return false;
        }
        s++;
        if (*s == 'i') s++;
        if (*s == 'B' || *s == 'b') s++;
    }
    if (*s != 0) return false;
    if (shift && v > (UINT64_MAX >> shift)) return false;
    *out = v << shift;
    return true;
}

/* One message of several parts, written in one write(2) where it fits (so
 * that two processes' messages never mix within a line). */
void dh_say_parts(const char *const *parts, size_t n) {
    char buf[2048];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(parts[i]);
        if (len + k > sizeof buf) { /* too long for one: as it comes */
            dh_os_write_stderr(buf, len);
            len = 0;
            if (k > sizeof buf) {
                dh_os_write_stderr(parts[i], k);
                continue;
            }
        }
        memcpy(buf + len, parts[i], k);
        len += k;
    }
    dh_os_write_stderr(buf, len);
}

static void complain(const char *name, const char *value, const char *why) {
    const char *parts[] = {"detheap: ignoring ", name, "=", value, ": ", why,
                           "\n"};
    dh_say_parts(parts, sizeof parts / sizeof parts[0]);
}

static bool is(const char *v, const char *word) { return strcmp(v, word) == 0; }

/* A switch is `1` or `0`, exactly (docs/OPTIONS.md): anything else
 * (`yes`, `on2`, ` 1`) is malformed, named, and the default kept. */
static bool parse_bool(const char *v, bool *out) {
    if (is(v, "1") || is(v, "0")) {
        *out = v[0] == '1';
        return true;
    }
    return false;
}

/* File names are copied when the options are read: a program may rewrite
 * its environment before the exit report (redis does, for its title). */
#define DH_NAME_MAX 4096
static char trace_name[DH_NAME_MAX], stats_name[DH_NAME_MAX];

static const char *copy_name(const char **out, char *buf, const char *v) {
    if (*v == 0) return "empty file name";
    size_t n = strlen(v);
    if (n >= DH_NAME_MAX) return "file name too long";
    memcpy(buf, v, n + 1);
    *out = buf;
    return NULL;
}

/* One parser per option; each returns NULL or why the value is bad. */
/* DETHEAP_BASE is checked against the reserve once both are read
 * (base_rule); here only its form. */
static const char *opt_base(dh_options_t *o, const char *v) {
    uint64_t b;
    if (!dh_parse_size(v, &b)) return "not a number";
    if (b >> DH_ADDRESS_BITS) return "beyond the user address space";
    o->base = (uintptr_t)b; /* 0: anywhere (sanitizer builds; runs differ) */
    return NULL;
}

static const char *reserve_value(uint64_t *out, const char *v) {
    uint64_t r;
    if (!dh_parse_size(v, &r)) return "not a size";
    if (r < ((uint64_t)1 << 26) || r > ((uint64_t)1 << 44))
        return "must be between 64M and 16T";
    uint64_t p = 1;
    while (p < r) p <<= 1;
    *out = p;
    return NULL;
}

static const char *opt_reserve(dh_options_t *o, const char *v) {
    return reserve_value(&o->reserve, v);
}

static const char *opt_thread_reserve(dh_options_t *o, const char *v) {
    return reserve_value(&o->thread_reserve, v);
}

static const char *opt_on_error(dh_options_t *o, const char *v) {
    if (is(v, "abort")) o->on_error = DH_ON_ERROR_ABORT;
    else if (is(v, "warn")) o->on_error = DH_ON_ERROR_WARN;
    else if (is(v, "ignore")) o->on_error = DH_ON_ERROR_IGNORE;
    else return "expected abort, warn or ignore";
    return NULL;
}

static const char *opt_stats(dh_options_t *o, const char *v) {
    if (is(v, "json")) {
        o->stats = o->stats_json = true;
        return NULL;
    }
    return parse_bool(v, &o->stats) ? NULL : "expected 0, 1 or json";
}

static const char *opt_trace(dh_options_t *o, const char *v) {
    return copy_name(&o->trace, trace_name, v);
}

static const char *opt_stats_file(dh_options_t *o, const char *v) {
    return copy_name(&o->stats_file, stats_name, v);
}

static const char *opt_remote(dh_options_t *o, const char *v) {
    if (is(v, "keep")) o->remote_owner = false;
    else if (is(v, "owner")) o->remote_owner = true;
    else return "expected keep or owner";
    return NULL;
}

static const char *opt_recycle(dh_options_t *o, const char *v) {
    if (is(v, "move")) o->recycle_off = false;
    else if (is(v, "off")) o->recycle_off = true;
    else return "expected move or off";
    return NULL;
}

static const char *opt_thp(dh_options_t *o, const char *v) {
    if (is(v, "off")) o->thp = DH_THP_OFF;
    else if (is(v, "auto")) o->thp = DH_THP_AUTO;
    else if (is(v, "always")) o->thp = DH_THP_ALWAYS;
    else if (is(v, "never")) o->thp = DH_THP_NEVER;
    else return "expected off, auto, always or never";
    return NULL;
}

static const char *opt_classes(dh_options_t *o, const char *v) {
    if (is(v, "spec")) o->classes = DH_CLASSES_SPEC;
    else if (is(v, "fine")) o->classes = DH_CLASSES_FINE;
    else return "expected spec or fine";
    return NULL;
}

/* Decimal digits up to `stop` (or the end); the rest after it in *rest. */
static bool parse_dec(const char *v, char stop, uint64_t *out,
                      const char **rest) {
    uint64_t n = 0;
    const char *s = v;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (n > (UINT64_MAX - 9) / 10) return false;
        n = n * 10 + (uint64_t)(*s - '0');
    }
    if (s == v || *s != stop) return false;
    *out = n;
    *rest = stop ? s + 1 : s;
    return true;
}

/* 0, 1 (32 frames) or the number of frames, 2 .. DH_MAX_STACK_DEPTH, in
 * decimal without leading zeros. */
static const char *opt_stacks(dh_options_t *o, const char *v) {
    uint64_t n;
    const char *rest;
    if (parse_bool(v, &o->stacks)) {
        o->stack_depth = o->stacks ? DH_DEFAULT_STACK_DEPTH : 0;
        return NULL;
    }
    if (v[0] == '0' || !parse_dec(v, 0, &n, &rest) || n > DH_MAX_STACK_DEPTH)
        return "expected 0, 1 or a number of frames up to 240";
    o->stacks = true;
    o->stack_depth = (uint16_t)n;
    return NULL;
}

/* FD:DEV:INO, decimal: a descriptor the tool left open, and the file it
 * must still be open on. */
static const char *opt_trace_log(dh_options_t *o, const char *v) {
    uint64_t fd, dev, ino;
    if (!parse_dec(v, ':', &fd, &v) || !parse_dec(v, ':', &dev, &v) ||
        !parse_dec(v, 0, &ino, &v) || fd > 1u << 20)
        return "expected FD:DEV:INO";
    o->trace_log = true;
    o->trace_log_fd = (int)fd;
    o->trace_log_dev = dev;
    o->trace_log_ino = ino;
    return NULL;
}


static const struct {
    const char *name;
    const char *(*parse)(dh_options_t *, const char *);
} table[] = {
    {"DETHEAP_BASE", opt_base},         {"DETHEAP_RESERVE", opt_reserve},
    {"DETHEAP_ON_ERROR", opt_on_error}, {"DETHEAP_STATS", opt_stats},
    {"DETHEAP_TRACE", opt_trace},       {"DETHEAP_STACKS", opt_stacks},
    {"DETHEAP_STATS_FILE", opt_stats_file},
    {"DETHEAP_REMOTE_FREE", opt_remote},
    {"DETHEAP_RECYCLE", opt_recycle},
    {"DETHEAP_THP", opt_thp},
    {"DETHEAP_THREAD_RESERVE", opt_thread_reserve},
    {"DETHEAP_CLASSES", opt_classes},
    {"DETHEAP_TRACE_LOG", opt_trace_log},
};

/* The rule that ties DETHEAP_BASE to DETHEAP_RESERVE: the main heap's range
 * is aligned to its own size (and to the heap map's 4 GiB granule), and it
 * must end inside the user address space.  Returns why not, or NULL. */
static const char *base_rule(const dh_options_t *o) {
    if (o->base == 0) return NULL;
    uint64_t align = o->reserve > DH_HEAP_ALIGN ? o->reserve : DH_HEAP_ALIGN;
    if (o->base % align) {
        if (o->reserve <= DH_HEAP_ALIGN)
            return "not a multiple of 4 GiB; using the default";
        static char why[96];
        const char *pre = "not a multiple of DETHEAP_RESERVE (0x";
        size_t n = strlen(pre);
        memcpy(why, pre, n);
        int top = 60;
        while (top > 0 && ((o->reserve >> top) & 15) == 0) top -= 4;
        for (; top >= 0; top -= 4)
            why[n++] = "0123456789abcdef"[(o->reserve >> top) & 15];
        const char *post = "); using the default";
        memcpy(why + n, post, strlen(post) + 1);
        return why;
    }
    if ((o->base + align) >> DH_ADDRESS_BITS)
        return "leaves no room for the heap below the top of the user "
               "address space; using the default";
    return NULL;
}

void dh_options_read(dh_options_t *o) {
    memset(o, 0, sizeof *o);
    o->base = DH_DEFAULT_BASE;
    o->reserve = DH_DEFAULT_RESERVE;
    o->thread_reserve = DH_DEFAULT_THREAD_RESERVE;
    o->on_error = DH_ON_ERROR_ABORT;
    o->thp = DH_THP_OFF;
    o->classes = DH_CLASSES_FINE;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const char *v = getenv(table[i].name);
        if (v == NULL) continue;
        const char *why = table[i].parse(o, v);
        if (why != NULL) complain(table[i].name, v, why);
    }
    const char *why = base_rule(o);
    if (why != NULL) {
        complain("DETHEAP_BASE", getenv("DETHEAP_BASE"), why);
        o->base = DH_DEFAULT_BASE;
    }
}
