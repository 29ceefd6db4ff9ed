/*
 * test_misuse.c - the misuse matrix of docs/ERRORS.md for the drop-in
 * malloc: one test per row (a misuse of free, realloc or reallocarray) and
 * per DETHEAP_ON_ERROR policy.  Each test runs ov_helper with the library
 * preloaded and checks, from outside the process:
 *
 *   abort (and the default): exactly the one diagnostic line on stderr,
 *          naming the call, the pointer the helper handed over and the
 *          reason; the process dies of SIGABRT before going on;
 *   warn:  the same line; the process goes on, its later allocations work,
 *          the heap checks clean (dh_heap_check gives DH_CHECK_OK) and
 *          nothing else changed, the rejection is counted once;
 *   ignore: nothing on stderr; otherwise as warn.
 *
 * realloc of a rejected pointer returns NULL with errno EINVAL (glibc would
 * abort); the helper reports that as "realloc=einval".
 */
#include "spawn.h"

#include "detheap.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

typedef struct misuse_case {
    const char *name;   /* ov_helper's name for the setup (ERRORS.md row) */
    const char *reason; /* the end of the diagnostic line */
} misuse_case_t;

static const misuse_case_t cases[] = {
    {"double-free-class", "double free (48-byte class)"},
    /* a block of another thread's heap, freed here twice */
    {"double-free-remote", "double free (48-byte class)"},
    {"interior-remote", "not the start of a block (inside a 48-byte block)"},
    {"double-free-large", "double free (large block)"},
    /* freed to the top, the block is gone: nothing starts there any more */
    {"double-free-large-top", "not the start of a block"},
    {"interior-class", "not the start of a block (inside a 48-byte block)"},
    {"interior-large", "not the start of a block"},
    {"misaligned", "misaligned pointer"},
    {"misaligned-8", "misaligned pointer"},
    {"foreign-stack", "pointer not from detheap"},
    {"foreign-static", "pointer not from detheap"},
    {"foreign-mmap", "pointer not from detheap"},
    {"header", "not the start of a block"},
    {"state-map", "not the start of a block"},
    {"uncarved", "not the start of a block"},
};
#define NCASES (sizeof cases / sizeof cases[0])

static const char *const calls[] = {"free", "realloc", "reallocarray"};
static const char *const policies[] = {"abort", "warn", "ignore", NULL};
#define NCALLS 3
#define NPOLICIES 4 /* NULL: the option unset, i.e. the default */

typedef struct run_spec {
    const misuse_case_t *c;
    const char *call;
    const char *policy;
} run_spec_t;

static ov_result_t result;

static void run_one(void **state) {
    const run_spec_t *s = *state;
    char arg[128], pol[64];
    if (strcmp(s->call, "free") == 0)
        snprintf(arg, sizeof arg, "%s", s->c->name);
    else
        snprintf(arg, sizeof arg, "%s-%s", s->call, s->c->name);
    char *argv[] = {OV_HELPER, "misuse", arg, NULL};
    char *envp[4] = {"PATH=/usr/bin:/bin", "LD_PRELOAD=" OV_PRELOAD, NULL,
                     NULL};
    if (s->policy) {
        snprintf(pol, sizeof pol, "DETHEAP_ON_ERROR=%s", s->policy);
        envp[2] = pol;
    }
    assert_true(ov_run(argv, envp, 60, &result));
    assert_false(result.timed_out);

    /* the pointer the helper handed over */
    const char *at = strstr(result.out, "ptr 0x");
    assert_non_null(at);
    uintptr_t ptr = (uintptr_t)strtoull(at + 4, NULL, 16);
    assert_true(ptr != 0);
    char want[256];
    snprintf(want, sizeof want, "detheap: %s(0x%" PRIxPTR "): %s\n", s->call,
             ptr, s->c->reason);

    bool aborts = s->policy == NULL || strcmp(s->policy, "abort") == 0;
    bool quiet = s->policy != NULL && strcmp(s->policy, "ignore") == 0;
    if (aborts) {
        assert_false(result.exited);
        assert_int_equal(result.signal, SIGABRT);
        assert_string_equal(result.err, want);
        assert_null(strstr(result.out, "continued"));
        return;
    }
    if (!result.exited || result.code != 0)
        fail_msg("exit %d signal %d, stderr: %s", result.code, result.signal,
                 result.err);
    assert_string_equal(result.err, quiet ? "" : want);
    char line[128];
    snprintf(line, sizeof line, "continued rejected=1 unchanged=1 check=%d%s\n",
             (int)DH_CHECK_OK,
             strcmp(s->call, "free") == 0 ? "" : " realloc=einval");
    assert_non_null(strstr(result.out, line));
}

int main(void) {
    static run_spec_t specs[NCASES * NCALLS * NPOLICIES];
    static struct CMUnitTest tests[NCASES * NCALLS * NPOLICIES];
    static char names[NCASES * NCALLS * NPOLICIES][96];
    size_t n = 0;
    for (size_t c = 0; c < NCASES; c++)
        for (size_t k = 0; k < NCALLS; k++)
            for (size_t p = 0; p < NPOLICIES; p++) {
                specs[n] = (run_spec_t){&cases[c], calls[k], policies[p]};
                snprintf(names[n], sizeof names[n], "%s %s %s", calls[k],
                         cases[c].name, policies[p] ? policies[p] : "default");
                tests[n] = (struct CMUnitTest){names[n], run_one, NULL, NULL,
                                               &specs[n]};
                n++;
            }
    return _cmocka_run_group_tests("misuse", tests, n, NULL, NULL);
}
