/*
 * test_image.c - heap images: dh_heap_save, dh_heap_open, the root,
 * dh_image_info.
 *
 * (a) Across processes: this process builds a pointer structure of 1 M
 *     tree nodes, each with a string, one in 20,000 with a large block,
 *     and free blocks of every kind among them, in a heap at a fixed base,
 *     saves it and goes on allocating; a fresh process (this binary run
 *     again, with its own address-space layout) opens the image, walks
 *     every pointer, checks every byte and the statistics, and must get
 *     the same next addresses.
 * (b) Damaged images are refused with errno and leave nothing mapped:
 *     truncated at many lengths, random bytes, every byte of the image
 *     header flipped, bytes of the heap header and the state map flipped,
 *     another format version, layout version, struct size or class table
 *     (each with a correct header checksum).  A flipped data byte is found
 *     by DH_OPEN_VERIFY only.
 * (c) A taken range gives EEXIST; bad flags EINVAL; a missing file ENOENT.
 * (d) Handles, the root and the error policy across save and open; saving
 *     over the image a process has open; save's failure cases; info.
 * (e) Shared mode: writes and growth past the end of the file reach the
 *     next process; a shared opener excludes others (EBUSY); an image
 *     whose shared writer died unsealed opens through the full check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "image_test.h"
#include "../../src/image_format.h"

#include <inttypes.h>

#define NODES 1000000u
#define BIG_EVERY 20000u
#define NEXT_ALLOCS 2000u
#define SMALL_RESERVE ((uint64_t)16 << 20)

/* ---- the structure ------------------------------------------------------- */

typedef struct node {
    struct node *left, *right;
    unsigned char *str;
    unsigned char *big;
    uint64_t key;
    uint32_t len, big_len;
} node_t;

typedef struct tree {
    node_t *root;
    uint64_t count;
    uint64_t magic;
} tree_t;

#define TREE_MAGIC 0x7472656574726565ull

static unsigned char byte_of(uint64_t key, uint64_t i) {
    return (unsigned char)((key * 0x9e3779b97f4a7c15ull + i * 0x5851f42d) >> 56);
}

static void fill(unsigned char *p, uint64_t key, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = byte_of(key, i);
}

static bool holds(const unsigned char *p, uint64_t key, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != byte_of(key, i)) return false;
    return true;
}

static void *must(void *p) {
    if (p == NULL) fail_msg("allocation failed: errno %d", errno);
    return p;
}

/* Insert 1 M nodes with keys in a fixed pseudo-random order into a
 * binary search tree; strings of 1..100 bytes, large blocks of 70 KB ..
 * 270 KB, and blocks freed in between, so that the image has free lists
 * and free large blocks. */
static tree_t *build(dh_heap_t *h) {
    tree_t *t = must(dh_heap_calloc(h, 1, sizeof *t));
    t->magic = TREE_MAGIC;
    test_rng_t r = {0x1a9e};
    void *junk[64] = {0};
    for (uint64_t i = 0; i < NODES; i++) {
        uint64_t key = test_rng_next(&r);
        node_t *n = must(dh_heap_malloc(h, sizeof *n));
        n->left = n->right = NULL;
        n->key = key;
        n->len = (uint32_t)(1 + key % 100);
        n->str = must(dh_heap_malloc(h, n->len));
        fill(n->str, key, n->len);
        n->big = NULL;
        n->big_len = 0;
        if (i % BIG_EVERY == 0) {
            n->big_len = (uint32_t)(70000 + key % 200000);
            n->big = must(dh_heap_malloc(h, n->big_len));
            fill(n->big, key ^ 1, n->big_len);
        }
        unsigned j = (unsigned)(key >> 58);
        dh_free(junk[j]); /* a class block, or now and then a large one */
        junk[j] = must(dh_heap_malloc(h, i % 997 == 0 ? 100000 : key % 600));
        node_t **at = &t->root;
        while (*at != NULL) at = key < (*at)->key ? &(*at)->left : &(*at)->right;
        *at = n;
        t->count++;
    }
    for (unsigned j = 0; j < 64; j += 2) dh_free(junk[j]);
    dh_heap_set_root(h, t);
    return t;
}

/* Walk every node (iteratively: the tree is not balanced) and check every
 * byte; returns the nodes seen, or 0 on a bad one. */
static uint64_t walk(const tree_t *t) {
    static node_t *stack[4096];
    size_t sp = 0;
    uint64_t seen = 0, prev = 0;
    bool first = true;
    node_t *n = t->root;
    while (n != NULL || sp > 0) {
        while (n != NULL) {
            if (sp == 4096) return 0;
            stack[sp++] = n;
            n = n->left;
        }
        n = stack[--sp];
        if ((!first && n->key < prev) || n->len != 1 + n->key % 100 ||
            !holds(n->str, n->key, n->len) ||
            (n->big != NULL && !holds(n->big, n->key ^ 1, n->big_len)))
            return 0;
        first = false;
        prev = n->key;
        seen++;
        n = n->right;
    }
    return seen;
}

/* The allocations made after the save, on both sides: a hash of their
 * addresses. */
static uint64_t next_allocs(dh_heap_t *h) {
    test_rng_t r = {77};
    uint64_t x = 0;
    void *keep[16] = {0};
    for (unsigned i = 0; i < NEXT_ALLOCS; i++) {
        size_t n = test_random_size(&r, 80, 15);
        void *p = must(dh_heap_malloc(h, n));
        x = img_mix(x, (uintptr_t)p);
        unsigned k = (unsigned)(test_rng_next(&r) % 16);
        dh_free(keep[k]);
        keep[k] = p;
    }
    return x;
}

/* The second process: open, walk, check, allocate; prints the figures. */
static int child_open(const char *path) {
    dh_heap_t *h = dh_heap_open(path, DH_OPEN_PRIVATE);
    if (h == NULL) {
        printf("open failed: errno %d\n", errno);
        return 1;
    }
    const tree_t *t = dh_heap_root(h);
    if (dh_heap_base(h) != IMG_BASE_TREE || t == NULL || t->magic != TREE_MAGIC ||
        dh_heap_of(t) != h) {
        printf("bad root\n");
        return 1;
    }
    uint64_t seen = walk(t);
    int check = dh_heap_check(h);
    uint64_t stats = img_stats_hash(h);
    uint64_t next = next_allocs(h);
    printf("%" PRIu64 " %d %" PRIx64 " %" PRIx64 "\n", seen, check, stats, next);
    dh_heap_destroy(h);
    return 0;
}

static void test_tree_across_processes(void **state) {
    (void)state;
    char path[512];
    img_path(path, sizeof path, "tree.img");
    dh_heap_t *h = img_heap_at(IMG_BASE_TREE);
    tree_t *t = build(h);
    assert_int_equal(walk(t), NODES);
    assert_int_equal(dh_heap_save(h, path), 0);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    uint64_t stats = img_stats_hash(h);
    uint64_t next = next_allocs(h);
    dh_heap_destroy(h);

    char out[256];
    char *args[] = {(char *)"child-open", path, NULL};
    int rc = img_run_self(args, out, sizeof out);
    if (rc != 0) fail_msg("child: status %d, said: %s", rc, out);
    uint64_t seen, cstats, cnext;
    int check;
    assert_int_equal(sscanf(out, "%" SCNu64 " %d %" SCNx64 " %" SCNx64, &seen,
                            &check, &cstats, &cnext),
                     4);
    assert_int_equal(seen, NODES);
    assert_int_equal(check, DH_CHECK_OK);
    assert_true(cstats == stats);
    assert_true(cnext == next);
    unlink(path);
}

/* ---- a small image -------------------------------------------------------- */

/* A heap of SMALL_RESERVE bytes at IMG_BASE_SMALL with a few blocks of
 * each kind, some freed, a handle written, the root set; saved to path. */
static void small_image(const char *path) {
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.base = IMG_BASE_SMALL;
    cfg.reserve = SMALL_RESERVE;
    cfg.on_error = DH_ON_ERROR_WARN;
    dh_heap_t *h = dh_heap_create(&cfg);
    assert_non_null(h);
    void *p[40];
    for (int i = 0; i < 40; i++) {
        p[i] = must(dh_heap_malloc(h, i % 10 == 9 ? 90000 : (size_t)i * 37));
        memset(p[i], i + 1, i % 10 == 9 ? 90000 : (size_t)i * 37);
    }
    for (int i = 0; i < 40; i += 3) dh_free(p[i]);
    dh_handle_t a = dh_alloc(h, 40);
    assert_true(dh_write(h, a, "image handle", 13));
    assert_int_equal(a.id, dh_handle_of(dh_ptr_of(h, a)).id);
    dh_heap_set_root(h, p[1]);
    assert_int_equal(dh_heap_save(h, path), 0);
    dh_heap_destroy(h);
}

/* A heap of the fine class set (dh_config_t.classes) saves and opens as
 * one of the spec set does: it opens with its set, checks clean, and the
 * next allocations get the addresses the saving heap would have given. */
static void test_fine_round_trip(void **state) {
    (void)state;
    char path[512];
    img_path(path, sizeof path, "fine.img");
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.base = IMG_BASE_SMALL;
    cfg.reserve = SMALL_RESERVE;
    cfg.classes = DH_CLASSES_FINE;
    dh_heap_t *h = dh_heap_create(&cfg);
    assert_non_null(h);
    void *p[300];
    for (int i = 0; i < 300; i++) {
        size_t n = (size_t)(i * 97 % 20000) + 1;
        p[i] = must(dh_heap_malloc(h, n));
        memset(p[i], i & 0xff, n);
    }
    for (int i = 0; i < 300; i += 2) dh_free(p[i]);
    assert_int_equal(dh_heap_save(h, path), 0);
    uintptr_t next[200];
    for (int i = 0; i < 200; i++)
        next[i] = (uintptr_t)must(dh_heap_malloc(h, (size_t)i * 53 + 1));
    dh_heap_destroy(h);
    errno = 0;
    h = dh_heap_open(path, DH_OPEN_PRIVATE);
    if (h == NULL) fail_msg("open: errno %d", errno);
    assert_int_equal(dh_heap_class_set(h), DH_CLASSES_FINE);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    for (int i = 1; i < 300; i += 2) {
        size_t n = (size_t)(i * 97 % 20000) + 1;
        for (size_t k = 0; k < n; k++)
            assert_int_equal(((unsigned char *)p[i])[k], i & 0xff);
    }
    for (int i = 0; i < 200; i++)
        assert_int_equal((uintptr_t)dh_heap_malloc(h, (size_t)i * 53 + 1),
                         next[i]);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    dh_heap_destroy(h);
    unlink(path);
}

static int open_errno(const char *path, unsigned flags) {
    errno = 0;
    dh_heap_t *h = dh_heap_open(path, flags);
    if (h != NULL) {
        dh_heap_destroy(h);
        return 0;
    }
    return errno;
}

static void assert_refused(const char *path, int want) {
    int e = open_errno(path, DH_OPEN_PRIVATE);
    if (e != want) fail_msg("%s: errno %d, want %d", path, e, want);
    assert_true(img_range_free(IMG_BASE_SMALL, DH_HEAP_ALIGN));
}

static void test_small_round_trip(void **state) {
    (void)state;
    char path[512];
    img_path(path, sizeof path, "small.img");
    small_image(path);
    dh_heap_t *h = dh_heap_open(path, DH_OPEN_PRIVATE);
    assert_non_null(h);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    /* the handle written before the save */
    dh_handle_t a = {((uintptr_t)dh_heap_root(h) - IMG_BASE_SMALL) >> 4};
    size_t len;
    assert_non_null(dh_get(h, a, &len));
    unsigned char *root = dh_heap_root(h);
    assert_int_equal(root[0], 2);
    dh_stats_t s = test_stats(h);
    assert_int_equal(s.reserved_bytes, SMALL_RESERVE);
    /* walk to the handle's block: the first 48-byte class block live */
    bool found = false;
    for (uint64_t id = 1; id < (SMALL_RESERVE >> 4) && !found; id++) {
        dh_handle_t x = {id};
        const char *b = dh_get(h, x, &len);
        if (b != NULL && len == 48 && memcmp(b, "image handle", 13) == 0)
            found = true;
    }
    assert_true(found);
    /* the policy was WARN, and is */
    capture_t c;
    char buf[512];
    capture_begin(&c);
    dh_free(root + 16);
    capture_end(&c, buf, sizeof buf);
    assert_non_null(strstr(buf, "not the start of a block"));
    /* growth past what the image committed, and dh_free without a heap */
    void *big = must(dh_heap_malloc(h, 5 << 20));
    memset(big, 7, 5 << 20);
    assert_ptr_equal(dh_heap_of(big), h);
    dh_free(big);
    assert_int_equal(dh_heap_check(h), DH_CHECK_OK);
    /* the file is never changed by a private heap */
    dh_heap_destroy(h);
    assert_true(img_range_free(IMG_BASE_SMALL, DH_HEAP_ALIGN));
    h = dh_heap_open(path, DH_OPEN_PRIVATE | DH_OPEN_VERIFY);
    assert_non_null(h);
    assert_true(test_stats(h).live_count == s.live_count);
    dh_heap_destroy(h);
    unlink(path);
}

/* Byte `at` of the file dst (a copy of the image) xored with x: flipped,
 * then flipped back by a second call. */
static void flip(const char *dst, size_t at, unsigned char x) {
    int fd = open(dst, O_RDWR);
    assert_true(fd >= 0);
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, (off_t)at), 1);
    b ^= x;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)at), 1);
    close(fd);
}

/* The open of dst with byte `at` flipped gives errno want (0: opens);
 * dst is left as it was. */
static void flipped_gives(const char *dst, size_t at, unsigned char x,
                          int want) {
    flip(dst, at, x);
    int e = open_errno(dst, DH_OPEN_PRIVATE);
    flip(dst, at, x);
    if (want >= 0 ? e != want : e != EINVAL && e != ENOEXEC)
        fail_msg("byte %zu flipped: errno %d", at, e);
    assert_true(img_range_free(IMG_BASE_SMALL, DH_HEAP_ALIGN));
}

/* The image header of buf changed by fn, with its checksum redone. */
static void reheader(const unsigned char *src, size_t len, const char *dst,
                     void (*fn)(dh_img_header_t *)) {
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    memcpy(buf, src, len);
    dh_img_header_t hd;
    memcpy(&hd, buf, sizeof hd);
    fn(&hd);
    memcpy(buf, &hd, sizeof hd);
    hd.header_hash = dh_img_header_hash(buf);
    memcpy(buf, &hd, sizeof hd);
    img_spit(dst, buf, len);
    free(buf);
}

static void other_format(dh_img_header_t *hd) { hd->format++; }
static void other_layout(dh_img_header_t *hd) { hd->layout++; }
static void other_struct(dh_img_header_t *hd) { hd->heap_struct += 8; }
static void other_classes(dh_img_header_t *hd) { hd->class_sizes[2] = 40; }
static void fewer_classes(dh_img_header_t *hd) { hd->class_count--; }
static void other_page(dh_img_header_t *hd) { hd->page = 16384; }
static void moved_base(dh_img_header_t *hd) { hd->base += DH_HEAP_ALIGN; }
static void longer_data(dh_img_header_t *hd) {
    hd->data_end += 1 << 20;
    hd->file_bytes += 1 << 20;
}

static void test_damaged_images(void **state) {
    (void)state;
    char path[512], bad[512];
    img_path(path, sizeof path, "damage.img");
    img_path(bad, sizeof bad, "damaged.img");
    small_image(path);
    size_t len;
    unsigned char *img = img_slurp(path, &len);
    dh_img_header_t hd;
    memcpy(&hd, img, sizeof hd);
    assert_true(len == hd.file_bytes);

    /* truncated */
    const size_t cuts[] = {0, 3, 7, 8, 100, 4095, 4096, 4097,
                           (size_t)hd.header_off, (size_t)hd.body_off + 1,
                           len / 2, len - 4096, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        img_spit(bad, img, cuts[i]);
        assert_refused(bad, cuts[i] < 8 ? ENOEXEC : EINVAL);
    }
    /* random bytes */
    unsigned char noise[8192];
    test_rng_t r = {5};
    for (size_t i = 0; i < sizeof noise; i++) noise[i] = (unsigned char)test_rng_next(&r);
    img_spit(bad, noise, sizeof noise);
    assert_refused(bad, ENOEXEC);
    /* every byte of the image header's page flipped, one at a time */
    img_spit(bad, img, len);
    for (size_t at = 0; at < DH_IMG_PAGE; at++) flipped_gives(bad, at, 0x10, -1);
    /* bytes of the heap header (mapped, then refused and unmapped) */
    for (size_t at = 0; at < hd.header_len; at += 61)
        flipped_gives(bad, (size_t)hd.header_off + at, 0x01, EINVAL);
    /* bytes of the span map and the state map */
    uint64_t state_len = hd.state_end - hd.state_start;
    for (uint64_t at = 0; at < state_len; at += state_len / 37 + 1)
        flipped_gives(bad, (size_t)(hd.body_off + at), 0x80, EINVAL);
    /* another version, layout, struct, class table, page: ENOEXEC */
    void (*incompatible[])(dh_img_header_t *) = {
        other_format, other_layout, other_struct, other_classes,
        fewer_classes, other_page};
    for (size_t i = 0; i < sizeof incompatible / sizeof incompatible[0]; i++) {
        reheader(img, len, bad, incompatible[i]);
        assert_refused(bad, ENOEXEC);
    }
    /* geometry that disagrees with the heap header or the file: EINVAL */
    reheader(img, len, bad, moved_base);
    assert_refused(bad, EINVAL);
    reheader(img, len, bad, longer_data);
    assert_refused(bad, EINVAL);
    /* a data byte: found by DH_OPEN_VERIFY only (the data is not read) */
    size_t data_at = (size_t)(hd.body_off + (hd.data_start - hd.state_start)) + 100;
    img_spit(bad, img, len);
    flip(bad, data_at, 0x01);
    assert_int_equal(open_errno(bad, DH_OPEN_PRIVATE), 0);
    assert_int_equal(open_errno(bad, DH_OPEN_PRIVATE | DH_OPEN_VERIFY), EINVAL);
    assert_true(img_range_free(IMG_BASE_SMALL, DH_HEAP_ALIGN));
    /* and the original still opens */
    assert_int_equal(open_errno(path, DH_OPEN_PRIVATE | DH_OPEN_VERIFY), 0);
    free(img);
    unlink(bad);
    unlink(path);
}

static void test_open_errors(void **state) {
    (void)state;
    char path[512];
    img_path(path, sizeof path, "errors.img");
    small_image(path);
    /* a taken range: a heap there, or any mapping in the range */
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.base = IMG_BASE_SMALL;
    cfg.reserve = SMALL_RESERVE;
    dh_heap_t *h = dh_heap_create(&cfg);
    assert_non_null(h);
    assert_int_equal(open_errno(path, DH_OPEN_PRIVATE), EEXIST);
    assert_int_equal(open_errno(path, DH_OPEN_SHARED), EEXIST);
    dh_heap_destroy(h);
    void *m = mmap((void *)(IMG_BASE_SMALL + (8 << 20)), 4096, PROT_READ,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    assert_true(m != MAP_FAILED);
    assert_int_equal(open_errno(path, DH_OPEN_PRIVATE), EEXIST);
    munmap(m, 4096);
    /* flags */
    assert_int_equal(open_errno(path, 0), EINVAL);
    assert_int_equal(open_errno(path, DH_OPEN_PRIVATE | DH_OPEN_SHARED), EINVAL);
    assert_int_equal(open_errno(path, DH_OPEN_VERIFY), EINVAL);
    assert_int_equal(open_errno(path, DH_OPEN_PRIVATE | 8u), EINVAL);
    assert_int_equal(open_errno(NULL, DH_OPEN_PRIVATE), EINVAL);
    /* files */
    char missing[512];
    img_path(missing, sizeof missing, "no-such.img");
    assert_int_equal(open_errno(missing, DH_OPEN_PRIVATE), ENOENT);
    assert_int_equal(open_errno(img_dir(), DH_OPEN_PRIVATE), EISDIR);
    char text[512];
    img_path(text, sizeof text, "text.img");
    img_spit(text, (const unsigned char *)"not an image\n", 13);
    assert_int_equal(open_errno(text, DH_OPEN_PRIVATE), ENOEXEC);
    unlink(text);
    assert_int_equal(open_errno(path, DH_OPEN_PRIVATE), 0);
    unlink(path);
}

static void test_save_errors(void **state) {
    (void)state;
    char path[512];
    img_path(path, sizeof path, "save.img");
    dh_heap_t *anywhere = dh_heap_create(NULL);
    assert_non_null(anywhere);
    errno = 0;
    assert_int_equal(dh_heap_save(anywhere, path), -1);
    assert_int_equal(errno, EINVAL);
    dh_heap_destroy(anywhere);
    errno = 0;
    assert_int_equal(dh_heap_save(NULL, path), -1);
    assert_int_equal(errno, EINVAL);
    void *p = dh_malloc(16);
    assert_non_null(p);
    errno = 0;
    assert_int_equal(dh_heap_save(dh_heap_of(p), path), -1);
    assert_int_equal(errno, EPERM);
    dh_free(p);
    dh_heap_t *h = img_heap_at(IMG_BASE_OTHER);
    errno = 0;
    assert_int_equal(dh_heap_save(h, NULL), -1);
    assert_int_equal(errno, EINVAL);
    char deep[512];
    img_path(deep, sizeof deep, "no-such-dir/x.img");
    errno = 0;
    assert_int_equal(dh_heap_save(h, deep), -1);
    assert_int_equal(errno, ENOENT);
    char *longer = malloc(5000);
    assert_non_null(longer);
    memset(longer, 'a', 4999);
    longer[4999] = 0;
    errno = 0;
    assert_int_equal(dh_heap_save(h, longer), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    free(longer);
    /* an empty heap saves and opens; the .tmp file is gone */
    assert_int_equal(dh_heap_save(h, path), 0);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1);
    dh_heap_destroy(h);
    h = dh_heap_open(path, DH_OPEN_PRIVATE | DH_OPEN_VERIFY);
    assert_non_null(h);
    assert_int_equal(test_stats(h).live_count, 0);
    assert_non_null(dh_heap_malloc(h, 10));
    dh_heap_destroy(h);
    unlink(path);
}

/* Saving over the image this process has open: the open heap keeps the
 * old file's contents; the next open gets the new one. */
static void test_save_over_open(void **state) {
    (void)state;
    char path[512];
    img_path(path, sizeof path, "over.img");
    small_image(path);
    dh_heap_t *h = dh_heap_open(path, DH_OPEN_PRIVATE);
    assert_non_null(h);
    unsigned char *root = dh_heap_root(h);
    uint64_t live = test_stats(h).live_count;
    void *q = must(dh_heap_malloc(h, 20));
    dh_heap_set_root(h, q);
    assert_int_equal(dh_heap_save(h, path), 0);
    assert_ptr_equal(dh_heap_root(h), q);
    assert_int_equal(root[0], 2);
    dh_heap_destroy(h);
    h = dh_heap_open(path, DH_OPEN_PRIVATE | DH_OPEN_VERIFY);
    assert_non_null(h);
    assert_ptr_equal(dh_heap_root(h), q);
    assert_int_equal(test_stats(h).live_count, live + 1);
    dh_heap_destroy(h);
    unlink(path);
}

static void test_root_and_info(void **state) {
    (void)state;
    assert_null(dh_heap_root(NULL));
    dh_heap_set_root(NULL, &state); /* no-op */
    dh_heap_t *h = img_heap_at(IMG_BASE_OTHER);
    assert_null(dh_heap_root(h));
    void *p = must(dh_heap_malloc(h, 100));
    dh_heap_set_root(h, p);
    assert_ptr_equal(dh_heap_root(h), p);
    assert_true(dh_heap_reset(h));
    assert_null(dh_heap_root(h));
    dh_heap_destroy(h);

    char path[512];
    img_path(path, sizeof path, "info.img");
    small_image(path);
    dh_image_info_t info;
    memset(&info, 0, sizeof info);
    assert_int_equal(dh_image_info(path, &info, sizeof info), 0);
    assert_int_equal(info.struct_size, sizeof info);
    assert_int_equal(info.format, DH_IMAGE_FORMAT);
    assert_int_equal(info.sealed, 1);
    assert_int_equal(info.data_hashed, 1);
    assert_int_equal(info.class_count, DH_NUM_CLASSES);
    for (int c = 0; c < DH_NUM_CLASSES; c++)
        assert_int_equal(info.class_sizes[c], dh_class_size(c));
    assert_int_equal(info.base, IMG_BASE_SMALL);
    assert_int_equal(info.reserve, SMALL_RESERVE);
    assert_int_equal(info.library_version, DH_VERSION);
    dh_heap_t *o = dh_heap_open(path, DH_OPEN_PRIVATE);
    assert_non_null(o);
    dh_stats_t s = test_stats(o);
    assert_int_equal(info.live_count, s.live_count);
    assert_int_equal(info.live_bytes, s.live_bytes);
    assert_int_equal(info.storage_bytes, s.storage_bytes);
    assert_int_equal(info.root, (uintptr_t)dh_heap_root(o));
    dh_heap_destroy(o);
    errno = 0;
    assert_int_equal(dh_image_info(path, NULL, sizeof info), -1);
    assert_int_equal(errno, EINVAL);
    char text[512];
    img_path(text, sizeof text, "text.img");
    img_spit(text, (const unsigned char *)"not an image\n", 13);
    errno = 0;
    assert_int_equal(dh_image_info(text, &info, sizeof info), -1);
    assert_int_equal(errno, ENOEXEC);
    unlink(text);
    unlink(path);
}

/* ---- shared mode ------------------------------------------------------------- */

static char shared_path[512];
#define BIG_BYTES ((size_t)24 << 20)

/* Process 1: write, grow past the end of the file, set the root. */
static int shared_writer(void *arg) {
    (void)arg;
    dh_heap_t *h = dh_heap_open(shared_path, DH_OPEN_SHARED);
    if (h == NULL) return 10;
    void **slots = dh_heap_malloc(h, 2 * sizeof(void *));
    unsigned char *big = dh_heap_malloc(h, BIG_BYTES);
    if (slots == NULL || big == NULL) return 11;
    memset(big, 0x5a, BIG_BYTES);
    slots[0] = big;
    slots[1] = dh_heap_malloc(h, 30);
    if (slots[1] == NULL) return 12;
    memcpy(slots[1], "persistent", 11);
    dh_heap_set_root(h, slots);
    dh_heap_destroy(h);
    return 0;
}

/* Process 2: see it all, add to it, and die without closing. */
static int shared_reader_dies(void *arg) {
    (void)arg;
    dh_heap_t *h = dh_heap_open(shared_path, DH_OPEN_SHARED);
    if (h == NULL) return 20;
    void **slots = dh_heap_root(h);
    const unsigned char *big = slots ? slots[0] : NULL;
    if (big == NULL || strcmp(slots[1], "persistent") != 0) return 21;
    for (size_t i = 0; i < BIG_BYTES; i += 4093)
        if (big[i] != 0x5a) return 22;
    if (dh_heap_check(h) != DH_CHECK_OK) return 23;
    char *more = dh_heap_malloc(h, 5000);
    if (more == NULL) return 24;
    strcpy(more, "after a crash");
    slots[1] = more;
    _exit(0); /* no dh_heap_destroy: the image stays unsealed */
}

/* Process 3: the unsealed image opens through the full check. */
static int shared_after_crash(void *arg) {
    (void)arg;
    dh_image_info_t info;
    if (dh_image_info(shared_path, &info, sizeof info) != 0 || info.sealed)
        return 30;
    dh_heap_t *h = dh_heap_open(shared_path, DH_OPEN_SHARED);
    if (h == NULL) return 31;
    void **slots = dh_heap_root(h);
    if (strcmp(slots[1], "after a crash") != 0) return 32;
    dh_heap_destroy(h);
    if (dh_image_info(shared_path, &info, sizeof info) != 0 || !info.sealed ||
        info.data_hashed)
        return 33;
    return 0;
}

static void test_shared(void **state) {
    (void)state;
    img_path(shared_path, sizeof shared_path, "shared.img");
    dh_heap_t *h = img_heap_at(IMG_BASE_SHARED);
    must(dh_heap_malloc(h, 100));
    assert_int_equal(dh_heap_save(h, shared_path), 0);
    dh_heap_destroy(h);
    struct stat before, after;
    assert_int_equal(stat(shared_path, &before), 0);
    assert_int_equal(img_run_fork(shared_writer, NULL), 0);
    assert_int_equal(stat(shared_path, &after), 0);
    assert_true(after.st_size >= before.st_size + (off_t)BIG_BYTES);
    /* sealed: it opens privately and checks */
    h = dh_heap_open(shared_path, DH_OPEN_PRIVATE | DH_OPEN_VERIFY);
    assert_non_null(h);
    void **slots = dh_heap_root(h);
    assert_string_equal(slots[1], "persistent");
    /* while opened privately, a shared opener is refused, and the other
     * way round */
    assert_int_equal(open_errno(shared_path, DH_OPEN_SHARED), EBUSY);
    dh_heap_destroy(h);
    h = dh_heap_open(shared_path, DH_OPEN_SHARED);
    assert_non_null(h);
    assert_int_equal(open_errno(shared_path, DH_OPEN_PRIVATE), EBUSY);
    /* no snapshot of a shared image */
    errno = 0;
    assert_null(dh_heap_snapshot(h));
    assert_int_equal(errno, EINVAL);
    dh_heap_destroy(h);
    assert_int_equal(img_run_fork(shared_reader_dies, NULL), 0);
    assert_int_equal(img_run_fork(shared_after_crash, NULL), 0);
    unlink(shared_path);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "child-open") == 0)
        return child_open(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_across_processes),
        cmocka_unit_test(test_small_round_trip),
        cmocka_unit_test(test_fine_round_trip),
        cmocka_unit_test(test_damaged_images),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_save_errors),
        cmocka_unit_test(test_save_over_open),
        cmocka_unit_test(test_root_and_info),
        cmocka_unit_test(test_shared),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(img_dir());
    return rc;
}
