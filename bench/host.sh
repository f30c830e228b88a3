#!/usr/bin/env bash
# A clone on a host that runs VMs: what it leaves of the page cache, and how
# it copies a chain larger than the memory left to it.
#   bench/host.sh [--runs N] [--cache-gib G] [--work DIR]
# Most free memory is first taken by an anonymous "guest" (as VMs take it),
# leaving G GiB (default 3) for the page cache. Before every run the caches
# are dropped, a 1.5 GiB "guest working set" file and the chain's top layer
# (a running VM's active layer) are read into the cache; then case (a) of
# bench/compare.sh (4 GiB, depth 4, 25 % per layer: 2.9 GB of data, more than
# the cache left) is collapsed to a durable raw file by each tool. Printed:
# time, peak RSS, and how much of the working set and of the top layer is
# still cached afterwards (fincore), medians over N runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ck=${CLONEKIT:-$root/build/tools/clonekit}
runs=3 cache_gib=3 work=/tmp/clonekit-bench small=0
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift ;;
    --cache-gib) cache_gib=$2; shift ;;
    --work) work=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "needs root (drop_caches)"; exit 1; }
[ -x "$ck" ] || BUILD_DIR="$root/build" bash "$root/scripts/build.sh"
mkdir -p "$work"
source "$root/bench/chains.sh"
top=$(chain a 4096 4 25)
ws=$work/working-set.bin
[ -f "$ws" ] || head -c 1536M /dev/urandom >"$ws"
sock=$work/host-nbd.sock
rm -f "$sock"
qemu-nbd -r -t -e 8 -f qcow2 -k "$sock" "$top" &
nbd=$!
hog=
trap 'kill $nbd ${hog:-} 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done

# The guest: all available memory but cache_gib, touched, held until killed.
sync; echo 3 >/proc/sys/vm/drop_caches
avail_kib=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
hog_bytes=$(( (avail_kib - cache_gib * 1024 * 1024) * 1024 ))
python3 -c "
import sys, time
b = bytearray($hog_bytes)
for i in range(0, len(b), 4096): b[i] = 1
print('guest holds', len(b) >> 20, 'MiB', flush=True)
time.sleep(100000)" &
hog=$!
while ! awk -v want=$((hog_bytes / 1024 * 9 / 10)) '/^VmRSS/ {exit !($2 >= want)}' /proc/$hog/status 2>/dev/null; do sleep 0.5; done

resident_pct() { fincore -n -b -o RES "$1" | awk -v size="$(stat -c %s "$1")" '{printf "%d", $1 * 100 / size}'; }

declare -A cmd
cmd[clonekit]="$ck collapse $top $work/out.raw"
# The path of kernels before 6.14 (no RWF_DONTCACHE: pages dropped by hand).
cmd[clonekit, by hand]="CLONEKIT_NO_DONTCACHE=1 $ck collapse $top $work/out.raw"
cmd[clonekit --page-cache fill]="$ck collapse --page-cache fill $top $work/out.raw"
cmd[qemu-img convert]="qemu-img convert -f qcow2 -O raw $top $work/out.raw && sync $work/out.raw"
cmd[qemu-nbd + nbdcopy]="nbdcopy 'nbd+unix:///?socket=$sock' $work/out.raw && sync $work/out.raw"
order=("clonekit" "clonekit, by hand" "clonekit --page-cache fill" "qemu-img convert" "qemu-nbd + nbdcopy")
declare -A times rss wsr topr
for ((i = 0; i < runs; i++)); do
  for name in "${order[@]}"; do
    rm -f "$work/out.raw"
    sync; echo 3 >/proc/sys/vm/drop_caches
    cat "$ws" "$top" >/dev/null
    start=$(date +%s.%N)
    /usr/bin/time -f %M -o "$work/rss" bash -c "${cmd[$name]}"
    end=$(date +%s.%N)
    times[$name]+="$(echo "$end - $start" | bc) "
    rss[$name]+="$(cat "$work/rss") "
    wsr[$name]+="$(resident_pct "$ws") "
    topr[$name]+="$(resident_pct "$top") "
  done
done
qemu-img compare -q -f qcow2 -F raw "$top" "$work/out.raw"
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo "| tool | time s (median of $runs) | peak RSS MiB | working set still cached | top layer still cached |"
echo "|---|---:|---:|---:|---:|"
for name in "${order[@]}"; do
  printf '| %s | %.2f | %d | %s %% | %s %% |\n' "$name" "$(median <<<"${times[$name]}")" \
    "$(( $(median <<<"${rss[$name]}") / 1024 ))" "$(median <<<"${wsr[$name]}")" "$(median <<<"${topr[$name]}")"
done
rm -f "$work/out.raw"
