/*
 * thread.c - the only file that knows about threads.  Its dh_thread_*
 * functions (thread.h) stand behind pthread_create & co, which only the
 * shared (preload) library exports (override/pthread.c), so that the creating thread, in its own program order,
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
#include "thread.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

/* One per thread created through pthread_create; lives in the system heap
 * (never in a thread's own heap, whose calls are the program's) until the
 * thread is joined, or detached and gone. */
typedef struct child {
    void *(*fn)(void *);
    void *arg;
    dh_heap_t *heap;     /* the heap the thread runs on (NULL: the system
                            heap), then, once it ended, its heap with what
                            travels with it */
    dh_heap_t *pool;     /* heaps it starts with (travelled with `heap`) */
    uint64_t path;       /* its identity */
    bool unordered;      /* its slot came from the shared pool */
    bool detached;
    bool exited;         /* it ended: `heap` waits for a join */
    bool claimed;        /* a join of it is under way */
    bool tid_known;      /* tid is set, and the record is in its bucket */
    int rounds;          /* destructor rounds seen */
    pthread_t tid;
    struct child *next;  /* in its bucket or in `unnamed`, under the lock */
} child_t;

/* Records of threads not yet joined or reaped, by pthread_t, under the
 * lock; a join looks its record up before calling libc (claim).  Records
 * whose pthread_t is not known yet wait in `unnamed`. */
#define BUCKETS 1024u
static child_t *buckets[BUCKETS];
static child_t *unnamed;
static pthread_key_t exit_key;

static unsigned bucket_of(pthread_t tid) {
    uint64_t v = (uint64_t)tid;
    v ^= v >> 29;
    v *= 0xbf58476d1ce4e5b9ull;
    return (unsigned)(v >> 40) & (BUCKETS - 1);
}

static void insert_unsafe(child_t **list, child_t *c) {
    c->next = *list;
    *list = c;
}

static void unlink_from_unsafe(child_t **list, child_t *c) {
    for (child_t **pp = list; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            return;
        }
}

static void unlink_unsafe(child_t *c) {
    unlink_from_unsafe(c->tid_known ? &buckets[bucket_of(c->tid)] : &unnamed,
                       c);
}

/* Give c its pthread_t (told by the thread itself or by its creator,
 * whichever comes first), moving it to its bucket. */
static void name_unsafe(child_t *c, pthread_t tid) {
    if (c->tid_known) return;
    unlink_from_unsafe(&unnamed, c);
    c->tid = tid;
    c->tid_known = true;
    insert_unsafe(&buckets[bucket_of(tid)], c);
}

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

/* The calling thread leaves its heap: returns that heap, with the heaps
 * it inherited travelling with it (or, with no heap of its own, those). */
static dh_heap_t *leave_heap(void) {
    dh_heap_t *h = dh_self.heap;
    if (h != NULL) {
        dh_os_thread_name(dh_ph(h)->thread_name);
        if (dh_proc_options()->trace)
            dh_trace_thread_end(h, dh_ph(h)->thread_name);
        dh_ph(h)->pool = dh_self.inherited; /* they travel with h */
    } else {
        h = dh_self.inherited; /* no heap of its own: pass them on */
    }
    dh_proc_set_heap(NULL);
    dh_self.inherited = NULL;
    dh_self.exited = true;
    return h;
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
    dh_heap_t *h = leave_heap();
    dh_proc_lock();
    c->heap = h;
    c->exited = true;
    bool reap = c->detached;
    if (reap) unlink_unsafe(c);
    dh_proc_unlock();
    if (reap) {
        dh_proc_orphan(h);
        dh_proc_sys_free(c);
    }
}

/* The same for an adopted thread (dh_thread_adopt), which has no record:
 * the key's value counts the rounds. */
static pthread_key_t adopt_key;
static void on_adopted_exit(void *arg) {
#ifndef __SANITIZE_THREAD__
    uintptr_t round = (uintptr_t)arg;
    if (round < PTHREAD_DESTRUCTOR_ITERATIONS) {
        pthread_setspecific(adopt_key, (void *)(round + 1));
        return;
    }
#else
    (void)arg;
#endif
    dh_proc_orphan(leave_heap());
}

void dh_thread_adopt(void) { pthread_setspecific(adopt_key, (void *)1); }

static void *trampoline(void *arg) {
    child_t *c = arg;
    dh_proc_lock();
    name_unsafe(c, pthread_self());
    dh_heap_t *h = c->heap;
    dh_self.inherited = c->pool;
    c->heap = c->pool = NULL;
    dh_proc_unlock();
    dh_self.path = c->path;
    dh_self.unordered = c->unordered;
    dh_self.no_heap = h == NULL;
    dh_proc_set_heap(h);
    if (h != NULL) dh_ph(h)->tid = dh_os_tid();
    if (h != NULL && dh_proc_options()->trace) dh_trace_thread(h);
    pthread_setspecific(exit_key, c);
    return c->fn(c->arg);
}

int dh_thread_create(
    pthread_t *tid, const pthread_attr_t *attr, void *(*fn)(void *),
    void *arg) {
    resolve();
    if (dh_self.heap == NULL && !dh_self.exited && !dh_self.no_heap)
        dh_proc_heap_slow();
    child_t *c = dh_proc_sys_malloc(sizeof *c);
    if (c == NULL) return EAGAIN;
    int detach = PTHREAD_CREATE_JOINABLE;
    if (attr != NULL) pthread_attr_getdetachstate(attr, &detach);
    bool unordered;
    dh_heap_t *h = dh_proc_acquire_child_heap(&dh_self, &unordered);
    *c = (child_t){.fn = fn, .arg = arg, .heap = h,
                   .pool = h ? dh_ph(h)->pool : NULL,
                   .path = mix(dh_self.path * 31 + ++dh_self.children),
                   .unordered = unordered || dh_self.unordered,
                   .detached = detach == PTHREAD_CREATE_DETACHED};
    if (h != NULL) dh_ph(h)->pool = NULL;
    dh_proc_lock();
    insert_unsafe(&unnamed, c);
    dh_proc_unlock();
    dh_proc_system_enter();
    int rc = real_create(tid, attr, trampoline, c);
    dh_proc_system_leave();
    if (rc != 0) {
        dh_proc_lock();
        unlink_unsafe(c);
        dh_proc_unlock();
        if (h != NULL) { /* not used: first in line again */
            dh_ph(h)->pool = c->pool;
            dh_ph(h)->next = dh_self.inherited;
            dh_self.inherited = h;
        }
        dh_proc_sys_free(c);
        return rc;
    }
    /* A detached thread may have ended and freed c already: only a
     * joinable thread's record (freed by its joiner) is touched here. */
    if (detach != PTHREAD_CREATE_DETACHED) {
        dh_proc_lock();
        name_unsafe(c, *tid);
        dh_proc_unlock();
    }
    return 0;
}

/* Before joining tid: claim its record.  The lookup must happen now, while
 * tid still names that thread: once it is joined, libc may give its
 * descriptor (and so its pthread_t) to a thread created meanwhile, whose
 * record would then match too.  Records being joined are skipped. */
static child_t *claim(pthread_t tid) {
    dh_proc_lock();
    child_t *c = buckets[bucket_of(tid)];
    while (c && (c->claimed || !pthread_equal(c->tid, tid))) c = c->next;
    if (c) c->claimed = true;
    dh_proc_unlock();
    return c;
}

/* After the join of c's thread: on success inherit its heap (with the
 * heaps that travel with it), else let the record be claimed again. */
static void joined(child_t *c, int rc) {
    if (c == NULL) return;
    dh_proc_lock();
    if (rc == 0)
        unlink_unsafe(c);
    else
        c->claimed = false;
    dh_proc_unlock();
    if (rc != 0) return;
    dh_heap_t *h = c->heap; /* its heap, or (it had none) what it inherited */
    if (h != NULL) {
        dh_heap_t *last = h;
        while (dh_ph(last)->next) last = dh_ph(last)->next;
        dh_ph(last)->next = dh_self.inherited;
        dh_self.inherited = h;
    }
    dh_proc_sys_free(c);
}

int dh_thread_join(pthread_t tid, void **ret) {
    resolve();
    child_t *c = claim(tid);
    dh_proc_system_enter();
    int rc = real_join(tid, ret);
    dh_proc_system_leave();
    joined(c, rc);
    return rc;
}

int dh_thread_tryjoin(pthread_t tid, void **ret) {
    resolve();
    child_t *c = claim(tid);
    dh_proc_system_enter();
    int rc = real_tryjoin(tid, ret);
    dh_proc_system_leave();
    joined(c, rc);
    return rc;
}

int dh_thread_timedjoin(pthread_t tid, void **ret,
                        const struct timespec *abstime) {
    resolve();
    child_t *c = claim(tid);
    dh_proc_system_enter();
    int rc = real_timedjoin(tid, ret, abstime);
    dh_proc_system_leave();
    joined(c, rc);
    return rc;
}

int dh_thread_detach(pthread_t tid) {
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
            if (reap) unlink_unsafe(c);
        }
    }
    dh_proc_unlock();
    if (reap) {
        dh_proc_orphan(c->heap);
        dh_proc_sys_free(c);
    }
    return rc;
}

static void before_fork(void) { dh_proc_lock(); }
static void after_fork_parent(void) { dh_proc_unlock(); }
static void after_fork_child(void) {
    dh_proc_lock_reset();
    dh_proc_after_fork_child();
    /* those threads do not exist here */
    memset(buckets, 0, sizeof buckets);
    unnamed = NULL;
    if (dh_proc_options()->trace) dh_trace_after_fork();
}

void dh_thread_init(void) {
    pthread_key_create(&exit_key, on_thread_exit);
    pthread_key_create(&adopt_key, on_adopted_exit);
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}
