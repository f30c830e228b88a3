#!/usr/bin/env bash
# A linked clone that is off is flattened by clonekit's collapse: each
# overlay's chain is copied into a new image beside it, which the
# definition then names; the overlay (the clone job's) is removed. It ends
# standalone (one image in each chain), equal to qemu's reading of the
# snapshot, and the VM no longer says it is linked.
source "$(dirname "$0")/lib.sh"
ck vm clone src --snapshot s1 --linked --no-start --name lc --wait >/dev/null
check "vm flatten succeeds" ck vm flatten lc --wait
job=$(ck job list --json | jq_ "d[-1]['id']")
check "the job is a flatten of lc" [ "$(ck job show "$job" | jq_ "d['mode'], d['state'], d['clone_name']")" = "flatten succeeded lc" ]
disk() { vmf lc "[x['file'] for x in d['disks'] if x['target'] == '$1'][0]"; }
check "vda is a new image beside the overlay" [ "$(disk vda)" = "$WORK/pool/lc-vda-flat.qcow2" ]
check "vda stands alone" [ "$(chain "$(disk vda)")" = "$(disk vda)" ]
check "vdb stands alone" [ "$(chain "$(disk vdb)")" = "$(disk vdb)" ]
check "vda equals qemu's reading of s1" qemu-img compare -q "$(disk vda)" s1-vda.raw
check "vdb equals qemu's reading of s1" qemu-img compare -q "$(disk vdb)" s1-vdb.raw
check "the VM is no longer linked" [ "$(vmf lc "d['linked_to']")" = None ]
check "the overlays it replaced are gone" [ ! -e pool/lc-vda.qcow2 ] && [ ! -e pool/lc-vdb.qcow2 ]
check "flattening again is refused" one_line_error "is not a linked clone" ck vm flatten lc
finish
