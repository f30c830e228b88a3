#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test (unit + end-to-end).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/deps.sh"
build=${BUILD_DIR:-$root/build}
BUILD_DIR=$build bash "$root/scripts/build.sh" "$@"
# CI installs the build (clonekit, and the plugin into nbdkit's plugin
# directory) so that the tests can also run `nbdkit clonekit` by name.
if [ "${CLONEKIT_INSTALL:-0}" = 1 ]; then meson install -C "$build" --quiet; fi
rc=0
# MESON_TEST_ARGS: e.g. "--no-suite browser" (CI's sanitizer pass).
meson test -C "$build" --print-errorlogs ${MESON_TEST_ARGS:-} || rc=$?
python3 "$root/scripts/test-summary.py" "$build/meson-logs/testlog.json"
exit $rc
