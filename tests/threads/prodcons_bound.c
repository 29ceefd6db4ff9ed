/*
 * prodcons_bound.c - memory of a pure producer/consumer.  A producer
 * thread allocates BLOCKS blocks of 64 bytes and hands them, in order,
 * through a bounded ring (RING_CHUNKS chunks of CHUNK slots, 4096 in all,
 * under a mutex and two condition variables, a chunk at a time) to a
 * consumer thread that checks and frees them.  At most about 4600 blocks
 * are live at once, so an allocator whose memory is bounded stays small.
 *
 * Prints "blocks N" (handed over) and "peak_rss_kb N" (VmHWM, the kernel's
 * peak resident set), "dirty N": blocks the producer got that did not read
 * zero (under detheap's default mode every one is fresh memory, pages the
 * consumer's retirements recycled included, so this must be 0), and
 * "kernel_moves_pages yes|no": whether this kernel lets a process move
 * its own pages (userfaultfd's UFFDIO_MOVE), which detheap's recycling
 * needs, and "next_fd N": the descriptor a fresh open() gets at the end
 * (the allocator's own descriptors must not take the program's numbers).  With LIMIT_KB, the producer stops early once the
 * resident set exceeds it (checked every 64 Ki blocks) and the program
 * prints "over_limit_at BLOCK rss_kb N": a run that is going to fail its
 * bound does not have to fill memory first.
 *
 * Usage: prodcons_bound [BLOCKS [LIMIT_KB]]   (default 50000000, no limit)
 * Exit status: 0; 1 if a block was corrupted.
 */
#include "thread_common.h"

#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#define MOVE_FEATURE (1ull << 10) /* UFFD_FEATURE_MOVE, Linux 6.8 */

/* Whether a userfaultfd with the page-moving feature can be had here. */
static int kernel_moves_pages(void) {
    long fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == EPERM)
        fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd < 0) return 0;
    struct uffdio_api api = {.api = UFFD_API, .features = MOVE_FEATURE};
    int ok = ioctl((int)fd, UFFDIO_API, &api) == 0 &&
             (api.features & MOVE_FEATURE) != 0;
    close((int)fd);
    return ok;
}

#define BLOCK 64
#define CHUNK 256
#define RING_CHUNKS 16

typedef struct chunk {
    unsigned char *p[CHUNK];
    int n; /* n < CHUNK: the last chunk */
} chunk_t;

static chunk_t ring[RING_CHUNKS];
static unsigned long head, tail; /* chunks taken, chunks put: under lock */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t nonempty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t nonfull = PTHREAD_COND_INITIALIZER;

static long blocks = 50000000;
static long limit_kb;       /* 0: none */
static long produced;       /* by the producer, read after the join */
static long over_at = -1, over_rss;
static long corrupt;        /* by the consumer, read after the join */
static long dirty;          /* by the producer: blocks not reading zero */

static void *producer(void *arg) {
    (void)arg;
    chunk_t c;
    c.n = 0;
    long i;
    for (i = 0; i < blocks; i++) {
        if (limit_kb > 0 && (i & 0xffff) == 0) {
            long rss = th_rss_kb();
            if (rss > limit_kb) {
                over_at = i;
                over_rss = rss;
                break;
            }
        }
        unsigned char *p = th_fresh_block(BLOCK, i, &dirty);
        memcpy(p, &i, sizeof i);
        p[BLOCK - 1] = (unsigned char)i;
        c.p[c.n++] = p;
        if (c.n < CHUNK) continue;
        pthread_mutex_lock(&lock);
        while (tail - head == RING_CHUNKS) pthread_cond_wait(&nonfull, &lock);
        ring[tail++ % RING_CHUNKS] = c;
        pthread_cond_signal(&nonempty);
        pthread_mutex_unlock(&lock);
        c.n = 0;
    }
    produced = i;
    pthread_mutex_lock(&lock); /* the last, short, chunk ends the stream */
    while (tail - head == RING_CHUNKS) pthread_cond_wait(&nonfull, &lock);
    ring[tail++ % RING_CHUNKS] = c;
    pthread_cond_signal(&nonempty);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    long expect = 0;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (tail == head) pthread_cond_wait(&nonempty, &lock);
        chunk_t c = ring[head++ % RING_CHUNKS];
        pthread_cond_signal(&nonfull);
        pthread_mutex_unlock(&lock);
        for (int k = 0; k < c.n; k++, expect++) {
            long v;
            memcpy(&v, c.p[k], sizeof v);
            if (v != expect || c.p[k][BLOCK - 1] != (unsigned char)expect)
                corrupt++;
            th_free(c.p[k]);
        }
        if (c.n < CHUNK) return NULL;
    }
}

int main(int argc, char **argv) {
    if (argc > 1) blocks = atol(argv[1]);
    if (argc > 2) limit_kb = atol(argv[2]);
    printf("allocator: %s\n", th_allocator());
    pthread_t pt, ct;
    if (th_create(&ct, NULL, consumer, NULL, "consumer", 0) != 0 ||
        th_create(&pt, NULL, producer, NULL, "producer", 0) != 0)
        return 1;
    pthread_join(pt, NULL);
    pthread_join(ct, NULL);
    printf("blocks %ld\n", produced);
    printf("peak_rss_kb %ld\n", th_peak_rss_kb());
    printf("dirty %ld\n", dirty);
    printf("kernel_moves_pages %s\n", kernel_moves_pages() ? "yes" : "no");
    int fd = open("/dev/null", O_RDONLY);
    printf("next_fd %d\n", fd);
    if (fd >= 0) close(fd);
    if (over_at >= 0)
        printf("over_limit_at %ld rss_kb %ld\n", over_at, over_rss);
    if (corrupt) fprintf(stderr, "FAIL: %ld corrupted blocks\n", corrupt);
    return corrupt ? 1 : 0;
}
