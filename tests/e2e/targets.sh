#!/usr/bin/env bash
# Destinations and pipeline settings: every variant must produce qemu's bytes.
# In-place targets (-n, block devices through a loop device) are zeroed
# where the disk reads as zero unless --target-is-zero.
source "$(dirname "$0")/lib.sh"

qemu-img create -q -f qcow2 base.qcow2 16M
qio base.qcow2 'write -P 0x61 0 6M' 'write -c -P 0x62 8M 2M' 'write -P 0 10M 1M'
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 16M
qio top.qcow2 'write -P 0x63 1M 64k' 'write -z 2M 1M' 'write -P 0x64 12M 4k'
qemu-img convert -O raw top.qcow2 ref.raw
size=$(stat -c %s ref.raw)

for args in "-j 1 --queue-depth 1" "-j 4 --queue-depth 64" "--request-size 4096" "--request-size 8388608" \
            "--direct" "--copy-offload" "-S 0" "-S 65536"; do
  rm -f out.raw
  # shellcheck disable=SC2086
  if "$CLONEKIT" collapse $args top.qcow2 out.raw && cmp -s out.raw ref.raw; then
    pass "collapse $args equals qemu's reading"
  else
    fail "collapse $args"
  fi
done

# -S: an all-zero data cluster (written as data by the guest) stays a hole by
# default and is allocated with -S 0.
rm -f s4k.raw s0.raw
"$CLONEKIT" collapse top.qcow2 s4k.raw
"$CLONEKIT" collapse -S 0 top.qcow2 s0.raw
a=$(du -k s4k.raw | cut -f1); b=$(du -k s0.raw | cut -f1)
check "-S 4096 leaves zero data unallocated (${a}K < ${b}K with -S 0)" test "$a" -lt "$b"

# -n into an existing file full of garbage: zero ranges must be zeroed.
head -c $((size + 1048576)) /dev/urandom > garbage.raw
check "-n into a file of garbage" "$CLONEKIT" collapse -n top.qcow2 garbage.raw
check "-n result equals qemu's reading (first $size bytes)" cmp -n "$size" garbage.raw ref.raw
truncate -s "$size" zeroed.raw
check "-n --target-is-zero into a zeroed file" "$CLONEKIT" collapse -n --target-is-zero top.qcow2 zeroed.raw
check "-n --target-is-zero result" cmp -s zeroed.raw ref.raw
rc=0; "$CLONEKIT" collapse -n top.qcow2 missing.raw 2>err || rc=$?
check "-n needs an existing target" bash -c "[ $rc -eq 1 ] && grep -q 'needs an existing target' err"
truncate -s 1M small.raw
rc=0; "$CLONEKIT" collapse -n top.qcow2 small.raw 2>err || rc=$?
check "-n refuses a target smaller than the disk" bash -c "[ $rc -eq 1 ] && grep -q 'target is smaller' err"
rc=0; "$CLONEKIT" collapse --target-is-zero top.qcow2 tz.raw 2>err || rc=$?
check "--target-is-zero needs -n" bash -c "[ $rc -eq 1 ] && grep -q 'needs -n' err"

# Block devices (loop devices, where root can make them): written in place.
head -c "$size" /dev/urandom > disk.img
if loop=$(losetup -f --show disk.img 2>/dev/null); then
  cleanup_fns+=("losetup -d $loop")
  for args in "" "--direct"; do
    # shellcheck disable=SC2086
    if "$CLONEKIT" collapse $args top.qcow2 "$loop" && cmp -n "$size" "$loop" ref.raw; then
      pass "block device $loop ${args:-(buffered)} equals qemu's reading"
    else
      fail "block device $loop $args"
    fi
    head -c "$size" /dev/urandom | dd of="$loop" bs=1M status=none conv=fsync
  done
  truncate -s 1M tiny.img
  if tiny=$(losetup -f --show tiny.img 2>/dev/null); then
    cleanup_fns+=("losetup -d $tiny")
    rc=0; "$CLONEKIT" collapse top.qcow2 "$tiny" 2>err || rc=$?
    check "a block device smaller than the disk is refused" bash -c "[ $rc -eq 1 ] && grep -q 'target is smaller' err"
  fi
else
  echo "SKIP: no loop devices here (block-device destination)"
fi

# qcow2 output with compression on several threads still passes check.
for j in 1 3; do
  rm -f c.qcow2
  if "$CLONEKIT" collapse -O qcow2 -c -j "$j" top.qcow2 c.qcow2 && qemu-img check -q c.qcow2 &&
     qemu-img compare -q -f raw -F qcow2 ref.raw c.qcow2; then
    pass "qcow2 -c with -j $j: check and compare"
  else
    fail "qcow2 -c with -j $j"
  fi
done

finish
