#!/bin/sh
# preload.sh - run an unmodified program (sqlite3) on detheap by preloading
# the shared library, and print detheap's statistics at exit.  Run it twice:
# the fingerprint line (a hash of every allocation's size and address) is
# the same each time.
#
#   examples/preload.sh [BUILD_DIR]      (default: build)
#
# Needs sqlite3 (apt-get install sqlite3).  Any other program works the same
# way: LD_PRELOAD=build/libdetheap.so DETHEAP_STATS=1 program args...
set -eu
build=${1:-build}
lib=$(cd "$build" && pwd)/libdetheap.so
[ -f "$lib" ] || { echo "preload.sh: $lib not found; run make first" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "preload.sh: sqlite3 not installed" >&2; exit 1; }

sql="create table t(id integer primary key, name text);
with recursive n(i) as (select 1 union all select i + 1 from n where i < 20000)
insert into t(name) select printf('row-%06d', i) from n;
create index t_name on t(name);
select count(*), min(name), max(name) from t;"

prints=""
for run in 1 2; do
    echo "== run $run"
    out=$(echo "$sql" | LD_PRELOAD=$lib DETHEAP_STATS=1 sqlite3 :memory: 2>&1)
    # The query's answer, then detheap's summary lines.
    echo "$out" | grep -E '^[0-9]+\|row-|^total:|^fingerprint:'
    prints="$prints $(echo "$out" | sed -n 's/^fingerprint: //p')"
done
set -- $prints
if [ "$#" -eq 2 ] && [ "$1" = "$2" ]; then
    echo "same fingerprint in both runs: $1"
else
    echo "fingerprints differ:$prints" >&2
    exit 1
fi
