/*
 * fork_recycle.c - recycling across fork().  A producer thread allocates
 * BLOCKS blocks of 64 bytes and hands them through a lock-free ring to a
 * consumer thread that frees them, so that (detheap's default mode) the
 * consumer retires them and moves the retired pages into the producer's
 * range.  That runs three times: in the parent, then in a forked child
 * (where the parent's pages are shared copy-on-write and the kernel's
 * page moving refuses them, so retired pages must be given back the old
 * way), and in the parent again while the child may still share pages.
 * Every block the producer gets must read zero (fresh memory), and every
 * block the consumer frees must still hold what the producer wrote.
 *
 * Prints one line per round; exits 0 if every round of both processes was
 * clean, 1 otherwise.
 *
 * Usage: fork_recycle [BLOCKS]   (default 2000000)
 */
#include "thread_common.h"

#include <sched.h>
#include <sys/wait.h>

#define BLOCK 64
#define RING 4096

static unsigned char *ring[RING];
static unsigned long head, tail; /* atomic: taken by the consumer, put */
static long blocks = 2000000;
static long dirty, corrupt;

static void *producer(void *arg) {
    (void)arg;
    for (long i = 0; i < blocks; i++) {
        unsigned char *p = th_fresh_block(BLOCK, i, &dirty);
        memset(p, (unsigned char)i, BLOCK);
        unsigned long t = __atomic_load_n(&tail, __ATOMIC_RELAXED);
        while (t - __atomic_load_n(&head, __ATOMIC_ACQUIRE) == RING)
            sched_yield();
        ring[t % RING] = p;
        __atomic_store_n(&tail, t + 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    for (long i = 0; i < blocks; i++) {
        unsigned long h = __atomic_load_n(&head, __ATOMIC_RELAXED);
        while (__atomic_load_n(&tail, __ATOMIC_ACQUIRE) == h) sched_yield();
        unsigned char *p = ring[h % RING];
        if (p[0] != (unsigned char)i || p[BLOCK - 1] != (unsigned char)i)
            corrupt++;
        th_free(p);
        __atomic_store_n(&head, h + 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

/* One producer/consumer round; false if a block was dirty or corrupted. */
static int run_round(const char *who) {
    head = tail = 0;
    dirty = corrupt = 0;
    pthread_t pt, ct;
    if (th_create(&ct, NULL, consumer, NULL, "consumer", 0) != 0 ||
        th_create(&pt, NULL, producer, NULL, "producer", 0) != 0)
        exit(1);
    pthread_join(pt, NULL);
    pthread_join(ct, NULL);
    printf("%s: %ld blocks, %ld did not read zero, %ld corrupted\n", who,
           blocks, dirty, corrupt);
    fflush(stdout);
    return dirty == 0 && corrupt == 0;
}

int main(int argc, char **argv) {
    if (argc > 1) blocks = atol(argv[1]);
    printf("allocator: %s\n", th_allocator());
    int ok = run_round("parent, before fork");
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) _exit(run_round("child") ? 0 : 1);
    ok &= run_round("parent, after fork");
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        printf("FAIL: the child's rounds were not clean\n");
        ok = 0;
    }
    return ok ? 0 : 1;
}
