/*
 * override/pthread.c - the pthread functions the shared (preload) library
 * interposes, forwarding to the thread layer (thread.h).  Only the shared
 * library has this file: a static link of libdetheap.a keeps libc's own
 * pthread_create, and its threads are unordered.
 */
#include "../thread.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT int pthread_create(pthread_t *tid, const pthread_attr_t *attr,
                          void *(*fn)(void *), void *arg) {
    return dh_thread_create(tid, attr, fn, arg);
}

EXPORT int pthread_join(pthread_t tid, void **ret) {
    return dh_thread_join(tid, ret);
}

EXPORT int pthread_tryjoin_np(pthread_t tid, void **ret) {
    return dh_thread_tryjoin(tid, ret);
}

EXPORT int pthread_timedjoin_np(pthread_t tid, void **ret,
                                const struct timespec *abstime) {
    return dh_thread_timedjoin(tid, ret, abstime);
}

EXPORT int pthread_detach(pthread_t tid) { return dh_thread_detach(tid); }
