#!/usr/bin/env bash
# A linked clone of a snapshot is made at once and never copied: each disk
# is a new qcow2 overlay in the clone's pool whose backing file is the
# snapshot's point, so the clone reads exactly what qemu reads of the
# snapshot; the VM says what it is linked to.
source "$(dirname "$0")/lib.sh"
check "vm clone --linked succeeds" ck vm clone src --snapshot s1 --linked --no-start --name lc --wait
job=$(ck job list --json | jq_ "d[-1]['id']")
check "the job is a linked clone, written nothing but overlays" \
  [ "$(ck job show "$job" | jq_ "d['mode'], d['state']")" = "linked succeeded" ]
check "vda is an overlay on the snapshot's point (2 images in its chain)" \
  [ "$(chain pool/lc-vda.qcow2)" = "$(printf 'pool/lc-vda.qcow2\n%s' "$WORK/pool/src.qcow2")" ]
check "its overlay holds no data of its own" [ "$(qemu-img map -U --output=json pool/lc-vda.qcow2 | jq_ "sum(e['length'] for e in d if e['data'] and e['depth'] == 0)")" = 0 ]
check "the clone's vda reads as qemu reads s1" qemu-img compare -q pool/lc-vda.qcow2 s1-vda.raw
check "the clone's vdb reads as qemu reads s1" qemu-img compare -q pool/lc-vdb.qcow2 s1-vdb.raw
check "the VM says it is linked to src's s1" [ "$(vmf lc "d['linked_to']['vm_name'], d['linked_to']['snapshot']")" = "src s1" ]
check "flatten is offered" [ "$(vmf lc "d['actions']['flatten']['allowed']")" = True ]
check "a standalone VM is not: flatten refused, 409" one_line_error "is not a linked clone" ck vm flatten src
finish
