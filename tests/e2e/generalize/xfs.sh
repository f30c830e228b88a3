#!/usr/bin/env bash
# An xfs guest: the default items change its files, read back by the
# kernel's xfs (the clone's disk converted by qemu, loop-mounted read-only),
# and the source chain is byte-identical.
source "$(dirname "$0")/lib.sh"
xfs_guest base.raw xfs-host
qemu-img convert -q -f raw -O qcow2 base.raw pool/src.qcow2
define_src src.qcow2
ck snapshot create src s1 >/dev/null
sha256sum pool/* > source.sums
ck vm clone src --snapshot s1 --name xfs-clone --no-start --generalize default --wait >/dev/null
mounted_ro "$(ck vm show xfs-clone | jq_ "d['disks'][0]['file']")" clone nouuid
mounted_ro pool/src.qcow2 source nouuid
new_mac=$(ck vm show xfs-clone | jq_ "d['summary']['nics'][0]['mac']")
check "/etc/machine-id is empty" test ! -s clone/etc/machine-id
check "/var/lib/dbus/machine-id is gone" test ! -e clone/var/lib/dbus/machine-id
check "/etc/hostname names the clone" test "$(cat clone/etc/hostname)" = xfs-clone
check "the ed25519 host key is new" bash -c '! cmp -s clone/etc/ssh/ssh_host_ed25519_key source/etc/ssh/ssh_host_ed25519_key'
check "cloud-init's instance link is gone" test ! -L clone/var/lib/cloud/instance
check "the udev rule names the clone's MAC" grep -q "$new_mac" clone/etc/udev/rules.d/70-persistent-net.rules
check "a file no item touches is unchanged" cmp clone/root/notes.txt source/root/notes.txt
check "the source chain is byte-identical" sha256sum -c --quiet source.sums
finish
