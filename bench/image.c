/*
 * image.c - benchmarks of heap images and snapshots (make bench; the
 * report's "Heap images and rollback" section).
 *
 *   image all DIR [MIB]   everything below, on a structure of about MIB
 *                         MiB (default 1024), its image in DIR; one line
 *                         of tab-separated figures per measurement
 *   image rollback DIR [MIB]  part 2 alone, on one image built first
 *
 * 1. open vs rebuild: a fresh process builds a pointer structure (a binary
 *    tree of 2 M nodes per GiB, each with a string of 16..496 bytes, one
 *    in 1000 with a 200 KiB block, all filled) in a heap at a fixed base
 *    and saves it; fresh processes then either build it again or open
 *    the image and walk it all (every node in key order, every byte,
 *    summed; or every block's bytes in address order).  All end with the
 *    same sum.
 * 2. rollback: the image opened privately, a snapshot taken, then rounds
 *    of "write one byte into 1% of its data pages, chosen at random, and
 *    restore": by dh_heap_rollback, by a fork()ed child doing the writes
 *    (what fuzzers do), by copying the whole heap back, and (bench_cow) by
 *    discarding the written pages of a copy-on-write mapping of a memfd.
 * 3. write tracking: what each way of finding the written pages costs on
 *    1 GiB of anonymous memory with 1% of its pages written: soft-dirty
 *    bits, userfaultfd asynchronous write protection, mprotect + SIGSEGV.
 *
 * Output lines (seconds unless said):
 *   open     MIB  rebuild_s  open_walk_s  open_only_s  sum_ok  open_read_s
 *            walk_after_build_s
 *   (open_read_s: open, then read every block in address order;
 *   walk_after_build_s: the same tree walk in the process that built it)
 *   rollback WAY  pages_touched  round_s  restore_s  restore_us_per_page
 *   (WAY dh_heap_rollback: restore_s is the rollback call alone, the
 *   figure the 1/50 target is judged on; copy-written-pages: only the
 *   written pages copied back, their list given: the floor of any
 *   rollback that copies; dh_heap_rollback+reread: the
 *   rollback plus reading each written page once afterwards, where a
 *   copy-on-write rollback pays its refaults; memfd-cow-*: the same for
 *   the copy-on-write experiment of bench_cow, whose first line ends with
 *   whether the contents came back)
 *   track    WAY  protect_s  write_us_per_page  find_s  note
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <detheap.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <sys/uio.h>

#include "../src/wp_compat.h"

#define BASE ((uintptr_t)0x560000000000ull)
#define RESERVE ((uint64_t)4 << 30)
#define PAGE 4096u

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void die(const char *what) {
    fprintf(stderr, "bench image: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- the structure ------------------------------------------------------- */

typedef struct node {
    struct node *left, *right;
    unsigned char *str, *big;
    uint64_t key;
    uint32_t len, big_len;
} node_t;

static uint64_t rng(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill(unsigned char *p, uint64_t key, size_t n) {
    uint64_t x = key;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        memcpy(p + i, &x, 8);
    }
    for (size_t i = n & ~(size_t)7; i < n; i++) p[i] = (unsigned char)key;
}

static uint64_t sum_bytes(const unsigned char *p, size_t n) {
    uint64_t s = 0, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        s += w ^ (w >> 17);
    }
    for (; i < n; i++) s += p[i];
    return s;
}

static void *must(void *p) {
    if (p == NULL) die("allocation");
    return p;
}

/* Build the structure of about mib MiB; returns its sum (as walk's). */
static uint64_t build(dh_heap_t *h, unsigned mib) {
    uint64_t nodes = (uint64_t)mib * 2048, s = 42, sum = 0;
    node_t *root = NULL;
    for (uint64_t i = 0; i < nodes; i++) {
        uint64_t key = rng(&s);
        node_t *n = must(dh_heap_malloc(h, sizeof *n));
        n->left = n->right = NULL;
        n->key = key;
        n->len = (uint32_t)(16 + key % 481);
        n->str = must(dh_heap_malloc(h, n->len));
        fill(n->str, key, n->len);
        sum += sum_bytes(n->str, n->len) + key;
        n->big = NULL;
        n->big_len = 0;
        if (i % 1000 == 0) {
            n->big_len = 200 << 10;
            n->big = must(dh_heap_malloc(h, n->big_len));
            fill(n->big, ~key, n->big_len);
            sum += sum_bytes(n->big, n->big_len);
        }
        node_t **at = &root;
        while (*at != NULL) at = key < (*at)->key ? &(*at)->left : &(*at)->right;
        *at = n;
    }
    dh_heap_set_root(h, root);
    return sum;
}

static uint64_t walk(const node_t *root) {
    static const node_t *stack[1 << 12];
    size_t sp = 0;
    uint64_t sum = 0;
    const node_t *n = root;
    while (n != NULL || sp > 0) {
        while (n != NULL) {
            if (sp == sizeof stack / sizeof stack[0]) return 0;
            stack[sp++] = n;
            n = n->left;
        }
        n = stack[--sp];
        sum += sum_bytes(n->str, n->len) + n->key;
        if (n->big) sum += sum_bytes(n->big, n->big_len);
        n = n->right;
    }
    return sum;
}

static dh_heap_t *fixed_heap(void) {
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.base = BASE;
    cfg.reserve = RESERVE;
    dh_heap_t *h = dh_heap_create(&cfg);
    if (h == NULL) die("dh_heap_create at the fixed base");
    return h;
}

/* Child modes: each prints one line. */
static int child_build(const char *path, unsigned mib) {
    dh_heap_t *h = fixed_heap();
    double t0 = now();
    uint64_t sum = build(h, mib);
    double t1 = now();
    if (path != NULL && dh_heap_save(h, path) != 0) die("dh_heap_save");
    double t2 = now();
    uint64_t again = walk(dh_heap_root(h)); /* the same walk, built here */
    double t3 = now();
    printf("%.6f %llu %.6f %d\n", t1 - t0, (unsigned long long)sum, t3 - t2,
           again == sum);
    return 0;
}

/* Every byte of every block, in address order. */
static bool read_block(const dh_block_info_t *b, void *user) {
    *(uint64_t *)user += sum_bytes(b->ptr, b->size);
    return true;
}

/* mode "walk": open, then walk the tree; "read": open, then read every
 * block in address order. */
static int child_open(const char *path, bool tree) {
    double t0 = now();
    dh_heap_t *h = dh_heap_open(path, DH_OPEN_PRIVATE);
    if (h == NULL) die("dh_heap_open");
    double t1 = now();
    uint64_t sum = 0;
    if (tree)
        sum = walk(dh_heap_root(h));
    else
        dh_heap_walk(h, read_block, &sum);
    double t2 = now();
    printf("%.6f %.6f %llu\n", t2 - t0, t1 - t0, (unsigned long long)sum);
    dh_heap_destroy(h);
    return 0;
}

static FILE *run_child(char *const argv[]) {
    int fds[2];
    if (pipe(fds) != 0) die("pipe");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    return f;
}

static double median3(double a, double b, double c) {
    if (a > b) { double t = a; a = b; b = t; }
    if (b > c) b = c;
    return a > b ? a : b;
}

static void bench_open(const char *path, unsigned mib) {
    char m[16];
    snprintf(m, sizeof m, "%u", mib);
    double rebuild[3], built_walk[3], walk_s[3], open_s[3], read_s[3], o2;
    unsigned long long want = 0, got = 0, read_sum = 0;
    int ok = 1, same = 1;
    for (int i = 0; i < 3; i++) {
        char *b[] = {"image", "build", i == 0 ? (char *)path : "-", m, NULL};
        FILE *f = run_child(b);
        if (fscanf(f, "%lf %llu %lf %d", &rebuild[i], &want, &built_walk[i],
                   &ok) != 4)
            die("build child");
        fclose(f);
        wait(NULL);
        char *o[] = {"image", "walk", (char *)path, NULL};
        f = run_child(o);
        if (fscanf(f, "%lf %lf %llu", &walk_s[i], &open_s[i], &got) != 3)
            die("open child");
        fclose(f);
        wait(NULL);
        char *r[] = {"image", "read", (char *)path, NULL};
        f = run_child(r);
        if (fscanf(f, "%lf %lf %llu", &read_s[i], &o2, &read_sum) != 3)
            die("read child");
        fclose(f);
        wait(NULL);
        same = same && ok && got == want;
    }
    printf("open\t%u\t%.6f\t%.6f\t%.6f\t%d\t%.6f\t%.6f\n", mib,
           median3(rebuild[0], rebuild[1], rebuild[2]),
           median3(walk_s[0], walk_s[1], walk_s[2]),
           median3(open_s[0], open_s[1], open_s[2]), same,
           median3(read_s[0], read_s[1], read_s[2]),
           median3(built_walk[0], built_walk[1], built_walk[2]));
}

/* ---- rollback --------------------------------------------------------------- */

static void touch(unsigned char *data, size_t pages, size_t n, uint64_t *s) {
    for (size_t i = 0; i < n; i++) data[(rng(s) % pages) * PAGE + 8] ^= 1;
}

/* Read the pages touch() wrote with the same seed: what the lazy refaults
 * of a copy-on-write rollback cost, paid by the next round. */
static uint64_t reread(const unsigned char *data, size_t pages, size_t n,
                       uint64_t *s) {
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += data[(rng(s) % pages) * PAGE + 8];
    return sum;
}

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static bool first_block(const dh_block_info_t *b, void *user) {
    *(void **)user = b->ptr;
    return false;
}

/* ---- copy-on-write rollback over a memfd (an experiment) ------------------- */

/* What a copy-on-write snapshot would cost, outside the library: the
 * heap's data bytes written into a memfd, mapped privately at a fresh
 * address, and rounds as above restored by discarding the private copies
 * of the written pages (process_madvise(MADV_DONTNEED), so that they read
 * the file again) instead of copying them back.  The written pages are
 * found either by asynchronous userfaultfd write protection (a scan that
 * protects them again; each run discarded: "memfd-cow-wp"), or by a
 * page-table scan for private pages, discarded in whole 2 MiB windows,
 * the range registered with userfaultfd with nothing protected, which
 * turns off fault-around, so that a read fault maps one page
 * ("memfd-cow-pt"). */
typedef struct cow_bench {
    unsigned char *map;
    size_t bytes;
    int uffd, pagemap, pidfd;
    bool wp;
} cow_bench_t;

#define COW_WINDOW ((uint64_t)2 << 20)
#define COW_RUNS 1024

/* Discard n runs, in batches of COW_RUNS iovecs. */
static void cow_discard(const cow_bench_t *c, const struct page_region *r,
                        size_t n) {
    static struct iovec iov[COW_RUNS];
    for (size_t at = 0; at < n; at += COW_RUNS) {
        size_t k = n - at < COW_RUNS ? n - at : COW_RUNS, want = 0;
        for (size_t i = 0; i < k; i++) {
            iov[i].iov_base = (void *)(uintptr_t)r[at + i].start;
            iov[i].iov_len = r[at + i].end - r[at + i].start;
            want += iov[i].iov_len;
        }
        if (syscall(SYS_process_madvise, c->pidfd, iov, k, MADV_DONTNEED, 0) !=
            (long)want)
            for (size_t i = 0; i < k; i++)
                madvise(iov[i].iov_base, iov[i].iov_len, MADV_DONTNEED);
    }
}

/* Widen runs to whole windows inside the mapping, merging those that
 * meet; returns how many. */
static size_t cow_widen(const cow_bench_t *c, struct page_region *r, size_t n) {
    uint64_t lo = (uintptr_t)c->map, hi = lo + c->bytes;
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t a = r[i].start & ~(COW_WINDOW - 1);
        uint64_t b = (r[i].end + COW_WINDOW - 1) & ~(COW_WINDOW - 1);
        a = a < lo ? lo : a;
        b = b > hi ? hi : b;
        if (out > 0 && a <= r[out - 1].end) {
            if (b > r[out - 1].end) r[out - 1].end = b;
        } else {
            r[out].start = a;
            r[out].end = b;
            out++;
        }
    }
    return out;
}

static void cow_restore(const cow_bench_t *c) {
    static struct page_region vec[COW_RUNS];
    uint64_t end = (uintptr_t)c->map + c->bytes;
    for (uint64_t at = (uintptr_t)c->map; at < end;) {
        struct pm_scan_arg a = {.size = sizeof a, .start = at, .end = end,
                                .vec = (uintptr_t)vec, .vec_len = COW_RUNS};
        if (c->wp) {
            a.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
            a.category_mask = a.return_mask = PAGE_IS_WRITTEN;
        } else { /* present or swapped, and not the file's page */
            a.category_inverted = a.category_mask = a.return_mask = PAGE_IS_FILE;
            a.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
        }
        long n = ioctl(c->pagemap, PAGEMAP_SCAN, &a);
        if (n < 0) die("PAGEMAP_SCAN");
        cow_discard(c, vec, c->wp ? (size_t)n : cow_widen(c, vec, (size_t)n));
        if (a.walk_end <= at) break;
        at = a.walk_end;
    }
}

static bool cow_setup(cow_bench_t *c, const unsigned char *data, size_t bytes) {
    int fd = (int)syscall(SYS_memfd_create, "bench-cow", 1u /* MFD_CLOEXEC */);
    if (fd < 0 || ftruncate(fd, (off_t)bytes) != 0) return false;
    for (size_t at = 0; at < bytes;) {
        ssize_t w = pwrite(fd, data + at, bytes - at, (off_t)at);
        if (w <= 0) return false;
        at += (size_t)w;
    }
    c->map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd); /* the mapping keeps the file */
    if (c->map == MAP_FAILED) return false;
    c->bytes = bytes;
    c->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    struct uffdio_api api = {.api = UFFD_API,
                             .features = UFFD_FEATURE_WP_ASYNC |
                                         UFFD_FEATURE_WP_UNPOPULATED};
    struct uffdio_register reg = {.range = {(uintptr_t)c->map, bytes},
                                  .mode = UFFDIO_REGISTER_MODE_WP};
    struct uffdio_writeprotect wp = {.range = {(uintptr_t)c->map, bytes},
                                     .mode = UFFDIO_WRITEPROTECT_MODE_WP};
    if (c->uffd < 0 || ioctl(c->uffd, UFFDIO_API, &api) != 0 ||
        ioctl(c->uffd, UFFDIO_REGISTER, &reg) != 0 ||
        (c->wp && ioctl(c->uffd, UFFDIO_WRITEPROTECT, &wp) != 0))
        return false;
    c->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    c->pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    return c->pagemap >= 0;
}

static void bench_cow(const char *way, const unsigned char *data, size_t bytes,
                      bool wp) {
    cow_bench_t c = {.wp = wp};
    if (!cow_setup(&c, data, bytes)) {
        printf("rollback\t%s\t0\t0\t0\t0\tunavailable: %s\n", way,
               strerror(errno));
        return;
    }
    size_t pages = bytes / PAGE, n = pages / 100;
    uint64_t s = 9;
    volatile uint64_t sink = 0;
    touch(c.map, pages, n, &s);
    cow_restore(&c); /* warm */
    const int rounds = 20;
    double t_touch = 0, t_restore = 0, t_reread = 0;
    for (int r = 0; r < rounds; r++) {
        uint64_t seed = s;
        double t0 = now();
        touch(c.map, pages, n, &s);
        double t1 = now();
        cow_restore(&c);
        double t2 = now();
        sink += reread(c.map, pages, n, &seed);
        double t3 = now();
        t_touch += t1 - t0;
        t_restore += t2 - t1;
        t_reread += t3 - t2;
    }
    (void)sink;
    bool same = memcmp(c.map, data, bytes) == 0;
    printf("rollback\t%s\t%zu\t%.6f\t%.6f\t%.3f\t%s\n", way, n,
           (t_touch + t_restore) / rounds, t_restore / rounds,
           t_restore / rounds / n * 1e6, same ? "contents ok" : "CONTENTS DIFFER");
    char both[64];
    snprintf(both, sizeof both, "%s+reread", way);
    double t_both = t_restore + t_reread;
    printf("rollback\t%s\t%zu\t%.6f\t%.6f\t%.3f\n", both, n,
           (t_touch + t_both) / rounds, t_both / rounds, t_both / rounds / n * 1e6);
    munmap(c.map, bytes);
    close(c.uffd);
    close(c.pagemap);
    if (c.pidfd >= 0) close(c.pidfd);
}

static void bench_rollback(const char *path) {
    dh_heap_t *h = dh_heap_open(path, DH_OPEN_PRIVATE);
    if (h == NULL) die("dh_heap_open");
    dh_stats_t st;
    dh_heap_stats(h, &st, sizeof st);
    unsigned char *data = NULL; /* the first block: where the data starts */
    dh_heap_walk(h, first_block, &data);
    size_t bytes = st.storage_bytes, pages = bytes / PAGE, n = pages / 100;
    dh_snapshot_t *snap = dh_heap_snapshot(h);
    if (snap == NULL) die("dh_heap_snapshot");
    uint64_t s = 9;
    const int rounds = 20;
    /* dh_heap_rollback; the written pages are read again after each
     * rollback in both figures (timed apart), so the rounds match */
    touch(data, pages, n, &s);
    dh_heap_rollback(h, snap); /* warm */
    double t_round = 0, t_restore = 0, t_reread = 0;
    volatile uint64_t sink = 0;
    for (int r = 0; r < rounds; r++) {
        uint64_t seed = s;
        double t0 = now();
        touch(data, pages, n, &s);
        double t1 = now();
        dh_heap_rollback(h, snap);
        double t2 = now();
        sink += reread(data, pages, n, &seed);
        double t3 = now();
        t_round += t2 - t0;
        t_restore += t2 - t1;
        t_reread += t3 - t2;
    }
    (void)sink;
    printf("rollback\tdh_heap_rollback\t%zu\t%.6f\t%.6f\t%.3f\n", n,
           t_round / rounds, t_restore / rounds, t_restore / rounds / n * 1e6);
    /* the rollback and then reading each written page once more (a
     * copy-on-write rollback's refaults: later, but paid all the same) */
    double t_both = t_restore + t_reread;
    printf("rollback\tdh_heap_rollback+reread\t%zu\t%.6f\t%.6f\t%.3f\n", n,
           (t_round + t_reread) / rounds, t_both / rounds,
           t_both / rounds / n * 1e6);
    /* fork: the child writes and exits, the parent goes on from its copy */
    t_round = 0;
    double t_fork = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = now();
        pid_t pid = fork();
        if (pid == 0) {
            touch(data, pages, n, &s);
            _exit(0);
        }
        double t1 = now();
        waitpid(pid, NULL, 0);
        double t2 = now();
        t_round += t2 - t0;
        t_fork += t1 - t0;
    }
    printf("rollback\tfork\t%zu\t%.6f\t%.6f\t%.3f\n", n, t_round / rounds,
           t_fork / rounds, t_fork / rounds / n * 1e6);
    /* copy-on-write over a memfd: the same rounds, outside the library */
    bench_cow("memfd-cow-wp", data, bytes, true);
    bench_cow("memfd-cow-pt", data, bytes, false);
    /* a copy of the whole heap, copied back */
    unsigned char *copy = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (copy == MAP_FAILED) die("mmap");
    memcpy(copy, data, bytes);
    memcpy(data, copy, bytes); /* every page of the heap private now */
    t_round = t_restore = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        touch(data, pages, n, &s);
        double t1 = now();
        memcpy(data, copy, bytes);
        double t2 = now();
        t_round += t2 - t0;
        t_restore += t2 - t1;
    }
    printf("rollback\tfull-copy\t%zu\t%.6f\t%.6f\t%.3f\n", n, t_round / 3,
           t_restore / 3, t_restore / 3 / n * 1e6);
    /* the floor of any rollback that copies back: just the written pages
     * copied from the copy, in address order, their list known for free
     * (no tracking, no scan) */
    size_t *idx = malloc(n * sizeof *idx);
    if (idx == NULL) die("malloc");
    t_round = t_restore = 0;
    for (int r = 0; r < rounds; r++) {
        uint64_t seed = s;
        double t0 = now();
        touch(data, pages, n, &s);
        double t1 = now();
        for (size_t i = 0; i < n; i++) idx[i] = rng(&seed) % pages;
        qsort(idx, n, sizeof *idx, cmp_size);
        double t2 = now();
        for (size_t i = 0; i < n; i++)
            if (i == 0 || idx[i] != idx[i - 1])
                memcpy(data + idx[i] * PAGE, copy + idx[i] * PAGE, PAGE);
        double t3 = now();
        t_round += (t1 - t0) + (t3 - t2);
        t_restore += t3 - t2;
    }
    free(idx);
    printf("rollback\tcopy-written-pages\t%zu\t%.6f\t%.6f\t%.3f\n", n,
           t_round / rounds, t_restore / rounds, t_restore / rounds / n * 1e6);
    munmap(copy, bytes);
    dh_snapshot_free(snap);
    dh_heap_destroy(h);
}

/* ---- write tracking --------------------------------------------------------- */

#define TRACK_BYTES ((size_t)1 << 30)

static unsigned char *fresh_region(void) {
    unsigned char *p = mmap(NULL, TRACK_BYTES, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) die("mmap");
    for (size_t i = 0; i < TRACK_BYTES; i += PAGE) p[i] = 1;
    return p;
}

static void track_soft_dirty(void) {
    unsigned char *p = fresh_region();
    size_t pages = TRACK_BYTES / PAGE, n = pages / 100;
    double t0 = now();
    int fd = open("/proc/self/clear_refs", O_WRONLY);
    bool ok = fd >= 0 && write(fd, "4", 1) == 1;
    if (fd >= 0) close(fd);
    double t1 = now();
    uint64_t s = 3;
    touch(p, pages, n, &s);
    double t2 = now();
    /* read the pagemap of the region: bit 55 is soft-dirty */
    int pm = open("/proc/self/pagemap", O_RDONLY);
    uint64_t *ent = malloc(pages * 8), dirty = 0;
    ok = ok && pm >= 0 && ent != NULL &&
         pread(pm, ent, pages * 8, (off_t)((uintptr_t)p / PAGE * 8)) ==
             (ssize_t)(pages * 8);
    for (size_t i = 0; ok && i < pages; i++) dirty += ent[i] >> 55 & 1;
    double t3 = now();
    if (pm >= 0) close(pm);
    free(ent);
    /* without CONFIG_MEM_SOFT_DIRTY every page reads dirty or none does */
    bool works = ok && dirty >= n / 2 && dirty < pages / 2;
    printf("track\tsoft-dirty\t%.6f\t%.3f\t%.6f\t%s\n", t1 - t0,
           (t2 - t1) / n * 1e6, t3 - t2,
           works ? "works" : "unavailable: no soft-dirty bits on this kernel");
    munmap(p, TRACK_BYTES);
}

static void track_uffd(void) {
    unsigned char *p = fresh_region();
    size_t pages = TRACK_BYTES / PAGE, n = pages / 100;
    int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    struct uffdio_api api = {.api = UFFD_API,
                             .features = UFFD_FEATURE_WP_ASYNC |
                                         UFFD_FEATURE_WP_UNPOPULATED};
    struct uffdio_register reg = {.range = {(uintptr_t)p, TRACK_BYTES},
                                  .mode = UFFDIO_REGISTER_MODE_WP};
    if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) != 0 ||
        ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) {
        printf("track\tuffd-wp-async\t0\t0\t0\tunavailable: %s\n", strerror(errno));
        munmap(p, TRACK_BYTES);
        return;
    }
    double t0 = now();
    struct uffdio_writeprotect wp = {.range = {(uintptr_t)p, TRACK_BYTES},
                                     .mode = UFFDIO_WRITEPROTECT_MODE_WP};
    ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
    double t1 = now();
    uint64_t s = 3;
    touch(p, pages, n, &s);
    double t2 = now();
    int pm = open("/proc/self/pagemap", O_RDONLY);
    static struct page_region vec[4096];
    size_t found = 0;
    for (uint64_t at = (uintptr_t)p; at < (uintptr_t)p + TRACK_BYTES;) {
        struct pm_scan_arg a = {.size = sizeof a,
                                .flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
                                .start = at,
                                .end = (uintptr_t)p + TRACK_BYTES,
                                .vec = (uintptr_t)vec,
                                .vec_len = 4096,
                                .category_mask = PAGE_IS_WRITTEN,
                                .return_mask = PAGE_IS_WRITTEN};
        long r = ioctl(pm, PAGEMAP_SCAN, &a);
        if (r < 0) break;
        for (long i = 0; i < r; i++) found += (vec[i].end - vec[i].start) / PAGE;
        if (a.walk_end <= at) break;
        at = a.walk_end;
    }
    double t3 = now();
    close(pm);
    close(uffd);
    printf("track\tuffd-wp-async\t%.6f\t%.3f\t%.6f\tfound %zu of %zu written pages\n",
           t1 - t0, (t2 - t1) / n * 1e6, t3 - t2, found, n);
    munmap(p, TRACK_BYTES);
}

static unsigned char *mp_base;
static unsigned char **mp_log;
static volatile size_t mp_count;

static void on_segv(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)ctx;
    unsigned char *page = (unsigned char *)((uintptr_t)si->si_addr & ~(uintptr_t)(PAGE - 1));
    mp_log[mp_count++] = page;
    mprotect(page, PAGE, PROT_READ | PROT_WRITE);
}

static void track_mprotect(void) {
    unsigned char *p = fresh_region();
    size_t pages = TRACK_BYTES / PAGE, n = pages / 100;
    mp_base = p;
    mp_log = malloc(pages * sizeof *mp_log);
    mp_count = 0;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, &old);
    double t0 = now();
    mprotect(p, TRACK_BYTES, PROT_READ);
    double t1 = now();
    uint64_t s = 3;
    touch(p, pages, n, &s);
    double t2 = now();
    for (size_t i = 0; i < mp_count; i++) mprotect(mp_log[i], PAGE, PROT_READ);
    double t3 = now();
    sigaction(SIGSEGV, &old, NULL);
    printf("track\tmprotect-sigsegv\t%.6f\t%.3f\t%.6f\t%zu faults; re-protecting "
           "them one by one\n",
           t1 - t0, (t2 - t1) / n * 1e6, t3 - t2, mp_count);
    free(mp_log);
    munmap(p, TRACK_BYTES);
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "build") == 0)
        return child_build(strcmp(argv[2], "-") ? argv[2] : NULL,
                           (unsigned)atoi(argv[3]));
    if (argc == 3 && strcmp(argv[1], "walk") == 0) return child_open(argv[2], true);
    if (argc == 3 && strcmp(argv[1], "read") == 0) return child_open(argv[2], false);
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "all") == 0) {
        unsigned mib = argc == 4 ? (unsigned)atoi(argv[3]) : 1024;
        char path[4096];
        snprintf(path, sizeof path, "%s/bench-image.img", argv[2]);
        bench_open(path, mib);
        bench_rollback(path);
        track_soft_dirty();
        track_uffd();
        track_mprotect();
        unlink(path);
        return 0;
    }
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "rollback") == 0) {
        char m[16], path[4096];
        snprintf(m, sizeof m, "%s", argc == 4 ? argv[3] : "1024");
        snprintf(path, sizeof path, "%s/bench-image.img", argv[2]);
        char *b[] = {"image", "build", path, m, NULL};
        FILE *f = run_child(b);
        char line[256];
        while (fgets(line, sizeof line, f) != NULL) continue;
        fclose(f);
        wait(NULL);
        bench_rollback(path);
        unlink(path);
        return 0;
    }
    fprintf(stderr, "usage: image all|rollback DIR [MIB]\n");
    return 2;
}
