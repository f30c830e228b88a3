#!/usr/bin/env bash
# Collapse into NBD exports (libnbd): nbdkit memory (multi-conn), qemu-nbd on
# a qcow2, a target full of old data (holes must be zeroed), a full target
# (ENOSPC), a small one and a read-only one (clear errors).
source "$(dirname "$0")/lib.sh"
command -v nbdkit >/dev/null && command -v nbdcopy >/dev/null || { echo "SKIP: nbdkit/libnbd-bin missing"; exit 77; }

# bg_server SOCK CMD...: a server in the background until its socket appears.
bg_server() {
  local sock=$1; shift
  rm -f "$sock"
  "$@" 2>server.log &
  local pid=$!
  cleanup_fns+=("kill $pid 2>/dev/null")
  for _ in $(seq 1 500); do [ -S "$sock" ] && break; sleep 0.01; done
  SERVER_PID=$pid
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; }
export_sum() { nbdcopy "$1" - | head -c "$2" | sha256sum; }

# A chain with data, zero clusters, compressed clusters and unallocated
# ranges over a short raw base.
truncate -s 20M b.raw
qemu-io -f raw -c 'write -P 0x11 0 6M' -c 'write -P 0x12 18M 1M' b.raw >/dev/null
qemu-img create -q -f qcow2 -b b.raw -F raw s1.qcow2 40M
qio s1.qcow2 'write -c -P 0x21 2M 1M' 'write -z 4M 1M' 'write -P 0x22 30M 64k' 'write -P 0 32M 1M'
qemu-img convert -O raw s1.qcow2 oracle.raw
size=$(stat -c %s oracle.raw)
want=$(sha256sum < oracle.raw)
sock=$WORK/n.sock
uri="nbd+unix:///?socket=$sock"

# 1. nbdkit memory, multi-conn: several connections, content equal.
bg_server "$sock" nbdkit -f --exit-with-parent -U "$sock" --filter=log memory 40M logfile="$WORK/conn.log"
check "into nbdkit memory: exit 0" "$CLONEKIT" collapse s1.qcow2 "$uri"
check "into nbdkit memory: content equals qemu-img convert" [ "$(export_sum "$uri" "$size")" = "$want" ]
conns=$(grep -c 'Connect ' conn.log || true)
check "a multi-conn server gets several connections ($conns)" [ "$conns" -ge 3 ]
stop_server

# 2. A server without multi-conn gets exactly one connection.
rm -f conn.log
bg_server "$sock" nbdkit -f --exit-with-parent -U "$sock" --filter=log --filter=multi-conn memory 40M \
  multi-conn-mode=disable logfile="$WORK/conn.log"
check "without multi-conn: exit 0" "$CLONEKIT" collapse -j 4 s1.qcow2 "$uri"
check "without multi-conn: content equal" [ "$(export_sum "$uri" "$size")" = "$want" ]
check "without multi-conn: one connection" [ "$(grep -c 'Connect ' conn.log)" = 2 ]  # ours + the check's nbdcopy
stop_server

# 3. qemu-nbd on a qcow2 full of old data: holes are zeroed, so the image
#    compares equal; with a fresh qcow2 and --target-is-zero nothing is
#    written where the disk reads as zeros.
qemu-img create -q -f qcow2 dst.qcow2 40M
qemu-io -f qcow2 -c 'write -P 0xee 0 40M' dst.qcow2 >/dev/null
bg_server "$sock" qemu-nbd -t -k "$sock" -f qcow2 dst.qcow2
check "into qemu-nbd (old data): exit 0" "$CLONEKIT" collapse s1.qcow2 "$uri"
stop_server
check "into qemu-nbd (old data): qcow2 compares equal" qemu-img compare -q -F raw dst.qcow2 oracle.raw
qemu-img create -q -f qcow2 fresh.qcow2 40M
bg_server "$sock" qemu-nbd -t -k "$sock" -f qcow2 fresh.qcow2
check "into qemu-nbd --target-is-zero: exit 0" "$CLONEKIT" collapse --target-is-zero s1.qcow2 "$uri"
stop_server
check "into qemu-nbd --target-is-zero: compares equal" qemu-img compare -q -F raw fresh.qcow2 oracle.raw
allocated=$(qemu-img map --output=json fresh.qcow2 | python3 -c '
import json, sys; print(sum(r["length"] for r in json.load(sys.stdin) if r["data"]))')
check "--target-is-zero: only data was written ($allocated bytes allocated, < 9 MiB)" [ "$allocated" -lt $((9 << 20)) ]

# 4. Errors: full (ENOSPC), too small, read-only, qcow2 output.
bg_server "$sock" nbdkit -f --exit-with-parent -U "$sock" full 40M
check "a full target: one line, 'No space left on device'" \
  one_line_error "No space left on device" "$CLONEKIT" collapse s1.qcow2 "$uri"
stop_server
bg_server "$sock" nbdkit -f --exit-with-parent -U "$sock" memory 20M
check "a small target: one line saying so" one_line_error "smaller" "$CLONEKIT" collapse s1.qcow2 "$uri"
check "qcow2 output to NBD is refused" one_line_error "raw disk" "$CLONEKIT" collapse -O qcow2 s1.qcow2 "$uri"
stop_server
bg_server "$sock" nbdkit -f --exit-with-parent -r -U "$sock" memory 40M
check "a read-only target: one line saying so" one_line_error "read-only" "$CLONEKIT" collapse s1.qcow2 "$uri"
stop_server
check "no server: one line naming the URI" one_line_error "$sock" "$CLONEKIT" collapse s1.qcow2 "$uri"

# 5. Our own export as the source, an NBD export as the destination.
bg_server "$sock" nbdkit -f --exit-with-parent -U "$sock" memory 40M
check "progress reaches 100%" bash -c "'$CLONEKIT' collapse -p s1.qcow2 '$uri' | tr '\r' '\n' | grep -q '(100.00/100%)'"
stop_server
finish
