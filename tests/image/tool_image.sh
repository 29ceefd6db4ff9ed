#!/bin/sh
# tool_image.sh DETHEAP TEST_SNAPSHOT: `detheap image info` and `detheap
# image check` on an image test_snapshot writes, on a damaged copy of it,
# and on a file that is no image.
set -eu
tool=$1 writer=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/dh-tool-image.XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail() { echo "tool_image: $*" >&2; exit 1; }

"$writer" write-image "$dir/a.img" || fail "could not write the image"
"$tool" image info "$dir/a.img" >"$dir/info" || fail "info failed"
grep -q "^  base *0x544000000000$" "$dir/info" || fail "info: base: $(cat "$dir/info")"
grep -q "^  live *100 blocks" "$dir/info" || fail "info: live: $(cat "$dir/info")"
grep -q "^  classes *13: 16 32 48 64 128 256 512 1024 2048 4096 8192 16384 65536$" "$dir/info" ||
    fail "info: classes: $(cat "$dir/info")"
grep -q "^  checksums *sealed$" "$dir/info" || fail "info: sealed"
grep -q "^  root *0x5440" "$dir/info" || fail "info: root"
"$tool" image check "$dir/a.img" >"$dir/check" || fail "check of an intact image failed"
grep -q "intact: header, state map, data checksums and every invariant; 100 live blocks" "$dir/check" ||
    fail "check: $(cat "$dir/check")"

# one byte of data changed: check finds it (open alone would not)
size=$(stat -c %s "$dir/a.img")
cp "$dir/a.img" "$dir/b.img"
off=$((size - 4096 * 200))
printf 'Z' | dd of="$dir/b.img" bs=1 seek="$off" conv=notrunc status=none
"$tool" image info "$dir/b.img" >/dev/null || fail "info reads only the headers"
if "$tool" image check "$dir/b.img" >"$dir/check"; then
    fail "check of a damaged image passed"
fi
grep -q "not intact: damaged or truncated" "$dir/check" || fail "check: $(cat "$dir/check")"

echo "not an image" >"$dir/c.img"
if "$tool" image info "$dir/c.img" 2>"$dir/err"; then fail "info of a text file passed"; fi
grep -q "not a detheap image" "$dir/err" || fail "info: $(cat "$dir/err")"
if "$tool" image 2>/dev/null; then fail "usage error passed"; fi
echo "tool_image: ok"
