/*
 * test_thp.c - huge-page advice, seen through the fault-injecting OS layer
 * (which logs every dh_os_advise_huge call and can refuse it).  Run with
 * DETHEAP_THP=auto (tests/robust/CMakeLists.txt), so the process heap
 * behind dh_malloc, one per thread, uses the threshold policy, while heaps
 * made with dh_heap_create keep the default, off.
 *
 * auto: no advice while a heap's data stays within its first 64 MiB; the
 * commit that crosses that line advises, once, huge pages for the data
 * from the first 2 MiB boundary past it to the end of the range and for
 * the state map that describes them, and nothing more as the heap grows
 * (that the commits there end on huge-page boundaries is seen from the
 * outside, in tests/override/test_thp.c).  off: no advice at all.  Advice
 * or not, refused or not, the same calls give the same offsets, contents
 * and checks, and errno is kept.
 */
#include "robust.h"
#include "os_fault.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define MIB ((uintptr_t)1 << 20)
#define HUGE (2 * MIB)

enum { CAP = 200000 };

typedef struct {
    dh_heap_t *h;     /* NULL: the calling thread's process heap */
    void *blocks[CAP];
    size_t n;
} run_t;

static dh_heap_t *heap_of(run_t *r) {
    return r->h ? r->h : dh_heap_of(r->blocks[0]);
}

/* Carve 1008-byte blocks until `mib` MiB are carved, each tagged with its
 * index; errno must come through every call untouched. */
static void fill_to(run_t *r, size_t mib) {
    for (;;) {
        if (r->n > 0) {
            dh_stats_t s;
            assert_true(dh_heap_stats(heap_of(r), &s, sizeof s));
            if (s.storage_bytes >= mib * MIB) return;
        }
        assert_true(r->n < CAP);
        errno = 4242;
        void *p = r->h ? dh_heap_malloc(r->h, 1008) : dh_malloc(1008);
        assert_non_null(p);
        assert_int_equal(errno, 4242);
        memcpy(p, &r->n, sizeof r->n);
        r->blocks[r->n++] = p;
    }
}

/* The same calls on every heap: blocks to 130 MiB, every third freed,
 * one large block; returns the number of advice calls it caused. */
static unsigned long workload(run_t *r) {
    dh_fault_advice_clear();
    fill_to(r, 130);
    dh_heap_t *h = heap_of(r);
    for (size_t i = 0; i < r->n; i += 3) dh_free(r->blocks[i]);
    void *big = r->h ? dh_heap_malloc(h, 3 * MIB) : dh_malloc(3 * MIB);
    assert_non_null(big);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    for (size_t i = 1; i < r->n; i += 3)
        assert_memory_equal(r->blocks[i], &i, sizeof i);
    uintptr_t base = dh_heap_base(h);
    for (size_t i = 0; i < r->n; i++) /* kept as offsets, to compare */
        r->blocks[i] = (void *)((uintptr_t)r->blocks[i] - base);
    return dh_fault_advice(NULL, 0);
}

static run_t main_run, auto_run, off_run, refused_run;

static void test_auto_advises_once_past_64_mib(void **state) {
    (void)state;
    dh_fault_set(-1, false, -1);
    dh_fault_refuse_advice(false);
    dh_fault_advice_clear();
    run_t *r = &main_run; /* the main thread's process heap */
    fill_to(r, 63);
    dh_fault_advice_t log[8];
    assert_int_equal(dh_fault_advice(log, 8), 0); /* small: no advice */
    dh_heap_t *h = heap_of(r);
    uintptr_t base = dh_heap_base(h);
    uintptr_t data = (uintptr_t)r->blocks[0]; /* the first span opens it */
    fill_to(r, 66);
    assert_int_equal(dh_fault_advice(log, 8), 2);
    fill_to(r, 130);
    assert_int_equal(dh_fault_advice(log, 8), 2); /* once is enough */
    dh_stats_t s;
    assert_true(dh_heap_stats(h, &s, sizeof s));
    uintptr_t from = (data + 64 * MIB + HUGE - 1) & ~(HUGE - 1);
    int data_i = log[0].p == from ? 0 : 1;
    const dh_fault_advice_t *d = &log[data_i], *m = &log[1 - data_i];
    assert_true(d->huge && m->huge);
    assert_int_equal(d->p, from);
    assert_int_equal(d->p + d->size, base + s.reserved_bytes);
    /* the state map's part: from the page holding the state byte of
     * `from` (64 KiB header, then one byte per 16) to the map's end, where
     * the data begin */
    uintptr_t state_of_from = base + 65536 + (from - base) / 16;
    assert_int_equal(m->p, state_of_from & ~(uintptr_t)4095);
    assert_int_equal(m->p + m->size, data);
}

/* The workload on a fresh heap of each kind (a new thread's process heap,
 * with the advice taken or refused, and a dh_heap_create heap): the same
 * offsets. */
static void *refused_thread(void *arg) {
    (void)arg;
    dh_fault_refuse_advice(true);
    unsigned long calls = workload(&refused_run);
    dh_fault_refuse_advice(false);
    return (void *)(uintptr_t)calls;
}

/* Runs the workload, then stays alive until released, so that the next
 * thread gets a fresh heap rather than this one's (a joined thread's heap
 * goes to the next thread its joiner creates). */
static atomic_int auto_done, auto_release;
static void *auto_thread(void *arg) {
    (void)arg;
    unsigned long calls = workload(&auto_run);
    atomic_store(&auto_done, 1);
    while (!atomic_load(&auto_release)) sched_yield();
    return (void *)(uintptr_t)calls;
}

static void test_advice_changes_no_offset(void **state) {
    (void)state;
    dh_fault_set(-1, false, -1);
    pthread_t t1, t2;
    void *calls;
    assert_int_equal(pthread_create(&t1, NULL, auto_thread, NULL), 0);
    while (!atomic_load(&auto_done)) sched_yield();
    assert_int_equal(pthread_create(&t2, NULL, refused_thread, NULL), 0);
    assert_int_equal(pthread_join(t2, &calls), 0);
    assert_int_equal((uintptr_t)calls, 2); /* asked, refused, carried on */
    atomic_store(&auto_release, 1);
    assert_int_equal(pthread_join(t1, &calls), 0);
    assert_int_equal((uintptr_t)calls, 2);
    /* the threads ran on thread heaps, whose range is the size of
     * DETHEAP_THREAD_RESERVE's default: the same layout of offsets */
    dh_config_t cfg = DH_CONFIG_INIT;
    cfg.reserve = (uint64_t)4 << 30;
    off_run.h = dh_heap_create(&cfg);
    assert_non_null(off_run.h);
    assert_int_equal(workload(&off_run), 0); /* off: no advice at all */
    dh_heap_destroy(off_run.h);
    assert_int_equal(auto_run.n, off_run.n);
    assert_int_equal(refused_run.n, off_run.n);
    assert_memory_equal(auto_run.blocks, off_run.blocks,
                        off_run.n * sizeof(void *));
    assert_memory_equal(refused_run.blocks, off_run.blocks,
                        off_run.n * sizeof(void *));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_advises_once_past_64_mib),
        cmocka_unit_test(test_advice_changes_no_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
