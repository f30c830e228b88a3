#!/usr/bin/env bash
# The web console in a real browser: Debian's chromium, driven by Playwright
# (playwright-core from web/node_modules), against real `clonekit serve`
# services holding real qcow2 chains: the libvirt test driver for the clone
# flows, a real libvirtd + qemu (TCG, no OS, so ACPI shutdown is ignored)
# for the shutdown-failure toast, and a service with a token.
# Skips (77) only where chromium cannot start.
BROWSER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$BROWSER_DIR/../e2e/lib.sh"
: "${WEB_DIR:=}"
[ -n "$WEB_DIR" ] && [ -f "$WEB_DIR/index.html" ] || { echo "FAIL - the web console is not built: npm ci in web/ (scripts/deps.sh), then rebuild"; exit 1; }
export NODE_PATH=$BROWSER_DIR/../../web/node_modules
node "$BROWSER_DIR/console.mjs" --probe || { echo "SKIP: chromium cannot start here"; exit 77; }

# A clone made a new machine inside (#15) runs libguestfs's appliance; this
# machine's KVM does not run it (docs/performance.md): TCG, unless the caller chose.
export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}
# serve NAME PORT [options]: a service with its own database, in the background.
serve() {
  local name=$1 port=$2; shift 2
  "$CLONEKIT" serve --db "$WORK/$name.db" --port "$port" --socket "$WORK/$name.sock" --token-file "$WORK/$name.token" \
    --web "$WEB_DIR" "$@" 2>>"$name.log" &
  cleanup_fns+=("kill $! 2>/dev/null")
  for _ in $(seq 1 100); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "service $name did not start"; cat "$name.log"; return 1
}
# domain NAME TYPE MEMORY_MIB DISK...: a libvirt definition with file disks and a NIC.
domain() {
  local name=$1 type=$2 mem=$3 t=a; shift 3
  echo "<domain type='$type'><name>$name</name><memory unit='MiB'>$mem</memory><vcpu>2</vcpu>"
  echo "<os><type arch='x86_64'>hvm</type></os><devices>"
  for f in "$@"; do
    echo "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$f'/><target dev='vd$t' bus='virtio'/></disk>"
    t=$(echo "$t" | tr a-y b-z)
  done
  # A NIC on the test driver's own network; a real qemu guest gets none
  # (clonekit accepts no user-mode networking, and the host here has no
  # libvirt network).
  [ "$type" = test ] && echo "<interface type='network'><mac address='52:54:00:$(printf '%02x' $((RANDOM % 256))):00:01'/><source network='default'/><model type='virtio'/></interface>"
  echo "</devices></domain>"
}

# Service A: the libvirt test driver; copies slowed so progress can be seen.
PORT_A=$(free_port)
export CLONEKIT_SOCKET=$WORK/a.sock
serve a "$PORT_A" --hypervisor test:///default --copy-rate 12M --shutdown-timeout 3
mkdir pool
ck pool add main "$WORK/pool" >/dev/null
# A 1 MiB pool, so that a clone into it is refused for want of space.
TINY=
mkdir tiny
if mount -t tmpfs -o size=1M tmpfs tiny 2>/dev/null; then
  cleanup_fns+=("umount $WORK/tiny")
  ck pool add tiny "$WORK/tiny" >/dev/null && TINY=$WORK/tiny
fi
[ -n "$TINY" ] || echo "note: cannot mount a tmpfs here: the no-space refusal is not checked"
# web-off: offline, two disks, snapshots s1 and s2 with writes between.
qemu-img create -q -f qcow2 pool/web-off-vda.qcow2 96M
qemu-img create -q -f qcow2 pool/web-off-vdb.qcow2 32M
qio pool/web-off-vda.qcow2 'write -P 0x11 0 40M' 'write -c -P 0x12 60M 4M'
qio pool/web-off-vdb.qcow2 'write -P 0x21 0 8M'
domain web-off test 512 "$WORK/pool/web-off-vda.qcow2" "$WORK/pool/web-off-vdb.qcow2" > web-off.xml
ck vm define web-off.xml >/dev/null
ck snapshot create web-off s1 >/dev/null
qio pool/web-off-vda-s1.qcow2 'write -P 0x13 4M 4M' 'write -z 8M 1M'
ck snapshot create web-off s2 >/dev/null
qio pool/web-off-vda-s2.qcow2 'write -P 0x14 0 1M'
# After the snapshots the VM gets more memory: s1's saved configuration differs.
ck vm show web-off --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["xml"])' |
  sed 's|<memory unit="MiB">512</memory>|<memory unit="MiB">1024</memory>|' > web-off-now.xml
grep -q ">1024<" web-off-now.xml || { echo "FAIL - could not raise web-off's memory"; exit 1; }
ck vm edit web-off --xml web-off-now.xml >/dev/null
# web-run: running (test driver), one disk, snapshot r1 taken before it ran.
qemu-img create -q -f qcow2 pool/web-run.qcow2 64M
qio pool/web-run.qcow2 'write -P 0x31 0 24M'
domain web-run test 256 "$WORK/pool/web-run.qcow2" > web-run.xml
ck vm define web-run.xml >/dev/null
ck snapshot create web-run r1 >/dev/null
qio pool/web-run-vda-r1.qcow2 'write -P 0x32 0 1M'
ck vm start web-run >/dev/null
# web-html: a description that is HTML.
qemu-img create -q -f qcow2 pool/web-html.qcow2 16M
domain web-html test 128 "$WORK/pool/web-html.qcow2" > web-html.xml
ck vm define web-html.xml >/dev/null
ck vm edit web-html --description '<img src=x onerror="window.__xss=1;alert(1)"><b>bold</b>' >/dev/null
# Two more, in another namespace, so filters have something to hide.
for n in 1 2; do
  qemu-img create -q -f qcow2 "pool/web-ns$n.qcow2" 16M
  domain "web-ns$n" test 128 "$WORK/pool/web-ns$n.qcow2" > "web-ns$n.xml"
  ck vm define --namespace team-b "web-ns$n.xml" >/dev/null
done
ck vm start team-b/web-ns2 >/dev/null

# Service B: real libvirtd + qemu, a running guest that ignores shutdown.
URL_B=
vm_b=ckweb-$$
if start_libvirtd; then
  PORT_B=$(free_port)
  serve b "$PORT_B" --hypervisor qemu:///system --shutdown-timeout 3
  mkdir poolb
  CLONEKIT_SOCKET=$WORK/b.sock ck pool add main "$WORK/poolb" >/dev/null
  qemu-img create -q -f qcow2 "poolb/$vm_b.qcow2" 16M
  domain "$vm_b" qemu 64 "$WORK/poolb/$vm_b.qcow2" > vmb.xml
  cleanup_fns+=("virsh -c qemu:///system destroy $vm_b >/dev/null 2>&1; virsh -c qemu:///system undefine $vm_b >/dev/null 2>&1")
  cleanup_fns+=("virsh -c qemu:///system undefine $vm_b-clone >/dev/null 2>&1")
  cleanup_fns+=("virsh -c qemu:///system destroy $vm_b-instant >/dev/null 2>&1; virsh -c qemu:///system undefine $vm_b-instant >/dev/null 2>&1")
  CLONEKIT_SOCKET=$WORK/b.sock ck vm define vmb.xml >/dev/null
  CLONEKIT_SOCKET=$WORK/b.sock ck vm start "$vm_b" >/dev/null && URL_B=http://127.0.0.1:$PORT_B/
fi
[ -n "$URL_B" ] || echo "note: no libvirtd + qemu here: the shutdown-failure toast is not checked"

# Service C: the page asks for the token.
PORT_C=$(free_port)
serve c "$PORT_C"

# A and B are opened as `clonekit console` prints their address (#token=...).
token() { [ -f "$WORK/$1.token" ] && cat "$WORK/$1.token"; }
URL_A=http://127.0.0.1:$PORT_A/ URL_B=$URL_B VM_B=$vm_b URL_C=http://127.0.0.1:$PORT_C/ \
  TOKEN_A=$(token a) TOKEN_B=$(token b) TOKEN_C=$(token c) \
  POOL=$WORK/pool TINY=$TINY node "$BROWSER_DIR/console.mjs" && st=0 || st=$?
check "service logs have no crash" bash -c "! grep -qE 'runtime error|AddressSanitizer' *.log"
[ "$st" = 0 ] && finish
