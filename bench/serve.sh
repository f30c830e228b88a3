#!/usr/bin/env bash
# Serving a snapshot without copying it, side by side with the references:
#   bench/serve.sh [--small] [--runs N] [--cases ac] [--work DIR]
# On chain (a) (4 GiB, depth 4) and (c) (1 GiB, depth 256) of compare.sh:
#   1. nbdcopy of the whole export to null: and to a file (+ sync):
#      nbdkit clonekit vs qemu-nbd -r (both: the chain's top, 8 connections allowed);
#   2. sequential read (dd bs=1M iflag=direct, so FUSE's page cache does
#      not answer) of the top as a file: clonekit mount vs nbdfuse over qemu-nbd;
#   3. collapse into an NBD export on loopback (nbdkit memory):
#      clonekit collapse vs qemu-img convert -n -O raw.
# Every output is first checked equal to the chain. Prints markdown tables of
# medians and ratios reference / clonekit (above 1 = clonekit faster).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ck=${CLONEKIT:-$root/build/tools/clonekit}
plugin=${PLUGIN:-$root/build/nbd-plugin/nbdkit-clonekit-plugin.so}
small=0 runs=5 cases=ac work=/tmp/clonekit-bench
while [ $# -gt 0 ]; do
  case $1 in
    --small) small=1 ;;
    --runs) runs=$2; shift ;;
    --cases) cases=$2; shift ;;
    --work) work=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
bash "$root/scripts/deps.sh"
command -v hyperfine >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
[ -x "$ck" ] && [ -f "$plugin" ] || BUILD_DIR="$root/build" bash "$root/scripts/build.sh"
mkdir -p "$work"
source "$root/bench/chains.sh"

pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; pids=(); sleep 0.3; }
trap 'stop_all; fusermount3 -u -z "$work/mnt-ck" 2>/dev/null; fusermount3 -u -z "$work/mnt-nf" 2>/dev/null; true' EXIT
wait_for() { for _ in $(seq 300); do [ -e "$1" ] && return 0; sleep 0.05; done; echo "no $1" >&2; exit 1; }

# table TITLE JSON NAME... : pairs (reference, clonekit) in NAME order.
table() {
  local title=$1 json=$2; shift 2
  echo; echo "### $title (median of $runs)"; echo
  python3 - "$json" "$@" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
names = sys.argv[2:]
print("| command | median s | reference / clonekit |")
print("|---|---:|---:|")
for i in range(0, len(names), 2):
    ref, ours = res[i]["median"], res[i + 1]["median"]
    print(f"| {names[i]} | {ref:.3f} | |")
    print(f"| {names[i + 1]} | {ours:.3f} | **{ref / ours:.2f}** |")
PY
}

serve_case() {  # serve_case LABEL TOP
  local label=$1 top=$2 qs=$work/q.sock ks=$work/k.sock out=$work/out.raw
  local size; size=$(qemu-img info --output=json "$top" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
  rm -f "$qs" "$ks"
  qemu-nbd -r -t -e 8 -f qcow2 -k "$qs" "$top" & pids+=($!)
  nbdkit -f -U "$ks" "$plugin" file="$top" & pids+=($!)
  wait_for "$qs"; wait_for "$ks"
  local quri="nbd+unix:///?socket=$qs" kuri="nbd+unix:///?socket=$ks"
  qemu-img compare -q -f raw "$kuri" "$top" || { echo "our export differs from $top"; exit 1; }

  hyperfine -w 1 -r "$runs" --export-json "$work/s.json" \
    "nbdcopy '$quri' null:" "nbdcopy '$kuri' null:" \
    "rm -f $out; nbdcopy '$quri' $out && sync $out" "rm -f $out; nbdcopy '$kuri' $out && sync $out" >/dev/null
  table "$label: nbdcopy of the export" "$work/s.json" \
    "qemu-nbd -r, nbdcopy to null:" "nbdkit clonekit, nbdcopy to null:" \
    "qemu-nbd -r, nbdcopy to a file" "nbdkit clonekit, nbdcopy to a file"

  local mc=$work/mnt-ck mn=$work/mnt-nf
  mkdir -p "$mc" "$mn"
  "$ck" mount "$top" "$mc"
  nbdfuse -r -P "$work/nbdfuse.pid" "$mn/top.raw" "$quri" & pids+=($!)
  wait_for "$work/nbdfuse.pid"; sleep 0.3
  local ckfile; ckfile="$mc/$(basename "$top").raw"
  cmp "$ckfile" "$mn/top.raw" || { echo "FUSE files differ"; exit 1; }
  hyperfine -w 1 -r "$runs" --export-json "$work/f.json" \
    "dd if=$mn/top.raw of=/dev/null bs=1M iflag=direct" "dd if=$ckfile of=/dev/null bs=1M iflag=direct" >/dev/null
  table "$label: sequential read through FUSE" "$work/f.json" "nbdfuse over qemu-nbd -r" "clonekit mount"
  fusermount3 -u "$mc"; stop_all; rm -f "$work/nbdfuse.pid"

  rm -f "$work/d.sock"
  local ds=$work/d.sock duri="nbd+unix:///?socket=$work/d.sock"
  nbdkit -f -U "$ds" memory "$size" & pids+=($!)
  wait_for "$ds"
  qemu-img convert -n -f qcow2 -O raw "$top" "$duri"
  "$ck" collapse "$top" "$duri"
  qemu-img compare -q -f raw "$duri" "$top" || { echo "NBD destination differs"; exit 1; }
  hyperfine -w 1 -r "$runs" --export-json "$work/d.json" \
    "qemu-img convert -n -f qcow2 -O raw $top '$duri'" "$ck collapse $top '$duri'" >/dev/null
  table "$label: collapse into an NBD export (nbdkit memory, loopback)" "$work/d.json" \
    "qemu-img convert -n -O raw" "clonekit collapse"
  stop_all
}

v4=$(scale 4096); v1=$(scale 1024)
d256=256; [ $small = 1 ] && d256=64
[[ $cases == *a* ]] && serve_case "(a) ${v4} MiB, depth 4, 25 % per layer" "$(chain a "$v4" 4 25)"
[[ $cases == *c* ]] && serve_case "(c) ${v1} MiB, depth $d256, 1 % per layer" "$(chain c "$v1" "$d256" 1)"
true
