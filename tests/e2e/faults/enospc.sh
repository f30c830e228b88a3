#!/usr/bin/env bash
# A full destination file system (a small loop-mounted ext4), filled so that
# space runs out at different points of the copy (at once, early, midway,
# near the end): exit 1 and one line saying "No space left on device";
# nothing under the final name, no temporary, the space given back, the
# source untouched. Raw and qcow2 output.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
source "$here/lib.sh"
if [ "$(id -u)" -ne 0 ] || ! command -v mkfs.ext4 >/dev/null; then
  echo "SKIP: needs root and mkfs.ext4 (a loop mount)"; exit 77
fi

qemu-img create -q -f qcow2 base.qcow2 64M
qio base.qcow2 'write -P 1 0 24M'
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 64M
qio top.qcow2 'write -P 2 8M 8M'
before=$(sources_digest base.qcow2 top.qcow2)

truncate -s 64M fs.img
mkfs.ext4 -q -F -m 0 fs.img  # no blocks reserved for root (we are root)
mkdir full
mount -o loop fs.img full || { echo "SKIP: cannot loop-mount"; exit 77; }
cleanup_fns+=("umount $WORK/full")
free_kib() { df --output=avail -k full | tail -1 | tr -d ' '; }

# The copy needs 24 MiB of data (qcow2: a little more for its tables).
for left in 0 1024 8192 16384 23552; do
  filler=$(( $(free_kib) - left - 64 ))  # (the filler's own extent tree needs a little)
  [ "$filler" -gt 0 ] && fallocate -l "${filler}K" full/filler
  avail=$(free_kib)
  for fmt in raw qcow2; do
    what="$fmt, $avail KiB free"
    check "$what: one line, No space left on device" \
      one_line_error "No space left on device" "$CLONEKIT" collapse -O "$fmt" top.qcow2 "full/out.$fmt"
    check "$what: nothing under the final name" test ! -e "full/out.$fmt"
    check "$what: no temporary" test -z "$(temporaries full)"
    check "$what: the space is given back ($(free_kib) KiB, was $avail)" test "$(free_kib)" -ge "$avail"
  done
  rm -f full/filler
done
check "the source is untouched" test "$(sources_digest base.qcow2 top.qcow2)" = "$before"
finish
