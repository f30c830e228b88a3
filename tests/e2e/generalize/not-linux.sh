#!/usr/bin/env bash
# A disk libguestfs finds no operating system on (data only): the clone is
# made, its host items are, and each guest item's report line says why
# nothing was done inside.
source "$(dirname "$0")/lib.sh"
qemu-img create -q -f qcow2 pool/src.qcow2 32M
qio pool/src.qcow2 'write -P 0x61 0 4M'
define_src src.qcow2
ck snapshot create src s1 >/dev/null
qemu-img convert -O raw pool/src.qcow2 s1.raw
out=$(ck vm clone src --snapshot s1 --name data --no-start --generalize default --wait)
check "the clone job succeeded" grep -q succeeded <<<"$out"
check "each guest item says why nothing was done, and the CLI prints it" \
  test "$(grep -c 'not done: libguestfs found no operating system' <<<"$out")" = 5
check "the host items were done" grep -q "mac-addresses .*interface 1 .*$SRC_MAC -> " <<<"$out"
check "the clone's disk is qemu's reading of s1 (nothing written inside)" \
  qemu-img compare -q s1.raw "$(ck vm show data | jq_ "d['disks'][0]['file']")"
finish
