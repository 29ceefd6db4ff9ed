/*
 * override/pthread.c - the pthread functions the shared (preload) library
 * interposes, forwarding to the thread layer (thread.h).  Only the shared
 * library has this file: a static link of libdetheap.a keeps libc's own
 * pthread_create, and its threads are unordered.
 */
#include "../thread.h"

#define EXPORT __attribute__((visibility("default")))

/* -DDH_OV_RENAMED (tests only, the detheap_ov_renamed library): each
 * function below is defined as dhov_NAME, so that a program whose
 * sanitizer runtime intercepts pthread_create can call this file's code,
 * which calls the runtime's pthread_create under it (thread.c, dlsym). */
#ifdef DH_OV_RENAMED
#define pthread_create(...) dhov_pthread_create(__VA_ARGS__)
#define pthread_join(...) dhov_pthread_join(__VA_ARGS__)
#define pthread_tryjoin_np(...) dhov_pthread_tryjoin_np(__VA_ARGS__)
#define pthread_timedjoin_np(...) dhov_pthread_timedjoin_np(__VA_ARGS__)
#define pthread_detach(...) dhov_pthread_detach(__VA_ARGS__)
#endif

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
