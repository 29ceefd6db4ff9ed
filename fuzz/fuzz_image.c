/*
 * fuzz_image.c - dh_heap_open on damaged images.  A valid image of a small
 * heap (1 MiB range at a fixed base: blocks of several classes, a large
 * block, free blocks, a root) is made once; each input damages a copy of
 * it and opens it.  The oracle: open either fails with EINVAL or ENOEXEC
 * and leaves the image's range wholly unmapped, or returns a heap that is
 * usable: if its full dh_heap_check passes, allocation and free keep it
 * passing, and once destroyed the range is unmapped again.  A crash, an
 * ASan report, another errno or a leftover mapping is a finding.
 *
 * Input: a mode byte, then its arguments.
 *   mode % 4 == 0   the rest of the input is the whole file
 *   otherwise       patches until the input ends, each REGION8 OFF16 XOR8:
 *                   byte OFF16 of region REGION8 % 4 (the image header's
 *                   page, the heap header, the state map, the data) is
 *                   xored with XOR8;
 *                   mode % 4 >= 2: the checksums are then made right again
 *                   (so that the structure behind them is what is tested);
 *                   mode % 4 == 3: and the file is cut at the length given
 *                   by the first four bytes after the mode.
 *   mode & 4        open with DH_OPEN_VERIFY
 */
#include "detheap.h"
#include "fuzz_input.h"
#include "../src/image_format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FUZZ_BASE ((uintptr_t)0x5b0000000000ull)
#define FUZZ_RESERVE ((uint64_t)1 << 20)

static unsigned char *image; /* the valid image */
static size_t image_len;
static unsigned char *work;  /* the damaged copy */
static char dir[200], path[256];

static void cleanup(void) {
    unlink(path);
    rmdir(dir);
}

static void make_image(void) {
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/dh-fuzz-image-XXXXXX", t && *t ? t : "/tmp");
    if (mkdtemp(dir) == NULL) abort();
    atexit(cleanup);
    snprintf(path, sizeof path, "%s/image", dir);
    dh_config_t cfg;
    dh_config_init(&cfg);
    cfg.base = FUZZ_BASE;
    cfg.reserve = FUZZ_RESERVE;
    dh_heap_t *h = dh_heap_create(&cfg);
    if (h == NULL) abort();
    void *keep[24];
    for (int i = 0; i < 24; i++) {
        size_t n = i == 5 ? 100000 : (size_t)i * 90 + 1;
        keep[i] = dh_heap_malloc(h, n);
        if (keep[i] == NULL) abort();
        memset(keep[i], 'a' + i, n);
    }
    for (int i = 0; i < 24; i += 4) dh_free(keep[i]);
    dh_free(keep[5]);
    dh_heap_set_root(h, keep[1]);
    if (dh_heap_save(h, path) != 0) abort();
    dh_heap_destroy(h);
    FILE *f = fopen(path, "rb");
    if (f == NULL) abort();
    fseek(f, 0, SEEK_END);
    image_len = (size_t)ftell(f);
    rewind(f);
    image = malloc(image_len);
    work = malloc(image_len);
    if (image == NULL || work == NULL ||
        fread(image, 1, image_len, f) != image_len)
        abort();
    fclose(f);
}

static bool range_free(void) {
    void *p = mmap((void *)FUZZ_BASE, DH_HEAP_ALIGN, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                       MAP_FIXED_NOREPLACE,
                   -1, 0);
    if (p == MAP_FAILED) return false;
    munmap(p, DH_HEAP_ALIGN);
    return p == (void *)FUZZ_BASE;
}

/* Where region r of the (possibly damaged) image lies in work. */
static void region(unsigned r, const dh_img_header_t *hd, uint64_t *off,
                   uint64_t *len) {
    uint64_t data_off = hd->body_off + (hd->data_start - hd->state_start);
    switch (r) {
    case 0: *off = 0, *len = DH_IMG_PAGE; break;
    case 1: *off = hd->header_off, *len = hd->header_len; break;
    case 2: *off = hd->body_off, *len = hd->state_end - hd->state_start; break;
    default: *off = data_off, *len = hd->data_end - hd->data_start; break;
    }
}

static uint64_t hash_of(uint64_t seed, uint64_t off, uint64_t len) {
    if (off > image_len || len > image_len - off) return 0;
    return dh_img_hash(seed, work + off, len);
}

/* Make the checksums of work right again, as far as its fields allow. */
static void fix_checksums(size_t len) {
    dh_img_header_t hd;
    memcpy(&hd, work, sizeof hd);
    hd.heap_hash = hash_of(DH_IMG_SEED_HEAP, hd.header_off, hd.header_len);
    hd.state_hash = hash_of(DH_IMG_SEED_STATE, hd.body_off,
                            hd.state_end - hd.state_start);
    uint64_t chunks = (hd.data_end - hd.data_start + DH_IMG_CHUNK - 1) /
                      DH_IMG_CHUNK;
    if (chunks < 4096) {
        uint64_t data_off = hd.body_off + (hd.data_start - hd.state_start);
        for (uint64_t i = 0; i < chunks; i++) {
            uint64_t n = hd.data_end - hd.data_start - i * DH_IMG_CHUNK;
            uint64_t v = hash_of(DH_IMG_SEED_CHUNK + i,
                                 data_off + i * DH_IMG_CHUNK,
                                 n < DH_IMG_CHUNK ? n : DH_IMG_CHUNK);
            uint64_t at = hd.table_off + i * 8;
            if (at <= len - 8) memcpy(work + at, &v, 8);
        }
        hd.table_hash = hash_of(DH_IMG_SEED_TABLE, hd.table_off, chunks * 8);
    }
    memcpy(work, &hd, sizeof hd);
    hd.header_hash = dh_img_header_hash(work);
    memcpy(work, &hd, sizeof hd);
}

static void write_file(const unsigned char *buf, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) abort();
    for (size_t n = 0; n < len;) {
        ssize_t r = write(fd, buf + n, len - n);
        if (r <= 0) abort();
        n += (size_t)r;
    }
    close(fd);
}

/* What a heap that passed open must do. */
static void use(dh_heap_t *h) {
    FUZZ_CHECK(dh_heap_base(h) == FUZZ_BASE);
    if (dh_heap_check(h) != DH_CHECK_OK) return; /* damaged data: open
                                                    promised no more */
    void *p[8];
    for (int i = 0; i < 8; i++) {
        p[i] = dh_heap_malloc(h, (size_t)i * 700 + 1);
        if (p[i] != NULL) memset(p[i], 0x33, (size_t)i * 700 + 1);
    }
    for (int i = 0; i < 8; i += 2) dh_free(p[i]);
    FUZZ_CHECK(dh_heap_check(h) == DH_CHECK_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (image == NULL) make_image();
    fuzz_in_t in = {data, size, false};
    unsigned mode = fin_u8(&in);
    size_t len = image_len;
    if (mode % 4 == 0) {
        write_file(in.p, in.left);
    } else {
        memcpy(work, image, image_len);
        uint32_t cut = mode % 4 == 3 ? fin_u32(&in) : 0;
        dh_img_header_t hd;
        memcpy(&hd, image, sizeof hd);
        while (!in.done && in.left > 0) {
            unsigned r = fin_u8(&in) % 4;
            uint16_t off16 = fin_u16(&in);
            uint8_t x = fin_u8(&in);
            uint64_t off, n;
            region(r, &hd, &off, &n);
            if (n > 0 && off + off16 % n < image_len) work[off + off16 % n] ^= x;
        }
        if (mode % 4 >= 2) fix_checksums(len);
        if (mode % 4 == 3) len = cut % (image_len + 1);
        write_file(work, len);
    }
    unsigned flags = DH_OPEN_PRIVATE | (mode & 4 ? DH_OPEN_VERIFY : 0);
    errno = 0;
    dh_heap_t *h = dh_heap_open(path, flags);
    if (h == NULL) {
        FUZZ_CHECK(errno == EINVAL || errno == ENOEXEC);
    } else {
        use(h);
        dh_heap_destroy(h);
    }
    FUZZ_CHECK(range_free());
    return 0;
}
