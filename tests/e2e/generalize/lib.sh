# Shared by the generalize scripts (sourced): `clonekit serve` on libvirt's
# test driver, a pool, and helpers that build a real Linux guest's disk:
# a minimal tree (os-release, machine-id, SSH host keys made by ssh-keygen,
# hostname, cloud-init state, a NetworkManager profile and a udev rule with
# the source's MAC, a DHCP lease) on ext4 (mkfs.ext4 -d), xfs (mkfs + loop
# mount) or LVM (guestfish), partitioned, at the base of a qcow2 chain.
# Each script checks one behaviour of issue #15.
GENERALIZE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$GENERALIZE_DIR/../lib.sh"
for tool in guestfish ssh-keygen debugfs sfdisk; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done
# This machine's KVM does not run libguestfs's appliance (see
# docs/performance.md): TCG, unless the caller chose.
export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}
PORT=$(free_port)
export CLONEKIT_SOCKET=$WORK/api.sock
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
SRC_MAC=52:54:00:ab:cd:ef

# guest_tree DIR HOSTNAME: the files a generalize item touches (guest-tree.sh).
guest_tree() { bash "$GENERALIZE_DIR/guest-tree.sh" "$1" "$2" "$SRC_MAC"; }

# partitioned DISK.raw FS.img: a disk with one partition (from 1 MiB) holding FS.img.
partitioned() {
  local size=$(( $(stat -c %s "$2") / 1048576 + 2 ))
  truncate -s "${size}M" "$1"
  echo 'start=2048, type=83' | sfdisk -q "$1"
  dd if="$2" of="$1" bs=1M seek=1 conv=notrunc status=none
}

# ext4_guest DISK.raw HOSTNAME
ext4_guest() {
  guest_tree tree "$2"
  truncate -s 48M fs.img
  mkfs.ext4 -q -F -d tree fs.img
  partitioned "$1" fs.img
  rm -rf tree fs.img
}

# define_src XML_TYPE DISK.qcow2 [MORE_XML]: VM "src" on that disk, one NIC with SRC_MAC.
define_src() {
  cat > src.xml <<XML
<domain type='test'>
  <name>src</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64'>hvm</type></os>
  ${2:-}
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$WORK/pool/$1'/><target dev='vda' bus='virtio'/></disk>
    <interface type='network'><mac address='$SRC_MAC'/><source network='default'/><model type='virtio'/></interface>
  </devices>
</domain>
XML
  ck vm define src.xml >/dev/null
}

# guest_cat IMAGE FORMAT PATH...: each file's content from IMAGE, read by
# guestfish (inspection mounts the guest), each after a "=== PATH" line.
guest_cat() {
  local img=$1 fmt=$2; shift 2
  local cmds=()
  for p in "$@"; do cmds+=(: echo "=== $p" : cat "$p"); done
  guestfish --ro --format="$fmt" -a "$img" -i "${cmds[@]:1}" 2>&1
}

# until_done JOB: the job ends (any way) within 300 s; prints its state.
until_done() {
  local end=$((SECONDS + 300)) st
  while :; do
    st=$(ck job show "$1" | jq_ "d['state']")
    case $st in queued | running) ;; *) echo "$st"; return 0 ;; esac
    [ "$SECONDS" -lt "$end" ] || { echo timeout; return 1; }
    sleep 0.5
  done
}

serve_on test:///default "${SERVE_OPTS[@]}"
mkdir pool
ck pool add main "$WORK/pool" >/dev/null

# xfs_guest DISK.raw HOSTNAME: the tree on xfs (mkfs.xfs, loop-mounted to fill).
xfs_guest() {
  guest_tree tree "$2"
  sed -i 's/ext4/xfs/' tree/etc/fstab
  truncate -s 320M fs.img  # xfsprogs' smallest; sparse
  mkfs.xfs -q fs.img
  mkdir mnt
  mount -o loop fs.img mnt
  cp -a tree/. mnt/
  umount mnt
  partitioned "$1" fs.img
  rm -rf tree fs.img mnt
}

# mounted_ro IMAGE DIR [OPTIONS]: IMAGE's first partition, read through qemu's own
# reading (qemu-img convert) and mounted read-only by the kernel.
mounted_ro() {
  qemu-img convert -O raw "$1" "$2.raw"
  mkdir -p "$2"
  mount -o "loop,ro,offset=1048576${3:+,$3}" "$2.raw" "$2"
  cleanup_fns+=("umount $WORK/$2")
}
