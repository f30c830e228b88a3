#!/usr/bin/env bash
# An item that fails (a host key the guest's ext4 marks immutable, so the
# appliance cannot replace it) fails the clone with one line naming the
# item, the file and the disk, and leaves nothing: no clone entry, no new
# file in the pool, no TPM state copied for it; the source chain is
# byte-identical.
SERVE_OPTS=(--tpm-state-dir "${TMPDIR:-/tmp}/clonekit-swtpm-$$")
source "$(dirname "$0")/lib.sh"
TPM=${SERVE_OPTS[1]}
cleanup_fns+=("rm -rf $TPM")
guest_tree tree src-host
truncate -s 48M fs.img
mkfs.ext4 -q -F -d tree fs.img
debugfs -w -R 'set_inode_field /etc/ssh/ssh_host_rsa_key flags 0x80010' fs.img 2>/dev/null  # immutable (+ extents)
partitioned base.raw fs.img
qemu-img convert -q -f raw -O qcow2 base.raw pool/src.qcow2
define_src src.qcow2 "<uuid>5b3c0a3e-6f7d-4c59-9b1e-0c2f8f2d9a11</uuid>"
sed -i "s|<model type='virtio'/></interface>|&<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>|" src.xml
ck vm delete src >/dev/null; ck vm define src.xml >/dev/null
mkdir -p "$TPM/5b3c0a3e-6f7d-4c59-9b1e-0c2f8f2d9a11/tpm2" && echo sealed > "$TPM/5b3c0a3e-6f7d-4c59-9b1e-0c2f8f2d9a11/tpm2/tpm2-00.permall"
ck snapshot create src s1 >/dev/null
sha256sum pool/* > source.sums
ls pool > before.txt
err=$(ck vm clone src --snapshot s1 --name broken --no-start --generalize default --wait 2>&1) && st=0 || st=$?
check "the clone fails" test "$st" = 1
check "its error is one line naming the item, the file and the disk" \
  bash -c '[ "$(wc -l <<<"$1")" = 1 ] && [[ "$1" == *"generalize ssh-host-keys: /etc/ssh/ssh_host_rsa_key on disk vda: "* ]]' _ "$err"
check "no clone entry is left" bash -c "! $CLONEKIT vm show broken >/dev/null 2>&1"
check "no file is left in the pool" diff before.txt <(ls pool)
check "no TPM state is left for the clone" test "$(ls "$TPM")" = 5b3c0a3e-6f7d-4c59-9b1e-0c2f8f2d9a11
check "the source chain is byte-identical" sha256sum -c --quiet source.sums
finish
