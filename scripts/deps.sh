#!/bin/sh
# deps.sh GROUP...: install the Debian packages a make target needs, if any
# is missing.  Groups: build, test, demo, bench, fuzz, tool.  Runs apt-get
# as root, or through sudo; does nothing when everything is there.
set -eu
pkgs=""
for group in "$@"; do
  case "$group" in
    build) pkgs="$pkgs gcc g++ make cmake pkg-config libcmocka-dev" ;;
    test)  pkgs="$pkgs gcc g++ make cmake pkg-config libcmocka-dev clang
                 libclang-rt-14-dev valgrind sqlite3 lua5.4 gawk jq perl
                 python3 git xz-utils libunwind-dev libdw-dev gnuplot-nox
                 libpython3.11-testsuite cargo python3-jsonschema" ;;
    demo)  pkgs="$pkgs gcc g++ make cmake pkg-config sqlite3 libunwind-dev
                 libdw-dev" ;;
    tool)  pkgs="$pkgs libunwind-dev libdw-dev gnuplot-nox" ;;
    fuzz)  pkgs="$pkgs clang libclang-rt-14-dev" ;;
    bench) pkgs="$pkgs libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0
                 hyperfine valgrind gnuplot-nox sqlite3 lua5.4 gawk jq perl
                 python3 git xz-utils" ;;
    *) echo "deps.sh: unknown group '$group'" >&2; exit 2 ;;
  esac
done
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps.sh: installing:$missing"
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing
