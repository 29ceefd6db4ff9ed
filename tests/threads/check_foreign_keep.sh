#!/bin/sh
# check_foreign_keep.sh PROG LIB: two threads that free each other's blocks
# and reuse them (PROG = foreign_keep, about 2 MiB a round each, 40
# rounds), in the default mode (DETHEAP_REMOTE_FREE=keep), two runs:
#   - a thread that hands out again the other ranges' blocks it freed may
#     keep more of them than the 1 MiB a pure consumer keeps (half of what
#     it reused, up to 16 MiB: docs/DESIGN.md, "Cross-thread free"), so
#     each worker retires only what it frees before it has reused enough:
#     under 4 MiB in all (about 1.2 MiB), where a flat 1 MiB retired
#     6.4 MiB each;
#   - each worker's fingerprint (its calls and their addresses) is the same
#     in both runs.
#
# Exit status: 0 passed, 1 failed, 2 usage.
set -u
. "$(dirname "$0")/thread_common.sh"
th_prog_lib "check_foreign_keep.sh PROG LIB" "$@"
unset DETHEAP_REMOTE_FREE DETHEAP_STATS

# col RUN INDEX N: column N of the report line of main's child INDEX
col() {
    awk -v i="$2" -v c="$3" '/^heap +depth/ { h = 1; next }
        h && $2 == 1 && $3 == i { print $c; exit }' "$th_tmp/$1.stats"
}

limit=$((4 * 1024 * 1024))
for run in 1 2; do
    th_run "$run" "$lib" 120 DETHEAP_STATS=1 \
        DETHEAP_STATS_FILE="$th_tmp/$run.stats" "$prog" 40
    th_clean "$run" $? || th_finish
    grep -q '^allocator: detheap' "$th_tmp/$run.out" ||
        { th_fail "run $run: malloc was not detheap's"; th_finish; }
    for w in 0 1; do
        retired=$(col "$run" "$w" 9)
        fp=$(col "$run" "$w" 8)
        echo "run $run, worker $w: retired $retired B, fingerprint $fp"
        case "$retired:$fp" in
        *[!0-9a-f:]* | :* | *:) th_fail "run $run: worker $w: missing figures"; th_finish ;;
        esac
        [ "$retired" -lt "$limit" ] ||
            th_fail "run $run: worker $w retired $retired B, not under $limit B"
        eval "prev=\${fp_$w:-}"
        [ -z "$prev" ] || [ "$prev" = "$fp" ] ||
            th_fail "run $run: worker $w's fingerprint differs: $fp, not $prev"
        eval "fp_$w=$fp"
    done
done
[ "$th_failed" = 1 ] || th_pass "threads that reuse each other's blocks retired under $limit B each, addresses the same in both runs"
th_finish
