#!/usr/bin/env bash
# `--generalize none`: nothing is made new. The clone's disk is exactly
# qemu's reading of the snapshot (no appliance ran), its MAC is the
# source's, and the report is empty.
source "$(dirname "$0")/lib.sh"
ext4_guest base.raw src-host
qemu-img convert -q -f raw -O qcow2 base.raw pool/src.qcow2
define_src src.qcow2
ck snapshot create src s1 >/dev/null
qemu-img convert -O raw pool/src.qcow2 s1.raw
ck vm clone src --snapshot s1 --name same --no-start --generalize none --wait >/dev/null
job=$(ck job list --json 2>/dev/null | jq_ "max(j['id'] for j in d)")
check "the clone's disk is qemu's reading of s1, byte for byte" \
  qemu-img compare -q s1.raw "$(ck vm show same | jq_ "d['disks'][0]['file']")"
check "the clone keeps the source's MAC" test "$(ck vm show same | jq_ "d['summary']['nics'][0]['mac']")" = "$SRC_MAC"
check "the job asked for nothing and reports nothing" \
  test "$(ck job show "$job" | jq_ "(d['generalize'], d['identity_changes'])")" = "([], [])"
finish
