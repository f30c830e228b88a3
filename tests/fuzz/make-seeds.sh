#!/usr/bin/env bash
# Builds the seed corpora with qemu-img/qemu-io: small images of every
# cluster size and feature, and two-image chains in fuzz_chain's format.
set -euo pipefail
out=$1
mkdir -p "$out/image" "$out/chain" "$out/domain_xml"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
n=0
mk() {  # mk OPTS SIZE QEMU-IO-CMDS...
  local opts=$1 size=$2; shift 2
  n=$((n + 1))
  qemu-img create -q -f qcow2 -o "$opts" "s$n.qcow2" "$size"
  local args=(); for c in "$@"; do args+=(-c "$c"); done
  [ ${#args[@]} -eq 0 ] || qemu-io -f qcow2 "${args[@]}" "s$n.qcow2" >/dev/null
  cp "s$n.qcow2" "$out/image/seed-$n.qcow2"
}
mk cluster_size=512 64k 'write -P 1 0 4k' 'write -z 8k 1k' 'write -c -P 2 16k 512'
mk cluster_size=512,compat=0.10 32k 'write -P 3 1k 2k' 'write -c -P 4 8k 512'
mk cluster_size=4k 128k 'write -P 5 4k 8k' 'write -z 64k 4k' 'write -c -P 6 96k 4k'
mk cluster_size=4k,compression_type=zstd 128k 'write -c -P 7 0 8k' 'write -P 8 64k 4k'
mk cluster_size=16k,extended_l2=on 256k 'write -P 9 1k 1k' 'write -z 20k 2k' 'write -c -P 10 64k 16k'
mk cluster_size=64k 1M 'write -P 11 0 64k' 'write -z 128k 64k'
mk cluster_size=2M 4M 'write -P 12 1M 4k'
mk cluster_size=4k,lazy_refcounts=on 64k 'write -P 13 0 4k'
# Chains: [u32 LE len(top)][top][base]
i=0
for top in "$out"/image/seed-1.qcow2 "$out"/image/seed-3.qcow2 "$out"/image/seed-5.qcow2; do
  i=$((i + 1))
  qemu-img create -q -f qcow2 -o cluster_size=4k base$i.qcow2 64k
  qemu-io -f qcow2 -c "write -P $i 0 32k" base$i.qcow2 >/dev/null
  qemu-img create -q -f qcow2 -o cluster_size=512 -b base$i.qcow2 -F qcow2 top$i.qcow2 128k
  qemu-io -f qcow2 -c "write -P 9 4k 1k" -c "write -z 8k 512" top$i.qcow2 >/dev/null
  python3 -c "
import struct,sys
t=open('top$i.qcow2','rb').read(); b=open('base$i.qcow2','rb').read()
open('$out/chain/seed-$i','wb').write(struct.pack('<I',len(t))+t+b)"
done
printf 'raw base bytes' > rawbase
qemu-img create -q -f qcow2 -o cluster_size=512 -b rawbase -F raw rtop.qcow2 4k
python3 -c "
import struct
t=open('rtop.qcow2','rb').read(); b=open('rawbase','rb').read()
open('$out/chain/seed-raw','wb').write(struct.pack('<I',len(t))+t+b)"
echo "seeds: $(ls "$out/image" | wc -l) images, $(ls "$out/chain" | wc -l) chains"

# Domain definitions: libvirt's own example domain (the test driver's), and
# the shapes clonekit's tests define.
virsh -q -c test:///default dumpxml test > "$out/domain_xml/libvirt-test.xml" 2>/dev/null || true
cat > "$out/domain_xml/kvm.xml" <<'XML'
<domain type='kvm'>
  <name>web</name><uuid>11111111-2222-3333-4444-555555555555</uuid><description>a &lt;b&gt;</description>
  <memory unit='MiB'>512</memory><vcpu placement='static'>2</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><loader readonly='yes' type='pflash'>/p/CODE.fd</loader><nvram>/p/web_VARS.fd</nvram><boot dev='hd'/></os>
  <features><acpi/><apic/></features><cpu mode='host-passthrough'/><clock offset='utc'><timer name='rtc' tickpolicy='catchup'/></clock>
  <sysinfo type='smbios'><system><entry name='uuid'>11111111-2222-3333-4444-555555555555</entry></system></sysinfo>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/p/web.qcow2'/><backingStore type='file'><source file='/p/base.qcow2'/></backingStore><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='sda' bus='sata'/><readonly/></disk>
    <interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/><model type='virtio'/><target dev='vnet3'/></interface>
    <graphics type='vnc' port='5900' autoport='no' listen='127.0.0.1'/>
    <channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng><tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>
  </devices>
</domain>
XML
printf "<domain type='test'><name>t</name><memory>65536</memory><devices><emulator>/bin/sh</emulator></devices></domain>" > "$out/domain_xml/refused.xml"

# fuzz_guest_text: the guest files clonekit edits (tests/e2e/generalize/guest-tree.sh's).
mkdir -p "$out/guest_text"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tsrc-host.example.org src-host # src-host\n' > "$out/guest_text/hosts"
printf '[ethernet]\nmac-address=52:54:00:AB:CD:EF\n' > "$out/guest_text/nmconnection"
printf 'SUBSYSTEM=="net", ATTR{address}=="52:54:00:ab:cd:ef", NAME="eth0"\n' > "$out/guest_text/udev-rule"
printf 'instance-id: iid-src\nlocal-hostname: src-host\n' > "$out/guest_text/meta-data"
printf '{"instance-id": "iid-src"}\n' > "$out/guest_text/meta-data-json"
