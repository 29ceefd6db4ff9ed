/*
 * ov_renamed.h - the drop-in malloc's own code under renamed symbols, for
 * programs that run under a sanitizer.  A TSan or ASan runtime intercepts
 * malloc and pthread_create itself and wins over libdetheap.so, so the
 * preload library cannot be tested there; the test-only library
 * detheap_ov_renamed (CMakeLists.txt) compiles src/override/malloc.c and
 * src/override/pthread.c with -DDH_OV_RENAMED, which defines each of their
 * exported functions as dhov_NAME instead of NAME: the same code, with the
 * same contract as the libc function it stands for, callable beside the
 * runtime's own malloc.  dhov_pthread_create calls the runtime's
 * pthread_create under it (thread.c resolves it with dlsym(RTLD_NEXT)), so
 * the sanitizer sees every thread.
 */
#ifndef DH_OV_RENAMED_H
#define DH_OV_RENAMED_H

#include <malloc.h>
#include <pthread.h>
#include <stddef.h>
#include <time.h>

void *dhov_malloc(size_t n);
void dhov_free(void *ptr);
void *dhov_calloc(size_t count, size_t size);
void *dhov_realloc(void *ptr, size_t n);
void *dhov_reallocarray(void *ptr, size_t count, size_t size);
int dhov_posix_memalign(void **out, size_t align, size_t n);
void *dhov_aligned_alloc(size_t align, size_t n);
void *dhov_memalign(size_t align, size_t n);
void *dhov_valloc(size_t n);
void *dhov_pvalloc(size_t n);
size_t dhov_malloc_usable_size(void *ptr);
struct mallinfo2 dhov_mallinfo2(void);
struct mallinfo dhov_mallinfo(void);
int dhov_malloc_trim(size_t pad);
void dhov_malloc_stats(void);
int dhov_mallopt(int param, int value);

int dhov_pthread_create(pthread_t *tid, const pthread_attr_t *attr,
                        void *(*fn)(void *), void *arg);
int dhov_pthread_join(pthread_t tid, void **ret);
int dhov_pthread_tryjoin_np(pthread_t tid, void **ret);
int dhov_pthread_timedjoin_np(pthread_t tid, void **ret,
                              const struct timespec *abstime);
int dhov_pthread_detach(pthread_t tid);

#endif /* DH_OV_RENAMED_H */
