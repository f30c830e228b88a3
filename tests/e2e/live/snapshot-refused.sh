#!/usr/bin/env bash
# A live snapshot that cannot be taken leaves nothing: a name whose overlay
# file is already taken gives a one-line error before libvirt is asked, no
# overlay is left, and the VM runs on, unchanged, in the same process.
source "$(dirname "$0")/lib.sh"
start_service
setup_vm 32M
ck vm start "$vm" >/dev/null
pid=$(qemu_pid "$vm")
: > "pool/$vm-vdb-s1.qcow2"  # someone else's file where vdb's overlay would go
before=$(ls pool | sort | tr '\n' ' ')
check "the snapshot is refused with one line naming the file" one_line_error "$vm-vdb-s1.qcow2" ck snapshot create "$vm" s1
check "no overlay was left (vda's was removed)" [ "$(ls pool | sort | tr '\n' ' ')" = "$before" ]
check "no snapshot is listed" [ "$(ck snapshot list "$vm" --json | jq_ "len(d)")" = 0 ]
check "the VM runs on its old disks in the same process" \
  [ "$(power "$vm"):$(qemu_pid "$vm"):$(virsh -c qemu:///system domblklist "$vm" | awk '$1 == "vda" {print $2}')" = \
    "running:$pid:$WORK/pool/$vm.qcow2" ]
check "the old tops are still writable (not made snapshot points)" [ "$(stat -c %a "pool/$vm.qcow2")" != 444 ]
finish
