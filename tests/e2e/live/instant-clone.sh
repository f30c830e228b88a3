#!/usr/bin/env bash
# vm clone --instant: the clone is defined and started at once on overlays
# backed by the snapshot's points, and its guest runs (its agent answers)
# while clonekit still copies the snapshot into new bases; the job then
# switches the running disks onto them and ends with a clone whose chains
# hold only its own files, equal to qemu's reading of the snapshot. The
# source's qemu never stops.
source "$(dirname "$0")/lib.sh"
source "$E2E_DIR/live/guest.sh"
start_service --copy-rate 256K  # the copy lasts ~16 s: long enough to see the guest up during it
start_guest normal
ck snapshot create "$vm" s1 >/dev/null
qemu-img convert -U -O raw "pool/$vm.qcow2" s1-vda.raw  # qemu's reading of s1
qemu-img convert -U -O raw "pool/$vm-b.qcow2" s1-vdb.raw
clone=$vm-clone
cleanup_fns+=("virsh -c qemu:///system destroy $clone >/dev/null 2>&1; virsh -c qemu:///system undefine $clone >/dev/null 2>&1")

job=$(ck vm clone "$vm" --snapshot s1 --instant --json | jq_ "d['id']")
jobf() { ck job show "$job" | jq_ "d['$1']"; }
check "the job is an instant clone" [ "$(jobf mode)" = instant ]
check "the clone runs while its job still copies" until_true 30 bash -c "[ \"\$('$CLONEKIT' vm show $clone | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"power\"])')\" = running ]"
check "... and its guest answers (agent) before the copy ends" wait_agent "$clone"
check "... the job was still running then" [ "$(jobf state)" = running ]
check "... and the clone is linked to s1 meanwhile" [ "$(ck vm show "$clone" | jq_ "d['linked_to']['snapshot']")" = s1 ]
check "... deleting the clone meanwhile is refused, naming the job" one_line_error "job $job is making it standalone" ck vm delete "$clone"
check "... and so is deleting s1" one_line_error "linked clones '$clone'" ck snapshot delete "$vm" s1
check "the job succeeds" until_true 120 bash -c "[ \"\$('$CLONEKIT' job show $job | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"state\"])')\" = succeeded ]"
for disk in vda vdb; do
  file=$(disk_file "$clone" "$disk")
  check "$disk's chain is the clone's own top and base" [ "$(chain_names "$file")" = "$clone-$disk-top.qcow2 $clone-$disk-base.qcow2" ]
  check "... and libvirt runs it on that top" [ "$(virsh -c qemu:///system domblklist "$clone" | awk -v d=$disk '$1 == d {print $2}')" = "$file" ]
done
check "the overlay it booted on is gone" [ ! -e "pool/$clone-vda.qcow2" ]
check "the VM is no longer linked" [ "$(ck vm show "$clone" | jq_ "d['linked_to']")" = None ]
check "the clone kept running (same guest: the agent answers)" agent "$clone" guest-ping
check "the source's qemu never stopped" [ "$(qemu_pid "$vm")" = "$pid" ]
# qemu keeps the tables it wrote in its cache while it runs: read the
# images once it has closed them (power off: qemu quits, flushing).
ck vm stop --force "$clone" >/dev/null
for disk in vda vdb; do
  check "$disk equals qemu's reading of s1" qemu-img compare -q "$(disk_file "$clone" "$disk")" "s1-$disk.raw"
done
finish
