#!/bin/sh
# missing_tool.sh TEST WHAT: the command registered for a test whose tool
# (WHAT: a program or a header) was not found when the build was
# configured, so that the test is listed and reported instead of silently
# absent.  On a developer machine it is skipped (exit 77, ctest's
# SKIP_RETURN_CODE); when the environment variable CI is set (.ci/run sets
# CI=1) it fails, because there every tool the tests need must be there.
# Install the tool (scripts/deps.sh test) and configure again.
set -u
test_name=${1:?usage: missing_tool.sh TEST WHAT}
what=${2:?usage: missing_tool.sh TEST WHAT}
if [ -n "${CI:-}" ]; then
    echo "FAIL: $test_name cannot run: $what not found at configure time (CI is set: a missing tool fails)"
    exit 1
fi
echo "SKIP: $test_name: $what not found at configure time (scripts/deps.sh test installs it; then configure again)"
exit 77
