#!/usr/bin/env bash
# --rate-limit over a long copy, for every kind of destination: case (a) of
# bench/compare.sh (2.9 GB of data) at a limit that makes it ~30 s, into a
# raw file, a qcow2 file and an NBD export (nbdkit memory). Prints the data
# rate achieved (data bytes / wall time) against the limit.
#   bench/rate.sh [--rate BYTES_PER_SECOND] [--work DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ck=${CLONEKIT:-$root/build/tools/clonekit}
work=/tmp/clonekit-bench small=0 rate=100000000
while [ $# -gt 0 ]; do
  case $1 in
    --rate) rate=$2; shift ;;
    --work) work=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$ck" ] || BUILD_DIR="$root/build" bash "$root/scripts/build.sh"
source "$root/bench/chains.sh"
top=$(chain a 4096 4 25)
data=$("$ck" map --output=json "$top" | python3 -c '
import json, sys
print(sum(e["length"] for e in json.load(sys.stdin) if e["data"]))')
sock=$work/rate-nbd.sock
rm -f "$sock"
nbdkit -f --exit-with-parent -U "$sock" memory 4G &
nbd=$!
trap 'kill $nbd 2>/dev/null || true; rm -f $work/rate.raw $work/rate.qcow2' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
echo "| destination | data bytes | limit B/s | wall s | achieved B/s | achieved / limit |"
echo "|---|---:|---:|---:|---:|---:|"
for dest in "$work/rate.raw" "-O qcow2 $work/rate.qcow2" "nbd+unix:///?socket=$sock"; do
  rm -f "$work/rate.raw" "$work/rate.qcow2"
  start=$(date +%s.%N)
  $ck collapse --rate-limit "$rate" "$top" $dest
  end=$(date +%s.%N)
  python3 -c "
d, r, t = $data, $rate, $end - $start
print(f'| {\"${dest}\".split()[-1].split(\"?\")[0]} | {d} | {r} | {t:.2f} | {d / t:.0f} | {d / t / r:.3f} |')"
done
