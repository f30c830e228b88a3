#!/usr/bin/env bash
# Cancelling an instant clone's background copy leaves a working linked
# clone: the job ends cancelled and says so, the clone keeps running (its
# guest answers) on overlays still backed by the snapshot's points, the
# snapshot cannot be deleted while it needs it (409 naming it), and a later
# flatten of the running clone makes it standalone, after which it can.
source "$(dirname "$0")/lib.sh"
source "$E2E_DIR/live/guest.sh"
start_service --copy-rate 256K
start_guest normal
ck snapshot create "$vm" s1 >/dev/null
qemu-img convert -U -O raw "pool/$vm.qcow2" s1-vda.raw  # qemu's reading of s1
clone=$vm-clone
cleanup_fns+=("virsh -c qemu:///system destroy $clone >/dev/null 2>&1; virsh -c qemu:///system undefine $clone >/dev/null 2>&1")

job=$(ck vm clone "$vm" --snapshot s1 --instant --json | jq_ "d['id']")
jobf() { ck job show "$job" | jq_ "d['$1']"; }
check "the clone's guest comes up while the copy runs" wait_agent "$clone"
check "cancel the job" ck job cancel "$job"
check "the job ends cancelled" until_true 30 bash -c "[ \"\$('$CLONEKIT' job show $job | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"state\"])')\" = cancelled ]"
check "... saying the clone stays linked" bash -c "[[ \"$(jobf error)\" == *\"stays a linked clone of snapshot 's1'\"* ]]"
check "the clone still runs (its guest answers)" agent "$clone" guest-ping
check "it says it is linked to s1" [ "$(ck vm show "$clone" | jq_ "d['linked_to']['snapshot']")" = s1 ]
check "its vda is still backed by the snapshot's point" \
  [ "$(qemu-img info -U --backing-chain --output=json "pool/$clone-vda.qcow2" | jq_ "d[1]['filename']")" = "$WORK/pool/$vm.qcow2" ]
check "no block job is left on the clone" bash -c "! virsh -c qemu:///system blockjob $clone vda --info 2>/dev/null | grep -qi copy"
check "the job's copies are removed" [ -z "$(ls pool | grep -E -- '-(base|top)\.qcow2$')" ]
check "the snapshot cannot be deleted: the clone needs it" one_line_error "linked clones '$clone'" ck snapshot delete "$vm" s1
check "flatten the running clone" ck vm flatten "$clone" --wait
check "its vda reads only the clone's own files" [ "$(chain_names "$(disk_file "$clone" vda)")" = "$clone-vda-top.qcow2 $clone-vda-base.qcow2" ]
check "the overlay it ran on is gone" [ ! -e "pool/$clone-vda.qcow2" ]
check "it still runs" agent "$clone" guest-ping
check "now the snapshot can be deleted" ck snapshot delete "$vm" s1
ck vm stop --force "$clone" >/dev/null  # qemu quits, flushing what it cached
check "its vda equals qemu's reading of s1" qemu-img compare -q "$(disk_file "$clone" vda)" s1-vda.raw
finish
