#!/usr/bin/env bash
# A snapshot point a linked clone needs cannot be deleted (409 naming the
# clone), nor its VM; once the clone is flattened (or gone) it can, and the
# source's chain keeps reading the same (the layers stay).
source "$(dirname "$0")/lib.sh"
ck vm clone src --snapshot s1 --linked --no-start --name lc --wait >/dev/null
id=$(vmf lc "d['id']")
check "snapshot delete is refused, naming the clone" one_line_error "linked clones 'lc' (id $id)" ck snapshot delete src s1
src=$(vmf src "d['id']")
check "... with 409 over the API" \
  [ "$(python3 "$(dirname "$0")/../http_req.py" --unix "$WORK/api.sock" DELETE "/api/v1/vms/$src/snapshots/s1" | cut -d' ' -f1)" = 409 ]
check "the source VM cannot be deleted either" one_line_error "'lc' (id $id)" ck vm delete src
check "the snapshot is still listed" [ "$(ck snapshot list src --json | jq_ "[s['name'] for s in d]")" = "['s1']" ]
qemu-img convert -U -O raw pool/src-vda-s1.qcow2 before.raw
check "flatten the clone" ck vm flatten lc --wait
check "now the snapshot can be deleted" ck snapshot delete src s1
check "it is gone from the list" [ "$(ck snapshot list src --json | jq_ "len(d)")" = 0 ]
check "the source's chain reads as before (its layers stay)" qemu-img compare -q pool/src-vda-s1.qcow2 before.raw
check "a snapshot that does not exist: 404" one_line_error "no snapshot 's9'" ck snapshot delete src s9
finish
