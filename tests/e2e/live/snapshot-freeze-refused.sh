#!/usr/bin/env bash
# A guest agent that answers but refuses to freeze fails the live snapshot
# with one line: no overlay is left, no snapshot is listed, the guest runs
# on, unchanged, in the same process, and nothing was left frozen.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/guest.sh"
start_service
start_guest refuse
check "the guest boots and its agent answers" wait_agent "$vm"
before=$(ls pool | sort | tr '\n' ' ')
check "the snapshot fails with one line saying the agent refused" one_line_error "refuses to freeze" ck snapshot create "$vm" s1
check "no overlay was left" [ "$(ls pool | sort | tr '\n' ' ')" = "$before" ]
check "no snapshot is listed" [ "$(ck snapshot list "$vm" --json | jq_ "len(d)")" = 0 ]
check "nothing was frozen, so nothing needed a thaw" [ "$(agent_counts "$vm")" = "freeze=0 thaw=0" ]
check "the guest runs on its old disks in the same process" \
  [ "$(power "$vm"):$(qemu_pid "$vm"):$(virsh -c qemu:///system domblklist "$vm" | awk '$1 == "vda" {print $2}')" = \
    "running:$pid:$WORK/pool/$vm.qcow2" ]
finish
