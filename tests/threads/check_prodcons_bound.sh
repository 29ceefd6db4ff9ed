#!/bin/sh
# check_prodcons_bound.sh PROG LIB [BLOCKS]: the memory of a pure
# producer/consumer (PROG = prodcons_bound, BLOCKS blocks of 64 bytes,
# default 50,000,000) must stay bounded under detheap: its peak RSS, as the
# kernel counts it, must be at most 3 x glibc's peak + 16 MiB, with the
# default options (no DETHEAP_REMOTE_FREE) and with DETHEAP_REMOTE_FREE=owner.
# glibc runs first, to set the bound; a detheap run that passes the bound is
# stopped there (PROG's LIMIT_KB) rather than left to fill memory.
#
# Exit status: 0 bounded, 1 not (or a run failed), 2 usage.
set -u
. "$(dirname "$0")/thread_common.sh"
th_prog_lib "check_prodcons_bound.sh PROG LIB [BLOCKS]" "$@"
blocks=${3:-50000000}
secs=50 # a run takes 2..5 s; 3 runs stay within the ctest TIMEOUT
unset DETHEAP_REMOTE_FREE # the default mode is the default options

# measure TAG LIB [ENV...]: one run; sets $peak (KiB) and $over, or fails
measure() {
    tag=$1 mlib=$2
    shift 2
    start=$(date +%s)
    th_run "$tag" "$mlib" "$secs" "$@" "$prog" "$blocks" "${limit:-0}"
    rc=$?
    took=$(($(date +%s) - start))
    peak=$(awk '/^peak_rss_kb/ { print $2 }' "$th_tmp/$tag.out")
    over=$(awk '/^over_limit_at/ { print $2 " (RSS " $4 " KiB)" }' "$th_tmp/$tag.out")
    th_clean "$tag" "$rc" || return 1
    case $peak in
    '' | *[!0-9]*) th_fail "$tag: no peak_rss_kb in its output"; return 1 ;;
    esac
    if [ "$mlib" != none ] && ! grep -q '^allocator: detheap' "$th_tmp/$tag.out"; then
        th_fail "$tag: malloc was not detheap's"
        return 1
    fi
    return 0
}

unset limit
measure glibc none || th_finish
glibc=$peak
bound=$((3 * glibc + 16384))
echo "glibc malloc: peak RSS $glibc KiB ($took s); bound 3 x $glibc + 16384 = $bound KiB"
# stop a run at twice the bound: it has failed by then
limit=$((2 * bound))

for mode in default owner; do
    if [ "$mode" = default ]; then
        measure "$mode" "$lib" || continue
    else
        th_expect=$th_owner_notice
        measure "$mode" "$lib" DETHEAP_REMOTE_FREE=owner || continue
        th_expect=
    fi
    if [ -n "$over" ]; then
        th_fail "detheap ($mode): peak RSS over $limit KiB, stopped at block $over of $blocks ($took s); bound $bound KiB"
    elif [ "$peak" -le "$bound" ]; then
        th_pass "detheap ($mode): peak RSS $peak KiB <= $bound KiB (glibc $glibc KiB; $took s)"
    else
        th_fail "detheap ($mode): peak RSS $peak KiB > $bound KiB (glibc $glibc KiB; $took s)"
    fi
done
th_finish
