#!/usr/bin/env bash
# A flatten touches only what clonekit made for the VM: a linked clone whose
# definition was edited to name another file (here the source's own disk,
# another VM's file) is flattened into a new image, and the file it named
# before is left exactly as it was (never renamed over, never removed).
source "$(dirname "$0")/lib.sh"
ck vm clone src --snapshot s1 --linked --no-start --name lc --wait >/dev/null
# The edited definition: vdb now names the source's vdb (a file no job of lc made).
ck vm show lc | jq_ "d['xml']" | sed "s|$WORK/pool/lc-vdb.qcow2|$WORK/pool/src-vdb-s1.qcow2|" > lc.xml
ck vm edit lc --xml lc.xml >/dev/null
sum_before=$(sha256sum pool/src-vdb-s1.qcow2)
ino_before=$(stat -c %i pool/src-vdb-s1.qcow2)
check "vm flatten succeeds" ck vm flatten lc --wait
check "the source's file is the same file (inode), byte for byte" \
  [ "$(stat -c %i pool/src-vdb-s1.qcow2)" = "$ino_before" ] && [ "$(sha256sum pool/src-vdb-s1.qcow2)" = "$sum_before" ]
check "lc's vdb is a new image of its own" \
  [ "$(vmf lc "[x['file'] for x in d['disks'] if x['target'] == 'vdb'][0]")" = "$WORK/pool/src-vdb-s1-flat.qcow2" ]
check "the source still reads as before" qemu-img compare -q pool/src-vdb-s1.qcow2 s1-vdb.raw
finish
