#!/bin/sh
# check_valgrind.sh LIB UAF SRC: run the broken program UAF under valgrind's
# memcheck with the valgrind-aware detheap LIB preloaded, and check that
# memcheck reports the use after free and the overflow on detheap's blocks,
# naming the source lines marked in SRC.
set -u
lib=$1 prog=$2 src=$3
uaf_line=$(grep -n 'USE-AFTER-FREE' "$src" | cut -d: -f1)
ovf_line=$(grep -n 'OVERFLOW' "$src" | cut -d: -f1)
out=$(DETHEAP_RESERVE=1G LD_PRELOAD="$lib" valgrind \
        --soname-synonyms=somalloc=nouserintercepts "$prog" 2>&1)
fail=0
expect() {
  if printf '%s\n' "$out" | grep -q -- "$1"; then echo "ok: $2"
  else echo "FAIL: $2 (no '$1' in memcheck's report)"; fail=1; fi
}
expect "Invalid read of size 1" "use after free detected"
expect "uaf.c:$uaf_line" "the use after free's line ($uaf_line) named"
expect "inside a block of size 48 free'd" "the block is one of detheap's, freed"
expect "Invalid write of size 1" "overflow detected"
expect "uaf.c:$ovf_line" "the overflow's line ($ovf_line) named"
expect "Address 0x2" "the addresses are detheap's (DETHEAP_BASE)"
[ $fail = 0 ] || printf '%s\n' "$out"
exit $fail
