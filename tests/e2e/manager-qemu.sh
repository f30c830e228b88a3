#!/usr/bin/env bash
# The manager against a real libvirtd running qemu under TCG: a guest with
# no OS ignores the ACPI shutdown request, which is the seeds' "source fails
# to shut down" path: the clone fails with a clear error, nothing is copied
# or left behind, the source keeps running; once powered off, it clones.
# Skips visibly where libvirtd or qemu-system-x86 is not installed.
source "$(dirname "$0")/lib.sh"
start_libvirtd || exit 77

PORT=$(free_port)
export CLONEKIT_SOCKET=$WORK/api.sock
"$CLONEKIT" serve --db "$WORK/state.db" --port "$PORT" --socket "$WORK/api.sock" --hypervisor qemu:///system --shutdown-timeout 3 2>serve.log &
SVC=$!
cleanup_fns+=("kill $SVC 2>/dev/null")
for _ in $(seq 1 100); do ck pool list >/dev/null 2>&1 && break; sleep 0.05; done
vm=ckq-$$
cleanup_fns+=("virsh -c qemu:///system destroy $vm >/dev/null 2>&1; virsh -c qemu:///system undefine $vm >/dev/null 2>&1")
cleanup_fns+=("virsh -c qemu:///system undefine $vm-clone >/dev/null 2>&1")

mkdir pool
ck pool add main "$WORK/pool" >/dev/null
qemu-img create -q -f qcow2 "pool/$vm.qcow2" 32M
qio "pool/$vm.qcow2" 'write -P 0x61 0 4M'
cat > vm.xml <<XML
<domain type='qemu'>
  <name>$vm</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$WORK/pool/$vm.qcow2'/><target dev='vda' bus='virtio'/></disk>
  </devices>
</domain>
XML
check "define a qemu VM" ck vm define vm.xml
check "start it (TCG, no OS)" ck vm start "$vm"
power() { ck vm show "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["power"])'; }
check "it runs" [ "$(power "$vm")" = running ]

out=$(ck vm clone "$vm" --wait 2>&1) && st=0 || st=$?
shutdown_refused() { [ "$st" = 1 ] && [[ "$out" == *"did not shut down within 3 s; power it off and retry"* ]]; }
check "a source that ignores shutdown: the clone fails saying to power it off" shutdown_refused
check "nothing was copied or left behind" [ "$(ls pool)" = "$vm.qcow2" ]
check "no clone entry" bash -c "! '$CLONEKIT' vm show $vm-clone >/dev/null 2>&1"
check "the source is still running" [ "$(power "$vm")" = running ]
check "the source is not locked" [ "$(ck vm show "$vm" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" = running ]

check "power it off (vm stop --force)" ck vm stop --force "$vm"
check "then the clone succeeds" ck vm clone "$vm" --no-start --wait
check "the clone's disk equals the source disk" qemu-img compare -q "pool/$vm.qcow2" "pool/$vm-clone-vda.qcow2"
knows() { virsh -c qemu:///system dominfo "$1" >/dev/null; }
check "libvirt knows the clone" knows "$vm-clone"

# libvirtd restarts under the service: its dropped connection is reopened.
if [ -f /run/libvirtd.pid ]; then
  kill "$(cat /run/libvirtd.pid)"; for _ in $(seq 1 100); do virsh -c qemu:///system version >/dev/null 2>&1 || break; sleep 0.1; done
  libvirtd -d; for _ in $(seq 1 100); do virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.1; done
  check "after a libvirtd restart the service reaches libvirt again (start works)" ck vm start "$vm-clone"
  check "... and sees it run" [ "$(power "$vm-clone")" = running ]
  virsh -c qemu:///system destroy "$vm-clone" >/dev/null 2>&1 || true
fi
kill "$SVC"; wait "$SVC" 2>/dev/null || true
finish
