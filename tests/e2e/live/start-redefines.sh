#!/usr/bin/env bash
# Start gives libvirt the store's definition first: a domain whose libvirt
# definition lags (here redefined by hand on the disk's old top, now a
# read-only snapshot point) starts on the files clonekit records, never
# writing into the snapshot point.
source "$(dirname "$0")/lib.sh"
start_service
setup_vm 32M
virsh -c qemu:///system dumpxml --inactive "$vm" > old.xml  # on pool/$vm.qcow2
ck snapshot create "$vm" s1 >/dev/null
sum=$(sha256sum "pool/$vm.qcow2")
virsh -c qemu:///system define old.xml >/dev/null  # libvirt lags: back on the point
check "vm start succeeds" ck vm start "$vm"
check "qemu runs vda on the snapshot's overlay, as the store says" \
  [ "$(virsh -c qemu:///system domblklist "$vm" | awk '$1 == "vda" {print $2}')" = "$WORK/pool/$vm-vda-s1.qcow2" ]
guest_write "$vm" virtio-disk0 "write -P 0x7a 0 1M"
check "a guest write leaves the snapshot point byte for byte" [ "$(sha256sum "pool/$vm.qcow2")" = "$sum" ]
finish
