#!/bin/sh
# renamed_symbols.sh - the test-only library detheap_ov_renamed (the
# drop-in malloc's own code under renamed symbols, tests/ov_renamed.h)
# must define no libc name: every global symbol it defines starts with dh_
# or dhov_, and every function the shared library exports as a libc
# replacement is there as dhov_NAME.  A function added to
# src/override/malloc.c, pthread.c or exec.c without its DH_OV_RENAMED macro would
# otherwise take over, say, the sanitizer runtime's malloc in every test
# linked with it.
#
# usage: renamed_symbols.sh LIBDETHEAP_OV_RENAMED.A LIBDETHEAP.SO
set -eu
archive=$1 lib=$2
status=0

defined=$(nm "$archive" 2>/dev/null | awk 'NF == 3 && $2 ~ /^[TWDBRVi]$/ {print $3}' |
          sort -u)
[ -n "$defined" ] || { echo "no symbol defined in $archive" >&2; exit 1; }
for sym in $defined; do
    case "$sym" in
        dh_* | dhov_*) ;;
        *) echo "defines a name that is not renamed: $sym" >&2; status=1 ;;
    esac
done

# The libc replacements of the shared library: its exports that are not dh_.
replaced=$(nm -D --defined-only "$lib" | awk 'NF == 3 {print $3}' |
           sed 's/@.*//' | grep -v '^dh_' | sort -u)
for sym in $replaced; do
    echo "$defined" | grep -qx "dhov_$sym" || {
        echo "exported by the shared library but not renamed: $sym" >&2
        status=1
    }
done

[ $status -eq 0 ] &&
    echo "packaging_ov_renamed: $(echo "$replaced" | wc -w) renamed functions ok"
exit $status
