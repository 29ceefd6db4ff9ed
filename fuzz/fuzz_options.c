/*
 * fuzz_options.c - the DETHEAP_* option parser against an independent
 * reference.
 *
 * Input byte 0 picks the mode:
 *   even  the rest is one string for dh_parse_size, compared with
 *         ref_parse_size below, written from the documented grammar:
 *
 *           size   := dec [suffix] | ("0x" | "0X") hex
 *           dec    := digit+            hex := hexdigit+
 *           suffix := ("K"|"M"|"G"|"T", either case) ["i"] ["B" | "b"]
 *
 *         K, M, G, T are powers of 1024; a value that does not fit in
 *         64 bits (before or after the suffix) is rejected.
 *   odd   the rest is split at '\n' into values for the ten options (a
 *         0xff first byte leaves that option unset), set with setenv;
 *         dh_options_read must not crash, every field must be what the
 *         option table in docs/OPTIONS.md says, and exactly the malformed
 *         values must be complained about, each naming its option.
 *
 * The library's one OS call here, writing to stderr, is replaced by a
 * function that records the text, so the complaints can be counted.
 */
#include "fuzz_input.h"
#include "options.h"

#include <stdlib.h>
#include <string.h>

/* ---- the stand-in for the OS layer ------------------------------------- */

/* Each write is one piece: a complaint is written whole, in one write,
 * "detheap: ignoring NAME=VALUE: WHY\n" (cut here to PIECE_LEN). */
enum { MAX_PIECES = 128, PIECE_LEN = 160 };
static char pieces[MAX_PIECES][PIECE_LEN];
static size_t npieces;

void dh_os_write_stderr(const char *s, size_t len) {
    if (npieces == MAX_PIECES) return;
    size_t n = len < PIECE_LEN - 1 ? len : PIECE_LEN - 1;
    memcpy(pieces[npieces], s, n);
    pieces[npieces][n] = 0;
    npieces++;
}

/* How many complaints name option `name`. */
static size_t complaints_about(const char *name) {
    size_t n = 0;
    static const char lead[] = "detheap: ignoring ";
    size_t k = strlen(name);
    for (size_t i = 0; i < npieces; i++)
        if (strncmp(pieces[i], lead, sizeof lead - 1) == 0 &&
            strncmp(pieces[i] + sizeof lead - 1, name, k) == 0 &&
            pieces[i][sizeof lead - 1 + k] == '=')
            n++;
    return n;
}

/* ---- the reference ------------------------------------------------------ */

static int digit_value(char c, unsigned base) {
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    return d >= 0 && (unsigned)d < base ? d : -1;
}

static int suffix_shift(char c) {
    switch (c) {
    case 'K': case 'k': return 10;
    case 'M': case 'm': return 20;
    case 'G': case 'g': return 30;
    case 'T': case 't': return 40;
    default: return -1;
    }
}

/* Accumulates in 128 bits, so overflow is a plain comparison at the end
 * rather than the per-digit test the library uses. */
static bool ref_parse_size(const char *s, uint64_t *out) {
    unsigned base = 10;
    size_t i = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    }
    unsigned __int128 v = 0;
    size_t first = i;
    bool big = false;
    for (int d; (d = digit_value(s[i], base)) >= 0; i++) {
        v = v * base + (unsigned)d;
        if (v > UINT64_MAX) big = true, v = (unsigned __int128)UINT64_MAX + 1;
    }
    if (i == first) return false; /* no digits */
    int shift = 0;
    if (base == 10 && s[i] != 0) {
        shift = suffix_shift(s[i]);
        if (shift < 0) return false;
        i++;
        if (s[i] == 'i') i++;
        if (s[i] == 'B' || s[i] == 'b') i++;
    }
    if (s[i] != 0 || big) return false;
    v <<= shift;
    if (v > UINT64_MAX) return false;
    *out = (uint64_t)v;
    return true;
}

static void fuzz_parse(const uint8_t *data, size_t size) {
    char s[256];
    size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
    memcpy(s, data, n);
    s[n] = 0;
    uint64_t got = 0xdeadbeef, want = 0;
    bool ok = dh_parse_size(s, &got);
    bool ref = ref_parse_size(s, &want);
    FUZZ_CHECK(ok == ref);
    if (ok) FUZZ_CHECK(got == want);
    else FUZZ_CHECK(got == 0xdeadbeef); /* *out untouched on failure */
}

/* ---- dh_options_read ----------------------------------------------------- */

enum { OPT_BASE, OPT_RESERVE, OPT_ON_ERROR, OPT_STATS, OPT_TRACE, OPT_STACKS,
       OPT_STATS_FILE, OPT_REMOTE, OPT_THP, OPT_THREAD_RESERVE, OPT_CLASSES,
       OPT_RECYCLE, NOPT };
static const char *const opt_names[NOPT] = {
    "DETHEAP_BASE", "DETHEAP_RESERVE", "DETHEAP_ON_ERROR", "DETHEAP_STATS",
    "DETHEAP_TRACE", "DETHEAP_STACKS", "DETHEAP_STATS_FILE",
    "DETHEAP_REMOTE_FREE", "DETHEAP_THP", "DETHEAP_THREAD_RESERVE",
    "DETHEAP_CLASSES", "DETHEAP_RECYCLE"};

/* docs/OPTIONS.md: a switch is exactly "1" or "0" */
static bool ref_bool(const char *v, bool *out) {
    if (strcmp(v, "1") == 0) return *out = true, true;
    if (strcmp(v, "0") == 0) return *out = false, true;
    return false;
}

/* docs/OPTIONS.md: a file name is not empty and shorter than 4096 bytes */
static bool ref_name(const char *v) { return *v != 0 && strlen(v) < 4096; }

/* Apply one option to the expected result; false if it is malformed. */
static bool ref_option(int opt, const char *v, dh_options_t *o) {
    uint64_t x;
    switch (opt) {
    case OPT_BASE:
        /* docs/OPTIONS.md: an address below 2^47 (its rule against the
         * reserve is applied once all options are known: base_rule) */
        if (!ref_parse_size(v, &x)) return false;
        if (x >= ((uint64_t)1 << 47)) return false;
        o->base = (uintptr_t)x;
        return true;
    case OPT_RESERVE:
    case OPT_THREAD_RESERVE: /* both: 64M .. 16T, up to a power of two */
        if (!ref_parse_size(v, &x)) return false;
        if (x < ((uint64_t)64 << 20) || x > ((uint64_t)16 << 40)) return false;
        x = (uint64_t)1 << (x == 1 ? 0 : 64 - __builtin_clzll(x - 1));
        if (opt == OPT_RESERVE)
            o->reserve = x;
        else
            o->thread_reserve = x;
        return true;
    case OPT_ON_ERROR:
        if (strcmp(v, "abort") == 0) o->on_error = DH_ON_ERROR_ABORT;
        else if (strcmp(v, "warn") == 0) o->on_error = DH_ON_ERROR_WARN;
        else if (strcmp(v, "ignore") == 0) o->on_error = DH_ON_ERROR_IGNORE;
        else return false;
        return true;
    case OPT_STATS:
        if (strcmp(v, "json") == 0) return o->stats = o->stats_json = true;
        return ref_bool(v, &o->stats);
    case OPT_TRACE:
        if (!ref_name(v)) return false;
        o->trace = v;
        return true;
    case OPT_STACKS: /* docs/OPTIONS.md: 0, 1 (32 frames) or 2..240 */
        if (ref_bool(v, &o->stacks)) {
            o->stack_depth = o->stacks ? 32 : 0;
            return true;
        }
        if (v[0] < '1' || v[0] > '9' || strspn(v, "0123456789") != strlen(v) ||
            strlen(v) > 3 || atoi(v) > 240)
            return false;
        o->stacks = true;
        o->stack_depth = (uint16_t)atoi(v);
        return true;
    case OPT_STATS_FILE:
        if (!ref_name(v)) return false;
        o->stats_file = v;
        return true;
    case OPT_THP:
        if (strcmp(v, "off") == 0) o->thp = DH_THP_OFF;
        else if (strcmp(v, "auto") == 0) o->thp = DH_THP_AUTO;
        else if (strcmp(v, "always") == 0) o->thp = DH_THP_ALWAYS;
        else if (strcmp(v, "never") == 0) o->thp = DH_THP_NEVER;
        else return false;
        return true;
    case OPT_RECYCLE: /* docs/OPTIONS.md: move or off */
        if (strcmp(v, "move") == 0) o->recycle_off = false;
        else if (strcmp(v, "off") == 0) o->recycle_off = true;
        else return false;
        return true;
    case OPT_CLASSES: /* docs/OPTIONS.md: spec or fine */
        if (strcmp(v, "spec") == 0) o->classes = DH_CLASSES_SPEC;
        else if (strcmp(v, "fine") == 0) o->classes = DH_CLASSES_FINE;
        else return false;
        return true;
    default:
        if (strcmp(v, "keep") == 0) o->remote_owner = false;
        else if (strcmp(v, "owner") == 0) o->remote_owner = true;
        else return false;
        return true;
    }
}

static void fuzz_env(const uint8_t *data, size_t size) {
    static char vals[NOPT][128];
    bool set[NOPT] = {false};
    size_t at = 0;
    for (int i = 0; i < NOPT; i++) {
        size_t n = 0;
        bool unset = at < size && data[at] == 0xff;
        while (at < size && data[at] != '\n') {
            /* setenv cannot carry a NUL: map it to another byte */
            if (n + 1 < sizeof vals[i]) vals[i][n++] = data[at] ? (char)data[at] : 1;
            at++;
        }
        at++; /* the separator */
        vals[i][n] = 0;
        set[i] = !unset && at <= size + 1;
    }
    dh_options_t want;
    memset(&want, 0, sizeof want);
    want.base = DH_DEFAULT_BASE;
    want.reserve = DH_DEFAULT_RESERVE;
    want.thread_reserve = DH_DEFAULT_THREAD_RESERVE;
    want.on_error = DH_ON_ERROR_ABORT;
    want.thp = DH_THP_OFF;
    want.classes = DH_CLASSES_FINE;
    bool is_bad[NOPT] = {false};
    for (int i = 0; i < NOPT; i++) {
        if (set[i]) {
            FUZZ_CHECK(setenv(opt_names[i], vals[i], 1) == 0);
            if (!ref_option(i, vals[i], &want)) is_bad[i] = true;
        } else {
            unsetenv(opt_names[i]);
        }
    }
    /* docs/OPTIONS.md: DETHEAP_BASE is 0 or a multiple of 4 GiB and of
     * DETHEAP_RESERVE, and the main heap's range [BASE, BASE + max(RESERVE,
     * 4 GiB)) ends at or below 2^47; else it is named and the default kept */
    uint64_t span = want.reserve > ((uint64_t)4 << 30) ? want.reserve
                                                       : (uint64_t)4 << 30;
    if (want.base != 0 &&
        (want.base % span != 0 || want.base + span > ((uint64_t)1 << 47))) {
        if (!is_bad[OPT_BASE]) is_bad[OPT_BASE] = true;
        want.base = DH_DEFAULT_BASE;
    }
    npieces = 0;
    dh_options_t got;
    memset(&got, 0x5a, sizeof got);
    dh_options_read(&got);
    FUZZ_CHECK(got.base == want.base);
    FUZZ_CHECK(got.reserve == want.reserve);
    FUZZ_CHECK(got.thread_reserve == want.thread_reserve);
    FUZZ_CHECK(got.on_error == want.on_error);
    FUZZ_CHECK(got.stats == want.stats);
    FUZZ_CHECK(got.stats_json == want.stats_json);
    FUZZ_CHECK(got.stacks == want.stacks);
    FUZZ_CHECK(got.stack_depth == want.stack_depth);
    FUZZ_CHECK(got.remote_owner == want.remote_owner);
    FUZZ_CHECK(got.recycle_off == want.recycle_off);
    FUZZ_CHECK(got.thp == want.thp);
    FUZZ_CHECK(got.classes == want.classes);
    /* the strings are the environment's own: compare contents */
    FUZZ_CHECK((got.trace == NULL) == (want.trace == NULL));
    if (got.trace) FUZZ_CHECK(strcmp(got.trace, want.trace) == 0);
    FUZZ_CHECK((got.stats_file == NULL) == (want.stats_file == NULL));
    if (got.stats_file) FUZZ_CHECK(strcmp(got.stats_file, want.stats_file) == 0);
    /* exactly one complaint per malformed value, naming its option */
    FUZZ_CHECK(npieces < MAX_PIECES);
    for (int i = 0; i < NOPT; i++)
        FUZZ_CHECK(complaints_about(opt_names[i]) == (is_bad[i] ? 1u : 0u));
    for (int i = 0; i < NOPT; i++) unsetenv(opt_names[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    if (data[0] % 2 == 0) fuzz_parse(data + 1, size - 1);
    else fuzz_env(data + 1, size - 1);
    return 0;
}
