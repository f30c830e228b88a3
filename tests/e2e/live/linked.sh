#!/usr/bin/env bash
# vm clone --linked of a running guest's snapshot, started: nothing is
# copied, the clone's guest runs on an overlay whose backing file is the
# snapshot's point (the source's qemu reads that file too, and never
# stops), the snapshot cannot be deleted meanwhile, and a flatten while the
# clone runs makes it standalone without stopping it.
source "$(dirname "$0")/lib.sh"
source "$E2E_DIR/live/guest.sh"
start_service
start_guest normal
ck snapshot create "$vm" s1 >/dev/null
qemu-img convert -U -O raw "pool/$vm.qcow2" s1-vda.raw  # qemu's reading of s1
clone=$vm-clone
cleanup_fns+=("virsh -c qemu:///system destroy $clone >/dev/null 2>&1; virsh -c qemu:///system undefine $clone >/dev/null 2>&1")
check "vm clone --linked succeeds at once" ck vm clone "$vm" --snapshot s1 --linked --wait
check "its guest runs (the agent answers)" wait_agent "$clone"
clone_pid=$(qemu_pid "$clone")
check "its vda is an overlay on the snapshot's point" \
  [ "$(chain_names "$(disk_file "$clone" vda)")" = "$clone-vda.qcow2 $vm.qcow2" ]
check "the job wrote nothing" [ "$(ck job list --json | jq_ "d[-1]['done_bytes']")" = 0 ]
check "s1 cannot be deleted while the clone needs it" one_line_error "linked clones '$clone'" ck snapshot delete "$vm" s1
check "flatten while it runs" ck vm flatten "$clone" --wait
check "its vda reads only its own files" [ "$(chain_names "$(disk_file "$clone" vda)")" = "$clone-vda-top.qcow2 $clone-vda-base.qcow2" ]
check "it never stopped (same qemu process, its guest answers)" \
  bash -c "[ '$(qemu_pid "$clone")' = '$clone_pid' ] && virsh -c qemu:///system qemu-agent-command '$clone' '{\"execute\": \"guest-ping\"}' >/dev/null"
check "the source's qemu never stopped" [ "$(qemu_pid "$vm")" = "$pid" ]
check "s1 can be deleted now" ck snapshot delete "$vm" s1
ck vm stop --force "$clone" >/dev/null  # qemu quits, flushing what it cached
check "its vda equals qemu's reading of s1" qemu-img compare -q "$(disk_file "$clone" vda)" s1-vda.raw
finish
