/*
 * test_corrupt.c - the drop-in malloc's integrity checks (docs/ERRORS.md,
 * "Corrupted heap metadata"): one test per row and per DETHEAP_ON_ERROR
 * policy.  corrupt_helper damages a free list or a free large block the way
 * a buggy program does and allocates on; from outside the process this
 * checks:
 *
 *   abort (and the default): exactly the one line naming the call, the
 *          structure and the address, then SIGABRT;
 *   warn:  the same line, then the program goes on: no block it got
 *          overlapped a live one, the heap checks clean, one corruption
 *          counted;
 *   ignore: nothing on stderr; otherwise as warn.
 *
 * A row that damages plain data (the end of a freed large block) gives no
 * line under any policy.
 */
#include "spawn.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

typedef struct row {
    const char *name;
    const char *what; /* "malloc(N): STRUCTURE", or NULL: no report */
    char *env;        /* one more variable, or NULL */
    const char *notice; /* the line that variable makes detheap say once
                           at start, or NULL */
} row_t;

static const row_t rows[] = {
#define CLASS48 "malloc(48): free list of the 48-byte class"
#define TREE "malloc(1048576): tree of free large blocks"
    {"uaf-live", CLASS48, NULL, NULL},
    {"overflow-live", CLASS48, NULL, NULL},
    {"uaf-global", CLASS48, NULL, NULL},
    {"uaf-nearby", CLASS48, NULL, NULL},
    {"uaf-interior", CLASS48, NULL, NULL},
    {"uaf-other-class", CLASS48, NULL, NULL},
    {"uaf-foreign", "malloc(48): foreign free list of the 48-byte class",
     NULL, NULL},
    {"large-start-live", TREE, NULL, NULL},
    {"large-start-garbage", TREE, NULL, NULL},
    {"uaf-inbox", "free: list of blocks other threads returned",
     "DETHEAP_REMOTE_FREE=owner",
     "detheap: DETHEAP_REMOTE_FREE=owner: blocks freed by another thread go "
     "back to their heap; that heap's addresses then depend on timing\n"},
    {"large-end", NULL, NULL, NULL},
};
#define NROWS (sizeof rows / sizeof rows[0])
static const char *const policies[] = {"abort", "warn", "ignore", NULL};
#define NPOLICIES 4

typedef struct spec {
    const row_t *row;
    const char *policy;
} spec_t;

static ov_result_t result;

static void run_one(void **state) {
    const spec_t *s = *state;
    char *argv[] = {OV_CORRUPT_HELPER, (char *)s->row->name, NULL};
    char pol[64];
    char *envp[5] = {"PATH=/usr/bin:/bin", "LD_PRELOAD=" OV_PRELOAD, NULL,
                     NULL, NULL};
    int k = 2;
    if (s->policy) {
        snprintf(pol, sizeof pol, "DETHEAP_ON_ERROR=%s", s->policy);
        envp[k++] = pol;
    }
    if (s->row->env) envp[k++] = s->row->env;
    assert_true(ov_run(argv, envp, 60, &result));
    assert_false(result.timed_out);
    const char *at = strstr(result.out, "at ");
    assert_non_null(at);
    char want[768] = "";
    if (s->row->notice) snprintf(want, sizeof want, "%s", s->row->notice);
    if (s->row->what != NULL) {
        uintptr_t ptr = (uintptr_t)strtoull(at + 3, NULL, 16);
        assert_true(ptr != 0);
        size_t k = strlen(want);
        snprintf(want + k, sizeof want - k,
                 "detheap: %s corrupted at 0x%" PRIxPTR
                 ": the block was written after it was freed, or overflowed "
                 "from the block before it\n",
                 s->row->what, ptr);
    } else {
        assert_non_null(strstr(at, "at none"));
    }
    bool aborts = s->row->what != NULL &&
                  (s->policy == NULL || strcmp(s->policy, "abort") == 0);
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
    /* ignore: only the mode's notice, if any */
    const char *notice = s->row->notice ? s->row->notice : "";
    assert_string_equal(result.err, quiet ? notice : want);
    char line[96];
    snprintf(line, sizeof line, "continued corruptions=%d overlaps=0 check=0\n",
             s->row->what != NULL);
    if (strstr(result.out, line) == NULL)
        fail_msg("wanted \"%s\" in: %s", line, result.out);
}

int main(void) {
    static spec_t specs[NROWS * NPOLICIES];
    static struct CMUnitTest tests[NROWS * NPOLICIES];
    static char names[NROWS * NPOLICIES][64];
    size_t n = 0;
    for (size_t r = 0; r < NROWS; r++)
        for (size_t p = 0; p < NPOLICIES; p++) {
            specs[n] = (spec_t){&rows[r], policies[p]};
            snprintf(names[n], sizeof names[n], "%s %s", rows[r].name,
                     policies[p] ? policies[p] : "default");
            tests[n] = (struct CMUnitTest){names[n], run_one, NULL, NULL,
                                           &specs[n]};
            n++;
        }
    return _cmocka_run_group_tests("corrupt", tests, n, NULL, NULL);
}
