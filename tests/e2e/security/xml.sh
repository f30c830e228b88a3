#!/usr/bin/env bash
# Class 2, what reaches libvirt: a definition is parsed into the allow-list
# model and refused with one line naming the element; libvirt only ever gets
# XML written from the model (the stored definition shows it).
source "$(dirname "$0")/lib.sh"
start_service
ck pool add main "$WORK/pool" >/dev/null
qemu-img create -q -f qcow2 pool/a.qcow2 16M
DISK=$(disk_xml "$WORK/pool/a.qcow2")
refused() {  # refused WHAT EXPECTED-ERROR XML
  local r; r=$(define "$3")
  check "$1: refused (400, '$2')" status_is 400 "$r" "$2"
}
refused "<emulator>" "devices/emulator: not allowed" "$(domain_xml e "$DISK<emulator>/tmp/evil</emulator>")"
refused "<qemu:commandline>" "qemu:commandline: elements in another XML namespace" \
  "<domain type='test' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>q</name><qemu:commandline><qemu:arg value='-S'/></qemu:commandline></domain>"
refused "<seclabel> dac +0:+0" "seclabel: not allowed" \
  "$(domain_xml s "$DISK" "<seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>")"
refused "a <disk> without type" "devices/disk: type='file' is required" \
  "$(domain_xml d "<disk device='disk'><source file='$WORK/pool/a.qcow2'/><target dev='vda'/></disk>")"
refused "a cdrom on a host file" "cdrom sda: '/etc/shadow' is outside every storage pool" \
  "$(domain_xml c "<disk type='file' device='cdrom'><source file='/etc/shadow'/><target dev='sda'/></disk>")"
refused "type='block'" "devices/disk/@type: value 'block' is not allowed" \
  "$(domain_xml b "<disk type='block' device='disk'><source dev='/dev/sda'/><target dev='vda'/></disk>")"
refused "<filesystem> of /" "devices/filesystem: not allowed" \
  "$(domain_xml f "<filesystem type='mount'><source dir='/'/><target dir='host'/></filesystem>")"
refused "<hostdev>" "devices/hostdev: not allowed" "$(domain_xml h "<hostdev mode='subsystem' type='pci'/>")"
refused "<serial type='file'>" "devices/serial/@type: value 'file' is not allowed" \
  "$(domain_xml t "<serial type='file'><source path='/etc/cron.d/x'/></serial>")"
refused "a network disk" "devices/disk/@type: value 'network' is not allowed" \
  "$(domain_xml n "<disk type='network' device='disk'><source protocol='nbd' name='x'><host name='10.0.0.1'/></source><target dev='vda'/></disk>")"
refused "two <name> elements" "name: appears twice" \
  "<domain type='test'><name>good</name><name>../../evil</name><memory>65536</memory></domain>"
refused "NVRAM outside the pools" "os/nvram: '/var/lib/libvirt/x_VARS.fd' is outside every storage pool" \
  "$(domain_xml v "$DISK" "<os><type>hvm</type><nvram>/var/lib/libvirt/x_VARS.fd</nvram></os>")"
refused "a kernel outside the pools (qemu would read it as root)" "os/kernel: '/etc/shadow' is outside every storage pool" \
  "$(domain_xml k "$DISK" "<os><type>hvm</type><kernel>/etc/shadow</kernel></os>")"
refused "an initrd outside the pools" "os/initrd: '/root/.ssh/id_rsa' is outside every storage pool" \
  "$(domain_xml i "$DISK" "<os><type>hvm</type><initrd>/root/.ssh/id_rsa</initrd></os>")"
refused "a kernel command line with a control character" "os/cmdline: value" \
  "$(domain_xml l "$DISK" "<os><type>hvm</type><cmdline>console=ttyS0&#10;x</cmdline></os>")"
refused "a qcow2 cdrom (its header could name any backing file)" "a cdrom must be raw" \
  "$(domain_xml q "<disk type='file' device='cdrom'><driver name='qemu' type='qcow2'/><source file='$WORK/pool/a.qcow2'/><target dev='sda'/></disk>")"
refused "user-mode networking (the host's loopback for the guest)" "devices/interface/@type: value 'user' is not allowed" \
  "$(domain_xml u "$DISK<interface type='user'/>")"
refused "an unbounded vCPU count" "vcpu: value '99999' is not allowed" \
  "$(domain_xml c "$DISK" "<vcpu>99999</vcpu>")"
check "nothing of it was defined" [ "$(vm_count)" = 0 ]

# <backingStore> is read and dropped: the image's own chain is checked.
r=$(define "$(domain_xml bs "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$WORK/pool/a.qcow2'/><backingStore type='file'><format type='raw'/><source file='/etc/shadow'/></backingStore><target dev='vda'/></disk>")")
check "a <backingStore> out of the pools is not passed on" status_is 201 "$r"
check "... the stored definition has none" bash -c "! grep -q shadow <<<'$r'"

# What libvirt gets is written from the model: no comment, no foreign text.
r=$(define "$(domain_xml w "$(disk_xml "$WORK/pool/a.qcow2")<!-- hidden --><interface type='network'><source network='default'/></interface>")")
check "a comment does not survive into the definition" status_is 201 "$r"
check "... it is written from the model" bash -c "! grep -q hidden <<<'$r'"
id=$(jq_ "d['id']" <<<"${r#* }")
r=$(unix PUT "/api/v1/vms/$id" "$(python3 -c 'import json,sys; print(json.dumps({"xml": sys.argv[1]}))' "$(domain_xml w "$DISK<emulator>/bin/sh</emulator>")")")
check "an edit is checked the same way" status_is 400 "$r" "devices/emulator: not allowed"
unix PUT "/api/v1/vms/$id" '{"description":"new words"}' >/dev/null
check "a description edit reaches the stored definition (one source of truth)" \
  bash -c "unix() { $REQ --unix '$SOCK' \"\$@\"; }; unix GET /api/v1/vms/$id | grep -q '<description>new words</description>'"
check "... and the clone dialog's defaults" bash -c "$REQ --unix '$SOCK' GET /api/v1/vms/$id/clone-defaults | grep -q '\"description\": \"new words\"'"
stop_service
check "service log has no crash" sanitizer_clean serve.log
finish
