#!/bin/sh
# check_tree_det.sh PROG LIB: per-thread determinism over a creation tree
# (PROG = tree_det: 909 threads, one "PATH HASH" line each).  10 runs with
# LIB preloaded, ASLR as the machine has it: every run exits 0, says
# nothing from detheap, and prints the same lines (sorted outputs diffed).
# Then, to show the check can fail, 3 runs under glibc's malloc must NOT
# all agree; skipped (said so) when ASLR is off, since glibc's addresses
# are then the same in every run too.
#
# Exit status: 0 the promise holds, 1 it does not, 2 usage.
set -u
. "$(dirname "$0")/thread_common.sh"
prog=${1:?usage: check_tree_det.sh PROG LIB}
lib=${2:?usage: check_tree_det.sh PROG LIB}
[ -x "$prog" ] && [ -f "$lib" ] || { echo "missing $prog or $lib" >&2; exit 2; }
aslr=$(cat /proc/sys/kernel/randomize_va_space 2>/dev/null || echo unknown)
echo "ASLR: kernel.randomize_va_space = $aslr (0 off, 1 or 2 on)"

# runs TAG N LIB: N runs, sorted outputs in $th_tmp/TAG.i.sorted; false if
# a run was not clean
runs() {
    _ok=0 _i=1
    while [ "$_i" -le "$2" ]; do
        th_run "$1.$_i" "$3" 12 "$prog" # a run takes under a second
        if ! th_clean "$1.$_i" $?; then
            _ok=1
        elif [ "$3" != none ] && ! grep -q '^allocator: detheap' "$th_tmp/$1.$_i.out"; then
            th_fail "$1.$_i: malloc was not detheap's"
            _ok=1
        fi
        grep -v '^allocator:' "$th_tmp/$1.$_i.out" | sort >"$th_tmp/$1.$_i.sorted"
        _i=$((_i + 1))
    done
    return $_ok
}

# differing TAG N: the paths whose line is not the same in all N runs
differing() {
    _i=2
    while [ "$_i" -le "$2" ]; do
        diff "$th_tmp/$1.1.sorted" "$th_tmp/$1.$_i.sorted" |
            awk '/^[<>] / { print $2 }'
        _i=$((_i + 1))
    done | sort -u
}

if runs det 10 "$lib"; then
    lines=$(wc -l <"$th_tmp/det.1.sorted")
    bad=$(differing det 10 | wc -l)
    if [ "$lines" -ne 909 ]; then
        th_fail "detheap: run 1 printed $lines lines, not 909"
    elif [ "$bad" -eq 0 ]; then
        th_pass "10 runs under detheap: all $lines lines identical ($lines x 10 = $((lines * 10)) lines compared)"
    else
        th_fail "10 runs under detheap: $bad of $lines threads' lines differ between runs; some:"
        differing det 10 | head -n 12 | sed 's/^/  /'
        echo "  (by group: $(differing det 10 | awk -F. '{ if (NF == 1) g = $1;
            else if ($2 == 300) g = "chain"; else if (NF == 2) g = "m.I";
            else g = "m.I.J"; n[g]++ } END { for (k in n) printf "%s %d, ", k, n[k] }'))"
    fi
fi

if [ "$aslr" = 0 ]; then
    echo "SKIP (glibc half): ASLR is off (randomize_va_space = 0): glibc's" \
        "addresses would repeat too, so the check could not fail there"
elif runs glibc 3 none; then
    bad=$(differing glibc 3 | wc -l)
    if [ "$bad" -gt 0 ]; then
        th_pass "3 runs under glibc differ ($bad of $(wc -l <"$th_tmp/glibc.1.sorted") threads): the check can fail"
    else
        th_fail "3 runs under glibc gave identical outputs: the check cannot tell a deterministic allocator from another"
    fi
fi
th_finish
