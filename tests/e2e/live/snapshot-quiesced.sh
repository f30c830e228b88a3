#!/usr/bin/env bash
# A live snapshot of a guest whose agent answers is application-consistent:
# libvirt has the agent freeze the guest's file systems for the instant and
# thaw them after, exactly once each, while the same qemu process runs on.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/guest.sh"
start_service
start_guest normal
check "the guest boots and its agent answers" wait_agent "$vm"
check "snapshot create on the running guest succeeds" ck snapshot create "$vm" s1
check "it is listed as application-consistent" \
  [ "$(ck snapshot list "$vm" --json | jq_ "d[0]['consistency']")" = application ]
check "the agent froze and thawed exactly once each" [ "$(agent_counts "$vm")" = "freeze=1 thaw=1" ]
check "the same qemu process runs on, on both new overlays" \
  [ "$(qemu_pid "$vm"):$(virsh -c qemu:///system domblklist "$vm" | awk '$1 ~ /^vd/ {print $2}' | tr '\n' ' ')" = \
    "$pid:$WORK/pool/$vm-vda-s1.qcow2 $WORK/pool/$vm-vdb-s1.qcow2 " ]
finish
