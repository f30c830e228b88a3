#!/usr/bin/env bash
# Image locks interoperate with qemu's (OFD locks on bytes 100/201/203): a
# chain that a qemu process writes is refused unless -U; while clonekit reads,
# qemu cannot start writing; the locks die with the process.
source "$(dirname "$0")/lib.sh"
command -v qemu-nbd >/dev/null || { echo "SKIP: qemu-nbd not installed"; exit 77; }

qemu-img create -q -f qcow2 base.qcow2 8M
qio base.qcow2 'write -P 1 0 8M'
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 8M
qio top.qcow2 'write -P 2 1M 1M'
qemu-img convert -O raw top.qcow2 top-ref.raw
qemu-img convert -O raw base.qcow2 base-ref.raw

# A writer (qemu-nbd serving top.qcow2 read-write, like a running VM).
start_qemu_writer top.qcow2 "$WORK/nbd.sock"

rc=0; "$CLONEKIT" collapse top.qcow2 out.raw 2>err || rc=$?
check "a chain written by qemu is refused (exit 1)" test "$rc" -eq 1
check "the refusal says why and names the file" \
  grep -q '^clonekit: top.qcow2: Failed to get shared "write" lock.*-U/--force-share' err
check "nothing written on refusal" test ! -e out.raw
check "-U reads it anyway" "$CLONEKIT" collapse -U top.qcow2 out.raw
check "-U output equals qemu's reading" cmp -s out.raw top-ref.raw
rm -f out.raw
check "a backing layer of a running VM can be collapsed (readers share)" "$CLONEKIT" collapse base.qcow2 out.raw
check "that output equals qemu's reading" cmp -s out.raw base-ref.raw
rc=0; "$CLONEKIT" map top.qcow2 >/dev/null 2>err || rc=$?
check "map is refused the same way" test "$rc" -eq 1
kill "$WRITER_PID"; wait "$WRITER_PID" 2>/dev/null || true

# While clonekit reads, qemu cannot write any layer, readers still can.
make_big big.qcow2 768M
start_stopped_collapse big.qcow2 "$WORK/big.raw"
locks=$(ofd_read_locks big.qcow2)
check "OFD (not POSIX) read locks on bytes 100 201 203 (got: $locks)" test "$locks" = "100 201 203 "
check "qemu cannot write while clonekit reads" write_lock_refused big.qcow2
check "qemu-img info -U still works" qemu-img info -U big.qcow2 >/dev/null
check "qemu-img info (read-only) still works" qemu-img info big.qcow2 >/dev/null
kill -CONT "$BG_PID"
rc=0; wait "$BG_PID" || rc=$?
check "the paused collapse completes" test "$rc" -eq 0
check "its output equals qemu's reading" bash -c "qemu-img compare -q -f raw -F qcow2 big.raw big.qcow2"
check "locks are released at exit" bash -c "qemu-io -f qcow2 -c 'write -P 3 0 512' big.qcow2 >/dev/null"

# kill -9 mid-copy: locks vanish with the process, no file under the final name.
rm -f big.raw
start_stopped_collapse big.qcow2 "$WORK/big.raw"
kill -9 "$BG_PID"; wait "$BG_PID" 2>/dev/null || true
check "no final file after kill -9" test ! -e big.raw
check "locks gone after kill -9" bash -c "qemu-io -f qcow2 -c 'write -P 4 0 512' big.qcow2 >/dev/null"

finish
