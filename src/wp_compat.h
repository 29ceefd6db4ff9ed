/*
 * wp_compat.h - asynchronous userfaultfd write protection and PAGEMAP_SCAN
 * (Linux 6.7), and userfaultfd page moving (6.8), for system headers older
 * than the kernel: the snapshot code's write tracking and the recycling of
 * retired pages (os_posix.c), and the benchmark that compares write
 * tracking with the other mechanisms (bench/image.c).  Include after
 * <linux/userfaultfd.h> and <linux/fs.h>.
 */
#ifndef DH_WP_COMPAT_H
#define DH_WP_COMPAT_H

#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1u << 15)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1u << 13)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
/* Page moving (Linux 6.8), for the same reason. */
#ifndef UFFDIO_MOVE
#define UFFD_FEATURE_MOVE (1ull << 10)
struct uffdio_move {
    __u64 dst, src, len, mode;
    __s64 move;
};
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
#define UFFDIO_MOVE _IOWR(UFFDIO, 0x05, struct uffdio_move)
#endif
#ifndef PAGEMAP_SCAN
struct page_region {
    __u64 start, end, categories;
};
struct pm_scan_arg {
    __u64 size, flags, start, end, walk_end, vec, vec_len, max_pages;
    __u64 category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#define PAGE_IS_WRITTEN (1 << 1)
#endif
/* The other categories (also Linux 6.7), for headers that name only some. */
#ifndef PAGE_IS_FILE
#define PAGE_IS_FILE (1 << 2)
#endif
#ifndef PAGE_IS_PRESENT
#define PAGE_IS_PRESENT (1 << 3)
#endif
#ifndef PAGE_IS_SWAPPED
#define PAGE_IS_SWAPPED (1 << 4)
#endif

#endif /* DH_WP_COMPAT_H */
