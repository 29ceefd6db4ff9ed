#!/bin/sh
# rss_table.sh BUILD_DIR [--check]: peak RSS of a pure producer/consumer
# (tests/prodcons_rss: 2M blocks of 64..464 bytes through a 1024-slot ring)
# under detheap with DETHEAP_REMOTE_FREE=keep and =owner, glibc's malloc and
# mimalloc (when libmimalloc.so.2 is installed: scripts/deps.sh bench).
# Prints a table.  With --check, fails unless owner mode's peak is within
# 4x of glibc's; keep mode is expected to grow with the number of blocks
# handed over, so its figure is only printed.
set -u
build=${1:?usage: rss_table.sh BUILD_DIR [--check]}
check=${2:-}
prog=$build/tests/prodcons_rss
lib=$build/libdetheap.so
blocks=${PRODCONS_BLOCKS:-2000000}
[ -x "$prog" ] && [ -f "$lib" ] || { echo "missing $prog or $lib" >&2; exit 2; }

# rss ENV...: the program's peak RSS in KiB under ENV, or "failed"
rss() {
    out=$(env "$@" "$prog" "$blocks") || { echo failed; return; }
    echo "$out" | awk '/^peak_rss_kb/ { print $2 }'
}

keep=$(rss LD_PRELOAD="$lib" DETHEAP_REMOTE_FREE=keep)
owner=$(rss LD_PRELOAD="$lib" DETHEAP_REMOTE_FREE=owner)
glibc=$(rss)
mi=$(ldconfig -p 2>/dev/null | awk '/libmimalloc\.so\.2 .*x86-64/ { print $NF; exit }')
if [ -n "$mi" ]; then mimalloc=$(rss LD_PRELOAD="$mi"); else mimalloc="n/a"; fi

echo "producer/consumer, $blocks blocks of 64..464 B, 1024-slot ring"
printf '%-24s %14s\n' allocator "peak RSS (KiB)"
printf '%-24s %14s\n' "detheap keep" "$keep"
printf '%-24s %14s\n' "detheap owner" "$owner"
printf '%-24s %14s\n' "glibc malloc" "$glibc"
printf '%-24s %14s\n' "mimalloc" "$mimalloc"
[ -n "$mi" ] || echo "(mimalloc: libmimalloc.so.2 not installed)"

[ "$check" = --check ] || exit 0
for v in "$keep" "$owner" "$glibc"; do
    case $v in ''|*[!0-9]*) echo "FAIL: a run failed"; exit 1;; esac
done
if [ "$owner" -le $((glibc * 4)) ]; then
    echo "PASS: owner mode's peak ($owner KiB) is within 4x of glibc's ($glibc KiB)"
else
    echo "FAIL: owner mode's peak ($owner KiB) exceeds 4x glibc's ($glibc KiB)"
    exit 1
fi
