#!/usr/bin/env bash
# Issue #14's instant clones against a real libvirtd + qemu (TCG; the guest
# has no OS: qemu serves its disks, which is all a flatten needs).
#
#   bench/instant.sh CHAIN_DIR [--runs N] [--work DIR]
#
# 1. Making a running VM's disk standalone, its disk an overlay on the
#    chain in CHAIN_DIR (layer-0 ... layer-K, the top last), each run cold:
#    - stream:   qemu's block stream (virsh blockpull --wait), what clonekit uses;
#    - collapse: clonekit collapse of the chain into a flat qcow2 base, a new
#                overlay on it, and a live switch onto that (virsh blockcopy
#                --shallow --reuse-external --pivot: it copies only the guest's
#                own writes), the alternative the issue names;
#    - convert:  qemu-img convert -O qcow2 of the chain, for scale.
# 2. Time to first boot through `clonekit serve`: from the clone request to
#    the clone's qemu running, for a full clone (copy, define, start) and an
#    instant clone (define, start, stream after) of a VM on the same chain.
#    The guest's own boot adds the same to both.
# Needs root (drop_caches, libvirtd). Prints one line per run.
set -euo pipefail
chain=$(readlink -f "$1"); shift
runs=3 work=/tmp/clonekit-bench/instant
while [ $# -gt 0 ]; do
  case $1 in --runs) runs=$2; shift 2 ;; --work) work=$2; shift 2 ;; *) echo "unknown option $1"; exit 2 ;; esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
CLONEKIT=${CLONEKIT:-$here/build/tools/clonekit}
top=$(ls "$chain"/layer-*.qcow2 | sort -V | tail -1)
V="virsh -q -c qemu:///system"
if ! $V version >/dev/null 2>&1; then virtlogd -d; libvirtd -d; sleep 1; fi
rm -rf "$work" && mkdir -p "$work"
cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
secs() { echo "$(now) - $1" | bc; }
domain() {  # domain NAME DISK: a running TCG domain on DISK
  cat >"$work/$1.xml" <<XML
<domain type='qemu'><name>$1</name><memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$2'/><target dev='vda' bus='virtio'/></disk></devices>
</domain>
XML
  $V create "$work/$1.xml" >/dev/null
}
gone() { $V destroy "$1" >/dev/null 2>&1 || true; }
trap 'gone ck-bench-stream; gone ck-bench-collapse; for d in $($V list --all --name | grep ^ck-bench); do gone $d; $V undefine $d >/dev/null 2>&1; done' EXIT

echo "== making a running disk standalone: $top"
for r in $(seq "$runs"); do
  qemu-img create -q -f qcow2 -b "$top" -F qcow2 "$work/stream.qcow2"
  domain ck-bench-stream "$work/stream.qcow2"
  cold; t=$(now)
  $V blockpull ck-bench-stream vda --wait >/dev/null
  echo "stream   run $r: $(secs "$t") s"
  gone ck-bench-stream

  qemu-img create -q -f qcow2 -b "$top" -F qcow2 "$work/collapse.qcow2"
  domain ck-bench-collapse "$work/collapse.qcow2"
  rm -f "$work/flat.qcow2" "$work/top2.qcow2"
  cold; t=$(now)
  "$CLONEKIT" collapse -O qcow2 "$top" "$work/flat.qcow2"
  c=$(secs "$t"); t2=$(now)
  qemu-img create -q -f qcow2 -b "$work/flat.qcow2" -F qcow2 "$work/top2.qcow2"
  $V blockcopy ck-bench-collapse vda "$work/top2.qcow2" --shallow --reuse-external --wait --pivot --transient-job >/dev/null
  echo "collapse run $r: $(secs "$t") s (collapse $c s, new top + block copy + pivot $(secs "$t2") s)"
  gone ck-bench-collapse

  rm -f "$work/convert.qcow2"
  cold; t=$(now)
  qemu-img convert -O qcow2 "$top" "$work/convert.qcow2"
  echo "convert  run $r: $(secs "$t") s"
done
qemu-img compare -q "$work/stream.qcow2" "$work/convert.qcow2" && qemu-img compare -q "$work/top2.qcow2" "$work/convert.qcow2" &&
  echo "(the three results read the same)"
rm -f "$work"/{stream,collapse,flat,top2,convert}.qcow2

echo "== time to first boot through clonekit serve"
export CLONEKIT_SOCKET=$work/api.sock
"$CLONEKIT" serve --db "$work/state.db" --port 0 --socket "$work/api.sock" --hypervisor qemu:///system 2>>"$work/serve.log" &
svc=$!
trap 'kill $svc 2>/dev/null; gone ck-bench-stream; gone ck-bench-collapse; for d in $($V list --all --name | grep ^ck-bench); do gone $d; $V undefine $d >/dev/null 2>&1; done' EXIT
for _ in $(seq 100); do "$CLONEKIT" pool list >/dev/null 2>&1 && break; sleep 0.1; done
mkdir -p "$work/pool"
"$CLONEKIT" pool add chain "$chain" >/dev/null
"$CLONEKIT" pool add work "$work/pool" >/dev/null
qemu-img create -q -f qcow2 -b "$top" -F qcow2 "$work/pool/ck-bench-src.qcow2"
sed -e "s|$work/stream.qcow2|$work/pool/ck-bench-src.qcow2|" -e 's|ck-bench-stream|ck-bench-src|' "$work/ck-bench-stream.xml" >"$work/src.xml"
"$CLONEKIT" vm define "$work/src.xml" >/dev/null
"$CLONEKIT" snapshot create ck-bench-src s1 >/dev/null
power() { "$CLONEKIT" vm show "$1" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["power"])' 2>/dev/null || true; }
state() { "$CLONEKIT" job show "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
for r in $(seq "$runs"); do
  for mode in full instant; do
    name=ck-bench-$mode-$r
    flag=(); [ $mode = instant ] && flag=(--instant)
    cold; t=$(now)
    job=$("$CLONEKIT" vm clone ck-bench-src --snapshot s1 --name "$name" "${flag[@]}" --disk vda=pool:work,format:qcow2 --json |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    until [ "$(power "$name")" = running ]; do sleep 0.05; done
    boot=$(secs "$t")
    until [ "$(state "$job")" != running ]; do sleep 0.2; done
    echo "$mode clone run $r: running after $boot s, standalone after $(secs "$t") s ($(state "$job"))"
    gone "$name"
  done
done
