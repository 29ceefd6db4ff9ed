/*
 * selfexec.c - a program that runs exec on itself: two allocations before
 * the exec, two after, at sites `detheap top` must both show, and `check`
 * must count as two program images of one process.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) static void *before_exec(size_t n) {
    return malloc(n);
}

__attribute__((noinline)) static void *after_exec(size_t n) {
    return malloc(n);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "again") == 0) {
        void *a = after_exec(7001), *b = after_exec(7002);
        free(a);
        free(b);
        return 0;
    }
    void *a = before_exec(5001), *b = before_exec(5002);
    (void)a;
    (void)b;
    char *args[] = {argv[0], "again", NULL};
    execv(argv[0], args);
    return 127;
}
