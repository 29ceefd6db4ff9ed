/*
 * stack_hook.c - libdetheap_stack.so, the helper `detheap check` preloads
 * after libdetheap.so: it registers a stack hook (dh_set_stack_hook) that
 * walks the caller's stack with libunwind, so that with DETHEAP_STACKS=1
 * every traced call carries its return addresses.
 *
 * It lives apart from the library so that libdetheap.so never depends on
 * libunwind.  The hook runs inside malloc; libunwind may allocate while
 * walking, which re-enters malloc: the library serves those calls without
 * tracing them or calling the hook again.  dh_set_stack_hook is a weak
 * reference, so preloading this file alone (without libdetheap.so) is a
 * harmless no-op.
 */
#define UNW_LOCAL_ONLY
#include <detheap.h>
#include <libunwind.h>

extern void dh_set_stack_hook(dh_stack_fn fn) __attribute__((weak));

static int walk(void **frames, int max) {
    return unw_backtrace(frames, max);
}

__attribute__((constructor)) static void install(void) {
    if (dh_set_stack_hook) dh_set_stack_hook(walk);
}
