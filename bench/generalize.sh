#!/usr/bin/env bash
# Issue #15: what making a clone a new machine adds to its time.
#
#   bench/generalize.sh CHAIN_DIR [--runs N] [--work DIR]
#
# A VM with two disks: vda a small real Linux guest (ext4, the tree of
# tests/e2e/generalize/guest-tree.sh), vdb an overlay on the bench chain
# in CHAIN_DIR (layer-0 ... layer-K: data, no OS). Through `clonekit serve`
# (libvirt's test driver: no guest runs), each run cold:
#   - none:    a full clone from a snapshot, `--generalize none`;
#   - default: the same with `--generalize default` (one libguestfs
#              appliance for both disks, inspection, every guest item);
#   the service's log gives the phases (appliance start, inspection, each
#   item, the final sync);
#   - virt-sysprep: the reference, on a copy of the `none` clone's disks,
#              with the operations that match the items (machine-id,
#              ssh-hostkeys, net-nmconn, udev-persistent-net,
#              dhcp-client-state, customize --hostname).
# libguestfs runs under TCG unless LIBGUESTFS_BACKEND_SETTINGS says
# otherwise (this machine's KVM does not run its appliance). Needs root
# (drop_caches). Prints one line per run.
set -euo pipefail
chain=$(readlink -f "$1"); shift
runs=3 work=/tmp/clonekit-bench/generalize
while [ $# -gt 0 ]; do
  case $1 in --runs) runs=$2; shift 2 ;; --work) work=$2; shift 2 ;; *) echo "unknown option $1"; exit 2 ;; esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
CLONEKIT=${CLONEKIT:-$here/build/tools/clonekit}
export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}
top=$(ls "$chain"/layer-*.qcow2 | sort -V | tail -1)
rm -rf "$work" && mkdir -p "$work/pool"
cd "$work"
export CLONEKIT_SOCKET=$work/api.sock
ck() { "$CLONEKIT" "$@"; }
cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
secs() { echo "$(now) - $1" | bc; }

# The guest: the tree on ext4 in a partition from 1 MiB.
bash "$here/tests/e2e/generalize/guest-tree.sh" tree bench-src 52:54:00:ab:cd:ef
truncate -s 48M fs.img && mkfs.ext4 -q -F -d tree fs.img
truncate -s 50M guest.raw && echo 'start=2048, type=83' | sfdisk -q guest.raw
dd if=fs.img of=guest.raw bs=1M seek=1 conv=notrunc status=none
qemu-img convert -q -f raw -O qcow2 guest.raw pool/guest.qcow2
rm -rf tree fs.img guest.raw
qemu-img create -q -f qcow2 -b "$top" -F qcow2 pool/data.qcow2

"$CLONEKIT" serve --db "$work/state.db" --socket "$work/api.sock" --port 0 --hypervisor test:///default 2>serve.log &
svc=$!
trap 'kill $svc 2>/dev/null' EXIT
for _ in $(seq 100); do ck pool list >/dev/null 2>&1 && break; sleep 0.05; done
ck pool add work "$work/pool" >/dev/null
ck pool add chain "$chain" >/dev/null
cat > src.xml <<XML
<domain type='test'><name>src</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$work/pool/guest.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$work/pool/data.qcow2'/><target dev='vdb' bus='virtio'/></disk>
    <interface type='network'><mac address='52:54:00:ab:cd:ef'/><source network='default'/></interface>
  </devices></domain>
XML
ck vm define src.xml >/dev/null
ck snapshot create src s1 >/dev/null
echo "== clone of 2 disks (vda: ext4 guest, vdb: $top), cold; libguestfs: ${LIBGUESTFS_BACKEND_SETTINGS:-kvm}"
for r in $(seq "$runs"); do
  for mode in none default; do
    cold; t=$(now)
    ck vm clone src --snapshot s1 --name "c-$mode-$r" --no-start --generalize "$mode" --wait >/dev/null
    echo "$mode run $r: $(secs "$t") s"
  done
  echo "  phases: $(grep 'generalize:' serve.log | tail -1 | sed 's/.*generalize: *//')"
  mkdir -p sysprep
  for t in vda vdb; do cp --sparse=always "pool/c-none-$r-$t.qcow2" "sysprep/$t.qcow2"; done
  cold; t=$(now)
  virt-sysprep -q --format qcow2 -a sysprep/vda.qcow2 -a sysprep/vdb.qcow2 \
    --operations machine-id,ssh-hostkeys,net-nmconn,udev-persistent-net,dhcp-client-state,customize \
    --hostname bench-clone >/dev/null
  echo "virt-sysprep run $r: $(secs "$t") s"
  rm -rf sysprep
  for mode in none default; do ck vm delete "c-$mode-$r" >/dev/null; rm -f pool/c-"$mode"-"$r"-*; done
done
