/*
 * test_conformance.c - replays every tests/conformance/case*.ops through
 * the op runner (tools/ops.c, the code behind `detheap ops`) and compares
 * the answers with case*.expected, the original design's answers.
 *
 * Matching (tests/conformance/README.md): handles printed by `a` lines are
 * compared up to renaming, i.e. two `a` lines print equal handles exactly
 * when they do in the expected file; every other line must be identical.
 * The renaming is checked as a bijection by sorting the (expected, actual)
 * pairs once by each side.  The comparator is itself tested on answers
 * that must and must not match.
 *
 * Runs from the repository root (ctest's WORKING_DIRECTORY).
 */
#include "core_test.h"

#include "ops.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define CASE_DIR "tests/conformance"
#define MAX_CASES 256

typedef struct {
    char **v;
    size_t n, cap;
} lines_t;

static void lines_push(lines_t *l, const char *s, size_t len) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        assert_non_null(l->v);
    }
    char *copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, s, len);
    copy[len] = 0;
    l->v[l->n++] = copy;
}

static void lines_free(lines_t *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Every line of f without its newline; with `ops_only`, only operation
 * lines (not blank, not comments), as the runner counts them. */
static lines_t read_lines(FILE *f, bool ops_only) {
    lines_t l = {0};
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&buf, &cap, f)) >= 0) {
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
        if (ops_only) {
            size_t i = 0;
            while (i < (size_t)n && (buf[i] == ' ' || buf[i] == '\t')) i++;
            if (i == (size_t)n || buf[0] == '#') continue;
        }
        lines_push(&l, buf, (size_t)n);
    }
    free(buf);
    return l;
}

/* One `a` line's answer in both files. */
typedef struct {
    uint64_t expected, actual;
    size_t op; /* index of the op, for the message */
} pair_t;

static int by_expected(const void *a, const void *b) {
    const pair_t *x = a, *y = b;
    if (x->expected != y->expected) return x->expected < y->expected ? -1 : 1;
    return x->op < y->op ? -1 : x->op > y->op;
}

static int by_actual(const void *a, const void *b) {
    const pair_t *x = a, *y = b;
    if (x->actual != y->actual) return x->actual < y->actual ? -1 : 1;
    return x->op < y->op ? -1 : x->op > y->op;
}

static bool parse_handle(const char *s, uint64_t *out) {
    char *end;
    if (*s < '0' || *s > '9') return false;
    *out = strtoull(s, &end, 10);
    return *end == 0;
}

/* Compare answers; returns true, or false with a reason in why. */
static bool answers_match(const lines_t *ops, const lines_t *exp,
                          const lines_t *act, char *why, size_t why_len) {
    if (exp->n != ops->n || act->n != exp->n) {
        snprintf(why, why_len, "%zu ops, %zu expected lines, %zu answers",
                 ops->n, exp->n, act->n);
        return false;
    }
    pair_t *pairs = malloc((ops->n + 1) * sizeof *pairs);
    assert_non_null(pairs);
    size_t np = 0;
    bool ok = true;
    for (size_t i = 0; i < ops->n && ok; i++) {
        if (ops->v[i][0] == 'a') {
            pair_t p = {.op = i};
            if (!parse_handle(exp->v[i], &p.expected) ||
                !parse_handle(act->v[i], &p.actual)) {
                snprintf(why, why_len, "op %zu (%s): not a handle: %s / %s",
                         i + 1, ops->v[i], exp->v[i], act->v[i]);
                ok = false;
            }
            pairs[np++] = p;
        } else if (strcmp(exp->v[i], act->v[i]) != 0) {
            snprintf(why, why_len, "op %zu (%s): expected '%s', got '%s'",
                     i + 1, ops->v[i], exp->v[i], act->v[i]);
            ok = false;
        }
    }
    /* expected -> actual must be a function, and so must actual ->
     * expected: then the renaming is a bijection. */
    qsort(pairs, np, sizeof *pairs, by_expected);
    for (size_t i = 1; i < np && ok; i++) {
        if (pairs[i].expected == pairs[i - 1].expected &&
            pairs[i].actual != pairs[i - 1].actual) {
            snprintf(why, why_len,
                     "ops %zu and %zu: expected the same handle, got %" PRIu64
                     " and %" PRIu64,
                     pairs[i - 1].op + 1, pairs[i].op + 1,
                     pairs[i - 1].actual, pairs[i].actual);
            ok = false;
        }
    }
    qsort(pairs, np, sizeof *pairs, by_actual);
    for (size_t i = 1; i < np && ok; i++) {
        if (pairs[i].actual == pairs[i - 1].actual &&
            pairs[i].expected != pairs[i - 1].expected) {
            snprintf(why, why_len,
                     "ops %zu and %zu: expected different handles, both got "
                     "%" PRIu64,
                     pairs[i - 1].op + 1, pairs[i].op + 1, pairs[i].actual);
            ok = false;
        }
    }
    free(pairs);
    return ok;
}

static lines_t read_file(const char *path, bool ops_only) {
    FILE *f = fopen(path, "r");
    if (f == NULL) fail_msg("cannot open %s (run from the repository root)",
                            path);
    lines_t l = read_lines(f, ops_only);
    fclose(f);
    return l;
}

static void test_case(void **state) {
    const char *name = *state; /* "caseNN" */
    char ops_path[512], exp_path[512];
    snprintf(ops_path, sizeof ops_path, "%s/%s.ops", CASE_DIR, name);
    snprintf(exp_path, sizeof exp_path, "%s/%s.expected", CASE_DIR, name);

    FILE *in = fopen(ops_path, "r");
    assert_non_null(in);
    FILE *out = tmpfile(), *err = tmpfile();
    assert_non_null(out);
    assert_non_null(err);
    int rc = dh_ops_run(in, out, err, ops_path);
    fclose(in);
    if (rc != 0) {
        char msg[512] = "";
        rewind(err);
        size_t n = fread(msg, 1, sizeof msg - 1, err);
        msg[n] = 0;
        fail_msg("%s: the runner returned %d: %s", name, rc, msg);
    }
    rewind(out);
    lines_t act = read_lines(out, false);
    fclose(out);
    fclose(err);
    lines_t ops = read_file(ops_path, true);
    lines_t exp = read_file(exp_path, false);
    assert_true(ops.n > 0);
    char why[512];
    bool ok = answers_match(&ops, &exp, &act, why, sizeof why);
    if (!ok) print_error("%s: %s\n", name, why);
    lines_free(&ops);
    lines_free(&exp);
    lines_free(&act);
    assert_true(ok);
}

/* The comparator accepts a renaming and rejects everything else. */
static lines_t lines_of(const char *const *v, size_t n) {
    lines_t l = {0};
    for (size_t i = 0; i < n; i++) lines_push(&l, v[i], strlen(v[i]));
    return l;
}

static void test_comparator(void **state) {
    (void)state;
    static const char *const ops_v[] = {"a 1", "a 1", "f 0", "a 2",
                                        "w 2 1 0", "s"};
    static const char *const exp_v[] = {"0", "1", "ok", "0", "true",
                                        "alloc=3 free=1"};
    static const char *const renamed[] = {"7", "300", "ok", "7", "true",
                                          "alloc=3 free=1"};
    static const char *const merged[] = {"7", "7", "ok", "7", "true",
                                         "alloc=3 free=1"};
    static const char *const split[] = {"7", "300", "ok", "8", "true",
                                        "alloc=3 free=1"};
    static const char *const wrong[] = {"7", "300", "ok", "7", "false",
                                        "alloc=3 free=1"};
    static const char *const shorter[] = {"7", "300", "ok", "7", "true"};
    lines_t ops = lines_of(ops_v, 6), exp = lines_of(exp_v, 6);
    char why[256];
    struct {
        const char *const *v;
        size_t n;
        bool match;
    } tries[] = {{exp_v, 6, true},  {renamed, 6, true}, {merged, 6, false},
                 {split, 6, false}, {wrong, 6, false},  {shorter, 5, false}};
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        lines_t act = lines_of(tries[i].v, tries[i].n);
        assert_int_equal(answers_match(&ops, &exp, &act, why, sizeof why),
                         tries[i].match);
        lines_free(&act);
    }
    lines_free(&ops);
    lines_free(&exp);
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void) {
    static char *names[MAX_CASES];
    size_t n = 0;
    DIR *d = opendir(CASE_DIR);
    if (d == NULL) {
        fprintf(stderr, "test_conformance: cannot open %s (run from the "
                        "repository root)\n", CASE_DIR);
        return 1;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "case", 4) != 0 || len < 5 ||
            strcmp(e->d_name + len - 4, ".ops") != 0 || n == MAX_CASES)
            continue;
        names[n] = strndup(e->d_name, len - 4);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    /* The shared cases (01..08) and the generated ones (09..14) at least:
     * a missing directory or file must not pass as "nothing to compare". */
    if (n < 14) {
        fprintf(stderr, "test_conformance: only %zu cases in %s\n", n,
                CASE_DIR);
        return 1;
    }
    static struct CMUnitTest tests[MAX_CASES + 1];
    tests[0] = (struct CMUnitTest)cmocka_unit_test(test_comparator);
    for (size_t i = 0; i < n; i++) {
        tests[i + 1] = (struct CMUnitTest){names[i], test_case, NULL, NULL,
                                           names[i]};
    }
    int rc = _cmocka_run_group_tests("conformance", tests, n + 1, NULL, NULL);
    for (size_t i = 0; i < n; i++) free(names[i]);
    return rc;
}
