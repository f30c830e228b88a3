#!/usr/bin/env bash
# Items turned off are kept: with `default,-ssh-host-keys,-hostname` the
# host keys, /etc/hostname and /etc/hosts are byte-identical to the
# source's while the other items change; the report names neither.
source "$(dirname "$0")/lib.sh"
ext4_guest base.raw src-host
qemu-img convert -q -f raw -O qcow2 base.raw pool/src.qcow2
define_src src.qcow2
ck snapshot create src s1 >/dev/null
ck vm clone src --snapshot s1 --name kept --no-start --generalize default,-ssh-host-keys,-hostname --wait >/dev/null
job=$(ck job list --json 2>/dev/null | jq_ "max(j['id'] for j in d)")
qemu-img convert -O raw "$(ck vm show kept | jq_ "d['disks'][0]['file']")" clone.raw
dd if=clone.raw of=clonefs.img bs=1M skip=1 status=none
dd if=base.raw of=basefs.img bs=1M skip=1 status=none
same() { [ "$(debugfs -R "cat $1" clonefs.img 2>/dev/null | sha256sum)" = "$(debugfs -R "cat $1" basefs.img 2>/dev/null | sha256sum)" ]; }
for f in /etc/ssh/ssh_host_rsa_key /etc/ssh/ssh_host_ed25519_key.pub /etc/hostname /etc/hosts; do
  check "$f is kept byte for byte" same "$f"
done
check "/etc/machine-id is still made new" test -z "$(debugfs -R 'cat /etc/machine-id' clonefs.img 2>/dev/null)"
check "the report names no kept item" python3 -c "
import json, sys
j = json.loads(sys.argv[1])
items = {c['item'] for c in j['identity_changes']}
assert 'ssh-host-keys' not in items and 'hostname' not in items and 'machine-id' in items, items
assert 'ssh-host-keys' not in j['generalize'] and 'hostname' not in j['generalize']
" "$(ck job show "$job")"
finish
