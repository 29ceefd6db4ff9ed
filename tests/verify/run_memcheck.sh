#!/bin/sh
# run_memcheck.sh LIB [-e PATTERN]... [-v VAR=VALUE]... [-s] [-t SECS] PROG
# [ARGS...]: run PROG
# under valgrind's memcheck with LIB (the valgrind-aware build of the
# preload library, tests/libdetheap_valgrind.so) preloaded: the preload
# tests' `memcheck` variants (ctest -L memcheck).
#
# The preload tests cannot run under ASan (see tests/CMakeLists.txt), so
# this is their memory checker.  --soname-synonyms=somalloc=nouserintercepts
# keeps memcheck's own malloc out of the way: malloc is detheap's, and
# memcheck sees its blocks through the library's client requests.  A run
# passes when
#   - PROG exits 0 within SECS seconds (default 120) and memcheck reports
#     no error in any of its processes (forked children included);
#   - every PATTERN (-e) matches a line of PROG's stdout: PROG's own word
#     that malloc is detheap's (e.g. "^allocator: detheap", thread_common.h)
#     and that its work succeeded;
#   - memcheck tracked heap blocks (its "total heap usage" is not 0): with
#     its own malloc kept out, those can only be detheap's, announced by the
#     client requests; and with -s (DETHEAP_STATS=1; single-process
#     programs) the count equals the number of allocations detheap made.
# DETHEAP_RESERVE=1G: valgrind's address space has no room for 64 GiB
# heaps.  -v sets a variable for PROG.  DH_TEST_MEMCHECK=1 tells a test program that memcheck is
# watching (test_glibc skips the one check memcheck cannot agree with).
#
# Exit status: 0 pass, 1 fail, 2 usage, 77 valgrind not installed (1 then
# when CI is set).
set -u
. "$(dirname "$0")/../threads/thread_common.sh"
[ $# -ge 2 ] || { echo "usage: run_memcheck.sh LIB [-e PATTERN]... [-v VAR=VALUE]... [-s] [-t SECS] PROG [ARGS...]" >&2; exit 2; }
lib=$1
shift
patterns="$th_tmp/patterns" vars="" stats=0 secs=120
: >"$patterns"
while [ $# -gt 0 ]; do
    case $1 in
    -e) printf '%s\n' "$2" >>"$patterns"; shift 2 ;;
    -v) vars="$vars $2"; shift 2 ;;
    -s) stats=1; shift ;;
    -t) secs=$2; shift 2 ;;
    *) break ;;
    esac
done
[ $# -ge 1 ] || { echo "usage: run_memcheck.sh LIB [-e PATTERN]... [-v VAR=VALUE]... [-s] [-t SECS] PROG [ARGS...]" >&2; exit 2; }
[ -f "$lib" ] || { echo "missing $lib" >&2; exit 2; }
command -v valgrind >/dev/null 2>&1 ||
    th_missing "valgrind is not installed (scripts/deps.sh test installs it)"

echo "memcheck: $* (preload: $lib)"
# shellcheck disable=SC2086 # $vars: VAR=VALUE words, no spaces in them
set -- DETHEAP_RESERVE=1G DH_TEST_MEMCHECK=1 $vars valgrind --tool=memcheck \
    --error-exitcode=99 --soname-synonyms=somalloc=nouserintercepts \
    --log-file="$th_tmp/vg.%p" "$@"
if [ "$stats" = 1 ]; then
    set -- DETHEAP_STATS=1 DETHEAP_STATS_FILE="$th_tmp/stats.%p" "$@"
fi
th_run run "$lib" "$secs" "$@"
rc=$?
logs=$(ls "$th_tmp"/vg.* 2>/dev/null | wc -l)
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    th_fail "timed out after $secs s"
elif [ "$rc" != 0 ]; then
    th_fail "exit status $rc$([ "$rc" = 99 ] && echo ' (memcheck found errors)')"
fi
# every process's summary: "ERROR SUMMARY: N errors"
errors=$(cat "$th_tmp"/vg.* 2>/dev/null | awk '/ERROR SUMMARY:/ { n += $4; s++ }
    END { print (s ? n : "none") }')
if [ "$logs" = 0 ] || [ "$errors" = none ]; then
    th_fail "memcheck wrote no summary: did valgrind run?"
elif [ "$errors" != 0 ]; then
    th_fail "memcheck: $errors errors; the first:"
    cat "$th_tmp"/vg.* | awk '/== (Invalid|Conditional|Use of|Syscall|Mismatched|Source and|Argument)/ { on = 1 }
        on && /^==[0-9]+== $/ { exit }
        on { print; if (++n == 40) exit }' | sed 's/^/  | /'
fi
while IFS= read -r pattern; do
    grep -q -- "$pattern" "$th_tmp/run.out" && continue
    th_fail "no line of the program's output matches '$pattern':"
    tail -n 5 "$th_tmp/run.out" | sed 's/^/  > /'
done <"$patterns"
# memcheck's count of heap blocks, of the first process (the program)
first=$(ls "$th_tmp"/vg.* 2>/dev/null | sort -t. -k2 -n | head -n 1)
tracked=$(sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' "$first" 2>/dev/null | tr -d ,)
if [ -z "$tracked" ] || [ "$tracked" = 0 ]; then
    th_fail "memcheck tracked no heap block: it did not see detheap's (not the valgrind-aware library?)"
elif [ "$stats" = 1 ]; then
    made=$(cat "$th_tmp"/stats.* 2>/dev/null | sed -n 's/^total: \([0-9]*\) allocations,.*/\1/p')
    if [ "$(ls "$th_tmp"/stats.* 2>/dev/null | wc -l)" != 1 ]; then
        th_fail "-s needs one process with statistics, found $(ls "$th_tmp"/stats.* 2>/dev/null | wc -l)"
    elif [ "$made" != "$tracked" ]; then
        th_fail "memcheck tracked $tracked allocations, detheap made ${made:-no statistics}"
    fi
fi
grep -h 'detheap:' "$th_tmp/run.err" "$th_tmp"/vg.* 2>/dev/null | head -n 5 | sed 's/^/  detheap said: /'
[ "$th_failed" = 0 ] && th_pass "memcheck: 0 errors in $logs process(es); it tracked" \
    "$tracked heap blocks, detheap's$([ "$stats" = 1 ] && echo " (= DETHEAP_STATS's $made allocations)")"
th_finish
