#!/usr/bin/env bash
# A linked clone of a VM's current state first takes a snapshot
# "clone-job-N" (its overlays need read-only points: the source goes on
# writing to new overlays of its own), which stays listed and which the
# clone is linked to; the clone reads the source's state as it was.
source "$(dirname "$0")/lib.sh"
qemu-img convert -O raw pool/src-vda-s1.qcow2 now-vda.raw  # qemu's reading of the current state
check "vm clone --linked of the current state succeeds" ck vm clone src --linked --no-start --name lc --wait
job=$(ck job list --json | jq_ "d[-1]['id']")
check "the job took the snapshot clone-job-$job" \
  [ "$(ck job show "$job" | jq_ "d['took_snapshot'], d['snapshot']")" = "True clone-job-$job" ]
check "it stays listed on the source" [ "$(ck snapshot list src --json | jq_ "[s['name'] for s in d]")" = "['s1', 'clone-job-$job']" ]
check "the clone is linked to it" [ "$(vmf lc "d['linked_to']['snapshot']")" = "clone-job-$job" ]
check "the clone reads the source's state at the clone" qemu-img compare -q pool/lc-vda.qcow2 now-vda.raw
check "the source writes to a new overlay, not to the clone's backing" \
  [ "$(vmf src "[x['file'] for x in d['disks'] if x['target'] == 'vda'][0]")" = "$WORK/pool/src-vda-clone-job-$job.qcow2" ]
finish
