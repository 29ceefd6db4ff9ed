/*
 * core_test.h - helpers shared by the core heap's unit tests: a seeded
 * PRNG, a statistics snapshot, and the "validate after every step" check.
 * Header-only so that each test stays one self-contained executable.
 */
#ifndef DH_TESTS_CORE_TEST_H
#define DH_TESTS_CORE_TEST_H

#include "detheap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "test_common.h"

/* A heap with the default configuration; the test fails if none. */
static inline dh_heap_t *core_heap(void) {
    dh_heap_t *h = dh_heap_create(NULL);
    assert_non_null(h);
    return h;
}

/* The full validator must find every invariant intact. */
#define CORE_CHECK(h) assert_int_equal(dh_heap_check(h), DH_CHECK_OK)

#endif
