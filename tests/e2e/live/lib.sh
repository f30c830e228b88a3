# Shared by the live-clone scripts (sourced): a real libvirtd running qemu
# (TCG: the guest has no OS, which is enough for its disks to be open and
# written by a running qemu), `clonekit serve` on it, a pool, and a VM whose
# disk is a qcow2 chain built with qemu-img. Each script checks one
# behaviour of issue #14.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
start_libvirtd || exit 77

PORT=$(free_port)
export CLONEKIT_SOCKET=$WORK/api.sock
start_service() { serve_on qemu:///system "$@"; }  # start_service [serve options]
mkdir pool
# guest_write VM DISK_ALIAS QEMU_IO_CMD: a write by the running qemu itself
# (HMP qemu-io on the guest's disk device), as the guest would write.
guest_write() {
  virsh -c qemu:///system qemu-monitor-command "$1" --hmp "qemu-io -d /machine/peripheral/$2/virtio-backend \"$3\"" >/dev/null
}
until_true() {  # until_true SECONDS CMD...: CMD succeeds within SECONDS
  local end=$((SECONDS + $1)); shift
  until "$@"; do [ "$SECONDS" -lt "$end" ] || return 1; sleep 0.1; done
}
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
power() { ck vm show "$1" | jq_ "d['power']"; }
status() { ck vm show "$1" | jq_ "d['status']"; }
# disk_file VM TARGET: the file the VM's definition names for the disk.
disk_file() { ck vm show "$1" | jq_ "[x['file'] for x in d['disks'] if x['target'] == '$2'][0]"; }
# chain_names FILE: the base names of the files in FILE's chain, top first.
chain_names() { qemu-img info -U --backing-chain --output=json "$1" | jq_ "' '.join(i['filename'].split('/')[-1] for i in d)"; }
# qemu_pid VM: the pid of the VM's qemu process ("" when it does not run).
qemu_pid() { cat "/run/libvirt/qemu/$1.pid" 2>/dev/null || true; }
# setup_vm SIZE: pool "main", and a VM defined on it ($vm; its clone is
# undefined at exit too).
setup_vm() {
  ck pool add main "$WORK/pool" >/dev/null
  vm=ckl-$$
  define_vm "$vm" "$1"
  cleanup_fns+=("virsh -c qemu:///system undefine $vm-clone >/dev/null 2>&1")
}
# define_vm NAME SIZE [EXTRA_DEVICES]: a TCG domain with disks vda
# (pool/NAME.qcow2) and vdb (pool/NAME-b.qcow2), data written on both.
define_vm() {
  qemu-img create -q -f qcow2 "pool/$1.qcow2" "$2"
  qemu-img create -q -f qcow2 "pool/$1-b.qcow2" 16M
  qio "pool/$1.qcow2" 'write -P 0x61 0 4M' 'write -P 0x62 8M 4M'
  qio "pool/$1-b.qcow2" 'write -P 0x71 0 2M'
  cat > "$1.xml" <<XML
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$WORK/pool/$1.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$WORK/pool/$1-b.qcow2'/><target dev='vdb' bus='virtio'/></disk>
    ${3:-}
  </devices>
</domain>
XML
  ck vm define "$1.xml" >/dev/null
  cleanup_fns+=("virsh -c qemu:///system destroy $1 >/dev/null 2>&1; virsh -c qemu:///system undefine $1 >/dev/null 2>&1")
}
