#!/bin/sh
# demo.sh BUILD_DIR: what detheap is for, in a few seconds.  Runs a small
# program that prints heap addresses twice on glibc (addresses differ
# because of ASLR) and twice on detheap (identical), compares the heap
# fingerprint of two sqlite3 runs, lets `detheap check` confirm sqlite3 is
# deterministic and shows `detheap run --stats`.  Every command is printed
# exactly as it is run.  Needs: make (build), sqlite3.
set -eu
B=${1:-build}
for f in "$B/detheap" "$B/libdetheap.so" "$B/demo_addresses"; do
  [ -e "$f" ] || { echo "demo.sh: $f missing: run make first" >&2; exit 2; }
done
command -v sqlite3 >/dev/null || {
  echo "demo.sh: needs sqlite3 (apt-get install sqlite3)" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/detheap-demo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# print a command as it could be typed (arguments with spaces quoted), run it
quote() {
  case $1 in
    *[!A-Za-z0-9_./=:,%-]*) printf "'%s'" "$(printf %s "$1" | sed "s/'/'\\\\''/g")" ;;
    *) printf %s "$1" ;;
  esac
}
show() {
  printf '$'; for a in "$@"; do printf ' '; quote "$a"; done; printf '\n'
  "$@"
}
title() { printf '\n== %s\n' "$*"; }

SQL="create table t(x); insert into t values (1), (22), (333); select group_concat(x) from t;"

title "1. the same program twice on glibc: addresses change from run to run"
show "$B/demo_addresses"
show "$B/demo_addresses"

title "2. twice on detheap: the same addresses every time"
show env LD_PRELOAD="$B/libdetheap.so" "$B/demo_addresses"
show env LD_PRELOAD="$B/libdetheap.so" "$B/demo_addresses"

title "3. sqlite3 twice on detheap: the same heap fingerprint"
for i in 1 2; do
  show "$B/detheap" run --json -o "$tmp/stats$i.json" -- sqlite3 :memory: "$SQL"
  sed 's/.*"alloc_count": \([0-9]*\).*"fingerprint": "\([0-9a-f]*\)".*/  -> \1 allocations, fingerprint \2/' "$tmp/stats$i.json"
done
fp() { sed 's/.*"fingerprint": "\([0-9a-f]*\)".*/\1/' "$1"; }
if [ "$(fp "$tmp/stats1.json")" = "$(fp "$tmp/stats2.json")" ]; then
  echo "  -> identical"
else
  echo "  -> DIFFERENT (this would be a detheap defect)"
fi

title "4. detheap check: runs it twice, compares every call and address"
show "$B/detheap" check -- sqlite3 :memory: "$SQL"

title "5. detheap run --stats: the heap at exit"
show "$B/detheap" run --stats -- sqlite3 :memory: "$SQL"
