/*
 * thread.h - what the pthread interposers of the shared library
 * (override/pthread.c) call: the thread layer's side of pthread_create,
 * pthread_join, pthread_tryjoin_np, pthread_timedjoin_np and
 * pthread_detach (thread.c).  Each behaves as the libc function it stands
 * for, with the same arguments and results, and in addition decides the
 * heap of a new thread in the creator's program order and hands a finished
 * thread's heap on (process.h).  A program linked with the static library
 * does not get them: its threads are unordered (docs/DESIGN.md).
 */
#ifndef DH_THREAD_H
#define DH_THREAD_H

#include "process.h"

#include <pthread.h>
#include <time.h>

DH_HIDDEN int dh_thread_create(pthread_t *tid, const pthread_attr_t *attr,
                               void *(*fn)(void *), void *arg);
DH_HIDDEN int dh_thread_join(pthread_t tid, void **ret);
DH_HIDDEN int dh_thread_tryjoin(pthread_t tid, void **ret);
DH_HIDDEN int dh_thread_timedjoin(pthread_t tid, void **ret,
                                  const struct timespec *abstime);
DH_HIDDEN int dh_thread_detach(pthread_t tid);

#endif /* DH_THREAD_H */
