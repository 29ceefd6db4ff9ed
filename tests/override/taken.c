/*
 * taken.c - run by check_taken.sh with ASLR off (setarch -R), so that its
 * own text sits at the kernel's default PIE address, inside the range that
 * DETHEAP_BASE then asks for.  With the library preloaded the heap must go
 * elsewhere, say so once on stderr, and work.  Prints where its code and
 * its first block are.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    char *blocks[100];
    for (int i = 0; i < 100; i++) {
        blocks[i] = malloc(100 + (size_t)i);
        if (blocks[i] == NULL) return 1;
        memset(blocks[i], i, 100 + (size_t)i);
    }
    printf("code %#lx block %#lx\n", (unsigned long)(uintptr_t)&main,
           (unsigned long)(uintptr_t)blocks[0]);
    for (int i = 0; i < 100; i++) free(blocks[i]);
    return 0;
}
