#!/usr/bin/env bash
# Class 5 in the NBD plugin: a CACHE request is resolved one window at a
# time, so that one 64 MiB CACHE on a 512-byte-cluster image (about 100
# bytes of map a cluster) does not make the server map the whole range.
source "$(dirname "$0")/../lib.sh"
command -v nbdkit >/dev/null && $SYS_PYTHON -c "import nbd" 2>/dev/null || { echo "SKIP: nbdkit or python3-libnbd missing"; exit 77; }
# Compressed clusters: each is its own extent (nothing merges), so the map
# of a range costs its full size, as on a fragmented image.
qemu-img create -q -f qcow2 -o cluster_size=512 small.qcow2 64M
qio small.qcow2 'write -c -P 0x5a 0 64M'
GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072 nbdkit_bg "$WORK/c.sock" file=small.qcow2
pid=$NBDKIT_PID
# Peak resident memory: the map lives only while the request is served.
rss() { awk '/^VmHWM/ {print $2}' "/proc/$pid/status"; }
$SYS_PYTHON - "$WORK/c.sock" <<'PY' && warm=0 || warm=1
import nbd, sys
h = nbd.NBD(); h.connect_unix(sys.argv[1]); h.pread(512, 0); h.shutdown()
PY
before=$(rss)
cache() {
  $SYS_PYTHON - "$WORK/c.sock" <<'PY'
import nbd, sys
h = nbd.NBD(); h.connect_unix(sys.argv[1])
assert h.can_cache()
h.cache(64 << 20, 0)
assert h.pread(512, (64 << 20) - 512) == b"\x5a" * 512
h.shutdown()
PY
}
check "a 64 MiB CACHE request is answered and the server still reads" cache
after=$(rss)
echo "server peak RSS ${before} KiB before, ${after} KiB after the CACHE"
# The sanitizer's allocator does not follow live memory (see nbd.sh).
if [ -z "${NBDKIT_PRELOAD:-}" ]; then
  check "the CACHE's map was windowed (peak grew < 8 MiB; resolved whole it grows ~13)" [ $((after - before)) -lt 8192 ]
fi
stop_nbdkit "$pid"
check "no sanitizer report" sanitizer_clean nbdkit.c.sock.log
finish
