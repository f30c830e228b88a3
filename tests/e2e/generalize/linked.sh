#!/usr/bin/env bash
# A linked clone made a new machine: the changes go into its own overlay;
# the snapshot's point it is backed by stays byte-identical, and the
# clone's reading (overlay over the point) has them.
source "$(dirname "$0")/lib.sh"
ext4_guest base.raw src-host
qemu-img convert -q -f raw -O qcow2 base.raw pool/src.qcow2
define_src src.qcow2
ck snapshot create src s1 >/dev/null
sha256sum pool/* > source.sums
ck vm clone src --snapshot s1 --name thin --no-start --linked --generalize default --wait >/dev/null
disk=$(ck vm show thin | jq_ "d['disks'][0]['file']")
check "the clone is linked to s1" test "$(ck vm show thin | jq_ "d['linked_to']['snapshot']")" = s1
check "its overlay is backed by the snapshot's point" \
  test "$(qemu-img info -U --output=json "$disk" | jq_ "d['full-backing-filename']")" = "$WORK/pool/src.qcow2"
qemu-img convert -O raw "$disk" clone.raw
dd if=clone.raw of=clonefs.img bs=1M skip=1 status=none
check "the clone reads its new hostname" test "$(debugfs -R 'cat /etc/hostname' clonefs.img 2>/dev/null)" = thin
check "the clone reads an empty machine-id" test -z "$(debugfs -R 'cat /etc/machine-id' clonefs.img 2>/dev/null)"
check "the snapshot's point and the source's files are byte-identical" sha256sum -c --quiet source.sums
finish
