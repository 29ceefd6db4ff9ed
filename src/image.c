/*
 * image.c - heap images: saving a fixed-base heap to a file, opening it
 * again at its base in another process, and the heap's root pointer.
 *
 * A private heap lives wholly in its own range, and every pointer it keeps
 * (free lists, the large tree, the tables of its header) is an address in
 * that range.  Mapped back at the same base, the saved bytes are the heap.
 * So saving writes the committed parts of the range (header, state map,
 * data; zero pages as holes) behind an image header (image_format.h), and
 * opening reserves the range (MAP_FIXED_NOREPLACE: EEXIST if taken) and
 * maps the file's parts over it, copy-on-write or shared: no data is read.
 *
 *   range:  | header |..| span map + state map |....| data       |.......|
 *   file:   [image header][data hashes][header][body: state .. data end]
 *
 * What open verifies before it returns (docs/IMAGE.md): the image header
 * (its hash, the format, the layout of struct dh_heap, the class table,
 * the page size, the geometry against the file's length), the heap header
 * and the state map (their hashes: 1/16 of the data is read), the heap
 * header against the layout this library gives that range, and the cheap
 * tier of dh_heap_check.  Data pages are covered by a hash per MiB that
 * only DH_OPEN_VERIFY and `detheap image check` read.
 *
 * A shared image is the heap itself: its writes reach the file, its
 * growth extends the file (the commit hook maps the new pages from it),
 * and its checksums are stale from the moment it is opened, so the image
 * header says so (not sealed) until dh_heap_destroy rewrites them.  The
 * data hashes are not rewritten (that would read all the data): a sealed
 * shared image has none, and `detheap image check` then relies on the
 * full dh_heap_check.
 */
#include "image.h"
#include "image_format.h"

#include <errno.h>
#include <string.h>

/* ---- the class table, as an image records it -------------------------------
 * The one place that knows where a heap's classes come from. */

static unsigned image_class_count(const dh_heap_t *h) { return h->nclasses; }

static uint32_t image_class_size(const dh_heap_t *h, unsigned c) {
    return (uint32_t)dh_class_bytes(h, (int)c);
}

_Static_assert(DH_MAX_CLASSES <= DH_IMG_MAX_CLASSES,
               "the image header records every class");

/* The class set whose table the image records, or -1 if none of this
 * library's sets has it. */
static int image_class_set(const dh_img_header_t *hd) {
    const dh_class_set_t sets[] = {DH_CLASSES_SPEC, DH_CLASSES_FINE};
    for (unsigned k = 0; k < 2; k++) {
        bool same = hd->class_count == (unsigned)dh_class_set_count(sets[k]);
        for (unsigned c = 0; same && c < hd->class_count; c++)
            same = hd->class_sizes[c] == dh_class_set_size(sets[k], (int)c);
        if (same) return (int)sets[k];
    }
    return -1;
}

/* ---- helpers ------------------------------------------------------------ */

static uint64_t up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

uintptr_t dh_image_header_len(void) {
    return (uintptr_t)up(sizeof(dh_heap_t), DH_IMG_PAGE);
}

/* A scratch mapping of n bytes (zero), or NULL with ENOMEM. */
static void *scratch(size_t n) {
    void *p = dh_os_reserve(n, DH_IMG_PAGE, 0);
    if (p == NULL) return NULL;
    if (!dh_os_commit(p, n)) {
        dh_os_release(p, n);
        errno = ENOMEM;
        return NULL;
    }
    return p;
}

static bool page_is_zero(const unsigned char *p) {
    uint64_t acc = 0;
    for (unsigned i = 0; i < DH_IMG_PAGE; i += 8) acc |= dh_img_word(p + i);
    return acc == 0;
}

/* Write the non-zero pages of [p, p + n) at file offset off; the zero ones
 * stay holes.  Runs of non-zero pages go out in one call. */
static bool write_sparse(int fd, const unsigned char *p, uint64_t n,
                         uint64_t off) {
    uint64_t i = 0;
    while (i < n) {
        while (i < n && page_is_zero(p + i)) i += DH_IMG_PAGE;
        uint64_t run = i;
        while (run < n && !page_is_zero(p + run)) run += DH_IMG_PAGE;
        if (run > i && !dh_os_pwrite_all(fd, p + i, run - i, off + i))
            return false;
        i = run;
    }
    return true;
}

/* What is of the saving process only in a heap header: its image file,
 * its hooks, its snapshot, its error callback. */
static void normalize(dh_heap_t *h) {
    h->ext.image_mode = 0;
    h->ext.image_fd = 0;
    h->ext.body_off = 0;
    h->ext.commit_hook = NULL;
    h->ext.snapshot = NULL;
    if (h->on_error == DH_ON_ERROR_CALLBACK) h->on_error = DH_ON_ERROR_IGNORE;
    h->error_callback = NULL;
    h->error_user = NULL;
}

/* ---- memory checkers ---------------------------------------------------- */

void dh_image_expose(const dh_heap_t *h) {
    DH_MEM_ACCESS((void *)h->data_start, h->commit_end - h->data_start);
    (void)h;
}

static bool mark_block(const dh_block_info_t *b, void *user) {
    (void)user;
    if (b->live) {
        DH_BLOCK_ALLOC(b->ptr, b->size);
    } else {
        DH_BLOCK_FREE(b->ptr, b->size);
        if (b->size_class < 0) /* the tree node stays readable */
            DH_MEM_ACCESS(b->ptr, sizeof(dh_large_node_t));
    }
    return true;
}

void dh_image_annotate(const dh_heap_t *h) {
    if (!DH_ANNOTATING) return;
    dh_image_expose(h);
    dh_heap_walk(h, mark_block, NULL);
    for (int c = 0; c < h->nclasses; c++) { /* the spans' uncarved rest */
        const dh_bin_t *b = &h->bins[c];
        if (b->carve_end > b->carve)
            DH_MEM_NOACCESS((void *)b->carve, b->carve_end - b->carve);
    }
}

/* ---- the image header ---------------------------------------------------- */

/* The image header of h as it stands (hashes not yet filled in). */
static void header_of(const dh_heap_t *h, dh_img_header_t *hd) {
    memset(hd, 0, sizeof *hd);
    memcpy(hd->magic, DH_IMG_MAGIC, sizeof hd->magic);
    hd->format = DH_IMAGE_FORMAT;
    hd->header_bytes = sizeof *hd;
    hd->layout = DH_IMAGE_LAYOUT;
    hd->heap_struct = sizeof(dh_heap_t);
    hd->page = DH_IMG_PAGE;
    hd->granule_shift = DH_GRANULE_SHIFT;
    hd->page_shift = DH_PAGE_SHIFT;
    hd->span_shift = DH_SPAN_SHIFT;
    hd->class_count = image_class_count(h);
    for (unsigned c = 0; c < hd->class_count; c++)
        hd->class_sizes[c] = image_class_size(h, c);
    hd->library_version = DH_VERSION;
    hd->base = h->base;
    hd->size = h->size;
    hd->limit = h->limit;
    hd->mapped = h->mapped;
    hd->table_off = DH_IMG_PAGE;
    hd->table_bytes = dh_img_table_bytes(h->data_start, h->limit);
    hd->header_off = hd->table_off + hd->table_bytes;
    hd->header_len = dh_image_header_len();
    hd->body_off = hd->header_off + hd->header_len;
    hd->state_start = (uintptr_t)h->span_map;
    hd->state_end = h->state_commit_end;
    hd->data_start = h->data_start;
    hd->data_end = h->commit_end;
    hd->high_water = dh_high_water(h);
    hd->root = (uintptr_t)h->ext.root;
    hd->file_bytes = hd->body_off + (hd->data_end - hd->state_start);
}

static uint64_t chunk_count(const dh_img_header_t *hd) {
    return (hd->data_end - hd->data_start + DH_IMG_CHUNK - 1) / DH_IMG_CHUNK;
}

static uint64_t chunk_hash(const dh_img_header_t *hd, uint64_t i) {
    uint64_t from = hd->data_start + i * DH_IMG_CHUNK;
    uint64_t n = hd->data_end - from < DH_IMG_CHUNK ? hd->data_end - from
                                                    : DH_IMG_CHUNK;
    return dh_img_hash(DH_IMG_SEED_CHUNK + i, (const void *)(uintptr_t)from, n);
}

static bool write_header(int fd, dh_img_header_t *hd) {
    unsigned char page[DH_IMG_PAGE] = {0};
    hd->header_hash = 0;
    memcpy(page, hd, sizeof *hd);
    hd->header_hash = dh_img_header_hash(page);
    memcpy(page, hd, sizeof *hd);
    return dh_os_pwrite_all(fd, page, sizeof page, 0);
}

/* ---- save ------------------------------------------------------------------- */

/* The parts of the image after its header: the heap header (normalized),
 * the state map and the data, the data hashes. */
static bool save_parts(const dh_heap_t *h, int fd, dh_img_header_t *hd) {
    uint64_t chunks = chunk_count(hd);
    size_t table = (size_t)up(chunks > 0 ? chunks * 8 : 8, DH_IMG_PAGE);
    size_t room = (size_t)hd->header_len + table;
    unsigned char *buf = scratch(room);
    if (buf == NULL) return false;
    memcpy(buf, (const void *)h->base, (size_t)hd->header_len);
    normalize((dh_heap_t *)(void *)buf);
    hd->heap_hash = dh_img_hash(DH_IMG_SEED_HEAP, buf, hd->header_len);
    const unsigned char *state = (const unsigned char *)(uintptr_t)hd->state_start;
    uint64_t state_len = hd->state_end - hd->state_start;
    hd->state_hash = dh_img_hash(DH_IMG_SEED_STATE, state, state_len);
    uint64_t *hashes = (uint64_t *)(void *)(buf + hd->header_len);
    for (uint64_t i = 0; i < chunks; i++) hashes[i] = chunk_hash(hd, i);
    hd->table_hash = dh_img_hash(DH_IMG_SEED_TABLE, hashes, chunks * 8);
    uint64_t data_off = hd->body_off + (hd->data_start - hd->state_start);
    bool ok =
        dh_os_pwrite_all(fd, buf, (size_t)hd->header_len, hd->header_off) &&
        write_sparse(fd, state, state_len, hd->body_off) &&
        write_sparse(fd, (const unsigned char *)(uintptr_t)hd->data_start,
                     hd->data_end - hd->data_start, data_off) &&
        (chunks == 0 ||
         dh_os_pwrite_all(fd, hashes, (size_t)chunks * 8, hd->table_off)) &&
        dh_os_file_truncate(fd, hd->file_bytes);
    int saved = errno;
    dh_os_release(buf, room);
    errno = saved;
    return ok;
}

int dh_heap_save(dh_heap_t *h, const char *path) {
    if (h == NULL || h->magic != DH_HEAP_MAGIC || path == NULL ||
        !h->ext.fixed_base) {
        errno = EINVAL;
        return -1;
    }
    if (h->process) {
        errno = EPERM;
        return -1;
    }
    char tmp[4096];
    size_t len = strlen(path);
    if (len > 4000) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp", 5);
    int fd = dh_os_file_open(tmp, true, true);
    if (fd < 0) return -1;
    dh_image_expose(h);
    dh_img_header_t hd;
    header_of(h, &hd);
    hd.flags = DH_IMG_SEALED | DH_IMG_DATA_HASHED;
    bool ok = save_parts(h, fd, &hd) && write_header(fd, &hd) &&
              dh_os_file_sync(fd);
    int saved = errno;
    dh_os_close(fd);
    dh_image_annotate(h);
    if (ok && dh_os_file_rename(tmp, path)) return 0;
    saved = ok ? errno : saved;
    dh_os_file_unlink(tmp);
    errno = saved;
    return -1;
}

/* ---- reading an image header ------------------------------------------------ */

/* Read and check the image header of fd: 0, or the errno to fail with.
 * Everything that does not depend on the heap header is checked here.
 * The class table must be one of this library's class sets. */
static int read_header(int fd, dh_img_header_t *hd, uint64_t *file_bytes) {
    unsigned char page[DH_IMG_PAGE];
    if (!dh_os_file_size(fd, file_bytes)) return errno;
    if (*file_bytes < sizeof hd->magic) return ENOEXEC;
    if (!dh_os_pread_all(fd, page, sizeof hd->magic, 0)) return errno;
    if (memcmp(page, DH_IMG_MAGIC, sizeof hd->magic) != 0) return ENOEXEC;
    if (*file_bytes < DH_IMG_PAGE) return EINVAL; /* truncated */
    if (!dh_os_pread_all(fd, page, sizeof page, 0)) return errno;
    memcpy(hd, page, sizeof *hd);
    if (hd->format != DH_IMAGE_FORMAT) return ENOEXEC;
    if (hd->header_bytes != sizeof *hd) return ENOEXEC;
    if (dh_img_header_hash(page) != hd->header_hash) return EINVAL;
    if (hd->layout != DH_IMAGE_LAYOUT || hd->heap_struct != sizeof(dh_heap_t) ||
        hd->page != DH_IMG_PAGE || hd->page != dh_os_page_size() ||
        hd->granule_shift != DH_GRANULE_SHIFT ||
        hd->page_shift != DH_PAGE_SHIFT || hd->span_shift != DH_SPAN_SHIFT ||
        hd->class_count > DH_IMG_MAX_CLASSES || image_class_set(hd) < 0)
        return ENOEXEC;
    return 0;
}

/* The range of hd as dh_heap_create lays it out: 0, or EINVAL. */
static int check_range(const dh_img_header_t *hd, dh_heap_t *fresh) {
    uint64_t size = hd->size;
    if (size < DH_MIN_RESERVE || (size & (size - 1)) != 0 ||
        size > ((uint64_t)1 << (DH_ADDRESS_BITS - 1)) ||
        hd->base % DH_HEAP_ALIGN != 0 || hd->base % size != 0 ||
        hd->base == 0 || (hd->base + size) >> DH_ADDRESS_BITS ||
        hd->limit != hd->base + size)
        return EINVAL;
    dh_region_layout_of(fresh, (uintptr_t)hd->base, (uintptr_t)size,
                        (uintptr_t)size, (dh_class_set_t)image_class_set(hd));
    if (hd->mapped != fresh->mapped ||
        hd->state_start != (uintptr_t)fresh->span_map ||
        hd->data_start != fresh->data_start ||
        hd->table_off != DH_IMG_PAGE ||
        hd->table_bytes != dh_img_table_bytes(hd->data_start, hd->limit) ||
        hd->header_off != hd->table_off + hd->table_bytes ||
        hd->header_len != dh_image_header_len() ||
        hd->body_off != hd->header_off + hd->header_len)
        return EINVAL;
    return 0;
}

/* The committed extents of hd, against the range and the file: 0, or
 * EINVAL (a truncated file among others). */
static int check_extents(const dh_img_header_t *hd, uint64_t file_bytes) {
    uint64_t page = DH_IMG_PAGE;
    if (hd->state_end % page || hd->data_end % page ||
        hd->state_end < hd->state_start || hd->state_end > hd->data_start ||
        hd->data_end < hd->data_start || hd->data_end > hd->limit ||
        hd->high_water < hd->data_start || hd->high_water > hd->data_end)
        return EINVAL;
    /* the state map covers the committed data */
    uint64_t state_of_end =
        hd->base + DH_HEADER_SIZE + ((hd->data_end - hd->base) >> DH_GRANULE_SHIFT);
    if (hd->state_end < state_of_end) return EINVAL;
    if (hd->file_bytes != hd->body_off + (hd->data_end - hd->state_start) ||
        file_bytes < hd->file_bytes)
        return EINVAL;
    return 0;
}

/* An image its shared writer did not seal: its extents and root are the
 * heap header's (read from the file), its hashes not checked. */
static int unsealed_extents(int fd, dh_img_header_t *hd) {
    dh_heap_t copy;
    if (!dh_os_pread_all(fd, &copy, sizeof copy, hd->header_off)) return EINVAL;
    hd->state_end = copy.state_commit_end;
    hd->data_end = copy.commit_end;
    hd->high_water = copy.high_water;
    hd->root = (uintptr_t)copy.ext.root;
    hd->file_bytes = hd->body_off + (hd->data_end - hd->state_start);
    return 0;
}

/* ---- open ------------------------------------------------------------------- */

/* Map the image's parts over the range reserved at hd->base. */
static bool map_parts(const dh_img_header_t *hd, int fd, bool shared) {
    uint64_t data_off = hd->body_off + (hd->data_start - hd->state_start);
    return dh_os_map_file((uintptr_t)hd->base, (size_t)hd->header_len, fd,
                          hd->header_off, shared) &&
           (hd->state_end == hd->state_start ||
            dh_os_map_file((uintptr_t)hd->state_start,
                           (size_t)(hd->state_end - hd->state_start), fd,
                           hd->body_off, shared)) &&
           (hd->data_end == hd->data_start ||
            dh_os_map_file((uintptr_t)hd->data_start,
                           (size_t)(hd->data_end - hd->data_start), fd,
                           data_off, shared));
}

/* The mapped heap header against the image header and the layout of a
 * fresh heap of the same range: 0 or EINVAL. */
static int check_heap(const dh_heap_t *h, const dh_img_header_t *hd,
                      const dh_heap_t *fresh) {
    if (h->magic != DH_HEAP_MAGIC || h->base != hd->base ||
        h->size != hd->size || h->mask != fresh->mask ||
        h->mapped != hd->mapped || h->limit != hd->limit ||
        h->state != fresh->state || h->data_start != fresh->data_start ||
        h->span_map != fresh->span_map || h->data_state != fresh->data_state ||
        h->os_page != fresh->os_page || h->process || h->grows ||
        h->refused_at != 0 || h->huge_from != fresh->huge_from ||
        h->huge_advised || h->foreign_bytes != 0 ||
        (unsigned)h->on_error > DH_ON_ERROR_CALLBACK ||
        h->class_set != fresh->class_set || h->nclasses != fresh->nclasses)
        return EINVAL;
    for (int c = 0; c < h->nclasses; c++) /* the bins' fixed fields */
        if (h->bins[c].live_state != fresh->bins[c].live_state ||
            h->bins[c].free_state != fresh->bins[c].free_state ||
            h->bins[c].granules != fresh->bins[c].granules)
            return EINVAL;
    if (h->commit_end != hd->data_end || h->state_commit_end != hd->state_end ||
        h->high_water != hd->high_water || (uintptr_t)h->ext.root != hd->root ||
        h->fast_granules != (h->commit_end - h->data_start) >> DH_GRANULE_SHIFT)
        return EINVAL;
    return 0;
}

/* The data hashes of the image against its mapped data: 0 or EINVAL. */
static int verify_data(const dh_img_header_t *hd, int fd) {
    uint64_t chunks = chunk_count(hd);
    if (chunks == 0) return 0;
    size_t room = (size_t)up(chunks * 8, DH_IMG_PAGE);
    uint64_t *table = scratch(room);
    if (table == NULL) return ENOMEM;
    int err = 0;
    if (!dh_os_pread_all(fd, table, (size_t)chunks * 8, hd->table_off) ||
        dh_img_hash(DH_IMG_SEED_TABLE, table, chunks * 8) != hd->table_hash)
        err = EINVAL;
    for (uint64_t i = 0; err == 0 && i < chunks; i++)
        if (chunk_hash(hd, i) != table[i]) err = EINVAL;
    dh_os_release(table, room);
    return err;
}

/* The checks of an image mapped at its base: 0, or the errno. */
static int verify(dh_heap_t *h, const dh_img_header_t *hd,
                  const dh_heap_t *fresh, int fd, unsigned flags) {
    bool sealed = (hd->flags & DH_IMG_SEALED) != 0;
    if (sealed &&
        (dh_img_hash(DH_IMG_SEED_HEAP, h, hd->header_len) != hd->heap_hash ||
         dh_img_hash(DH_IMG_SEED_STATE, (const void *)(uintptr_t)hd->state_start,
                     hd->state_end - hd->state_start) != hd->state_hash))
        return EINVAL;
    int err = check_heap(h, hd, fresh);
    if (err != 0) return err;
    if (dh_heap_check_cheap(h) != DH_CHECK_OK) return EINVAL;
    if ((flags & DH_OPEN_VERIFY) && (hd->flags & DH_IMG_DATA_HASHED) && sealed) {
        err = verify_data(hd, fd);
        if (err != 0) return err;
    }
    if ((!sealed || (flags & DH_OPEN_VERIFY)) && dh_heap_check(h) != DH_CHECK_OK)
        return EINVAL;
    return 0;
}

/* The commit hook of a shared image: the pages [p, p + n) of the state
 * map or the data come from the file, which grows to hold them. */
static bool shared_commit(dh_heap_t *h, uintptr_t p, uintptr_t n) {
    uint64_t off = h->ext.body_off + (p - (uintptr_t)h->span_map);
    int fd = h->ext.image_fd;
    if (!dh_os_file_reserve(fd, off, n) ||
        !dh_os_map_file(p, (size_t)n, fd, off, true)) {
        errno = ENOMEM;
        return false;
    }
    return true;
}

/* Map and check the image of fd (its header hd read and checked); the
 * heap, or NULL with errno and nothing mapped. */
static dh_heap_t *map_image(int fd, dh_img_header_t *hd, unsigned flags) {
    bool shared = (flags & DH_OPEN_SHARED) != 0;
    dh_heap_t fresh;
    int err = check_range(hd, &fresh);
    uint64_t file_bytes;
    if (err == 0 && !dh_os_file_size(fd, &file_bytes)) err = errno;
    if (err == 0 && !(hd->flags & DH_IMG_SEALED)) err = unsealed_extents(fd, hd);
    if (err == 0) err = check_extents(hd, file_bytes);
    if (err != 0) {
        errno = err;
        return NULL;
    }
    uintptr_t align = hd->size > DH_HEAP_ALIGN ? hd->size : DH_HEAP_ALIGN;
    void *p = dh_os_reserve((size_t)hd->mapped, align, (uintptr_t)hd->base);
    if (p == NULL) return NULL; /* EEXIST or ENOMEM */
    dh_heap_t *h = p;
    if (!map_parts(hd, fd, shared)) err = ENOMEM;
    /* a memory checker may remember an earlier heap of this range */
    DH_MEM_ACCESS((void *)(uintptr_t)hd->data_start, hd->data_end - hd->data_start);
    if (err == 0) err = verify(h, hd, &fresh, fd, flags);
    if (err == 0 && shared) { /* stale from now on, until sealed */
        dh_img_header_t open = *hd;
        open.flags = 0;
        if (!write_header(fd, &open) || !dh_os_file_sync(fd)) err = errno;
    }
    if (err != 0) {
        dh_os_release(p, (size_t)hd->mapped);
        errno = err;
        return NULL;
    }
    return h;
}

/* What only this process's heap has: its policy, its file, its hook. */
static void attach(dh_heap_t *h, int fd, unsigned flags,
                   const dh_img_header_t *hd) {
    if (h->on_error == DH_ON_ERROR_CALLBACK) h->on_error = DH_ON_ERROR_IGNORE;
    h->error_callback = NULL;
    h->error_user = NULL;
    h->ext.image_mode = flags & (DH_OPEN_PRIVATE | DH_OPEN_SHARED);
    h->ext.image_fd = fd;
    h->ext.body_off = hd->body_off;
    h->ext.commit_hook = (flags & DH_OPEN_SHARED) ? shared_commit : NULL;
    h->ext.snapshot = NULL;
}

dh_heap_t *dh_heap_open(const char *path, unsigned flags) {
    unsigned mode = flags & (DH_OPEN_PRIVATE | DH_OPEN_SHARED);
    if (path == NULL || (flags & ~(DH_OPEN_PRIVATE | DH_OPEN_SHARED |
                                   DH_OPEN_VERIFY)) != 0 ||
        (mode != DH_OPEN_PRIVATE && mode != DH_OPEN_SHARED)) {
        errno = EINVAL;
        return NULL;
    }
    bool shared = mode == DH_OPEN_SHARED;
    int fd = dh_os_file_open(path, shared, false);
    if (fd < 0) return NULL;
    dh_img_header_t hd;
    uint64_t file_bytes;
    int err = dh_os_file_lock(fd, shared) ? read_header(fd, &hd, &file_bytes)
                                          : errno;
    dh_heap_t *h = NULL;
    if (err == 0) {
        h = map_image(fd, &hd, flags);
        if (h == NULL) err = errno;
    }
    if (h != NULL && !dh_region_adopt(h)) {
        err = EEXIST;
        if (shared) write_header(fd, &hd); /* sealed again, as it was */
        dh_os_release(h, (size_t)hd.mapped);
        h = NULL;
    }
    if (h != NULL) attach(h, fd, flags, &hd);
    if (h == NULL) {
        dh_os_close(fd);
        errno = err;
        return NULL;
    }
    dh_image_annotate(h);
    return h;
}

/* ---- closing ---------------------------------------------------------------- */

/* Rewrite a shared image's checksums for the heap as it is now: the heap
 * header is normalized in place (it is the file's page), hashed with the
 * state map, and the image header written and flushed. */
static void seal(dh_heap_t *h) {
    int fd = h->ext.image_fd;
    uint64_t body_off = h->ext.body_off;
    normalize(h);
    dh_img_header_t hd;
    header_of(h, &hd);
    if (hd.body_off != body_off) return; /* cannot be: left unsealed */
    hd.flags = DH_IMG_SEALED;
    hd.heap_hash = dh_img_hash(DH_IMG_SEED_HEAP, h, hd.header_len);
    hd.state_hash = dh_img_hash(DH_IMG_SEED_STATE,
                                (const void *)(uintptr_t)hd.state_start,
                                hd.state_end - hd.state_start);
    if (dh_os_file_truncate(fd, hd.file_bytes) && dh_os_file_sync(fd))
        if (write_header(fd, &hd)) dh_os_file_sync(fd);
    /* what the destruction writes to the header must not reach the file */
    dh_os_map_file(h->base, (size_t)hd.header_len, fd, hd.header_off, false);
}

void dh_image_destroy(dh_heap_t *h) {
    int fd = h->ext.image_fd;
    if (h->ext.image_mode == DH_OPEN_SHARED) seal(h);
    dh_region_destroy(h);
    dh_os_close(fd);
}

/* ---- the root --------------------------------------------------------------- */

void dh_heap_set_root(dh_heap_t *h, void *root) {
    if (h != NULL) h->ext.root = root;
}

void *dh_heap_root(const dh_heap_t *h) { return h ? h->ext.root : NULL; }

/* ---- info ------------------------------------------------------------------- */

#define INFO_HEADER_MAX 16384u
_Static_assert(sizeof(dh_heap_t) <= INFO_HEADER_MAX, "info reads the header");

int dh_image_info(const char *path, dh_image_info_t *out, size_t out_size) {
    if (path == NULL || out == NULL || out_size < 2 * sizeof(uint32_t)) {
        errno = EINVAL;
        return -1;
    }
    int fd = dh_os_file_open(path, false, false);
    if (fd < 0) return -1;
    dh_img_header_t hd;
    uint64_t file_bytes;
    union {
        dh_heap_t heap;
        unsigned char bytes[INFO_HEADER_MAX];
    } buf;
    int err = read_header(fd, &hd, &file_bytes);
    if (err == 0 && hd.header_len != dh_image_header_len()) err = EINVAL;
    if (err == 0 && !dh_os_pread_all(fd, buf.bytes, (size_t)hd.header_len,
                                     hd.header_off))
        err = EINVAL;
    dh_os_close(fd);
    dh_heap_t copy = buf.heap;
    if (err == 0 && (((hd.flags & DH_IMG_SEALED) &&
                      dh_img_hash(DH_IMG_SEED_HEAP, buf.bytes, hd.header_len) !=
                          hd.heap_hash) ||
                     copy.base != hd.base || copy.mask != hd.size - 1 ||
                     copy.data_start != hd.data_start))
        err = EINVAL;
    if (err != 0) {
        errno = err;
        return -1;
    }
    dh_stats_t s;
    copy.process = false; /* the stats of a heap on its own */
    dh_heap_stats(&copy, &s, sizeof s);
    dh_image_info_t info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    info.format = hd.format;
    info.layout = hd.layout;
    info.sealed = (hd.flags & DH_IMG_SEALED) != 0;
    info.data_hashed = info.sealed && (hd.flags & DH_IMG_DATA_HASHED) != 0;
    info.class_count = hd.class_count;
    memcpy(info.class_sizes, hd.class_sizes, sizeof info.class_sizes);
    info.library_version = hd.library_version;
    info.base = hd.base;
    info.reserve = hd.size;
    info.file_bytes = file_bytes;
    info.committed_bytes = hd.header_len + (copy.state_commit_end - hd.state_start) +
                           (copy.commit_end - hd.data_start);
    info.storage_bytes = s.storage_bytes;
    info.live_count = s.live_count;
    info.live_bytes = s.live_bytes;
    info.root = (uintptr_t)copy.ext.root;
    memcpy(out, &info, out_size < sizeof info ? out_size : sizeof info);
    return 0;
}
