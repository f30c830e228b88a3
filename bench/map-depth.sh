#!/usr/bin/env bash
# Resolver cost vs chain depth: `clonekit map` against `qemu-img map` on the
# same chain (case (c): 1 GiB, 64 KiB clusters, 256 layers, each writing 1 %
# of the clusters in random order), at several snapshot depths. Both maps
# must be identical; prints a markdown table of medians and ratios.
#   bench/map-depth.sh [WORKDIR]    (needs hyperfine, qemu-img, a built clonekit)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ck=${CLONEKIT:-$root/build/tools/clonekit}
work=${1:-/tmp/clonekit-bench-c}
[ -f "$work/layer-255.qcow2" ] || bash "$root/bench/make-chain.sh" "$work" 1024 256 1 >/dev/null
cd "$work"
echo "| depth | extents | clonekit map (ms) | qemu-img map (ms) | qemu-img / clonekit |"
echo "|---:|---:|---:|---:|---:|"
for depth in 1 4 16 64 128 256; do
  top=layer-$((depth - 1)).qcow2
  "$ck" map --output=json "$top" > c.json
  qemu-img map --output=json "$top" > q.json
  cmp -s c.json q.json || { echo "maps differ at depth $depth"; exit 1; }
  hyperfine -N -w 2 -r 10 --export-json h.json "$ck map --output=json $top" "qemu-img map --output=json $top" >/dev/null 2>&1
  read -r ours theirs < <(python3 -c "
import json; r=json.load(open('h.json'))['results']; print(r[0]['median']*1000, r[1]['median']*1000)")
  printf '| %d | %d | %.1f | %.1f | %.1f |\n' "$depth" "$(wc -l < q.json)" "$ours" "$theirs" \
    "$(python3 -c "print($theirs / $ours)")"
done
