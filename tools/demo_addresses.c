/*
 * demo_addresses.c - prints the addresses of a few heap allocations, the
 * program scripts/demo.sh runs on glibc and on detheap to show that only
 * detheap gives the same addresses in every run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    static const size_t sizes[] = {24, 100, 4000, 200000};
    void *blocks[4];
    for (int i = 0; i < 4; i++) {
        blocks[i] = malloc(sizes[i]);
        if (blocks[i] == NULL) return 1;
        memset(blocks[i], i, sizes[i]);
    }
    printf("malloc(%zu) = %p  malloc(%zu) = %p  malloc(%zu) = %p  "
           "malloc(%zu) = %p\n", sizes[0], blocks[0], sizes[1], blocks[1],
           sizes[2], blocks[2], sizes[3], blocks[3]);
    for (int i = 0; i < 4; i++) free(blocks[i]);
    return 0;
}
