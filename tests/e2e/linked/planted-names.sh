#!/usr/bin/env bash
# Names planted in a pool where a flatten will write (a symlink to a file
# outside, a FIFO) are never followed nor opened: the flatten writes beside
# them under another name, and they and their targets stay as they were.
source "$(dirname "$0")/lib.sh"
ck vm clone src --snapshot s1 --linked --no-start --name lc --wait >/dev/null
echo "host secret" > secret.txt
ln -s "$WORK/secret.txt" pool/lc-vda-flat.qcow2
mkfifo pool/lc-vdb-flat.qcow2
check "vm flatten succeeds (no hang on the FIFO)" timeout 60 "$CLONEKIT" vm flatten lc --wait
disk() { vmf lc "[x['file'] for x in d['disks'] if x['target'] == '$1'][0]"; }
check "vda went to another name" [ "$(disk vda)" = "$WORK/pool/lc-vda-flat-2.qcow2" ]
check "vdb went to another name" [ "$(disk vdb)" = "$WORK/pool/lc-vdb-flat-2.qcow2" ]
check "the symlink's target is untouched" [ "$(cat secret.txt)" = "host secret" ] && [ -L pool/lc-vda-flat.qcow2 ]
check "the FIFO is still a FIFO" [ -p pool/lc-vdb-flat.qcow2 ]
check "vda reads as s1" qemu-img compare -q "$(disk vda)" s1-vda.raw
finish
