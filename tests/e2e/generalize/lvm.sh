#!/usr/bin/env bash
# A guest whose root is an LVM logical volume (built by guestfish: this
# machine's kernel has no device-mapper): the clone's files, read back by
# guestfish, are changed, and the report names the disk under the volume.
source "$(dirname "$0")/lib.sh"
guest_tree tree lvm-host
sed -i 's|/dev/sda1 / ext4|/dev/vg0/root / ext4|' tree/etc/fstab
tar -C tree -cf tree.tar .
guestfish -N base.raw=disk:96M -- part-disk /dev/sda mbr : pvcreate /dev/sda1 : vgcreate vg0 /dev/sda1 : \
  lvcreate root vg0 64 : mkfs ext4 /dev/vg0/root : mount /dev/vg0/root / : tar-in tree.tar / : umount-all
qemu-img convert -q -f raw -O qcow2 base.raw pool/src.qcow2
define_src src.qcow2
ck snapshot create src s1 >/dev/null
sha256sum pool/* > source.sums
ck vm clone src --snapshot s1 --name lvm-clone --no-start --generalize default --wait >/dev/null
job=$(ck job list --json 2>/dev/null | jq_ "max(j['id'] for j in d)")
disk=$(ck vm show lvm-clone | jq_ "d['disks'][0]['file']")
guest_cat "$disk" qcow2 /etc/hostname /etc/machine-id /root/notes.txt > files.txt
check "guestfish reads the clone's hostname" grep -qx lvm-clone files.txt
check "guestfish reads an empty machine-id" \
  test "$(sed -n '/^=== \/etc\/machine-id$/,/^=== /p' files.txt | sed '1d;$d')" = ""
check "a file no item touches is unchanged" grep -qx "a file no item touches" files.txt
check "the report names vda for files on the volume" python3 -c "
import json, sys
j = json.loads(sys.argv[1])
c = [c for c in j['identity_changes'] if c['path'] == '/etc/hostname']
assert c and c[0]['disk'] == 'vda', c
" "$(ck job show "$job")"
check "the source chain is byte-identical" sha256sum -c --quiet source.sums
finish
