#!/usr/bin/env bash
# clonekit mount: each layer file equals qemu's reading of that layer, its
# SEEK_DATA/SEEK_HOLE map equals qemu-img map's data ranges, concurrent
# readers agree, writes are refused, and SIGTERM / fusermount3 -u unmount.
source "$(dirname "$0")/lib.sh"
if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
  echo "SKIP: /dev/fuse or fusermount3 missing"; exit 77
fi

# data_ranges: the data ranges of a file as SEEK_DATA/SEEK_HOLE report them.
data_ranges() {
  python3 - "$1" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size, pos = os.fstat(fd).st_size, 0
while pos < size:
    try:
        start = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    pos = os.lseek(fd, start, os.SEEK_HOLE)
    print(start, pos)
PY
}
# qemu_data_ranges IMG: qemu-img map's "data": true ranges, merged.
qemu_data_ranges() {
  qemu-img map --output=json "$1" | python3 -c '
import json, sys
out = []
for r in json.load(sys.stdin):
    if not r["data"]:
        continue
    if out and out[-1][1] == r["start"]:
        out[-1][1] += r["length"]
    else:
        out.append([r["start"], r["start"] + r["length"]])
for s, e in out:
    print(s, e)'
}
mounted() { grep -q " $WORK/mnt " /proc/mounts; }

# A chain with a raw base, holes, zero and compressed clusters, 4 KiB and
# 2 MiB clusters, and a layer shorter than its overlay.
truncate -s 20M f0.raw
qemu-io -f raw -c 'write -P 0x11 0 2M' -c 'write -P 0x12 9M 4k' f0.raw >/dev/null
qemu-img create -q -f qcow2 -o cluster_size=4k -b f0.raw -F raw f1.qcow2 12M
qio f1.qcow2 'write -c -P 0x21 1M 64k' 'write -z 0 64k' 'write -P 0x22 11M 8k'
qemu-img create -q -f qcow2 -o cluster_size=2M,compression_type=zstd -b f1.qcow2 -F qcow2 f2.qcow2 24M
qio f2.qcow2 'write -P 0x31 4M 2M' 'write -c -P 0x32 20M 2M' 'write -z 10M 2M'

mkdir mnt
cleanup_fns+=("fusermount3 -u -z $WORK/mnt 2>/dev/null")
check "mount starts and returns (daemon)" "$CLONEKIT" mount f2.qcow2 mnt
check "one file per layer, named after it" [ "$(ls mnt | tr '\n' ' ')" = "f0.raw.raw f1.qcow2.raw f2.qcow2.raw " ]
for f in f2.qcow2 f1.qcow2 f0.raw; do
  qemu-img convert -O raw "$f" "oracle-$f.raw"
  check "$f: size is the virtual size" [ "$(stat -c %s "mnt/$f.raw")" = "$(stat -c %s "oracle-$f.raw")" ]
  check "$f: bytes equal qemu-img convert" cmp -s "mnt/$f.raw" "oracle-$f.raw"
  check "$f: SEEK_DATA/SEEK_HOLE equal qemu-img map data ranges" \
    [ "$(data_ranges "mnt/$f.raw")" = "$(qemu_data_ranges "$f")" ]
done

# Concurrent readers, each file several times at once, random block sizes.
for i in $(seq 1 9); do
  f=$(echo f2.qcow2 f1.qcow2 f0.raw | cut -d' ' -f$(( i % 3 + 1 )))
  ( dd if="mnt/$f.raw" bs=$(( (i % 4 + 1) * 12288 )) iflag=direct status=none 2>/dev/null ||
    cat "mnt/$f.raw" ) | cmp -s - "oracle-$f.raw" || echo "$i" >> readers.bad &
done
wait
check "9 concurrent readers all read the oracle" [ ! -s readers.bad ]
check "writing is refused" bash -c "! echo x 2>/dev/null > mnt/f2.qcow2.raw"
check "the source layers are locked while mounted" write_lock_refused f2.qcow2

pid=$(pgrep -f "clonekit mount f2.qcow2 mnt" | head -1)
fusermount3 -u mnt
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
gone() { ! mounted && ! kill -0 "$1" 2>/dev/null; }
check "fusermount3 -u unmounts and the daemon exits" gone "$pid"

"$CLONEKIT" mount -f f1.qcow2 mnt & pid=$!
for _ in $(seq 1 100); do mounted && break; sleep 0.05; done
check "foreground mount is up" mounted
kill -TERM "$pid"; wait "$pid" && st=0 || st=$?
clean_exit() { [ "$1" = 0 ] && ! mounted; }
check "SIGTERM unmounts cleanly, exit 0" clean_exit "$st"

printf 'QFI\xfb\0\0\0\x09' > bad.qcow2; truncate -s 64k bad.qcow2
err=$("$CLONEKIT" mount bad.qcow2 mnt 2>&1) && st=0 || st=$?
refused_cleanly() { [ "$st" = 1 ] && [ "$(wc -l <<<"$err")" = 1 ] && [[ "$err" == *bad.qcow2* ]] && ! mounted; }
check "a corrupt image: one-line error naming it, nothing mounted" refused_cleanly
finish
