#!/bin/sh
# check_detached_memcheck.sh PROG LIB|none: PROG (detached_churn: 200
# detached threads that end at once while main keeps creating) under
# valgrind's memcheck, with LIB preloaded: memcheck must report 0 errors.
#
# LIB is the valgrind-aware build of the preload library
# (tests/libdetheap_valgrind.so, -DDETHEAP_VALGRIND: memcheck sees
# detheap's blocks as heap blocks, so a write into a freed one is an
# error); "none" runs PROG on glibc's malloc, to check the program itself.
# valgrind's preload chains: LD_PRELOAD given to valgrind is kept for the
# program, after valgrind's own (vgpreload_core, vgpreload_memcheck), and
# --soname-synonyms=somalloc=nouserintercepts keeps memcheck from replacing
# detheap's malloc with its own.  Skipped when valgrind is not installed
# (or LIB is "none-built": the build found no valgrind/memcheck.h), and
# failed then when CI is set.
#
# Exit status: 0 no errors, 1 errors (or the run failed), 77 skipped.
set -u
. "$(dirname "$0")/thread_common.sh"
prog=${1:?usage: check_detached_memcheck.sh PROG LIB|none}
lib=${2:?usage: check_detached_memcheck.sh PROG LIB|none}
command -v valgrind >/dev/null 2>&1 || th_missing "valgrind is not installed (scripts/deps.sh test installs it)"
[ -x "$prog" ] || { echo "missing $prog" >&2; exit 2; }
[ "$lib" = none-built ] && th_missing "the valgrind-aware preload library is" \
    "not built (tests/verify builds it when valgrind/memcheck.h is found)"
[ "$lib" = none ] || [ -f "$lib" ] || { echo "missing $lib" >&2; exit 2; }

# 120 s: a healthy run takes a few seconds (200 threads, valgrind runs one
# at a time); memcheck needs far longer only if the library makes memcheck
# shadow huge ranges.
secs=120
# DETHEAP_RESERVE=1G: valgrind's address space has no room for 64 GiB
# thread heaps (as in tests/verify/check_valgrind.sh)
th_run vg "$lib" "$secs" DETHEAP_RESERVE=1G valgrind --tool=memcheck \
    --error-exitcode=1 --trace-children=no \
    --soname-synonyms=somalloc=nouserintercepts "$prog"
rc=$?
errors=$(awk '/ERROR SUMMARY:/ { n = $4 } END { print n }' "$th_tmp/vg.err")
used=$(grep '^allocator:' "$th_tmp/vg.out")
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    th_fail "memcheck: timed out after $secs s ($(grep -c 'large range' "$th_tmp/vg.err") 'large range' warnings); the last lines:"
    grep -v '^==[0-9]*== *$' "$th_tmp/vg.err" | tail -n 8 | sed 's/^/  | /'
elif [ "$lib" != none ] && [ "$used" != "allocator: detheap" ]; then
    th_fail "under valgrind, malloc was not detheap's (${used:-the program did not say}): the preload did not reach the program"
elif [ "$rc" = 0 ] && [ "$errors" = 0 ]; then
    th_pass "memcheck: 0 errors ($(tail -n 1 "$th_tmp/vg.out"))"
else
    th_fail "memcheck: exit status $rc, ${errors:-no} errors reported; the first:"
    awk '/== (Invalid|Conditional|Use of|Syscall|Mismatched|Source and)/ { on = 1 }
        on && /^==[0-9]+== $/ { exit }
        on { print; if (++n == 40) exit }' "$th_tmp/vg.err" | sed 's/^/  | /'
    [ -n "$errors" ] || tail -n 20 "$th_tmp/vg.err" | sed 's/^/  | /'
fi
grep 'detheap:' "$th_tmp/vg.err" | head -n 5 | sed 's/^/  detheap said: /'
th_finish
