#!/bin/sh
# tool_tests.sh CASE DETHEAP NONDET: one test of the detheap tool on real
# programs (sqlite3, sh, tests/tool/nondet.c).  Prints what it checks and
# exits nonzero on the first failure.
set -u
case_name=$1 detheap=$2 nondet=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/dh_tool_test.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*"; exit 1; }
# expect STATUS CMD...: run CMD (output in $work/out), check its status
expect() {
  want=$1; shift
  "$@" >"$work/out" 2>&1; got=$?
  [ "$got" = "$want" ] || { cat "$work/out"; fail "'$*' exited $got, not $want"; }
}
has() { grep -q -- "$1" "$work/out" || { cat "$work/out"; fail "no '$1' in output"; }; }

sql="$work/script.sql"
cat >"$sql" <<'SQL'
create table t(id integer primary key, name text, v real);
with recursive c(i) as (select 1 union all select i + 1 from c where i < 3000)
insert into t select i, printf('row-%d', i), i * 0.25 from c;
create index t_name on t(name);
select count(*), sum(v) from t where name like 'row-1%';
delete from t where id % 2 = 0;
select count(*) from t;
SQL

case $case_name in
help)
  for c in run check report replay ops top; do
    expect 0 "$detheap" $c --help; has "usage: detheap $c"
  done
  expect 0 "$detheap" --help; has "check"
  expect 2 "$detheap" run --bogus -- true
  expect 2 "$detheap" check -n 1 -- true
  expect 2 "$detheap" report
  expect 2 "$detheap" replay
  expect 2 "$detheap" frobnicate
  ;;
run_status)
  expect 7 "$detheap" run -- sh -c 'exit 7'
  expect 143 "$detheap" run -- sh -c 'kill -TERM $$'
  expect 0 "$detheap" run -- sqlite3 :memory: 'select 6*7'
  has "^42$"
  expect 127 "$detheap" run -- /nonexistent/program
  ;;
run_stats)
  expect 0 "$detheap" run --json -o "$work/s.json" -- sqlite3 :memory: ".read $sql"
  has "^1500$" # the program's own output is untouched
  [ "$(wc -l <"$work/s.json")" = 1 ] || fail "one JSON object expected"
  # the drop-in's default class set is the fine one (59 classes)
  jq -e '(.classes | length) == 59 and .class_set == "fine"
         and .alloc_count > 1000
         and .alloc_count >= .free_count and (.fingerprint | length) == 16
         and has("peak_live_bytes") and has("rejected_frees")
         and has("large") and (.classes[0] | has("live"))' "$work/s.json" \
    >/dev/null || fail "JSON lacks fields: $(cat "$work/s.json")"
  expect 0 "$detheap" run --stats -- sqlite3 :memory: ".read $sql"
  has "class.*allocs.*frees.*live.*peak.*live bytes.*peak bytes.*free.*rounding"
  has "^total: [0-9]* allocations"
  has "^rejected frees: 0"
  has "^fingerprint: [0-9a-f]\{16\}$"
  # one line per heap: the main thread's heap is slot 0, ordered
  has "^heap *depth *index *kind *tid *thread *calls *fingerprint *retired"
  has "^0 *0 *0 *ordered *[0-9][0-9]* "
  # the table's allocation count is the library's
  n=$(jq .alloc_count "$work/s.json")
  has "^total: $n allocations"
  ;;
check_sqlite)
  expect 0 "$detheap" check --stdin "$sql" -- sqlite3 :memory:
  has "^deterministic: 2 runs, fingerprint [0-9a-f]\{16\}$"
  # the fingerprint is the one `run` reports for the same program and input
  # (check records stacks; that must not change the calls)
  fp=$(sed -n 's/^deterministic: 2 runs, fingerprint //p' "$work/out")
  expect 0 "$detheap" run --json -o "$work/s.json" -- sqlite3 :memory: <"$sql"
  [ "$(jq -r .fingerprint "$work/s.json")" = "$fp" ] ||
    fail "run's fingerprint $(jq -r .fingerprint "$work/s.json") is not check's $fp"
  ;;
check_nondet)
  # 4 runs: the size depends on pid % 7, so some run differs from run 1
  expect 1 "$detheap" check -n 4 -- "$nondet"
  has "^nondeterministic: runs 1 and [234] first part at call 9 of heap slot 0"
  has "^  run 1: malloc([0-9]*) -> 0x"
  has "^  run [234]: malloc([0-9]*) -> 0x"
  has "the program itself made different calls"
  has "#0 allocate_from_pid.*nondet.c:"
  has "main.*nondet.c:"
  ;;
report)
  expect 0 "$detheap" run --trace "$work/t.trace" -- sqlite3 :memory: ".read $sql"
  expect 0 "$detheap" report "$work/t.trace" -o "$work/heap.png"
  sig=$(od -An -tx1 -N8 "$work/heap.png" | tr -d ' \n')
  [ "$sig" = 89504e470d0a1a0a ] || fail "not a PNG: $sig"
  size=$(wc -c <"$work/heap.png")
  [ "$size" -gt 20000 ] || fail "PNG of only $size bytes"
  expect 0 "$detheap" report "$work/t.trace" -o "$work/heap.svg"
  grep -q "<svg" "$work/heap.svg" || fail "not an SVG"
  expect 2 "$detheap" report "$work/t.trace" -o "$work/heap.gif"
  ;;
replay)
  expect 0 "$detheap" run --trace "$work/t.trace" -- sqlite3 :memory: ".read $sql"
  for a in glibc detheap; do
    expect 0 "$detheap" replay "$work/t.trace" --allocator $a
    has "wall time"; has "peak RSS"; has "instructions"
    sed -n 's/^  calls *\([0-9]*\) replayed, \([0-9]*\) skipped.*/\1 \2/p' \
      "$work/out" >"$work/calls.$a"
  done
  grep -q "libc.so" "$work/out" && fail "detheap replay ran on glibc"
  read -r calls skipped <"$work/calls.glibc"
  [ "$calls" -gt 10000 ] || fail "only $calls calls replayed"
  [ "$skipped" = 0 ] || fail "$skipped calls skipped"
  cmp -s "$work/calls.glibc" "$work/calls.detheap" || fail "call counts differ"
  expect 2 "$detheap" replay "$work/t.trace" --allocator no-such-allocator
  ;;
trace_errors)
  expect 0 "$detheap" run --trace "$work/t.trace" -- sqlite3 :memory: 'select 1'
  size=$(wc -c <"$work/t.trace")
  # cut in the middle of the 5th record
  head -c $((64 + 4 * 32 + 10)) "$work/t.trace" >"$work/cut.trace"
  expect 2 "$detheap" report "$work/cut.trace" -o "$work/x.png"
  has "cut.trace: offset 192: truncated record (10 of 32 bytes)"
  # an unknown op in the 3rd record
  cp "$work/t.trace" "$work/bad.trace"
  printf 'M' | dd of="$work/bad.trace" bs=1 seek=128 conv=notrunc 2>/dev/null
  expect 2 "$detheap" replay "$work/bad.trace"
  has "bad.trace: offset 128: record of unknown op 77"
  : >"$work/empty.trace"
  expect 2 "$detheap" report "$work/empty.trace" -o "$work/x.png"
  has "offset 0: truncated header"
  expect 2 "$detheap" replay "$work/script.sql"
  has "not a detheap trace"
  [ "$size" -gt 64 ] || fail "trace of $size bytes"
  ;;
*) fail "unknown case $case_name" ;;
esac
echo "ok: $case_name"
