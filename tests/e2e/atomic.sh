#!/usr/bin/env bash
# The output appears complete or not at all: temporary name, fdatasync,
# rename, directory fsync; interrupted, failed or refused runs leave nothing.
source "$(dirname "$0")/lib.sh"

qemu-img create -q -f qcow2 base.qcow2 4M
qio base.qcow2 'write -P 1 0 4M'
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 4M
qio top.qcow2 'write -P 2 64k 64k'
qemu-img convert -O raw top.qcow2 ref.raw

# An existing destination is refused unless --force.
echo keep > exists.raw
rc=0; "$CLONEKIT" collapse top.qcow2 exists.raw 2>err || rc=$?
check "existing destination refused (exit 1)" test "$rc" -eq 1
check "the message says so" grep -q '^clonekit: exists.raw: destination exists (use --force' err
check "existing destination untouched" grep -qx keep exists.raw
check "--force replaces it" "$CLONEKIT" collapse --force top.qcow2 exists.raw
check "replaced content equals qemu's reading" cmp -s exists.raw ref.raw
rc=0; "$CLONEKIT" collapse --force top.qcow2 base.qcow2 2>err || rc=$?
check "a layer of the source chain is never a destination" grep -q 'layer of the source chain' err
check "the source layer is intact" qemu-img check -q base.qcow2

# Durability order: fdatasync the data, then rename, then fsync the directory.
if command -v strace >/dev/null; then
  ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" strace -f -e trace=fdatasync,fsync,rename,renameat,renameat2 -o trace.txt "$CLONEKIT" collapse top.qcow2 durable.raw
  # (The temporary's own naming step, ".new" -> its locked name, is not part of the commit.)
  order=$(grep -v '\.new"' trace.txt | grep -oE '^[0-9]+ +(fdatasync|fsync|renameat2?|rename)' | awk '{print $2}' | tr '\n' ' ')
  check "fdatasync, rename, fsync(dir) in that order (got: $order)" test "$order" = "fdatasync renameat2 fsync "
  check "rename moves the temporary onto the final name" grep -q 'renameat2(.*\.durable\.raw\.clonekit-.*durable\.raw.*RENAME_NOREPLACE' trace.txt
else
  echo "SKIP: strace not installed (durability order)"
fi

# SIGINT / SIGTERM mid-copy: exit 128+N, no temporary, no final file.
make_big big.qcow2 768M
for sig in INT TERM; do
  start_stopped_collapse big.qcow2 "$WORK/int.raw"
  kill -"$sig" "$BG_PID"; kill -CONT "$BG_PID"
  rc=0; wait "$BG_PID" || rc=$?
  want=$((128 + $(kill -l "$sig")))
  check "SIG$sig: exit status $want (got $rc)" test "$rc" -eq "$want"
  check "SIG$sig: says nothing was written" grep -q 'interrupted by signal.*nothing was written' bg.err
  check "SIG$sig: no final file" test ! -e int.raw
  check "SIG$sig: no temporary left" bash -c "! compgen -G '.int.raw.clonekit-*'"
done

# A full destination (ENOSPC on a small tmpfs): clear error, nothing left.
if mkdir full && mount -t tmpfs -o size=2m tmpfs full 2>/dev/null; then
  cleanup_fns+=("umount $WORK/full")
  rc=0; "$CLONEKIT" collapse -O qcow2 big.qcow2 full/out.qcow2 2>err || rc=$?
  check "ENOSPC: exit 1" test "$rc" -eq 1
  check "ENOSPC: one line naming the file and the cause" \
    bash -c "[ \$(wc -l < err) -eq 1 ] && grep -q '^clonekit: full/out.qcow2: write error at byte [0-9]*: No space left on device' err"
  check "ENOSPC: the destination directory is empty again" test -z "$(ls -A full)"
else
  echo "SKIP: cannot mount a tmpfs here (ENOSPC case)"
fi

finish
