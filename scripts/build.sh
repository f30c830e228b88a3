#!/usr/bin/env bash
# Configures (once) and builds BUILD_DIR (default build/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
[ -f "$build/build.ninja" ] || meson setup "$build" "$root" "$@" >/dev/null
ninja -C "$build" >/dev/null
