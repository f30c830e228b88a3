#!/usr/bin/env bash
# Builds the libFuzzer targets with clang + ASan/UBSan, replays the seed
# corpus and the saved regressions, then fuzzes each target for a bounded
# time (FUZZ_SECONDS, default 60). Exit status non-zero on any crash.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
if [ ! -d "$build" ]; then
  # -O1 -g1 as CI's sanitizer pass: about half the build time of -O2 -g,
  # the same checks, file:line in the reports.
  CXX=clang++ meson setup "$build" "$root" -Dfuzz=true -Dtests=false \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=plain \
    "-Dcpp_args=['-O1','-g1']" "-Dc_args=['-O1','-g1']" >/dev/null
fi
ninja -C "$build" tests/fuzz/fuzz_image tests/fuzz/fuzz_chain tests/fuzz/fuzz_domain_xml tests/fuzz/fuzz_guest_text >/dev/null
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
bash "$root/tests/fuzz/make-seeds.sh" "$work/seeds"
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for target in image chain domain_xml guest_text; do
  bin="$build/tests/fuzz/fuzz_$target"
  corpus="$work/corpus-$target"
  mkdir -p "$corpus"
  cp "$work/seeds/$target"/* "$corpus/"
  regressions="$root/tests/fuzz/regressions/$target"
  [ -d "$regressions" ] && cp "$regressions"/* "$corpus/" 2>/dev/null || true
  echo "== fuzz_$target: replay $(ls "$corpus" | wc -l) inputs"
  "$bin" -runs=0 -rss_limit_mb=2048 "$corpus"/* 2>&1 | tail -2
  echo "== fuzz_$target: ${seconds}s"
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
    -dict="$root/tests/fuzz/$(case $target in domain_xml) echo domain ;; guest_text) echo guest ;; *) echo qcow2 ;; esac).dict" -artifact_prefix="$work/crash-$target-" -print_final_stats=1 \
    "$corpus" 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Done' || true
  if compgen -G "$work/crash-$target-*" >/dev/null; then
    mkdir -p "$root/fuzz-artifacts"; cp "$work"/crash-$target-* "$root/fuzz-artifacts/"
    echo "fuzz_$target found a crash: inputs saved in fuzz-artifacts/"; exit 1
  fi
done
echo "fuzzing: no crashes"
