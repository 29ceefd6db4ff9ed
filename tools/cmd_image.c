/*
 * cmd_image.c - `detheap image info FILE` and `detheap image check FILE`:
 * what a heap image holds, and whether all of it is intact.
 *
 * info reads the image's headers only (dh_image_info): nothing is mapped.
 * check opens the image privately with DH_OPEN_VERIFY (every data page's
 * hash, the full dh_heap_check) in this process, at the image's base;
 * the file is never written.
 */
#include <detheap.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "tool_util.h"

static const char usage[] =
    "usage: detheap image info FILE\n"
    "       detheap image check FILE\n"
    "\n"
    "info   the image's base, sizes, class table, root and version\n"
    "check  verify every checksum (data pages included) and every\n"
    "       invariant of the heap; exit 0 if intact, 1 if not\n";

static void print_bytes(const char *what, uint64_t n) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, u++;
    printf("  %-16s %" PRIu64 " (%.1f %s)\n", what, n, v, unit[u]);
}

static const char *why(int e) {
    switch (e) {
    case ENOEXEC: return "not a detheap image, or one of another version";
    case EINVAL: return "damaged or truncated";
    case EEXIST: return "its range is taken in this process";
    case EBUSY: return "open in shared mode by another process";
    default: return strerror(e);
    }
}

static int image_info(const char *path) {
    dh_image_info_t in;
    if (dh_image_info(path, &in, sizeof in) != 0) {
        fprintf(stderr, "detheap image: %s: %s\n", path, why(errno));
        return DH_EXIT_FAIL;
    }
    uint64_t v = in.library_version;
    printf("%s: detheap heap image, format %u, heap layout %u, written by "
           "detheap %u.%u.%u\n",
           path, in.format, in.layout, (unsigned)(v >> 16),
           (unsigned)(v >> 8) & 255, (unsigned)v & 255);
    printf("  %-16s %#" PRIx64 "\n", "base", in.base);
    print_bytes("reserve", in.reserve);
    print_bytes("file", in.file_bytes);
    print_bytes("committed", in.committed_bytes);
    print_bytes("carved", in.storage_bytes);
    printf("  %-16s %" PRIu64 " blocks, %" PRIu64 " bytes\n", "live",
           in.live_count, in.live_bytes);
    printf("  %-16s %#" PRIx64 "\n", "root", in.root);
    printf("  %-16s %s\n", "checksums",
           in.sealed ? "sealed" : "not sealed (open shared, or its writer died)");
    printf("  %-16s %s\n", "data hashes",
           in.data_hashed ? "yes" : "no (written in shared mode)");
    printf("  %-16s %u:", "classes", in.class_count);
    for (uint32_t c = 0; c < in.class_count && c < 64; c++)
        printf(" %u", in.class_sizes[c]);
    printf("\n");
    return DH_EXIT_OK;
}

static int image_check(const char *path) {
    dh_heap_t *h = dh_heap_open(path, DH_OPEN_PRIVATE | DH_OPEN_VERIFY);
    if (h == NULL) {
        int e = errno;
        printf("%s: not intact: %s\n", path, why(e));
        return e == EEXIST || e == EBUSY || e == ENOENT || e == EACCES
                   ? DH_EXIT_USAGE
                   : DH_EXIT_FAIL;
    }
    dh_stats_t s;
    dh_heap_stats(h, &s, sizeof s);
    dh_image_info_t in;
    bool hashed = dh_image_info(path, &in, sizeof in) == 0 && in.data_hashed;
    printf("%s: intact: header, state map%s checksums and every invariant; "
           "%" PRIu64 " live blocks\n",
           path, hashed ? ", data" : "", s.live_count);
    dh_heap_destroy(h);
    return DH_EXIT_OK;
}

int dh_cmd_image(int argc, char **argv) {
    if (argc == 2 && dh_tool_is_help(argv[1])) {
        fputs(usage, stdout);
        return DH_EXIT_OK;
    }
    if (argc != 3) {
        fputs(usage, stderr);
        return DH_EXIT_USAGE;
    }
    if (strcmp(argv[1], "info") == 0) return image_info(argv[2]);
    if (strcmp(argv[1], "check") == 0) return image_check(argv[2]);
    fprintf(stderr, "detheap image: unknown subcommand '%s'\n\n%s", argv[1], usage);
    return DH_EXIT_USAGE;
}
