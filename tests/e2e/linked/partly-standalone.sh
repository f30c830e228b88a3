#!/usr/bin/env bash
# A flatten leaves a disk that stands alone already as it is: a linked
# clone whose vdb was pointed at a standalone image is flattened on vda
# only; vdb keeps its file, untouched.
source "$(dirname "$0")/lib.sh"
ck vm clone src --snapshot s1 --linked --no-start --name lc --wait >/dev/null
qemu-img create -q -f qcow2 pool/own-b.qcow2 16M && qio pool/own-b.qcow2 'write -P 0x55 0 1M'
ck vm show lc | jq_ "d['xml']" | sed "s|$WORK/pool/lc-vdb.qcow2|$WORK/pool/own-b.qcow2|" > lc.xml
ck vm edit lc --xml lc.xml >/dev/null
sum=$(sha256sum pool/own-b.qcow2)
check "vm flatten succeeds" ck vm flatten lc --wait
disk() { vmf lc "[x['file'] for x in d['disks'] if x['target'] == '$1'][0]"; }
check "vda was flattened into a new image" [ "$(disk vda)" = "$WORK/pool/lc-vda-flat.qcow2" ]
check "vdb still names its own image" [ "$(disk vdb)" = "$WORK/pool/own-b.qcow2" ]
check "... which was not copied nor changed" [ "$(sha256sum pool/own-b.qcow2)" = "$sum" ] && [ ! -e pool/own-b-flat.qcow2 ]
check "the VM is no longer linked" [ "$(vmf lc "d['linked_to']")" = None ]
finish
