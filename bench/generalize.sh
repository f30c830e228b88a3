#!/usr/bin/env bash
# Issue #15: what making a clone a new machine adds to its time.
#
#   bench/generalize.sh CHAIN_DIR [--runs N] [--work DIR]
#
# Two VMs through `clonekit serve` (libvirt's test driver: no guest runs):
# "one" on a small real Linux guest (ext4, the tree of
# tests/e2e/generalize/guest-tree.sh), "two" on that guest (vda) and an
# overlay on the bench chain in CHAIN_DIR (vdb: layer-0 ... layer-K, data,
# no OS). Each run, cold, full clones from a snapshot:
#   - --generalize none, then --generalize default (one libguestfs
#     appliance for all the disks, inspection, every guest item); the
#     service's log gives the phases (appliance start, inspection, each
#     item, the final sync);
#   - the reference, for "one": virt-sysprep on a copy of the plain clone's
#     disk with the operations that match the items (machine-id,
#     ssh-hostkeys, net-nmconn, udev-persistent-net, dhcp-client-state,
#     customize --hostname).
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
# vm NAME DISK...: a test-driver VM on those disks (vda, vdb, ...) with one NIC.
vm() {
  local name=$1 t=a; shift
  { echo "<domain type='test'><name>$name</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os><devices>"
    for f in "$@"; do
      echo "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$f'/><target dev='vd$t' bus='virtio'/></disk>"
      t=$(echo "$t" | tr a-y b-z)
    done
    echo "<interface type='network'><mac address='52:54:00:ab:cd:ef'/><source network='default'/></interface></devices></domain>"
  } > "$name.xml"
  ck vm define "$name.xml" >/dev/null
  ck snapshot create "$name" s1 >/dev/null
}
qemu-img create -q -f qcow2 -b "$work/pool/guest.qcow2" -F qcow2 pool/guest1.qcow2
vm one "$work/pool/guest1.qcow2"
vm two "$work/pool/guest.qcow2" "$work/pool/data.qcow2"
phases() { echo "  phases: $(grep 'generalize:' serve.log | tail -1 | sed 's/.*generalize: *//')"; }
echo "== libguestfs: ${LIBGUESTFS_BACKEND_SETTINGS:-kvm}; each run cold"
for r in $(seq "$runs"); do
  echo "-- run $r: VM one (vda: the ext4 guest, 50 MiB)"
  for mode in none default; do
    cold; t=$(now)
    ck vm clone one --snapshot s1 --name "one-$mode-$r" --no-start --generalize "$mode" --wait >/dev/null
    echo "clone --generalize $mode: $(secs "$t") s"
  done
  phases
  # The reference: virt-sysprep on a copy of the plain clone's disk.
  cp --sparse=always "pool/one-none-$r-vda.qcow2" sysprep.qcow2
  cold; t=$(now)
  virt-sysprep -q --format qcow2 -a sysprep.qcow2 \
    --operations machine-id,ssh-hostkeys,net-nmconn,udev-persistent-net,dhcp-client-state,customize \
    --hostname bench-clone >/dev/null 2>&1
  echo "virt-sysprep (same items, the plain clone's disk): $(secs "$t") s"
  rm -f sysprep.qcow2
  echo "-- run $r: VM two (vda: the guest, vdb: $top)"
  for mode in none default; do
    cold; t=$(now)
    ck vm clone two --snapshot s1 --name "two-$mode-$r" --no-start --generalize "$mode" --wait >/dev/null
    echo "clone --generalize $mode: $(secs "$t") s"
  done
  phases
  for c in one-none one-default two-none two-default; do ck vm delete "$c-$r" >/dev/null; rm -f pool/"$c"-"$r"-*; done
done
