# Shared by the linked-clone scripts (sourced; SERVE_OPTS: more serve options): `clonekit serve` on
# libvirt's test:///default driver (no guest runs: a clone that is off is
# flattened by clonekit's own collapse), a pool, and a VM "src" with two
# disks built with qemu-img and a snapshot "s1" (taken offline), after which
# more data is written so that the snapshot and the current state differ.
# Each script checks one behaviour of issue #14's linked clones.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
PORT=$(free_port)
export CLONEKIT_SOCKET=$WORK/api.sock
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
vmf() { ck vm show "$1" | jq_ "$2"; }
# chain FILE: the files of FILE's backing chain, as qemu reads it, one per line.
chain() { qemu-img info -U --backing-chain --output=json "$1" | jq_ "'\n'.join(i['filename'] for i in d)"; }
# until_done JOB STATE: the job ends in STATE within 60 s.
until_done() {
  local end=$((SECONDS + 60)) st
  while :; do
    st=$(ck job show "$1" | jq_ "d['state']")
    [ "$st" = "$2" ] && return 0
    case $st in queued | running) ;; *) echo "job $1 ended $st"; return 1 ;; esac
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.1
  done
}
serve_on test:///default "${SERVE_OPTS[@]}"
mkdir pool
ck pool add main "$WORK/pool" >/dev/null
qemu-img create -q -f qcow2 pool/src.qcow2 64M
qemu-img create -q -f qcow2 pool/src-b.qcow2 16M
qio pool/src.qcow2 'write -P 0x61 0 4M' 'write -P 0x62 8M 4M'
qio pool/src-b.qcow2 'write -P 0x71 0 2M'
cat > src.xml <<XML
<domain type='test'>
  <name>src</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$WORK/pool/src.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$WORK/pool/src-b.qcow2'/><target dev='vdb' bus='virtio'/></disk>
  </devices>
</domain>
XML
ck vm define src.xml >/dev/null
ck snapshot create src s1 >/dev/null
qemu-img convert -O raw pool/src.qcow2 s1-vda.raw    # qemu's reading of s1
qemu-img convert -O raw pool/src-b.qcow2 s1-vdb.raw
qio pool/src-vda-s1.qcow2 'write -P 0x63 0 1M'  # after s1 (its overlay): no clone of s1 may see it
