#!/usr/bin/env bash
# A clone from a snapshot never stops its source: the snapshot's points are
# read-only files the running qemu only reads as backing files. The qemu
# process is the same before and after, the source is not locked (start and
# stop stay allowed; only delete is refused while the clone reads it), and
# the clone's disk equals qemu's reading of the snapshot point.
source "$(dirname "$0")/lib.sh"
start_service --copy-rate 2M
setup_vm 64M
ck snapshot create "$vm" s1 >/dev/null
qio "pool/$vm-vda-s1.qcow2" 'write -P 0x63 0 1M'  # after s1: the clone must not see it
qemu-img convert -O raw "pool/$vm.qcow2" s1.raw  # qemu's reading of s1
check "the source runs" ck vm start "$vm"
pid=$(qemu_pid "$vm")

job=$(ck vm clone "$vm" --snapshot s1 --no-start --json | jq_ "d['id']")
check "while the clone copies, the source shows running, not locked" \
  until_true 10 bash -c "[ \"\$('$CLONEKIT' job show $job | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"state\"])')\" = running ]"
check "... its status is running" [ "$(status "$vm")" = running ]
check "... delete is refused, naming the clone job" one_line_error "clone job $job" ck vm delete "$vm"
ck job wait "$job" >/dev/null
check "the clone succeeded" [ "$(ck job show "$job" | jq_ "d['state']")" = succeeded ]
check "the job did not shut the source down (source_was_running false)" \
  [ "$(ck job show "$job" | jq_ "d['source_was_running']")" = False ]
check "the source's qemu process is the one from before the clone" [ "$(qemu_pid "$vm")" = "$pid" ]
check "the clone's disk equals qemu's reading of s1" qemu-img compare -q "pool/$vm-clone-vda.qcow2" s1.raw
finish
