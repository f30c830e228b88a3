#!/usr/bin/env bash
# kill -9 at 100 random points of a collapse (raw, qcow2, compressed qcow2
# in turn): never a file under the final name unless it is complete and
# right, never a changed source. The temporary a kill leaves is stale (its
# lock died with the process) and the next collapse into the directory
# removes it. The points come from a seed, printed: KILL9_SEED=N reruns them.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
source "$here/lib.sh"

seed=${KILL9_SEED:-$RANDOM}
echo "# seed $seed (rerun: KILL9_SEED=$seed)"
RANDOM=$seed

qemu-img create -q -f qcow2 base.qcow2 64M
qio base.qcow2 'write -P 1 0 24M'
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 64M
qio top.qcow2 'write -P 2 4M 8M' 'write -z 20M 1M'
qemu-img convert -O raw top.qcow2 ref.raw
before=$(sources_digest base.qcow2 top.qcow2)
mkdir out

# About 0.5 s per copy (24 MiB at 48 MiB/s); kill points are spread over
# 1.2 x the time an uninterrupted run takes here (startup included, which a
# sanitizer build lengthens), so some land before the temporary exists,
# most mid-copy, some after the end.
start=$(date +%s%N)
"$CLONEKIT" collapse --rate-limit 48M top.qcow2 out/timing.raw
span=$(( ($(date +%s%N) - start) / 1000000 * 12 / 10 ))
rm -f out/timing.raw
echo "# kill points in 0-$span ms"
formats=("raw" "qcow2" "qcow2 -c")
left=0 complete=0 wrong=0 crowded=0
for i in $(seq 0 99); do
  set -- ${formats[i % 3]}
  fmt=$1; shift
  delay=$((RANDOM % span))
  "$CLONEKIT" collapse --rate-limit 48M -O "$fmt" "$@" top.qcow2 "out/disk.$fmt" 2>/dev/null &
  pid=$!
  sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -e "out/disk.$fmt" ]; then
    # It finished before the kill: it must be whole.
    if qemu-img compare -q -f raw -F "$fmt" ref.raw "out/disk.$fmt"; then
      complete=$((complete + 1))
    else
      wrong=$((wrong + 1)); echo "# point $i ($delay ms): an incomplete file under the final name"
    fi
    rm -f "out/disk.$fmt"
  fi
  n=$(temporaries out | wc -l)
  [ "$n" -gt 1 ] && { crowded=$((crowded + 1)); echo "# point $i: $n temporaries (the last one's were not removed)"; }
  [ "$n" -eq 1 ] && left=$((left + 1))
done
echo "# $left kills left a temporary, $complete copies finished first"
check "never an incomplete file under the final name" test "$wrong" -eq 0
check "each collapse removed the temporary the previous kill left" test "$crowded" -eq 0
check "most kills landed mid-copy ($left of 100)" test "$left" -ge 50
check "the source is untouched" test "$(sources_digest base.qcow2 top.qcow2)" = "$before"
check "qemu still reads the source cleanly" qemu-img check -q top.qcow2
"$CLONEKIT" collapse top.qcow2 out/last.raw
check "the next collapse leaves no temporary" test -z "$(temporaries out)"
check "and its output is right" cmp -s out/last.raw ref.raw
finish
