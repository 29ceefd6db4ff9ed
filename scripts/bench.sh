#!/bin/bash
# bench.sh BUILD_DIR: benchmark detheap against glibc, jemalloc, tcmalloc and
# mimalloc and write docs/BENCHMARKS.md and docs/bench.png (make bench).
#
# Every allocator but glibc is swapped in with LD_PRELOAD; detheap's row is
# BUILD_DIR/libdetheap.so, included only when that library exports malloc.
# The microbenchmarks and the instruction count also run a reference row,
# ideal-lifo (BUILD_DIR/bench/libideal_lifo.so, bench/ideal_lifo.c): an
# ideal LIFO free list behind a call, the floor detheap is measured against.
# It is no real allocator, so the thread benchmarks and the real programs
# leave it out.
# Every measurement runs the allocators interleaved (A B C D E, A B C D E,
# ...) for several rounds, and each ratio is taken between figures of the
# same round, so a slow spell of this shared machine hits all of them alike;
# the report gives each ratio's min/median/max over the rounds.
#
# Environment:
#   BENCH_QUICK=1   one round, small sizes: checks the harness in ~2 minutes
#   REFERENCE_RS    the original Rust design, for the handle-API row
#                   (default ../shared/reference/binned_alloc.rs beside the
#                   repository); the row is skipped, with a note, without it
#   BENCH_OUT       the report (default docs/BENCHMARKS.md; the plot goes
#                   beside it as bench.png)
set -euo pipefail

die() { echo "bench.sh: $*" >&2; exit 1; }
log() { echo "bench.sh: $*" >&2; }

[ $# -eq 1 ] || die "usage: scripts/bench.sh BUILD_DIR"
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD_ARG=$1
mkdir -p "$1"
BUILD=$(cd "$1" && pwd)
QUICK=${BENCH_QUICK:-0}
[ "$QUICK" = 1 ] || QUICK=0
REFERENCE_RS=${REFERENCE_RS:-$REPO/../shared/reference/binned_alloc.rs}
OUT_MD=${BENCH_OUT:-$REPO/docs/BENCHMARKS.md}
OUT_PNG=$(dirname "$OUT_MD")/bench.png
JOBS=2 # the machine has two cores, shared

# ---- sizes ---------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
    MODE=quick ROUNDS=1 MICRO_REPS=3 ITER_DIV=10
    CG_ITERS=20000 HF_WARMUP=0 HF_RUNS=1 INPUT_SCALE=0.25 HANDLE_SECONDS=0.05
else
    MODE=full ROUNDS=5 MICRO_REPS=5 ITER_DIV=1
    CG_ITERS=200000 HF_WARMUP=1 HF_RUNS=2 INPUT_SCALE=1 HANDLE_SECONDS=0.3
fi
# Real programs: within a round hyperfine times one allocator's runs back
# to back, so a slow spell of the machine (one run of the same program
# varies by +-20% here) lands on one allocator; many short rounds spread it
# over all of them, and the median over rounds discards it.
PROG_ROUNDS=$(( QUICK == 1 ? 1 : 7 ))
# Iterations per timed repetition; chosen so that one repetition takes tens
# of milliseconds with the slowest allocator.
declare -A MICRO_ITERS=([pair]=2000000 [pair_live]=2000000 [lifo]=2000000
    [ws4k]=500000 [ws64k]=200000 [realloc]=200000 [calloc]=1000000)
# Work of each two-thread benchmark (bench/threads.c; divided by ITER_DIV in
# quick mode): larson and prodcons operations, larson-chain generations of
# 500,000 replacements per chain, xmalloc blocks, mstress steps.  Each takes
# about a second with glibc.
THREAD_BENCHES=(larson prodcons larson-chain xmalloc mstress)
declare -A THREAD_WORK=([larson]=2000000 [prodcons]=2000000 [larson-chain]=40
    [xmalloc]=10000000 [mstress]=5000000)

RES=$BUILD/bench/results
INPUTS=$BUILD/bench/inputs-$MODE
rm -rf "$RES"
mkdir -p "$RES" "$INPUTS"
NOTES=$RES/notes.txt
: >"$NOTES"
note() { echo "$*" >>"$NOTES"; log "$*"; }
T_START=$(date +%s)

# ---- dependencies and build ----------------------------------------------
"$REPO/scripts/deps.sh" bench build

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$REPO" -B "$BUILD" >/dev/null
fi
cmake --build "$BUILD" -j "$JOBS" --target detheap_static detheap_shared >/dev/null
# The tool is only used to check the handle driver's output.
cmake --build "$BUILD" -j "$JOBS" --target detheap >/dev/null 2>&1 || true
BENCH_BIN=$BUILD/bench
# grep without -q reads the whole list: with -q it would stop at the match,
# make would fail writing the rest (EPIPE), pipefail would take the else
# branch, and its standalone configure would overwrite the main build's
# BUILD/bench, which the main build then no longer builds.
if cmake --build "$BUILD" --target help 2>/dev/null | grep bench_programs >/dev/null; then
    cmake --build "$BUILD" -j "$JOBS" --target bench_programs >/dev/null
else
    # bench/ is not (yet) part of the main build: build it on its own
    # against the library just built.
    cmake -S "$REPO/bench" -B "$BENCH_BIN" -DDETHEAP_BUILD_DIR="$BUILD" >/dev/null
    cmake --build "$BENCH_BIN" -j "$JOBS" --target bench_programs >/dev/null
fi
BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
MICRO=$BENCH_BIN/micro THREADS=$BENCH_BIN/threads
PEAKRSS=$BENCH_BIN/peakrss HANDLE=$BENCH_BIN/handle_ops
for p in "$MICRO" "$THREADS" "$PEAKRSS" "$HANDLE" "$BENCH_BIN/image"; do
    [ -x "$p" ] || die "missing benchmark program $p"
done

# ---- allocators ------------------------------------------------------------
# find_lib SONAME PACKAGE: the library's path from the loader cache, else
# from the Debian package's file list.
find_lib() {
    local p
    p=$(ldconfig -p 2>/dev/null | awk -v so="$1" '$1 == so && /x86-64/ {print $NF; exit}')
    if [ -z "$p" ]; then
        p=$(dpkg -L "$2" 2>/dev/null | grep -m1 "/$1\$" || true)
    fi
    echo "$p"
}

ALLOCS=() # names, in the order they run within a round
declare -A LIB=() SONAME=()
# A preload that cannot run the simplest benchmark is reported, not used.
preload_runs() { # NAME PATH SONAME
    if ! LD_PRELOAD=$2 "$MICRO" pair 1000 1 0 >/dev/null 2>&1; then
        note "$1: $3 was found but a program preloaded with it fails; row skipped."
        return 1
    fi
}
add_alloc() { # NAME PATH SONAME
    preload_runs "$@" || return 0
    ALLOCS+=("$1")
    LIB[$1]=$2
    SONAME[$1]=$3
}
DETHEAP_SO=$BUILD/libdetheap.so
if [ -f "$DETHEAP_SO" ] && nm -D --defined-only "$DETHEAP_SO" 2>/dev/null |
        awk '$3 == "malloc" {f = 1} END {exit !f}'; then
    add_alloc detheap "$DETHEAP_SO" "$BUILD_ARG/libdetheap.so"
else
    note "detheap: $BUILD_ARG/libdetheap.so does not export malloc (no preload library yet); its rows are not measured."
fi
ALLOCS+=(glibc)
LIB[glibc]=""
SONAME[glibc]="(none: the C library's malloc)"
for spec in jemalloc:libjemalloc.so.2:libjemalloc2 \
            tcmalloc:libtcmalloc_minimal.so.4:libtcmalloc-minimal4 \
            mimalloc:libmimalloc.so.2:libmimalloc2.0; do
    IFS=: read -r name so pkg <<<"$spec"
    path=$(find_lib "$so" "$pkg")
    if [ -n "$path" ] && [ -f "$path" ]; then
        add_alloc "$name" "$path" "$so"
    else
        note "$name: $so not found (package $pkg); row skipped."
    fi
done
# The reference row runs right after detheap (or first), so that the two
# figures compared most closely are taken closest in time.
M_ALLOCS=("${ALLOCS[@]}")
IDEAL_SO=$BENCH_BIN/libideal_lifo.so
if [ ! -f "$IDEAL_SO" ]; then
    note "ideal-lifo: $BUILD_ARG/bench/libideal_lifo.so was not built; the reference row is skipped."
elif preload_runs ideal-lifo "$IDEAL_SO" "$BUILD_ARG/bench/libideal_lifo.so"; then
    LIB[ideal-lifo]=$IDEAL_SO
    SONAME[ideal-lifo]=$BUILD_ARG/bench/libideal_lifo.so
    if [ -n "${LIB[detheap]:-}" ]; then
        M_ALLOCS=(detheap ideal-lifo "${ALLOCS[@]:1}")
    else
        M_ALLOCS=(ideal-lifo "${ALLOCS[@]}")
    fi
fi
log "allocators: ${ALLOCS[*]}; microbenchmarks and instruction count: ${M_ALLOCS[*]} ($MODE mode)"
# Third column: the reference row is marked so that the report keeps it out
# of the tables of the thread benchmarks and the real programs.
for a in "${M_ALLOCS[@]}"; do
    kind=allocator
    [ "$a" != ideal-lifo ] || kind=reference
    printf '%s\t%s\t%s\n' "$a" "${SONAME[$a]}" "$kind"
done >"$RES/allocators.tsv"

# ---- single-thread microbenchmarks ------------------------------------------
log "microbenchmarks"
for b in $("$MICRO" list); do
    iters=$(( MICRO_ITERS[$b] / ITER_DIV ))
    echo "micro	$b	$BUILD_ARG/bench/micro $b $iters $MICRO_REPS 1" >>"$RES/commands.tsv"
    for r in $(seq "$ROUNDS"); do
        for a in "${M_ALLOCS[@]}"; do
            if out=$(LD_PRELOAD=${LIB[$a]} "$MICRO" "$b" "$iters" "$MICRO_REPS" 1); then
                read -r _ best med <<<"$out"
                printf '%s\t%s\t%s\t%s\t%s\n' "$b" "$r" "$a" "$best" "$med" >>"$RES/micro.tsv"
            else
                note "micro $b failed under $a (round $r)."
            fi
        done
    done
done

# ---- two threads ----------------------------------------------------------------
log "two-thread benchmarks"
# detheap runs twice here: with its default DETHEAP_REMOTE_FREE=keep (a block
# freed by another thread stays with the freeing thread, which keeps every
# thread's addresses deterministic) and, as detheap-owner, with =owner (the
# block goes back to the heap it came from).
T_ALLOCS=("${ALLOCS[@]}")
if [ -n "${LIB[detheap]:-}" ]; then T_ALLOCS=(detheap detheap-owner "${ALLOCS[@]:1}"); fi
for b in "${THREAD_BENCHES[@]}"; do
    work=$(( THREAD_WORK[$b] / ITER_DIV ))
    [ "$work" -ge 1 ] || work=1
    echo "threads	$b	$BUILD_ARG/bench/threads $b $work" >>"$RES/commands.tsv"
    for r in $(seq "$ROUNDS"); do
        for a in "${T_ALLOCS[@]}"; do
            lib=${LIB[${a%-owner}]} remote=keep
            [ "$a" = "${a%-owner}" ] || remote=owner
            err=$RES/threads.$b.$a.$r.err
            if out=$(DETHEAP_REMOTE_FREE=$remote LD_PRELOAD=$lib timeout 120 "$THREADS" "$b" "$work" 2>"$err"); then
                read -r _ ops rss <<<"$out"
                printf '%s\t%s\t%s\t%s\t%s\n' "$b" "$r" "$a" "$ops" "$rss" >>"$RES/threads.tsv"
            else
                code=$?
                why="exit status $code"
                [ "$code" -le 128 ] || why="killed by signal $((code - 128))"
                [ "$code" != 124 ] || why="timed out after 120 s"
                [ ! -s "$err" ] || why="$why: $(tail -n 1 "$err")"
                note "threads $b failed under $a (round $r; $why)."
            fi
        done
    done
done

# ---- instructions per malloc+free pair (callgrind) ------------------------------
# Two runs, with N and with 0 iterations; their difference divided by N
# leaves out start-up, the preload's initialisation and the exit.  The
# count is deterministic, so one round suffices.
log "instructions per pair (callgrind)"
echo "callgrind	pair_live	valgrind --tool=callgrind $BUILD_ARG/bench/micro pair_live N 1 0, N = $CG_ITERS and 0" >>"$RES/commands.tsv"
cg_total() { # ALLOC ITERS: total Ir of one run
    local f=$RES/callgrind.$1.$2.out
    LD_PRELOAD=${LIB[$1]} valgrind --tool=callgrind --callgrind-out-file="$f" \
        "$MICRO" pair_live "$2" 1 0 >/dev/null 2>"$f.log" || return 1
    awk '/^(summary|totals):/ {print $2; exit}' "$f"
}
for a in "${M_ALLOCS[@]}"; do
    if n1=$(cg_total "$a" "$CG_ITERS") && n0=$(cg_total "$a" 0) &&
            [ -n "$n1" ] && [ -n "$n0" ]; then
        printf '%s\t%s\t%s\t%s\n' "$a" "$CG_ITERS" "$n1" "$n0" >>"$RES/ir.tsv"
    else
        note "callgrind failed under $a."
    fi
done

# ---- real programs ----------------------------------------------------------------
log "real programs: generating inputs"
python3 "$REPO/bench/inputs.py" "$INPUTS" "$INPUT_SCALE"
py=$(command -v /usr/bin/python3 || command -v python3)
I=$INPUTS
# name|extra environment|program and arguments (hyperfine -N word syntax)
PROGRAMS=(
    "sqlite3||sqlite3 -bail :memory: '.read $I/sqlite.sql'"
    "lua5.4||lua5.4 $I/table.lua"
    "perl|PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0|perl -e 'my %h; for my \$i (1..$(awk -v s="$INPUT_SCALE" 'BEGIN{print int(150000*s)}')) { \$h{\"k\$i\"} = [\$i, \"v\" . (\$i % 1000)] } my \$s = 0; \$s += \$h{\$_}[0] for sort keys %h; my %c; \$c{\$_->[1]}++ for values %h; print \"\$s \", scalar(keys %c), \"\\n\"'"
    "jq||jq -c 'group_by(.g) | map({g: .[0].g, n: length, s: (map(.score) | add), t: ([.[].tags[]] | unique | length)})' $I/data.json"
    "gawk||gawk '{ c[\$1]++; s[\$2] += \$3; a[\$1 \",\" \$2] = \$0 } END { n = 0; for (k in c) n++; m = 0; for (k in s) m += s[k]; print n, m, length(a) }' $I/words.txt"
    "python3|PYTHONMALLOC=malloc PYTHONHASHSEED=0|$py $I/dict.py"
    "git|GIT_PAGER=cat GIT_CONFIG_NOSYSTEM=1|git -C $I/git log -p --stat"
    "xz||xz -c -6 -T1 $I/xz.dat"
)
# The real programs also run on detheap with the original design's 13
# classes, as detheap-spec (DETHEAP_CLASSES=spec; detheap is the drop-in's
# default, the fine set).
P_ALLOCS=("${ALLOCS[@]}")
if [ -n "${LIB[detheap]:-}" ]; then P_ALLOCS=(detheap detheap-spec "${ALLOCS[@]:1}"); fi
# The command hyperfine runs for program spec $1 under allocator $2.
prog_cmd() {
    local env cmd extra=
    [ "$2" = "${2%-spec}" ] || extra="DETHEAP_CLASSES=spec "
    IFS='|' read -r _ env cmd <<<"$1"
    echo "env LD_PRELOAD=${LIB[${2%-spec}]} $extra$env $cmd"
}
# Word-split a hyperfine-style command line for peakrss, honouring quotes.
prog_argv() { eval "ARGV=($1)"; }
for spec in "${PROGRAMS[@]}"; do
    IFS='|' read -r name env cmd <<<"$spec"
    # As the report shows it: the build directory as given, not absolute.
    shown=${cmd//$I/$BUILD_ARG/bench/inputs-$MODE}
    echo "program	$name	${env:+$env }$shown" >>"$RES/commands.tsv"
done
for r in $(seq "$PROG_ROUNDS"); do
    log "real programs: round $r of $PROG_ROUNDS"
    for spec in "${PROGRAMS[@]}"; do
        name=${spec%%|*}
        # Peak RSS, and the output compared with glibc's: an allocator that
        # crashes or changes the output is reported and not timed.
        hf_args=()
        rows=()
        for a in glibc "${P_ALLOCS[@]/glibc/}"; do
            [ -n "$a" ] || continue
            prog_argv "$(prog_cmd "$spec" "$a")"
            out=$RES/prog.$name.$a.out
            read -r rss code secs <<<"$("$PEAKRSS" "$out" "${ARGV[@]}" 2>/dev/null)"
            if [ "$code" != 0 ]; then
                note "$name exits with status $code under $a (round $r); not timed."
                continue
            fi
            same=1
            if ! cmp -s "$out" "$RES/prog.$name.glibc.out"; then
                same=0
                note "$name prints a different output under $a than under glibc (round $r)."
            fi
            rows+=("$(printf '%s\t%s\t%s\t%s\t%s\t%s' "$name" "$r" "$a" "$rss" "$secs" "$same")")
        done
        # Timed in the allocators' usual order, glibc's output checked first.
        for a in "${P_ALLOCS[@]}"; do
            printf '%s\n' "${rows[@]}" | grep -q "^$name	$r	$a	" || continue
            printf '%s\n' "${rows[@]}" | grep "^$name	$r	$a	" >>"$RES/rss.tsv"
            hf_args+=(-n "$a" "$(prog_cmd "$spec" "$a")")
        done
        [ ${#hf_args[@]} -gt 0 ] || continue
        json=$RES/hf.$name.$r.json
        if hyperfine -N --style none --warmup "$HF_WARMUP" --runs "$HF_RUNS" \
                --export-json "$json" "${hf_args[@]}" >/dev/null 2>"$json.log"; then
            python3 - "$json" "$name" "$r" >>"$RES/programs.tsv" <<'EOF'
import json, sys
for res in json.load(open(sys.argv[1]))["results"]:
    print("%s\t%s\t%s\t%.6f" % (sys.argv[2], sys.argv[3], res["command"], res["median"]))
EOF
        else
            note "hyperfine failed on $name (round $r): $(tail -n 1 "$json.log")"
        fi
    done
done

# ---- handle API against the original Rust design ------------------------------
log "handle API"
HANDLE_RS=""
if [ ! -f "$REFERENCE_RS" ]; then
    note "handle API: the original Rust design was not found (set REFERENCE_RS to binned_alloc.rs); the Rust column is skipped."
elif ! command -v rustc >/dev/null; then
    note "handle API: rustc is not installed; the Rust column is skipped."
else
    mkdir -p "$BENCH_BIN/rust"
    cp "$REFERENCE_RS" "$BENCH_BIN/rust/binned_alloc.rs"
    cp "$REPO/bench/handle_ops.rs" "$BENCH_BIN/rust/handle_ops.rs"
    if rustc -O --edition 2021 -o "$BENCH_BIN/handle_ops_rs" \
            "$BENCH_BIN/rust/handle_ops.rs" 2>"$RES/rustc.log"; then
        HANDLE_RS=$BENCH_BIN/handle_ops_rs
        rustc --version >"$RES/rustc.version"
    else
        note "handle API: rustc failed to build the Rust driver ($(head -n 1 "$RES/rustc.log")); the Rust column is skipped."
    fi
fi
# Per repetition, outside the clock, handle_ops empties its one heap with
# dh_heap_reset and handle_ops_rs builds a new BinnedAllocator (whose Vecs
# reuse memory glibc got back from the previous one); the report says so.
echo "handle	C	$BUILD_ARG/bench/handle_ops tests/conformance/caseNN.ops $HANDLE_SECONDS (one heap, dh_heap_reset between repetitions)" >>"$RES/commands.tsv"
[ -z "$HANDLE_RS" ] ||
    echo "handle	Rust	$BUILD_ARG/bench/handle_ops_rs tests/conformance/caseNN.ops $HANDLE_SECONDS (rustc -O, with the original binned_alloc.rs as a module; a new BinnedAllocator per repetition)" >>"$RES/commands.tsv"
for ops in "$REPO"/tests/conformance/case*.ops; do
    c=$(basename "$ops" .ops)
    # Both drivers must print what their implementation prints for the
    # script: the Rust one the reference answer, the C one the tool's.
    if [ -n "$HANDLE_RS" ] && ! "$HANDLE_RS" --print "$ops" | cmp -s - "${ops%.ops}.expected"; then
        note "handle API: the Rust driver's output on $c differs from $c.expected."
    fi
    if [ -x "$BUILD/detheap" ] && ! "$HANDLE" --print "$ops" | cmp -s - <("$BUILD/detheap" ops "$ops"); then
        note "handle API: the C driver's output on $c differs from 'detheap ops'."
    fi
    for r in $(seq "$ROUNDS"); do
        for impl in C Rust; do
            prog=$HANDLE
            if [ "$impl" = Rust ]; then prog=$HANDLE_RS; fi
            [ -n "$prog" ] || continue
            if out=$("$prog" "$ops" "$HANDLE_SECONDS"); then
                read -r best med nops runs <<<"$out"
                printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$r" "$impl" "$best" "$med" "$nops" >>"$RES/handle.tsv"
            else
                note "handle API: the $impl driver failed on $c."
            fi
        done
    done
done

# ---- heap images and rollback ------------------------------------------------------
# bench/image.c: open + walk of a 1 GiB image against rebuilding it; rollback
# of 1% of its pages against fork() and a full copy; the write trackers.
# About a minute; the image goes to BUILD/bench (removed afterwards).
log "heap images and rollback"
IMAGE_MIB=$(( QUICK == 1 ? 256 : 1024 ))
echo "image	all	$BUILD_ARG/bench/image all $BUILD_ARG/bench $IMAGE_MIB" >>"$RES/commands.tsv"
if ! "$BENCH_BIN/image" all "$BENCH_BIN" "$IMAGE_MIB" >"$RES/image.tsv" 2>"$RES/image.err"; then
    note "image benchmark failed: $(tail -n 1 "$RES/image.err")"
fi

# ---- report ------------------------------------------------------------------------
T_END=$(date +%s)
{
    echo "mode	$MODE"
    echo "rounds	$ROUNDS"
    echo "prog_rounds	$PROG_ROUNDS"
    echo "hf_runs	$HF_RUNS"
    echo "hf_warmup	$HF_WARMUP"
    echo "micro_reps	$MICRO_REPS"
    echo "handle_seconds	$HANDLE_SECONDS"
    echo "seconds	$((T_END - T_START))"
    echo "build	$BUILD_ARG"
    echo "build_type	${BUILD_TYPE:-default}"
    echo "cpu	$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "cores	$(nproc)"
    echo "ram	$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel	$(uname -sr)"
    echo "distro	$(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "date	$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cc	$(cc --version | head -n 1)"
    echo "hyperfine	$(hyperfine --version)"
    echo "valgrind	$(valgrind --version)"
    [ ! -f "$RES/rustc.version" ] || echo "rustc	$(cat "$RES/rustc.version")"
    for p in sqlite3 lua5.4 perl jq gawk python3 git xz-utils libjemalloc2 \
             libtcmalloc-minimal4 libmimalloc2.0; do
        echo "pkg	$p $(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo '?')"
    done
} >"$RES/meta.tsv"
mkdir -p "$(dirname "$OUT_MD")"
python3 "$REPO/bench/report.py" "$RES" "$OUT_MD" "$OUT_PNG"
log "wrote $OUT_MD and $OUT_PNG in $((T_END - T_START)) s"
