#!/bin/sh
# fuzz.sh [SECONDS] [BUILD_DIR]: build the libFuzzer targets of fuzz/ with
# clang (ASan + UBSan) into BUILD_DIR (default build-fuzz) and run each for
# SECONDS (default 60, or $FUZZ_SECONDS) on a scratch copy of its seed
# corpus, plus its saved regressions (fuzz/regressions/TARGET), which are
# replayed first.  Prints each target's executions and fails if any target
# crashes or diverges from its model; the input that did it is left in
# BUILD_DIR/artifacts/.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-${FUZZ_SECONDS:-60}}
build=${2:-build-fuzz}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
jobs=${JOBS:-2}

# clang and its libFuzzer runtime
cc=${FUZZ_CC:-clang}
if ! command -v "$cc" >/dev/null 2>&1 ||
   [ ! -e "$("$cc" -print-resource-dir 2>/dev/null)/lib/linux/libclang_rt.fuzzer-x86_64.a" ]; then
  "$root/scripts/deps.sh" fuzz
fi

cmake -S "$root/fuzz" -B "$build" -DCMAKE_C_COMPILER="$cc" >/dev/null
cmake --build "$build" -j "$jobs" >/dev/null

artifacts="$build/artifacts"
mkdir -p "$artifacts"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/detheap-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM

status=0
for target in fuzz_handle fuzz_pointer fuzz_corrupt fuzz_override fuzz_options fuzz_trace fuzz_image; do
  if [ ! -x "$build/$target" ]; then
    echo "$target: not built (its source is missing), skipped"
    continue
  fi
  corpus="$scratch/$target"
  mkdir -p "$corpus"
  cp "$root/fuzz/corpus/$target/"* "$corpus/" 2>/dev/null || true
  dirs="$corpus"
  [ -d "$root/fuzz/regressions/$target" ] && dirs="$dirs $root/fuzz/regressions/$target"
  log="$scratch/$target.log"
  # shellcheck disable=SC2086
  if "$build/$target" -max_total_time="$seconds" -timeout=30 \
       -print_final_stats=0 -artifact_prefix="$artifacts/$target-" \
       $dirs >"$log" 2>&1; then
    runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
    echo "$target: ok, ${runs:-?} executions in ${seconds} s"
  else
    status=1
    echo "$target: FAILED; last lines of its log:"
    tail -n 40 "$log"
    ls "$artifacts/$target-"* 2>/dev/null | sed 's/^/  input saved: /'
  fi
done
exit $status
