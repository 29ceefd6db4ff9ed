/*
 * replay.c - a main() for the fuzz targets without libFuzzer: runs
 * LLVMFuzzerTestOneInput on every file of the directories (or files) named
 * on the command line, in name order.  The tests use it to replay the seed
 * corpora and the saved regressions in ordinary builds, so a divergence
 * found once by fuzzing stays fixed.  A path that does not exist, or
 * cannot be read, is an error (a corpus renamed or moved must not turn the
 * test into one that replays nothing), and so is a run that replays no
 * input at all.  An existing, empty directory is fine (a target with no
 * saved regressions yet); names starting with '.' are not inputs.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    /* an exact-size copy, so reading past the input is caught by ASan */
    uint8_t *copy = malloc(n ? n : 1);
    if (copy == NULL) return 1;
    memcpy(copy, buf, n);
    printf("replay %s (%zu bytes)\n", path, n);
    fflush(stdout);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv) {
    int errors = 0, files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            errors++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            errors += run_file(argv[i]);
            files++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, NULL, by_name);
        if (n < 0) {
            perror(argv[i]);
            errors++;
            continue;
        }
        for (int k = 0; k < n; k++) {
            if (names[k]->d_name[0] != '.') {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", argv[i], names[k]->d_name);
                errors += run_file(path);
                files++;
            }
            free(names[k]);
        }
        free(names);
    }
    printf("%d inputs replayed\n", files);
    if (files == 0) {
        fprintf(stderr, "replay: no input replayed\n");
        return 1;
    }
    return errors != 0;
}
