#!/usr/bin/env bash
# Class 5 in the NBD plugin: a CACHE request is resolved one window at a
# time, so that one 128 MiB CACHE on a 512-byte-cluster image (about 220
# bytes of map a cluster) does not make the server map the whole range.
source "$(dirname "$0")/../lib.sh"
command -v nbdkit >/dev/null && $SYS_PYTHON -c "import nbd" 2>/dev/null || { echo "SKIP: nbdkit or python3-libnbd missing"; exit 77; }
qemu-img create -q -f qcow2 -o cluster_size=512 small.qcow2 128M
qio small.qcow2 'write -P 0x5a 0 128M'
GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072 nbdkit_bg "$WORK/c.sock" file=small.qcow2
pid=$NBDKIT_PID
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
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
h.cache(128 << 20, 0)
assert h.pread(512, (128 << 20) - 512) == b"\x5a" * 512
h.shutdown()
PY
}
check "a 128 MiB CACHE request is answered and the server still reads" cache
after=$(rss)
echo "server RSS ${before} KiB before, ${after} KiB after the CACHE"
# The sanitizer's allocator does not follow live memory (see nbd.sh).
if [ -z "${NBDKIT_PRELOAD:-}" ]; then
  check "the CACHE's map was windowed (server grew < 12 MiB, not ~28)" [ $((after - before)) -lt 12288 ]
fi
stop_nbdkit "$pid"
check "no sanitizer report" sanitizer_clean nbdkit.c.sock.log
finish
