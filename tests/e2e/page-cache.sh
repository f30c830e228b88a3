#!/usr/bin/env bash
# --page-cache spare (the default) leaves the page cache as it was: a source
# layer cached before stays cached, a layer that was not is not cached
# after, and neither is the output. --page-cache fill is the control that
# shows the measurement sees caching at all. Raw, qcow2 and compressed
# qcow2 output. With CLONEKIT_NO_DONTCACHE=1 (meson test page-cache-by-hand)
# the same checks hold for the path kernels before 6.14 take (Debian 12's
# 6.1): no RWF_DONTCACHE, pages dropped by hand (SourcePages, DropBehind).
# On such a kernel both runs take that path.
source "$(dirname "$0")/lib.sh"
command -v fincore >/dev/null || { echo "SKIP: fincore missing (util-linux)"; exit 77; }
# A kernel that pages out cold memory by itself (a DAMON pageout scheme, as
# some VM hosts run) evicts the layer the checks expect to stay cached,
# whatever the copy does: it is paused for this script and resumed after.
for state in /sys/kernel/mm/damon/admin/kdamonds/*/state; do
  [ -f "$state" ] && [ "$(cat "$state")" = on ] || continue
  if echo off >"$state" 2>/dev/null; then
    echo "# paused the kernel's DAMON ($state) for the script"
    cleanup_fns+=("echo on >$state")
  fi
done

qemu-img create -q -f qcow2 base.qcow2 128M
qio base.qcow2 'write -P 1 0 64M'
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 128M
qio top.qcow2 'write -P 2 64M 32M'

# resident FILE: the percentage of FILE's pages in the page cache.
resident() {
  local pages size
  pages=$(fincore -n -b -o PAGES "$1" | tr -d ' ')
  size=$(stat -c %s "$1")
  echo $((pages * 4096 * 100 / (size > 0 ? size : 1)))
}
# uncache FILE...: drop the files' pages (POSIX_FADV_DONTNEED after a sync).
uncache() {
  sync "$@"
  python3 -c '
import os, sys
for f in sys.argv[1:]:
    fd = os.open(f, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$@"
}

for case in "raw" "qcow2" "qcow2 -c"; do
  set -- $case
  fmt=$1; shift
  for mode in spare fill; do
    rm -f "out.$fmt"
    uncache base.qcow2 top.qcow2
    cat top.qcow2 >/dev/null  # a running VM's working set: cached before
    top_before=$(resident top.qcow2)
    "$CLONEKIT" collapse --page-cache "$mode" -O "$fmt" "$@" top.qcow2 "out.$fmt"
    top=$(resident top.qcow2) base=$(resident base.qcow2) out=$(resident "out.$fmt")
    if [ "$mode" = spare ]; then
      check "$case, spare: the layer cached before stays cached ($top_before% -> $top%)" test "$top" -ge "$top_before"
      check "$case, spare: the layer not cached before is not cached after ($base%)" test "$base" -le 2
      check "$case, spare: the output is not left in the cache ($out%)" test "$out" -le 2
    else
      check "$case, fill (control): the uncached layer is now cached ($base%)" test "$base" -ge 90
      check "$case, fill (control): so is the output ($out%)" test "$out" -ge 50
    fi
  done
  check "$case: the output equals qemu's reading" qemu-img compare -q top.qcow2 "out.$fmt"
done
finish
