# A real Linux guest for the live tests (sourced after lib.sh): Debian's
# kernel booted directly with a small initramfs built here, whose init is
# busybox and a test guest agent on the virtio-serial port
# org.qemu.guest_agent.0. The agent speaks the qemu-ga protocol as far as
# libvirt uses it for a quiesced snapshot (guest-sync, guest-ping,
# guest-fsfreeze-freeze, guest-fsfreeze-thaw) and reports how often it was
# asked to freeze and thaw in guest-info's "version" ("freeze=N thaw=N").
# With ckagent=refuse on the kernel command line it refuses every freeze;
# with ckagent=silent it never opens the port (a guest whose agent is not
# running).
KVER=$(ls /lib/modules 2>/dev/null | sort -V | tail -1)
[ -n "$KVER" ] && [ -f "/boot/vmlinuz-$KVER" ] && command -v busybox >/dev/null && command -v cpio >/dev/null ||
  { echo "SKIP: no kernel, busybox-static or cpio (scripts/deps.sh installs them)"; exit 77; }

# build_guest DIR: DIR/vmlinuz and DIR/initrd.img.
build_guest() {
  local root=$WORK/initramfs m
  rm -rf "$root" && mkdir -p "$root"/{bin,proc,sys,dev,lib}
  cp "$(command -v busybox)" "$root/bin/busybox"
  for m in $( (modprobe -S "$KVER" --show-depends virtio_pci; modprobe -S "$KVER" --show-depends virtio_console) |
             awk '$1 == "insmod" && !seen[$2]++ {print $2}'); do
    cp "$m" "$root/lib/"
    echo "$(basename "$m")" >> "$root/lib/order"
  done
  cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /lib/order); do insmod "/lib/$m" 2>/dev/null; done
mode=$(sed -n 's/.*ckagent=\([a-z]*\).*/\1/p' /proc/cmdline)
[ "$mode" = silent ] && { echo "test agent not started" > /dev/console; while true; do sleep 1000; done; }
port=
for _ in $(seq 100); do
  for p in /sys/class/virtio-ports/*; do [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && port=/dev/${p##*/}; done
  [ -n "$port" ] && [ -e "$port" ] && break; sleep 0.1
done
echo "test agent on $port (mode ${mode:-normal})" > /dev/console
freeze=0 thaw=0
exec 3<>"$port"
# A read gives end-of-file while the host side is not connected (libvirt
# connects only once the guest has opened the port): wait and read again
# on the same descriptor, never close it (that would disconnect libvirt).
while true; do
  read -r line <&3 || { sleep 0.2; continue; }
  case "$line" in
    *guest-sync*) echo "{\"return\": $(echo "$line" | sed -n 's/.*"id": *\([0-9]*\).*/\1/p')}" >&3 ;;
    *guest-ping*) echo '{"return": {}}' >&3 ;;
    *guest-fsfreeze-freeze*)
      if [ "$mode" = refuse ]; then
        echo '{"error": {"class": "GenericError", "desc": "the test agent refuses to freeze"}}' >&3
      else
        freeze=$((freeze + 1)); echo '{"return": 1}' >&3
      fi ;;
    *guest-fsfreeze-thaw*) thaw=$((thaw + 1)); echo '{"return": 1}' >&3 ;;
    *guest-info*) echo "{\"return\": {\"version\": \"freeze=$freeze thaw=$thaw\", \"supported_commands\": []}}" >&3 ;;
    *) echo '{"error": {"class": "CommandNotFound", "desc": "not in the test agent"}}' >&3 ;;
  esac
done
INIT
  chmod 755 "$root/init"
  (cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$1/initrd.img"
  cp "/boot/vmlinuz-$KVER" "$1/vmlinuz"
}

# define_guest NAME AGENT_MODE: like define_vm, booting the test guest
# under TCG with a guest agent channel. (TCG boots it in about 2 s. On the
# project's machines KVM, though /dev/kvm opens, spent 40 s in the guest
# kernel's first steps without a line of output.)
define_guest() {
  local type=qemu
  qemu-img create -q -f qcow2 "pool/$1.qcow2" 32M
  qemu-img create -q -f qcow2 "pool/$1-b.qcow2" 16M
  qio "pool/$1.qcow2" 'write -P 0x61 0 4M'
  qio "pool/$1-b.qcow2" 'write -P 0x71 0 2M'
  cat > "$1.xml" <<XML
<domain type='$type'>
  <name>$1</name>
  <memory unit='MiB'>256</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>$WORK/pool/vmlinuz</kernel><initrd>$WORK/pool/initrd.img</initrd>
    <cmdline>console=ttyS0 quiet ckagent=$2</cmdline></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$WORK/pool/$1.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$WORK/pool/$1-b.qcow2'/><target dev='vdb' bus='virtio'/></disk>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <serial type='pty'/>
  </devices>
</domain>
XML
  ck vm define "$1.xml" >/dev/null
  cleanup_fns+=("virsh -c qemu:///system destroy $1 >/dev/null 2>&1; virsh -c qemu:///system undefine $1 >/dev/null 2>&1")
}
# agent VM CMD: the guest agent's reply to CMD (JSON), through libvirt.
agent() { virsh -c qemu:///system qemu-agent-command "$1" "{\"execute\": \"$2\"}" --timeout 5 2>/dev/null; }
agent_counts() { agent "$1" guest-info | python3 -c 'import json,sys; print(json.load(sys.stdin)["return"]["version"])'; }
wait_agent() { until_true 120 bash -c "virsh -c qemu:///system qemu-agent-command '$1' '{\"execute\": \"guest-ping\"}' --timeout 2 >/dev/null 2>&1"; }
# start_guest AGENT_MODE: pool "main", the test guest built, defined ($vm)
# and started (its qemu: $pid).
start_guest() {
  ck pool add main "$WORK/pool" >/dev/null
  build_guest pool
  vm=ckg-$$
  define_guest "$vm" "$1"
  ck vm start "$vm" >/dev/null
  pid=$(qemu_pid "$vm")
}
