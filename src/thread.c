/*
 * thread.c - the only file that knows about threads.  It wraps
 * pthread_create so that the creating thread, in its own program order,
 * picks the new thread's heap (process.h: a joined thread's heap, else a
 * slot given by the new thread's place in the creation tree), and wraps
 * pthread_join/tryjoin/timedjoin/detach so that a finished thread's heap is
 * handed on at a point the program's order decides:
 *
 *   T creates C  ->  C gets T's most recently inherited heap, else a slot
 *   C ends       ->  its heap (and what C had inherited) waits for a join
 *   T joins C    ->  T inherits them, LIFO, for the next threads T creates
 *   C detached   ->  its heaps go to the orphan list, reused only by
 *                    threads with no place in the tree (shared slots)
 *
 * The hand-over happens in C's last pthread key destructor round, after
 * C's other destructors have run (the first round under TSan, which tears
 * the thread down in the last).  What libc allocates and frees inside
 * pthread_create/join/detach (thread stacks' TLS tables, recycled through
 * libc's stack cache whenever other threads happen to end) goes to the
 * system heap (process.c), never to the calling thread's heap.  fork: the lock is taken around fork and
 * released (reset) in both processes; the child traces to its own file.
 */
#include "process.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <time.h>

/* One per thread created through pthread_create; lives in the creator's
 * heap until the thread is joined or detached and gone. */
typedef struct child {
    void *(*fn)(void *);
    void *arg;
    dh_heap_t *heap;     /* the heap the thread runs on */
    uint64_t path;       /* its identity */
    bool unordered;      /* its slot came from the shared pool */
    bool detached;
    bool exited;         /* its heaps are in `heap` (chained by next) */
    bool claimed;        /* a join of it is under way */
    int rounds;          /* destructor rounds seen */
    pthread_t tid;
    struct child *next;  /* in `children`, under the lock */
} child_t;

static pthread_key_t exit_key;
static child_t *children; /* threads not yet joined or reaped */

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *,
                         void *(*)(void *), void *);
typedef int (*join_fn)(pthread_t, void **);
typedef int (*tryjoin_fn)(pthread_t, void **);
typedef int (*timedjoin_fn)(pthread_t, void **, const struct timespec *);
typedef int (*detach_fn)(pthread_t);

static create_fn real_create;
static join_fn real_join;
static tryjoin_fn real_tryjoin;
static timedjoin_fn real_timedjoin;
static detach_fn real_detach;

static void *next_symbol(const char *name) { return dlsym(RTLD_NEXT, name); }

static void resolve(void) {
    if (real_create != NULL) return;
    real_join = (join_fn)next_symbol("pthread_join");
    real_tryjoin = (tryjoin_fn)next_symbol("pthread_tryjoin_np");
    real_timedjoin = (timedjoin_fn)next_symbol("pthread_timedjoin_np");
    real_detach = (detach_fn)next_symbol("pthread_detach");
    __atomic_store_n(&real_create, (create_fn)next_symbol("pthread_create"),
                     __ATOMIC_RELEASE);
}

static uint64_t mix(uint64_t x) {
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    return x;
}

/* Chain h's inheritance behind it, so one pointer carries them all. */
static dh_heap_t *bundle(dh_heap_t *h, dh_heap_t *inherited) {
    dh_heap_t *last = h;
    while (last->next) last = last->next;
    last->next = inherited;
    return h;
}

static void unlink_child(child_t *c) {
    for (child_t **pp = &children; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            return;
        }
}

/* pthread key destructor: runs at thread exit, re-armed so that it runs in
 * the last round, after the thread's other destructors. */
static void on_thread_exit(void *arg) {
    child_t *c = arg;
#ifndef __SANITIZE_THREAD__ /* TSan finishes the thread in its last round */
    if (++c->rounds < PTHREAD_DESTRUCTOR_ITERATIONS) {
        pthread_setspecific(exit_key, c);
        return;
    }
#endif
    dh_heap_t *h = dh_self.heap;
    if (h != NULL && dh_proc_options()->trace) dh_trace_flush(h);
    h = h ? bundle(h, dh_self.inherited) : dh_self.inherited;
    dh_proc_set_heap(NULL);
    dh_self.inherited = NULL;
    dh_self.exited = true;
    dh_proc_lock();
    c->heap = h;
    c->exited = true;
    bool reap = c->detached;
    if (reap) {
        dh_proc_orphan(h);
        unlink_child(c);
    }
    dh_proc_unlock();
    if (reap) dh_proc_free(c, "free");
}

static void *trampoline(void *arg) {
    child_t *c = arg;
    dh_proc_set_heap(c->heap);
    dh_self.path = c->path;
    dh_self.unordered = c->unordered;
    c->heap = NULL;
    if (dh_proc_options()->trace) dh_trace_thread(dh_self.heap);
    pthread_setspecific(exit_key, c);
    return c->fn(c->arg);
}

__attribute__((visibility("default"))) int pthread_create(pthread_t *tid, const pthread_attr_t *attr,
                   void *(*fn)(void *), void *arg) {
    resolve();
    dh_heap_t *me = dh_self.heap ? dh_self.heap : dh_proc_heap_slow();
    if (me == NULL) return EAGAIN;
    child_t *c = dh_heap_malloc(me, sizeof *c);
    if (c == NULL) return EAGAIN;
    bool unordered;
    dh_heap_t *h = dh_proc_acquire_child_heap(&dh_self, &unordered);
    if (h == NULL) {
        dh_heap_free(me, c);
        return EAGAIN;
    }
    int detach = PTHREAD_CREATE_JOINABLE;
    if (attr != NULL) pthread_attr_getdetachstate(attr, &detach);
    *c = (child_t){.fn = fn, .arg = arg, .heap = h,
                   .path = mix(dh_self.path * 31 + ++dh_self.children),
                   .unordered = unordered || dh_self.unordered,
                   .detached = detach == PTHREAD_CREATE_DETACHED};
    dh_proc_lock();
    c->next = children;
    children = c;
    dh_proc_unlock();
    dh_proc_system_enter();
    int rc = real_create(tid, attr, trampoline, c);
    dh_proc_system_leave();
    if (rc != 0) {
        dh_proc_lock();
        unlink_child(c);
        dh_proc_unlock();
        h->next = dh_self.inherited; /* not used: first in line again */
        dh_self.inherited = h;
        dh_heap_free(me, c);
        return rc;
    }
    dh_proc_lock();
    c->tid = *tid;
    dh_proc_unlock();
    return 0;
}

/* Before joining tid: claim its record.  The lookup must happen now, while
 * tid still names that thread: once it is joined, libc may give its
 * descriptor (and so its pthread_t) to a thread created meanwhile, whose
 * record would then match too.  Records being joined are skipped. */
static child_t *claim(pthread_t tid) {
    dh_proc_lock();
    child_t *c = children;
    while (c && (c->claimed || !pthread_equal(c->tid, tid))) c = c->next;
    if (c) c->claimed = true;
    dh_proc_unlock();
    return c;
}

/* After the join of c's thread: on success inherit its heaps, else let the
 * record be claimed again. */
static void joined(child_t *c, int rc) {
    if (c == NULL) return;
    dh_proc_lock();
    if (rc == 0)
        unlink_child(c);
    else
        c->claimed = false;
    dh_proc_unlock();
    if (rc != 0) return;
    dh_self.inherited = bundle(c->heap, dh_self.inherited);
    dh_proc_free(c, "free");
}

__attribute__((visibility("default"))) int pthread_join(pthread_t tid, void **ret) {
    resolve();
    child_t *c = claim(tid);
    dh_proc_system_enter();
    int rc = real_join(tid, ret);
    dh_proc_system_leave();
    joined(c, rc);
    return rc;
}

__attribute__((visibility("default"))) int pthread_tryjoin_np(pthread_t tid, void **ret) {
    resolve();
    child_t *c = claim(tid);
    dh_proc_system_enter();
    int rc = real_tryjoin(tid, ret);
    dh_proc_system_leave();
    joined(c, rc);
    return rc;
}

__attribute__((visibility("default"))) int pthread_timedjoin_np(pthread_t tid, void **ret,
                         const struct timespec *abstime) {
    resolve();
    child_t *c = claim(tid);
    dh_proc_system_enter();
    int rc = real_timedjoin(tid, ret, abstime);
    dh_proc_system_leave();
    joined(c, rc);
    return rc;
}

__attribute__((visibility("default"))) int pthread_detach(pthread_t tid) {
    resolve();
    child_t *c = claim(tid); /* before: see claim() */
    dh_proc_system_enter();
    int rc = real_detach(tid);
    dh_proc_system_leave();
    bool reap = false;
    dh_proc_lock();
    if (c != NULL) {
        c->claimed = false;
        if (rc == 0) {
            c->detached = true;
            reap = c->exited;
            if (reap) {
                dh_proc_orphan(c->heap);
                unlink_child(c);
            }
        }
    }
    dh_proc_unlock();
    if (reap) dh_proc_free(c, "free");
    return rc;
}

static void before_fork(void) { dh_proc_lock(); }
static void after_fork_parent(void) { dh_proc_unlock(); }
static void after_fork_child(void) {
    dh_proc_lock_reset();
    children = NULL; /* those threads do not exist here */
    if (dh_proc_options()->trace) dh_trace_after_fork();
}

void dh_thread_init(void) {
    pthread_key_create(&exit_key, on_thread_exit);
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}
