#!/usr/bin/env bash
# An emulated TPM (swtpm, run by a real libvirtd) follows the clone's new
# UUID: the source's state, made by swtpm at its first start, is copied
# under the clone's UUID byte for byte and is the state the clone's swtpm
# runs on; with the `tpm` item the clone gets a TPM of its own (a new
# state, not the source's); deleting the clone removes its state.
source "$(dirname "$0")/lib.sh"
command -v swtpm >/dev/null || { echo "SKIP: swtpm not installed"; exit 77; }
start_service
ck pool add main "$WORK/pool" >/dev/null
vm=ckt-$$
define_vm "$vm" 32M "<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>"
cleanup_fns+=("for c in $vm-c $vm-n; do virsh -c qemu:///system destroy \$c; virsh -c qemu:///system undefine --tpm \$c; done >/dev/null 2>&1")
cleanup_fns+=("virsh -c qemu:///system undefine --tpm $vm >/dev/null 2>&1")
STATE=/var/lib/libvirt/swtpm
src_uuid=$(ck vm show "$vm" | jq_ "d['uuid']")
ck vm start "$vm" >/dev/null
check "swtpm made the source's TPM state at its first start" until_true 30 test -s "$STATE/$src_uuid/tpm2/tpm2-00.permall"
ck vm stop "$vm" --force >/dev/null
until_true 30 test "$(power "$vm")" = shutoff
ck snapshot create "$vm" s1 >/dev/null
ck vm clone "$vm" --snapshot s1 --name "$vm-c" --no-start --wait >/dev/null
uuid=$(ck vm show "$vm-c" | jq_ "d['uuid']")
check "the state is copied under the clone's UUID, byte for byte" \
  cmp "$STATE/$src_uuid/tpm2/tpm2-00.permall" "$STATE/$uuid/tpm2/tpm2-00.permall"
ck vm start "$vm-c" >/dev/null
check "the clone runs" until_true 30 test "$(power "$vm-c")" = running
check "its swtpm runs on the copied state" \
  until_true 10 pgrep -f "swtpm .*--tpmstate dir=$STATE/$uuid/tpm2" >/dev/null
ck vm clone "$vm" --snapshot s1 --name "$vm-n" --no-start --generalize tpm --wait >/dev/null
new=$(ck vm show "$vm-n" | jq_ "d['uuid']")
check "with tpm, no state is copied" test ! -e "$STATE/$new"
ck vm start "$vm-n" >/dev/null
check "with tpm, swtpm makes the clone a state of its own at its start" \
  until_true 30 test -s "$STATE/$new/tpm2/tpm2-00.permall"
check "... which is not the source's" bash -c "! cmp -s $STATE/$src_uuid/tpm2/tpm2-00.permall $STATE/$new/tpm2/tpm2-00.permall"
ck vm stop "$vm-c" --force >/dev/null
until_true 30 test "$(power "$vm-c")" = shutoff
ck vm delete "$vm-c" >/dev/null
check "deleting the clone removes its TPM state" test ! -e "$STATE/$uuid"
check "the source's TPM state stays" test -s "$STATE/$src_uuid/tpm2/tpm2-00.permall"
finish
