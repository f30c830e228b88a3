#!/usr/bin/env bash
# The service killed (-9) while an instant clone is being copied: on restart
# the job is failed "interrupted", the clone is kept, running on its
# overlays as a linked clone, the job's half-made copies are removed, and a
# flatten then makes it standalone.
source "$(dirname "$0")/lib.sh"
source "$E2E_DIR/live/guest.sh"
start_service --copy-rate 256K
start_guest normal
ck snapshot create "$vm" s1 >/dev/null
clone=$vm-clone
cleanup_fns+=("virsh -c qemu:///system destroy $clone >/dev/null 2>&1; virsh -c qemu:///system undefine $clone >/dev/null 2>&1")
job=$(ck vm clone "$vm" --snapshot s1 --instant --json | jq_ "d['id']")
until_true 30 bash -c "[ \"\$(virsh -c qemu:///system domstate $clone 2>/dev/null)\" = running ]"
check "the copy is under way" until_true 10 bash -c "ls pool | grep -q -- '-base.qcow2'"
kill -9 "$SVC"; wait "$SVC" 2>/dev/null || true
start_service
jobf() { ck job show "$job" | jq_ "d['$1']"; }
check "the job is failed, interrupted, the VM kept" [ "$(jobf state):$(jobf error_kind)" = failed:interrupted ]
check "... saying it stays linked" bash -c "[[ \"$(jobf error)\" == *'stays a linked clone'* ]]"
check "the clone still runs" [ "$(power "$clone")" = running ]
check "it is linked to s1, on its overlay" [ "$(ck vm show "$clone" | jq_ "d['linked_to']['snapshot']")" = s1 ]
check "the half-made copies are removed (and the engine's temporaries)" [ -z "$(ls -A pool | grep -E -- '-(base|top)\.qcow2$|clonekit-')" ]
check "flatten makes it standalone" ck vm flatten "$clone" --wait
check "... its vda reads only its own files" [ "$(chain_names "$(disk_file "$clone" vda)")" = "$clone-vda-top.qcow2 $clone-vda-base.qcow2" ]
finish
