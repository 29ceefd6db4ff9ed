#!/bin/sh
# check_taken.sh LIB PROG: with ASLR off, PROG's code sits at the kernel's
# default PIE address; DETHEAP_BASE asks for the 4 GiB range around it.  The
# heap must be placed elsewhere, the program told exactly once on stderr,
# and it must run normally.
set -u
lib=$1 prog=$2
base=0x555500000000 # 4 GiB-aligned; the default PIE base is 0x555555554000
out=$(setarch -R env LD_PRELOAD="$lib" DETHEAP_BASE=$base DETHEAP_RESERVE=4G \
      "$prog" 2>err.$$)
rc=$?
err=$(cat err.$$); rm -f err.$$
fail=0
[ $rc -eq 0 ] || { echo "FAIL: exit status $rc ($err)"; exit 1; }
code=$(printf '%s' "$out" | sed -n 's/^code \(0x[0-9a-f]*\) .*/\1/p')
block=$(printf '%s' "$out" | sed -n 's/.* block \(0x[0-9a-f]*\)$/\1/p')
in_range() { [ $(($1 >= base && $1 < base + (4 << 30))) = 1 ]; }
in_range "$code" || { echo "FAIL: precondition: code at $code is not in the range"; exit 1; }
n=$(printf '%s\n' "$err" | grep -c "is taken; heap placed at")
[ "$n" -eq 1 ] || { echo "FAIL: $n fallback messages, expected 1: $err"; fail=1; }
printf '%s\n' "$err" | grep -q "^detheap: the range at $base is taken; heap placed at 0x[0-9a-f]* instead (its addresses will differ between runs)$" ||
  { echo "FAIL: message not as documented: $err"; fail=1; }
in_range "$block" && { echo "FAIL: first block $block inside the taken range"; fail=1; }
[ $fail = 0 ] && echo "ok: code at $code; heap placed elsewhere (first block $block); said once"
exit $fail
