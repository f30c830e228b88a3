#!/usr/bin/env bash
# A guest built to hurt the service: a FIFO at /etc/hostname and at a host
# key's .pub (a write that opens them would block the appliance forever), a
# symbolic link at a .pub pointing at another guest file, and cloud-init
# entries whose names hold an invalid UTF-8 byte and a terminal escape.
# The clone succeeds in bounded time, the FIFOs and the link are replaced
# by regular files (the link's target untouched), the report is valid
# UTF-8 with no control character, and the service answers throughout.
source "$(dirname "$0")/lib.sh"
guest_tree tree src-host
rm tree/etc/hostname tree/etc/ssh/ssh_host_rsa_key.pub
mkfifo tree/etc/hostname tree/etc/ssh/ssh_host_rsa_key.pub
rm tree/etc/ssh/ssh_host_ed25519_key.pub
ln -s /root/notes.txt tree/etc/ssh/ssh_host_ed25519_key.pub
touch "tree/var/lib/cloud/$(printf 'bad\xffname')" "tree/var/lib/cloud/$(printf 'esc\033[31mred')" \
  "tree/var/lib/cloud/$(printf 'csi\xc2\x9b31mred')"
truncate -s 48M fs.img
mkfs.ext4 -q -F -d tree fs.img
partitioned base.raw fs.img
rm -rf tree fs.img
qemu-img convert -q -f raw -O qcow2 base.raw pool/src.qcow2
define_src src.qcow2
ck snapshot create src s1 >/dev/null
SECONDS=0
out=$(timeout 300 "$CLONEKIT" vm clone src --snapshot s1 --name tough --no-start --generalize default --wait) && st=0 || st=$?
check "the clone succeeds, in bounded time" test "$st" = 0
check "the service answers" "$CLONEKIT" vm list >/dev/null
qemu-img convert -O raw "$(ck vm show tough | jq_ "d['disks'][0]['file']")" clone.raw
dd if=clone.raw of=clonefs.img bs=1M skip=1 status=none
kind() { debugfs -R "stat $1" clonefs.img 2>/dev/null | sed -n 's/.*Type: \([a-z]*\).*/\1/p'; }
check "/etc/hostname is a regular file naming the clone" \
  bash -c "[ '$(kind /etc/hostname)' = regular ] && [ \"\$(debugfs -R 'cat /etc/hostname' clonefs.img 2>/dev/null)\" = tough ]"
check "the FIFO at a .pub became the new key's public half" test "$(kind /etc/ssh/ssh_host_rsa_key.pub)" = regular
check "the link at a .pub became a regular file" test "$(kind /etc/ssh/ssh_host_ed25519_key.pub)" = regular
check "... and what the link named is untouched" \
  test "$(debugfs -R 'cat /root/notes.txt' clonefs.img 2>/dev/null)" = "a file no item touches"
job=$(ck job list --json 2>/dev/null | jq_ "max(j['id'] for j in d)")
"$CLONEKIT" job show "$job" > job.json
check "the report is valid UTF-8 without control characters, the bad names as '?'" python3 - job.json <<'PY'
import json, sys
raw = open(sys.argv[1], 'rb').read()
text = raw.decode('utf-8')            # strict: fails on invalid UTF-8
j = json.loads(text)
paths = [c['path'] for c in j['identity_changes']]
assert '/var/lib/cloud/bad?name' in paths and '/var/lib/cloud/esc?[31mred' in paths, paths
assert '/var/lib/cloud/csi?31mred' in paths, paths
assert not any(ord(ch) < 0x20 or 0x7f <= ord(ch) <= 0x9f for c in j['identity_changes'] for v in c.values() for ch in v)
PY
check "the CLI's report has no escape character" bash -c "! grep -q $'\033' <<<\"\$1\"" _ "$out"
finish
