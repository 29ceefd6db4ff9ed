#!/bin/sh
# check_recycle.sh PROG LIB [BLOCKS]: retired pages recycled, in the default
# mode, on a pure producer/consumer (PROG = prodcons_bound, BLOCKS blocks of
# 64 bytes, default 5,000,000), three runs (two with DETHEAP_RECYCLE=move,
# the default, one with =off):
#   - every block the producer gets reads zero (fresh memory, pages that the
#     consumer moved into the producer's range included);
#   - the producer's heap has the same fingerprint (its calls and the
#     addresses they got) in all three (recycling moves pages, never
#     addresses), and =off recycles nothing;
#   - a fresh open() at the end gets the descriptor it gets under libc's
#     malloc (the one detheap opens to move pages is out of the way);
#   - where the kernel can move pages, the consumer recycled what it retired
#     (its "recycled" figure in the DETHEAP_STATS report is not 0); where
#     it cannot, that part is skipped, and says so.
#
# Exit status: 0 passed, 1 failed, 2 usage, 77 skipped.
set -u
. "$(dirname "$0")/thread_common.sh"
th_prog_lib "check_recycle.sh PROG LIB [BLOCKS]" "$@"
blocks=${3:-5000000}
unset DETHEAP_REMOTE_FREE DETHEAP_STATS DETHEAP_RECYCLE

# col RUN INDEX N: column N of the report line of main's child INDEX (the
# consumer is created first: 0; the producer: 1)
col() {
    awk -v i="$2" -v c="$3" '/^heap +depth/ { h = 1; next }
        h && $2 == 1 && $3 == i { print $c; exit }' "$th_tmp/$1.stats"
}

# the descriptor a fresh open() gets at the end, under libc's malloc
th_run libc none 120 "$prog" 1000
th_clean libc $? || th_finish
want_fd=$(awk '/^next_fd/ { print $2 }' "$th_tmp/libc.out")

fp=
for run in 1 2 off; do
    mode=DETHEAP_RECYCLE=move
    [ "$run" != off ] || mode=DETHEAP_RECYCLE=off
    th_run "$run" "$lib" 120 DETHEAP_STATS=1 "$mode" \
        DETHEAP_STATS_FILE="$th_tmp/$run.stats" "$prog" "$blocks"
    th_clean "$run" $? || th_finish
    out=$th_tmp/$run.out
    dirty=$(awk '/^dirty/ { print $2 }' "$out")
    moves=$(awk '/^kernel_moves_pages/ { print $2 }' "$out")
    pfp=$(col "$run" 1 8)
    retired=$(col "$run" 0 9)
    recycled=$(col "$run" 0 11)
    echo "run $run ($mode): dirty $dirty, producer fingerprint $pfp, consumer retired $retired B, recycled $recycled B (kernel moves pages: $moves)"
    case "$dirty:$retired:$recycled:$pfp" in
    *[!0-9a-f:]* | *::* | :* | *:) th_fail "run $run: missing figures"; th_finish ;;
    esac
    [ "$dirty" = 0 ] || th_fail "run $run: $dirty blocks the producer got did not read zero"
    nfd=$(awk '/^next_fd/ { print $2 }' "$out")
    [ "$nfd" = "$want_fd" ] || th_fail "run $run: a fresh open() got descriptor $nfd, $want_fd under libc's malloc"
    [ "$retired" -gt 0 ] || th_fail "run $run: the consumer retired nothing: no recycling to test"
    if [ "$run" = off ]; then
        [ "$recycled" = 0 ] || th_fail "run $run: recycled $recycled B with DETHEAP_RECYCLE=off"
    elif [ "$moves" = yes ]; then
        [ "$recycled" -gt 0 ] || th_fail "run $run: the kernel moves pages, but nothing was recycled"
        [ "$recycled" -le "$retired" ] || th_fail "run $run: recycled $recycled B > retired $retired B"
    else
        [ "$run" != 1 ] || echo "SKIP (part): this kernel cannot move pages (UFFDIO_MOVE, Linux 6.8): retired pages are decommitted instead"
        [ "$recycled" = 0 ] || th_fail "run $run: recycled $recycled B without the kernel's page moving"
    fi
    [ -z "$fp" ] || [ "$pfp" = "$fp" ] || th_fail "run $run: the producer's fingerprint differs: $pfp, not $fp"
    fp=$pfp
done
[ "$th_failed" = 1 ] || th_pass "fresh blocks read zero, the producer's addresses are the same, retired pages were recycled where the kernel can"
th_finish
