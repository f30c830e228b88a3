#!/usr/bin/env bash
# Peak RSS of `clonekit collapse` (raw output) for sparse chains of growing
# virtual size with the same scattered data: 3 layers, 2000 random 64 KiB
# writes each. Prints virtual size, allocated bytes, time and max RSS, and
# qemu-img convert's for reference. Needs ~ the data size in free disk (the
# outputs are sparse).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ck=${CLONEKIT:-$root/build/tools/clonekit}
work=${1:-/tmp/clonekit-rss}
mkdir -p "$work"; cd "$work"
echo "| virtual | data copied | clonekit s | clonekit max RSS | qemu-img convert s | qemu-img max RSS |"
echo "|---:|---:|---:|---:|---:|---:|"
for v in 1G 64G 1T; do
  if [ ! -f "top-$v.qcow2" ]; then
    prev=""
    for k in 0 1 2; do
      img=l$k-$v.qcow2
      qemu-img create -q -f qcow2 ${prev:+-b $prev -F qcow2} "$img" "$v"
      python3 -c "
import random, sys
r = random.Random($k); size = int('$v'[:-1]) << {'G': 30, 'T': 40}['$v'[-1]]
for _ in range(2000): print(f'write -P {$k + 1} {r.randrange(size >> 16) << 16} 64k')" | qemu-io -f qcow2 "$img" >/dev/null
      prev=$img
    done
    cp -l "$prev" "top-$v.qcow2"
  fi
  rm -f out.raw
  /usr/bin/time -f "%e %M" -o t1 "$ck" collapse "top-$v.qcow2" out.raw
  used=$(du -k out.raw | cut -f1)
  rm -f out.raw
  /usr/bin/time -f "%e %M" -o t2 bash -c "qemu-img convert -O raw top-$v.qcow2 out.raw && sync out.raw"
  rm -f out.raw
  read -r s1 m1 < t1; read -r s2 m2 < t2
  echo "| $v | $((used / 1024)) MiB | $s1 | $((m1 / 1024)) MiB | $s2 | $((m2 / 1024)) MiB |"
done
