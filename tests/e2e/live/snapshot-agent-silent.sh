#!/usr/bin/env bash
# A guest with an agent channel but no agent running gets a crash-consistent
# live snapshot: libvirt's quiesce fails (agent not connected) and the
# snapshot is taken without it, all disks at one instant, the guest running on.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/guest.sh"
start_service
start_guest silent
sleep 3  # let it boot far enough to (not) open the port
check "snapshot create on the running guest succeeds" ck snapshot create "$vm" s1
check "it is listed as crash-consistent" [ "$(ck snapshot list "$vm" --json | jq_ "d[0]['consistency']")" = crash ]
check "the same qemu process runs on, on both new overlays" \
  [ "$(qemu_pid "$vm"):$(virsh -c qemu:///system domblklist "$vm" | awk '$1 ~ /^vd/ {print $2}' | tr '\n' ' ')" = \
    "$pid:$WORK/pool/$vm-vda-s1.qcow2 $WORK/pool/$vm-vdb-s1.qcow2 " ]
finish
