# thread_common.sh - sourced by the threads-at-scale drivers (POSIX sh).
#
#   th_run TAG LIB SECS PROG ARGS...
#       one run of PROG with LIB preloaded ("none": libc's own malloc),
#       the variables the caller exported included; stdout in
#       $th_tmp/TAG.out, stderr in $th_tmp/TAG.err; the run is killed after
#       SECS seconds.  Returns PROG's exit status (124: timed out).
#   th_clean TAG RC
#       true when the run exited 0 with no "detheap:" line on stderr; else
#       says what went wrong (and the first lines of stderr) and is false.
#       With th_notices_ok=1, "detheap:" lines are shown (note: ...), not
#       judged.
#   th_prog_lib USAGE PROG LIB ...
#       sets $prog and $lib from a driver's first two arguments (exits 2,
#       with USAGE, if one is missing or is not there)
#   th_skip MSG    prints "SKIP: MSG" and exits 77 (ctest's SKIP_RETURN_CODE):
#                  the test cannot apply on this machine
#   th_missing MSG a tool the test needs is missing: as th_skip, but when
#                  the environment variable CI is set (.ci/run) it prints
#                  "FAIL: MSG" and exits 1
#   th_fail MSG    prints "FAIL: MSG" and marks the test failed (th_failed=1)
#   th_pass MSG    prints "PASS: MSG"
#   th_finish      exits 1 if anything failed, else 0
#
# A scratch directory $th_tmp is made and removed at exit.

th_failed=0
th_tmp=$(mktemp -d "${TMPDIR:-/tmp}/dh-threads.XXXXXX") || exit 2
trap 'rm -rf "$th_tmp"' EXIT

th_prog_lib() {
    _usage=$1
    prog=${2:-} lib=${3:-}
    [ -n "$prog" ] && [ -n "$lib" ] || { echo "usage: $_usage" >&2; exit 2; }
    [ -x "$prog" ] && [ -f "$lib" ] || { echo "missing $prog or $lib" >&2; exit 2; }
}
th_skip() { echo "SKIP: $*"; exit 77; }
th_missing() {
    [ -z "${CI:-}" ] || { echo "FAIL: $* (CI is set: a missing tool fails)"; exit 1; }
    th_skip "$@"
}
th_fail() { echo "FAIL: $*"; th_failed=1; }
th_pass() { echo "PASS: $*"; }
th_finish() { exit "$th_failed"; }

th_run() {
    _tag=$1 _lib=$2 _secs=$3
    shift 3
    # env sets LD_PRELOAD for PROG only: timeout itself runs without it
    if [ "$_lib" = none ]; then
        timeout -k 5 "$_secs" env -u LD_PRELOAD "$@" \
            >"$th_tmp/$_tag.out" 2>"$th_tmp/$_tag.err"
    else
        timeout -k 5 "$_secs" env LD_PRELOAD="$_lib" "$@" \
            >"$th_tmp/$_tag.out" 2>"$th_tmp/$_tag.err"
    fi
}

# th_clean TAG RC: the run ended well and detheap said nothing on stderr,
# but for th_expect, if set: a line the run must print exactly once (a
# mode's notice, e.g. DETHEAP_REMOTE_FREE=owner's); any other detheap line
# still fails the run.
th_clean() {
    _tag=$1 _rc=$2 _err="$th_tmp/$_tag.err"
    if [ -n "${th_expect:-}" ] && [ "$_rc" = 0 ]; then
        if [ "$(grep -cxF "$th_expect" "$_err")" != 1 ]; then
            th_fail "$_tag: not said once on stderr: $th_expect"
            head -n 20 "$_err" | sed 's/^/  | /'
            return 1
        fi
        grep -vxF "$th_expect" "$_err" >"$_err.rest" || true
        _err="$_err.rest"
    fi
    if [ "$_rc" = 124 ] || [ "$_rc" = 137 ]; then
        th_fail "$_tag: timed out"
    elif [ "$_rc" != 0 ]; then
        th_fail "$_tag: exit status $_rc"
    elif ! grep -q 'detheap:' "$_err"; then
        return 0
    elif [ "${th_notices_ok:-0}" = 1 ]; then
        grep 'detheap:' "$_err" | head -n 5 | sed 's/^/note: /'
        return 0
    else
        th_fail "$_tag: detheap reported on stderr:"
    fi
    head -n 20 "$_err" | sed 's/^/  | /'
    return 1
}

# What DETHEAP_REMOTE_FREE=owner says once at start.
th_owner_notice="detheap: DETHEAP_REMOTE_FREE=owner: blocks freed by another thread go back to their heap; that heap's addresses then depend on timing"
