#!/usr/bin/env bash
# The host items, in the clone's definition and beside it (no appliance:
# no guest item is asked): a new SMBIOS serial and VM generation ID, the
# emulated TPM's state copied under the clone's UUID (the same TPM, keys
# included), or not copied with `tpm` (a new TPM); and each kept when off.
SERVE_OPTS=(--tpm-state-dir "${TMPDIR:-/tmp}/clonekit-swtpm-$$")
source "$(dirname "$0")/lib.sh"
TPM=${SERVE_OPTS[1]}
cleanup_fns+=("rm -rf $TPM")
SRC_UUID=5b3c0a3e-6f7d-4c59-9b1e-0c2f8f2d9a11
SRC_GENID=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0
qemu-img create -q -f qcow2 pool/src.qcow2 16M
define_src src.qcow2 "<uuid>$SRC_UUID</uuid><genid>$SRC_GENID</genid>
  <sysinfo type='smbios'><system><entry name='serial'>SRC-SERIAL-1</entry></system></sysinfo>"
sed -i "s|<model type='virtio'/></interface>|&<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>|; s|<type arch='x86_64'>hvm</type>|&<smbios mode='sysinfo'/>|" src.xml
ck vm delete src >/dev/null; ck vm define src.xml >/dev/null
mkdir -p "$TPM/$SRC_UUID/tpm2"
head -c 4096 /dev/urandom > "$TPM/$SRC_UUID/tpm2/tpm2-00.permall"
chmod 700 "$TPM/$SRC_UUID/tpm2"; chmod 600 "$TPM/$SRC_UUID/tpm2/tpm2-00.permall"
ck snapshot create src s1 >/dev/null
field() { ck vm show "$1" | python3 -c "
import json, sys, re
x = json.load(sys.stdin)['xml']
m = re.search(sys.argv[1], x)
print(m.group(1) if m else '')" "$2"; }
ck vm clone src --snapshot s1 --name new1 --no-start --wait >/dev/null
uuid=$(ck vm show new1 | jq_ "d['uuid']")
check "a new SMBIOS serial (the clone's UUID)" test "$(field new1 "<entry name=.serial.>([^<]*)<")" = "$uuid"
genid=$(field new1 "<genid>([^<]*)<")
check "a new VM generation ID" bash -c "[ -n '$genid' ] && [ '$genid' != '$SRC_GENID' ]"
check "the TPM state is copied under the clone's UUID, byte for byte" \
  cmp "$TPM/$SRC_UUID/tpm2/tpm2-00.permall" "$TPM/$uuid/tpm2/tpm2-00.permall"
check "with its modes" test "$(stat -c %a "$TPM/$uuid/tpm2") $(stat -c %a "$TPM/$uuid/tpm2/tpm2-00.permall")" = "700 600"
job=$(ck job list --json 2>/dev/null | jq_ "max(j['id'] for j in d)")
check "the report says what changed" python3 -c "
import json, sys
j = json.loads(sys.argv[1]); by = {c['item']: c for c in j['identity_changes']}
assert by['smbios-serial']['change'] == \"'SRC-SERIAL-1' -> '$uuid'\", by['smbios-serial']
assert by['genid']['change'] == '$SRC_GENID -> $genid', by['genid']
assert by['tpm']['change'].startswith('kept: the source\'s TPM state copied'), by['tpm']
assert by['mac-addresses']['change'].startswith('$SRC_MAC -> '), by['mac-addresses']
" "$(ck job show "$job")"
ck vm clone src --snapshot s1 --name new2 --no-start --generalize tpm --wait >/dev/null
check "with tpm on, the clone gets a new TPM: no state copied" test ! -e "$TPM/$(ck vm show new2 | jq_ "d['uuid']")"
ck vm clone src --snapshot s1 --name same --no-start --generalize none --wait >/dev/null
check "with none, the serial is kept" test "$(field same "<entry name=.serial.>([^<]*)<")" = SRC-SERIAL-1
check "with none, the generation ID is kept" test "$(field same "<genid>([^<]*)<")" = "$SRC_GENID"
check "with none, the TPM state is still copied (the same TPM)" \
  cmp "$TPM/$SRC_UUID/tpm2/tpm2-00.permall" "$TPM/$(ck vm show same | jq_ "d['uuid']")/tpm2/tpm2-00.permall"
check "the source's TPM state is untouched" test -f "$TPM/$SRC_UUID/tpm2/tpm2-00.permall"
finish
