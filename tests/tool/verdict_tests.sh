#!/bin/sh
# verdict_tests.sh CASE DETHEAP BINDIR SRCDIR: one test of `detheap
# check`'s verdicts and of the heap profile (top, --leaks, --stats, the
# JSON schema, report), on the programs of tests/tool/ built into BINDIR
# (tool_crash, tool_tracefail ...).  Prints what it checks and exits
# nonzero on the first failure, 77 when the test cannot apply here.
set -u
case_name=$1 detheap=$2 bin=$3 src=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/dh_verdict_test.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
# expect STATUS CMD...: run CMD (output in $work/out), check its status
expect() {
  want=$1; shift
  "$@" >"$work/out" 2>&1; got=$?
  [ "$got" = "$want" ] || { cat "$work/out"; fail "'$*' exited $got, not $want"; }
}
has() { grep -q -- "$1" "$work/out" || { cat "$work/out"; fail "no '$1' in output"; }; }
hasnt() { ! grep -q -- "$1" "$work/out" || { cat "$work/out"; fail "'$1' in output"; }; }
# line_of FILE MARKER: the line number of the marker comment in a source
line_of() { grep -n "$2" "$src/$1" | cut -d: -f1; }
# aslr_or_skip: skip unless a child can run with ASLR off here
aslr_or_skip() {
  [ "$(cat /proc/sys/kernel/randomize_va_space 2>/dev/null)" != 0 ] ||
    skip "ASLR is off on this machine: nothing to compare"
  setarch -R true 2>/dev/null || skip "personality(ADDR_NO_RANDOMIZE) refused here"
}
# a python3 with jsonschema, or skip (a failure when CI is set)
jsonschema_python() {
  for py in python3 /usr/bin/python3; do
    if "$py" -c 'import jsonschema' 2>/dev/null; then echo "$py"; return; fi
  done
  if [ -n "${CI:-}" ]; then
    echo "FAIL: python3-jsonschema is missing (CI is set: a missing tool fails)"; exit 1
  fi
  skip "python3-jsonschema is missing (scripts/deps.sh test installs it)"
}

case $case_name in
crash)
  expect 4 "$detheap" check -- "$bin/tool_crash"
  has "^deterministic crash: every run died of SIGSEGV after 19 heap calls, identical calls and addresses up to there$"
  has "^  last heap call recorded (slot 0): "
  hasnt "^deterministic:"
  # a handler of the program's own that calls detheap's before it
  expect 4 "$detheap" check -- "$bin/tool_crash" chain
  has "^deterministic crash: every run died of SIGSEGV after 19 heap calls"
  # the same heap calls, different exit statuses: not deterministic
  echo 0 >"$work/n"
  expect 1 "$detheap" check -- sh -c 'n=$(cat "$1"); echo $((n + 1)) >"$1"; exit $((n % 2))' sh "$work/n"
  has "^nondeterministic: the runs made identical heap calls but ended differently: run 1 exited with status 0, run 2 exited with status 1$"
  # the same nonzero status every time: deterministic, and said
  expect 0 "$detheap" check -- sh -c 'exit 3'
  has "^deterministic: 2 runs"
  has "^  every run exited with status 3$"
  ;;
tracefail)
  expect 3 "$detheap" check -- "$bin/tool_tracefail"
  has "^incomplete: processes left no usable trace (1 in run 1, 1 in run 2), so the runs cannot be called deterministic"
  # the child is named, with why (ENOTDIR: root is refused too)
  has "^  run 1: process [0-9]* (tool_tracefail, child of [0-9]*) could not open its trace /dev/null/no-such-dir/trace\.[0-9]*: Not a directory$"
  has "^  run 2: process [0-9]* (tool_tracefail, child of [0-9]*) could not open its trace"
  hasnt "^deterministic"
  # the log descriptor closed: the child is found by its message
  expect 3 "$detheap" check -- "$bin/tool_tracefail" closefds
  has "^  run 1: process [0-9]* could not open its trace /dev/null/no-such-dir/trace\.[0-9]*$"
  # a trace that opens but cannot be written
  expect 3 "$detheap" check -- "$bin/tool_tracefail" full
  has "^  run 1: process [0-9]* (tool_tracefail, child of [0-9]*) could not write all of its trace /dev/full: No space left on device$"
  ;;
selfexec)
  expect 0 "$detheap" check -- "$bin/tool_selfexec"
  has "^deterministic: 2 runs"
  has "^  2 program images, [0-9]* heap calls per run"
  # the calls before the exec are in the trace, beside those after it
  expect 0 "$detheap" run --top -- "$bin/tool_selfexec"
  has "^process [0-9]*: [0-9]* heap calls"
  has "^process [0-9]* (after exec 1): [0-9]* heap calls"
  has "5002 B in 1 call"
  has "5001 B in 1 call"
  has "7002 B in 1 call"
  has "#[0-9] before_exec+0x[0-9a-f]* (selfexec.c:$(line_of selfexec.c 'return malloc(n);' | head -1))"
  has "#[0-9] after_exec+0x[0-9a-f]* (selfexec.c:"
  # the file of a run --trace: both programs
  expect 0 "$detheap" run --trace "$work/t.%p" -- "$bin/tool_selfexec"
  [ "$(ls "$work" | grep -c '^t\.')" = 1 ] || fail "one trace file expected"
  expect 0 "$detheap" top "$work"/t.*
  has "^process [0-9]*: 2 heap calls, 2 allocations, 10003 B requested"
  has "^process [0-9]* (after exec 1): 4 heap calls, 2 allocations, 14003 B requested"
  ;;
owner)
  echo 0 >"$work/state"
  export DH_TEST_STATE="$work/state"
  expect 0 "$detheap" check -- "$bin/tool_owner"
  has "^deterministic: 2 runs"
  echo 0 >"$work/state"
  DETHEAP_REMOTE_FREE=owner expect 1 "$detheap" check -- "$bin/tool_owner"
  has "^nondeterministic: runs 1 and 2 first part at call [0-9]* of heap slot 0"
  has "^cause: DETHEAP_REMOTE_FREE=owner is in force: "
  hasnt "detheap gave different addresses"
  ;;
aslr)
  if [ "$(cat /proc/sys/kernel/randomize_va_space 2>/dev/null)" = 0 ]; then
    # nothing to compare, but check must say why it did not try
    expect 1 "$detheap" check -n 4 -- "$bin/tool_nondet"
    has "^ASLR off: not tried: ASLR is off on this machine already"
    skip "ASLR is off on this machine"
  fi
  aslr_or_skip
  expect 1 "$detheap" check -- "$bin/tool_aslr"
  has "^cause: the program itself made different calls"
  has "#0 hash_stack_into_sizes+0x[0-9a-f]* (aslr.c:"
  has "^with ASLR off (personality ADDR_NO_RANDOMIZE) three more runs made identical calls and got identical addresses: the program's calls depend on non-heap addresses"
  hasnt "agree by chance"
  # with a second thread's heap, thread timing is named as a possibility
  expect 1 "$detheap" check -- "$bin/tool_aslr" thread
  has "^with ASLR off (personality ADDR_NO_RANDOMIZE) three more runs made identical calls"
  has "^  (its threads' calls can also agree by chance: their order may depend on timing"
  # a program whose calls depend on its pid is not explained by addresses
  expect 1 "$detheap" check -n 4 -- "$bin/tool_nondet"
  has "^with ASLR off the runs still part"
  ;;
aslr_off)
  aslr_or_skip
  expect 0 "$detheap" check --aslr=off -- "$bin/tool_aslr"
  has "^deterministic: 2 runs"
  ;;
cxx)
  expect 1 "$detheap" check -n 4 -- "$bin/tool_cxx_nondet"
  has "^cause: the program itself made different calls"
  has "#0 sim::World::spawn()+0x[0-9a-f]* (cxx_nondet.cc:"
  hasnt "_ZN3sim5World5spawnEv"
  # --depth: frames recorded and shown
  expect 1 "$detheap" check -n 4 --depth 1 -- "$bin/tool_cxx_nondet"
  has "#0 sim::World::spawn()"
  hasnt "#1 main"
  ;;
nosym)
  # frames without a symbol: module+0xOFFSET, which addr2line -e takes
  command -v strip >/dev/null && command -v addr2line >/dev/null ||
    skip "strip or addr2line missing"
  cp "$bin/tool_nondet" "$work/tool_nosym" && strip "$work/tool_nosym"
  expect 1 "$detheap" check -n 4 -- "$work/tool_nosym"
  has "^  #0 tool_nosym+0x[0-9a-f]* \[tool_nosym\]$"
  off=$(sed -n 's/^  #0 tool_nosym+\(0x[0-9a-f]*\) .*/\1/p' "$work/out" | head -1)
  addr2line -e "$bin/tool_nondet" "$off" >"$work/out"
  has "nondet.c:15"
  ;;
leaks)
  expect 0 "$detheap" run --leaks -o "$work/leaks" -- "$bin/tool_leaks"
  cp "$work/leaks" "$work/out"
  has "^live at exit: 666 B in 3 blocks from 3 allocation sites$"
  has "^  333 B in 1 block (of 1 allocated there) allocated at:$"
  for k in 1 2 3; do
    has "leaks.c:$(line_of leaks.c "LEAK $k")) \[tool_leaks\]"
  done
  # the block another thread freed is not a leak
  hasnt "4444 B"
  [ "$(grep -c 'allocated at:' "$work/out")" = 3 ] || { cat "$work/out"; fail "not 3 sites"; }
  ;;
misuse)
  expect 134 "$detheap" run --top -o "$work/top" -- "$bin/tool_misuse"
  cp "$work/top" "$work/out"
  has "^misuse: pointer 0x[0-9a-f]* rejected (double free), heap slot 0 (thread [0-9]* 'tool_misuse'), after its call 2, at:$"
  has "#0 release_twice+0x[0-9a-f]* (misuse.c:$(line_of misuse.c MISUSE)) \[tool_misuse\]"
  # run --trace --stacks: the library's one line, then the misuse again
  # with its stack
  expect 134 "$detheap" run --trace "$work/m.trace" --stacks -- "$bin/tool_misuse"
  has "^detheap: free(0x[0-9a-f]*): double free (48-byte class)$"
  has "^misuse: pointer 0x[0-9a-f]* rejected (double free)"
  has "#0 release_twice+0x[0-9a-f]* (misuse.c:$(line_of misuse.c MISUSE)) \[tool_misuse\]"
  # check: the same abort in both runs, and the misuse with its stack
  expect 4 "$detheap" check -- "$bin/tool_misuse"
  has "^deterministic crash: every run died of SIGABRT after 2 heap calls"
  has "^  misuse: pointer 0x[0-9a-f]* rejected (double free)"
  has "^      #0 release_twice+0x[0-9a-f]* (misuse.c:$(line_of misuse.c MISUSE))"
  ;;
prodcons)
  expect 0 "$detheap" run --json -o "$work/s.json" -- "$bin/tool_prodcons"
  has "^allocs=1003 frees=1000 live=3 peak=50$"
  # the class of 6000-byte blocks (6544 B in the drop-in's default fine
  # set, 8 KiB with DETHEAP_CLASSES=spec), against the program's own counts
  # (every free made by another thread than the allocating one)
  size=$(jq '[.classes[] | select(.size >= 6000)][0].size' "$work/s.json")
  [ "$size" = 6544 ] || [ "$size" = 8192 ] || fail "class of 6000 B: $size"
  jq -e --argjson k "$size" '.classes[] | select(.size == $k) |
         .allocs == 1003 and
         .frees == 1000 and .live == 3 and .peak == 50 and
         .live_bytes == 3 * $k and .peak_bytes == 50 * $k and
         .requested_bytes == 1003 * 6000 and
         .rounding_bytes == 1003 * ($k - 6000)' "$work/s.json" >/dev/null ||
    fail "$size-byte class: $(jq -c --argjson k "$size" '.classes[] | select(.size == $k)' "$work/s.json")"
  jq -e --argjson k "$size" '.peak_live_bytes >= 50 * $k and
         .peak_rss_bytes > 0 and
         .committed_bytes > 0 and .live_count == .alloc_count - .free_count' \
    "$work/s.json" >/dev/null || fail "totals: $(cat "$work/s.json")"
  # the text report: the same figures, as DETHEAP_STATS=1 prints them
  expect 0 "$detheap" run --stats -- "$bin/tool_prodcons"
  name=$size; [ "$size" = 8192 ] && name=8K
  has "^$name  *1003  *1000  *3  *50  *$((3 * size))  *$((50 * size)) "
  grep -v "^allocs=" "$work/out" | sed 's/[0-9]\{3,\}/N/g' >"$work/run.txt"
  DETHEAP_STATS=1 LD_PRELOAD="$(dirname "$detheap")/libdetheap.so" \
    "$bin/tool_prodcons" 2>&1 | grep -v "^allocs=" | sed 's/[0-9]\{3,\}/N/g' \
    >"$work/env.txt"
  diff "$work/run.txt" "$work/env.txt" >"$work/out" ||
    { cat "$work/out"; fail "run --stats and DETHEAP_STATS=1 differ"; }
  ;;
schema)
  py=$(jsonschema_python) || exit $?
  expect 0 "$detheap" run --json -o "$work/a.json" -- "$bin/tool_prodcons"
  expect 0 "$detheap" run --json -o "$work/b.json" -- "$bin/tool_leaks"
  expect 0 sh -c "DETHEAP_STATS=json LD_PRELOAD='$(dirname "$detheap")/libdetheap.so' '$bin/tool_selfexec' 2>'$work/c.json'"
  for f in a b c; do
    "$py" - "$src/../../docs/stats.schema.json" "$work/$f.json" <<'PY' >"$work/out" 2>&1 ||
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
lines = [l for l in open(sys.argv[2]) if l.strip()]
assert lines, "no report"
for line in lines:
    jsonschema.validate(json.loads(line), schema)
print("valid:", len(lines), "report(s)")
PY
      { cat "$work/out"; fail "$f.json does not match docs/stats.schema.json"; }
    has "^valid:"
  done
  # and the schema rejects what is not a report
  echo '{"pid": 1}' >"$work/bad.json"
  "$py" - "$src/../../docs/stats.schema.json" "$work/bad.json" <<'PY' >/dev/null 2>&1 &&
import json, sys, jsonschema
jsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1])))
PY
    fail "the schema accepts an incomplete report"
  ;;
top)
  expect 0 "$detheap" run --top -n 3 -o "$work/top" -- "$bin/tool_leaks"
  cp "$work/top" "$work/out"
  has "^by bytes:$"
  has "^  1. 4444 B in 1 call ([0-9.]*%)$"
  has "^by calls:$"
  has "^  1. 1000 B in 20 calls ([0-9.]*%)$"
  has "#[0-9] main+0x[0-9a-f]* (leaks.c:"
  [ "$(grep -c '^  [0-9]*\. ' "$work/out")" -le 6 ] || fail "more than 3 sites per ranking"
  # top without stacks says so
  expect 0 "$detheap" run --trace "$work/plain.trace" -- "$bin/tool_leaks"
  expect 0 "$detheap" top "$work/plain.trace"
  has "(no stacks in this trace"
  expect 2 "$detheap" top
  expect 2 "$detheap" top "$work/plain.trace" --depth 0
  ;;
report_sites)
  command -v gnuplot >/dev/null || {
    [ -n "${CI:-}" ] && fail "gnuplot is missing (CI is set)"; skip "gnuplot is missing"; }
  expect 0 "$detheap" run --trace "$work/t.trace" --stacks -- "$bin/tool_leaks"
  expect 0 "$detheap" report "$work/t.trace" -o "$work/r.svg" --keep "$work/plot"
  grep -q "Live bytes by allocation site" "$work/r.svg" || fail "no site panel"
  grep -q "leak_three" "$work/r.svg" || fail "the largest live site is not named"
  # the time axis ends at the last call
  calls=$("$detheap" top "$work/t.trace" | sed -n 's/^process [0-9]*: \([0-9]*\) heap calls.*/\1/p')
  grep -q "^set xrange \[0:$calls\]" "$work/plot/plot.gp" ||
    fail "x axis does not end at call $calls: $(grep xrange "$work/plot/plot.gp")"
  # the heaps' threads under the title; --sites
  grep -q 'slot 0: thread [0-9]* tool_leaks, slot 1: thread [0-9]* tool_leaks' "$work/plot/plot.gp" ||
    fail "no threads in the title: $(grep 'multiplot title' "$work/plot/plot.gp")"
  expect 0 "$detheap" report "$work/t.trace" -o "$work/r2.svg" --sites 2 --keep "$work/plot2"
  grep -q "allocation site (top 2)" "$work/plot2/plot.gp" || fail "--sites 2 not drawn"
  [ "$(grep -c "sites.dat' using" "$work/plot2/plot.gp")" = 3 ] || fail "--sites 2: not 2 sites and the rest"
  ;;
threads)
  expect 0 "$detheap" run --stats -- "$bin/tool_prodcons"
  has "^[0-9]  *1  *[0-9]  *ordered  *[0-9]*  *consumer "
  has "^[0-9]  *1  *[0-9]  *ordered  *[0-9]*  *producer "
  has "^0  *0  *0  *ordered  *[0-9]*  *tool_prodcons "
  expect 0 "$detheap" check -- "$bin/tool_prodcons"
  has "^deterministic: 2 runs"
  has "^  threads: slot 0 'tool_prodcons', slot [12] 'consumer', slot [12] 'producer'$"
  expect 0 "$detheap" run --top -- "$bin/tool_prodcons"
  has "^  heap slot [12]: thread [0-9]* 'producer'"
  ;;
exit)
  # a child that leaves by _exit: its calls reach the trace (the preload
  # library's _exit writes it out), so a size that depends on its pid is
  # seen
  expect 1 "$detheap" check -n 3 -- "$bin/tool_exit" _
  has "^nondeterministic: "
  has "^  run 1: malloc("
  expect 0 "$detheap" check -- "$bin/tool_exit" same
  has "^deterministic: 2 runs, fingerprint [0-9a-f]*$"
  has "^  2 program images, 3 heap calls per run"
  expect 0 "$detheap" check -- "$bin/tool_exit" Exit
  has "^  2 program images, 3 heap calls per run"
  # one killed: its trace may have lost calls, so no verdict
  expect 3 "$detheap" check -- "$bin/tool_exit" kill
  has "^incomplete: "
  has "^  run 1: process [0-9]* wrote no end record: it was killed"
  hasnt "^deterministic"
  # and the statistics of a child that _exits are printed, as at exit
  lib=$(dirname "$detheap")/libdetheap.so
  [ -e "$lib" ] || skip "no $lib beside the tool"
  DETHEAP_STATS=1 LD_PRELOAD=$lib "$bin/tool_exit" same >"$work/out" 2>&1 ||
    fail "tool_exit same failed"
  [ "$(grep -c '^detheap: statistics of process' "$work/out")" = 2 ] ||
    { cat "$work/out"; fail "not two reports (parent and _exit child)"; }
  ;;
tree)
  # heap slots above 4096 (a thread's threads) are read, and 41 threads
  # are counted, not all listed
  expect 0 "$detheap" check -- "$bin/tool_tree"
  has "^deterministic: 2 runs"
  has "^  threads: slot 0 'tool_tree', "
  has ", \.\.\. (41 in all)$"
  expect 0 "$detheap" run --top -- "$bin/tool_tree"
  has "^process [0-9]*: 328 heap calls"
  has "^  heap slot 4[0-9][0-9][0-9]: thread [0-9]* 'tool_tree'"
  [ "$(grep -c "^  heap slot [0-9]*: thread" "$work/out")" = 41 ] ||
    { cat "$work/out"; fail "not 41 heaps in the profile"; }
  ;;
*) fail "unknown case $case_name" ;;
esac
echo "ok: $case_name"
