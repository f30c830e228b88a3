#!/usr/bin/env bash
# A source read that fails with EIO (a real one, from a FUSE file system
# that fails one byte range of the base layer) ends the collapse with exit
# 1 and one line naming the layer and the offset; nothing under the
# destination name, no temporary, the source untouched. For raw output
# (several workers, and one with one request in flight), qcow2 output (plain
# and compressed) and an NBD export.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
source "$here/lib.sh"
: "${EIO_FS:?EIO_FS must point to tests/faults/eio_fs}"
if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
  echo "SKIP: /dev/fuse or fusermount3 missing"; exit 77
fi

mkdir src mnt
qemu-img create -q -f qcow2 src/base.qcow2 64M
qio src/base.qcow2 'write -P 1 0 32M'
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 src/top.qcow2 64M
qio src/top.qcow2 'write -P 2 0 4M'
# Where guest byte 16 MiB of the base lives in its file.
bad=$(qemu-img map --output=json src/base.qcow2 | python3 -c '
import json, sys
g = 16 << 20
for r in json.load(sys.stdin):
    if r["start"] <= g < r["start"] + r["length"] and r.get("offset") is not None:
        print(r["offset"] + g - r["start"])')
before=$(sources_digest src/*)

"$EIO_FS" "$WORK/src" "$WORK/mnt" base.qcow2 "$bad" 65536 2>eio_fs.err &
cleanup_fns+=("fusermount3 -u $WORK/mnt 2>/dev/null")
for _ in $(seq 100); do mountpoint -q mnt && break; sleep 0.05; done
check "the fault file system is mounted" mountpoint -q mnt

# names_layer_and_offset ERRFILE: "mnt/base.qcow2: read error at byte N: Input/output error",
# N at most one request (1 MiB) before the bad range and inside or before it.
names_layer_and_offset() {
  python3 - "$1" "$bad" <<'PY'
import re, sys
line = open(sys.argv[1]).read().strip()
bad = int(sys.argv[2])
m = re.fullmatch(r"clonekit: \S*mnt/base\.qcow2: read error at byte (\d+): Input/output error", line)
if not m or not (bad - (1 << 20) < int(m.group(1)) < bad + 65536):
    sys.exit(f"got: {line!r} (bad range at {bad})")
PY
}

for case in "raw" "raw -j 1 --queue-depth 1" "qcow2" "qcow2 -c"; do
  set -- $case
  fmt=$1; shift
  rc=0; "$CLONEKIT" collapse -O "$fmt" "$@" mnt/top.qcow2 "out.$fmt" 2>err || rc=$?
  check "$case: exit 1 (got $rc)" test "$rc" -eq 1
  check "$case: one line" test "$(wc -l <err)" -eq 1
  check "$case: it names the layer and the offset" names_layer_and_offset err
  check "$case: nothing under the destination name" test ! -e "out.$fmt"
  check "$case: no temporary left" test -z "$(temporaries .)"
done

# An NBD export is written in place: the same one line, the export stays
# (it is the caller's disk), nothing else is left.
nbdkit -f --exit-with-parent -U "$WORK/nbd.sock" memory 64M &
nbd_pid=$!
cleanup_fns+=("kill $nbd_pid 2>/dev/null")
for _ in $(seq 100); do [ -S nbd.sock ] && break; sleep 0.05; done
rc=0; "$CLONEKIT" collapse mnt/top.qcow2 "nbd+unix:///?socket=$WORK/nbd.sock" 2>err || rc=$?
check "nbd: exit 1 (got $rc)" test "$rc" -eq 1
check "nbd: one line" test "$(wc -l <err)" -eq 1
check "nbd: it names the layer and the offset" names_layer_and_offset err

fusermount3 -u mnt
check "the source is untouched" test "$(sources_digest src/*)" = "$before"
finish
