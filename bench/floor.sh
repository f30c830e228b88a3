#!/usr/bin/env bash
# The disk's floor for a cold collapse: read every layer of a chain and
# write N GiB of non-zero data at the same time, from a cold page cache.
#   bench/floor.sh CHAIN_DIR WRITE_GIB [--work DIR]
# The reads are `cat` of the layer files (sequential); the writes are
# O_DIRECT `dd` from a 1.5 GiB random file read into the cache first (so
# they read nothing from the disk). Prints the wall time until both are done
# and durable. Compare a cold clonekit collapse of the same chain, run right
# after (bench/compare.sh --cold, or by hand).
set -euo pipefail
dir=$1 gib=$2 work=/tmp/clonekit-bench
[ "${3:-}" = --work ] && work=$4
[ "$(id -u)" -eq 0 ] || { echo "needs root (drop_caches)"; exit 1; }
src=$work/working-set.bin
[ -f "$src" ] || head -c 1536M /dev/urandom >"$src"
sync; echo 3 >/proc/sys/vm/drop_caches
cat "$src" >/dev/null
out=$work/floor.bin
rm -f "$out"
start=$(date +%s.%N)
cat "$dir"/*.qcow2 >/dev/null &
reader=$!
total=$((gib * 256)) done=0  # in 4 MiB blocks; the source holds 384 of them
while [ "$done" -lt "$total" ]; do
  n=$((total - done < 384 ? total - done : 384))
  dd if="$src" of="$out" bs=4M oflag=direct conv=notrunc seek="$done" count="$n" status=none
  done=$((done + n))
done
sync "$out"
wait "$reader"
end=$(date +%s.%N)
echo "floor of $dir (read all layers, write $gib GiB): $(echo "$end - $start" | bc) s"
rm -f "$out"
