#!/bin/sh
# check_threads.sh BUILD_DIR [workers|creators]: the per-thread determinism
# promise, checked from outside.  Runs tests/threads_det (one "name hash"
# line per logical thread) many times and compares the outputs line by line.
#
#   workers   (default) every thread that creates no threads must print the
#             same hash in 20 runs under libdetheap.so, with ASLR as the
#             machine has it; then, to show that the check can fail, the
#             same program must NOT print identical outputs in 5 runs under
#             glibc's malloc, nor in 5 under mimalloc (skipped, said so, when
#             libmimalloc.so.2 is not installed: scripts/deps.sh bench);
#             last, 5 runs with DETHEAP_REMOTE_FREE=owner are reported (which
#             threads vary), not judged: that mode gives up determinism.
#   creators  every line, the threads that create and join threads (tree1,
#             tree2, rounds) included, must be identical in 20 runs.
#
# Exit status 0 when the promise holds, 1 when it does not, 2 on usage.
set -u
build=${1:?usage: check_threads.sh BUILD_DIR [workers|creators]}
mode=${2:-workers}
prog=$build/tests/threads_det
lib=$build/libdetheap.so
scale=${THREADS_DET_SCALE:-3}
[ -x "$prog" ] && [ -f "$lib" ] || { echo "missing $prog or $lib" >&2; exit 2; }
case $mode in workers|creators) ;; *) echo "unknown mode $mode" >&2; exit 2;; esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# The threads that create threads: their lines are the creators' check.
creators='^(tree[0-9]+|rounds) '

aslr=$(cat /proc/sys/kernel/randomize_va_space 2>/dev/null || echo unknown)
echo "ASLR: kernel.randomize_va_space = $aslr (0 off, 1 or 2 on)"

# run TAG N ENV...: N runs of the program with ENV, outputs in $tmp/TAG.i
run() {
    tag=$1 n=$2
    shift 2
    i=1
    while [ "$i" -le "$n" ]; do
        if ! env "$@" "$prog" "$scale" >"$tmp/$tag.$i" 2>"$tmp/$tag.err"; then
            # a peer allocator's own faults are reported, not judged
            if [ "$tag" = mimalloc ]; then
                [ "$i" -gt 1 ] || echo "note: mimalloc exited non-zero" \
                    "(its own fault, e.g. posix_memalign misaligned):"
            else
                echo "FAIL: $tag run $i exited non-zero:"
                fail=1
            fi
            [ "$tag" = mimalloc ] && [ "$i" -gt 1 ] || head -n 5 "$tmp/$tag.err"
        fi
        i=$((i + 1))
    done
}

# varying TAG N [FILTER]: the names whose hash differs between the runs
varying() {
    tag=$1 n=$2 filter=${3:-cat}
    i=1
    while [ "$i" -le "$n" ]; do
        $filter <"$tmp/$tag.$i"
        i=$((i + 1))
    done | sort -u | awk '{ seen[$1]++ } END { for (k in seen)
        if (seen[k] > 1) print k, seen[k] }' | sort
}

# same TAG N [FILTER]: all N outputs identical (after FILTER)?
same() {
    [ -z "$(varying "$@")" ] && [ -s "$tmp/$1.1" ]
}

workers_only() { grep -Ev "$creators"; }

if [ "$mode" = creators ]; then
    run det 20 LD_PRELOAD="$lib"
    if same det 20; then
        echo "PASS: 20 runs under detheap, every thread identical"
    else
        echo "FAIL: under detheap these threads' hashes vary (name, distinct):"
        varying det 20
        fail=1
    fi
    exit $fail
fi

run det 20 LD_PRELOAD="$lib"
lines=$(workers_only <"$tmp/det.1" | wc -l)
if same det 20 workers_only && [ "$lines" -gt 20 ]; then
    echo "PASS: 20 runs under detheap: the $lines worker threads identical"
else
    echo "FAIL: under detheap these worker hashes vary (name, distinct):"
    varying det 20 workers_only
    fail=1
fi
echo "info: threads that create threads, distinct hashes in 20 runs:"
varying det 20 | grep -E "$creators" || echo "  none vary"

run glibc 5
if same glibc 5; then
    echo "FAIL: 5 runs under glibc malloc gave identical outputs:" \
        "the test cannot tell a deterministic allocator from another"
    fail=1
else
    echo "PASS: 5 runs under glibc differ ($(varying glibc 5 | wc -l) of" \
        "$(wc -l <"$tmp/glibc.1") threads vary)"
fi

mi=$(ldconfig -p 2>/dev/null | awk '/libmimalloc\.so\.2 .*x86-64/ { print $NF; exit }')
if [ -z "$mi" ]; then
    echo "SKIP: libmimalloc.so.2 not found (scripts/deps.sh bench installs it)"
else
    run mimalloc 5 LD_PRELOAD="$mi"
    if same mimalloc 5; then
        echo "FAIL: 5 runs under mimalloc ($mi) gave identical outputs"
        fail=1
    else
        echo "PASS: 5 runs under mimalloc differ ($(varying mimalloc 5 | wc -l)" \
            "of $(wc -l <"$tmp/mimalloc.1") threads vary)"
    fi
fi

run owner 5 LD_PRELOAD="$lib" DETHEAP_REMOTE_FREE=owner
echo "info: DETHEAP_REMOTE_FREE=owner, threads whose hash varies in 5 runs" \
    "(not judged):"
varying owner 5 | sed 's/^/  /'
[ -n "$(varying owner 5)" ] || echo "  none vary"

exit $fail
