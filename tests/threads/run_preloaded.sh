#!/bin/sh
# run_preloaded.sh [-n RUNS] [-t SECS] [-w] LIB|none PROG [ARGS...]: run
# PROG RUNS times (default 1) with LIB preloaded ("none": libc's malloc, to
# check the program itself); each run must exit 0 within SECS seconds
# (default 120), with no "detheap:" line on stderr, and, with a LIB, print
# "allocator: detheap" (thread_common.h: the preload did take).  With -w,
# the library's notices ("detheap: ...") are shown, not judged: for a test
# whose promise is something else (threads_many: every create succeeds).
# A run that exits 77 (the program found that the machine cannot run it)
# makes the test skipped.
#
# Exit status: 0 all runs clean, 1 a run was not, 77 skipped, 2 usage.
set -u
. "$(dirname "$0")/thread_common.sh"
runs=1 secs=120
while [ $# -gt 0 ]; do
    case $1 in
    -n) runs=$2; shift 2 ;;
    -t) secs=$2; shift 2 ;;
    -w) th_notices_ok=1; shift ;;
    *) break ;;
    esac
done
[ $# -ge 2 ] || { echo "usage: run_preloaded.sh [-n RUNS] [-t SECS] [-w] LIB|none PROG [ARGS...]" >&2; exit 2; }
lib=$1
shift
[ -x "$1" ] || { echo "missing $1" >&2; exit 2; }
[ "$lib" = none ] || [ -f "$lib" ] || { echo "missing $lib" >&2; exit 2; }

echo "$(basename "$1"): $runs run(s), preload: $lib"
i=1
while [ "$i" -le "$runs" ]; do
    start=$(date +%s)
    th_run "run$i" "$lib" "$secs" "$@"
    rc=$?
    if [ "$rc" = 77 ]; then
        cat "$th_tmp/run$i.out" "$th_tmp/run$i.err"
        exit 77
    fi
    if ! th_clean "run$i" "$rc"; then
        tail -n 5 "$th_tmp/run$i.out" | sed 's/^/  > /'
    elif [ "$lib" != none ] && ! grep -q '^allocator: detheap' "$th_tmp/run$i.out"; then
        th_fail "run$i: malloc was not detheap's ($(grep '^allocator:' "$th_tmp/run$i.out" || echo 'the program did not say'))"
    else
        echo "ok: run $i clean ($(($(date +%s) - start)) s)"
    fi
    i=$((i + 1))
done
if [ "${th_notices_ok:-0}" = 1 ]; then what="exited 0"; else what="exited 0, nothing from detheap on stderr"; fi
[ "$th_failed" = 0 ] && th_pass "$runs run(s) $what" \
    "($(grep -h '^allocator:' "$th_tmp/run1.out" || echo 'allocator: unknown'))"
th_finish
