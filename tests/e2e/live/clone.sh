#!/usr/bin/env bash
# vm clone --live of a running VM: the job takes a live snapshot and clones
# it, so the source never stops (same qemu process), the job says it took
# the snapshot, the snapshot stays listed (crash-consistent: no agent), and
# the clone's disks equal the snapshot's points as qemu reads them.
source "$(dirname "$0")/lib.sh"
start_service
setup_vm 32M
ck vm start "$vm" >/dev/null
pid=$(qemu_pid "$vm")

check "clone --live of the running VM succeeds" ck vm clone "$vm" --live --no-start --wait
job=$(ck job list --json | jq_ "d[-1]['id']")
jobf() { ck job show "$job" | jq_ "d['$1']"; }
check "the job took a live snapshot and did not shut the source down" \
  [ "$(jobf live):$(jobf took_snapshot):$(jobf source_was_running):$(jobf snapshot)" = "True:True:False:clone-job-$job" ]
check "the snapshot stays listed, crash-consistent" \
  [ "$(ck snapshot list "$vm" --json | jq_ "[(s['name'], s['consistency']) for s in d]")" = "[('clone-job-$job', 'crash')]" ]
check "the source never stopped (same qemu process)" [ "$(power "$vm"):$(qemu_pid "$vm")" = "running:$pid" ]
check "the clone's vda equals the snapshot point" qemu-img compare -U -q "pool/$vm-clone-vda.qcow2" "pool/$vm.qcow2"
check "the clone's vdb equals the snapshot point" qemu-img compare -U -q "pool/$vm-clone-vdb.qcow2" "pool/$vm-b.qcow2"
check "qemu now writes to the snapshot's overlays" \
  [ "$(virsh -c qemu:///system domblklist "$vm" | awk '$1 == "vda" {print $2}')" = "$WORK/pool/$vm-vda-clone-job-$job.qcow2" ]
finish
