#!/bin/sh
# consumer.sh - install the current build into a temporary prefix (with a
# DESTDIR, as a distribution package would), then build and run
# consumer/consumer.c against the installed copy three ways: through
# pkg-config (shared library), and through a CMake project using
# find_package(detheap) (detheap::detheap and detheap::detheap_static).
#
# usage: consumer.sh CMAKE BUILD_DIR CONSUMER_SRC_DIR CC
set -eu
cmake=$1 build=$2 src=$3 cc=$4

work=$(mktemp -d "${TMPDIR:-/tmp}/detheap-pkg.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
fail() { echo "packaging_consumer: $*" >&2; exit 1; }

# The prefix the package is built for, and the DESTDIR staging it.
prefix=/opt/detheap-test
root=$work/root
DESTDIR=$root "$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" ||
    { cat "$work/install.log" >&2; fail "cmake --install failed"; }
p=$root$prefix
for f in include/detheap.h lib/libdetheap.a lib/libdetheap.so \
         lib/pkgconfig/detheap.pc lib/cmake/detheap/detheapConfig.cmake \
         lib/cmake/detheap/detheapConfigVersion.cmake bin/detheap; do
    [ -e "$p/$f" ] || fail "not installed: $f"
done
# The shared library and its SONAME link, whatever the libdir is called.
so=$(ls "$p"/lib*/libdetheap.so.[0-9] 2>/dev/null | head -n 1)
[ -n "$so" ] || fail "no libdetheap.so.N installed"
libdir=$(dirname "$so")

expect() { # expect LOGFILE: the consumer's line must be there
    grep -q '^detheap consumer ok: ' "$1" || { cat "$1" >&2; fail "bad output"; }
    cat "$1"
}

# 1. pkg-config, relocated: the .pc file must work from the staging root.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
flags=$(pkg-config --cflags --libs detheap) || fail "pkg-config failed"
# shellcheck disable=SC2086
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$work/consumer_pc" \
    "$src/consumer.c" $flags || fail "pkg-config build failed"
LD_LIBRARY_PATH=$libdir "$work/consumer_pc" >"$work/pc.out" ||
    fail "pkg-config consumer failed"
expect "$work/pc.out"
# It must have run against the installed library, not another copy.
LD_LIBRARY_PATH=$libdir ldd "$work/consumer_pc" | grep -q "$libdir/libdetheap.so" ||
    fail "pkg-config consumer did not load the installed libdetheap.so"

# 2. find_package, shared and static.
"$cmake" -S "$src" -B "$work/cbuild" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$p" >"$work/cmake.log" 2>&1 ||
    { cat "$work/cmake.log" >&2; fail "find_package configure failed"; }
"$cmake" --build "$work/cbuild" >"$work/build.log" 2>&1 ||
    { cat "$work/build.log" >&2; fail "find_package build failed"; }
for kind in shared static; do
    LD_LIBRARY_PATH=$libdir "$work/cbuild/consumer_$kind" >"$work/$kind.out" ||
        fail "find_package consumer_$kind failed"
    expect "$work/$kind.out"
done
# The static consumer must not need the shared library at all.
if ldd "$work/cbuild/consumer_static" | grep -q libdetheap; then
    fail "consumer_static depends on libdetheap.so"
fi
echo "packaging_consumer: pkg-config and find_package consumers ok"
