#!/usr/bin/env bash
# snapshot create of a running VM is a live snapshot: both disks switch to
# new overlays in one libvirt call while the same qemu process runs on; with
# no guest agent it is recorded crash-consistent. What the guest writes
# afterwards lands in the overlays, and a clone of the snapshot equals the
# disks as they were at that instant.
source "$(dirname "$0")/lib.sh"
start_service
setup_vm 64M
ck vm start "$vm" >/dev/null
pid=$(qemu_pid "$vm")
guest_write "$vm" virtio-disk0 'write -P 0x64 1M 1M'  # before the snapshot: in s1
reads() {  # reads FILE PATTERN OFFSET LENGTH: qemu reads that pattern there
  local out; out=$(qemu-io -U -r -f qcow2 -c "read -q -P $2 $3 $4" "$1" 2>&1) && [[ "$out" != *"verification failed"* ]]
}

check "snapshot create on the running VM succeeds" ck snapshot create "$vm" s1
check "the same qemu process runs on" [ "$(qemu_pid "$vm")" = "$pid" ]
check "it is listed as crash-consistent (no guest agent)" \
  [ "$(ck snapshot list "$vm" --json | jq_ "d[0]['consistency']")" = crash ]
sources() { virsh -c qemu:///system domblklist "$vm" | awk '$1 ~ /^vd/ {print $2}' | tr '\n' ' '; }
check "qemu now writes to both new overlays" [ "$(sources)" = "$WORK/pool/$vm-vda-s1.qcow2 $WORK/pool/$vm-vdb-s1.qcow2 " ]
check "the old tops are the snapshot points, read-only" [ "$(stat -c %a "pool/$vm.qcow2" "pool/$vm-b.qcow2" | sort -u)" = 444 ]
qemu-img convert -U -O raw "pool/$vm.qcow2" vda-s1.raw  # the points, now read-only: qemu's reading of s1
qemu-img convert -U -O raw "pool/$vm-b.qcow2" vdb-s1.raw
check "the guest's write before the snapshot is in s1" reads "pool/$vm.qcow2" 0x64 1M 1M
check "each overlay's backing file is its old top" \
  bash -c "qemu-img info -U --output=json pool/$vm-vda-s1.qcow2 | grep -q '\"backing-filename\": \"./$vm.qcow2\"'"
guest_write "$vm" virtio-disk0 'write -P 0x65 0 2M'  # after the snapshot
check "a write after the snapshot is not in the snapshot point" reads "pool/$vm.qcow2" 0x61 0 1M
guest_write "$vm" virtio-disk0 'flush'
check "... it is in the overlay" reads "pool/$vm-vda-s1.qcow2" 0x65 0 2M
check "clone from s1 while the VM runs" ck vm clone "$vm" --snapshot s1 --no-start --wait
check "the clone's vda is the disk at the snapshot's instant" qemu-img compare -q "pool/$vm-clone-vda.qcow2" vda-s1.raw
check "the clone's vdb too" qemu-img compare -q "pool/$vm-clone-vdb.qcow2" vdb-s1.raw
check "the VM still runs, in the same process" [ "$(power "$vm"):$(qemu_pid "$vm")" = "running:$pid" ]
finish
