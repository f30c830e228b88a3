#!/usr/bin/env bash
# Builds the seed corpora with qemu-img/qemu-io: small images of every
# cluster size and feature, and two-image chains in fuzz_chain's format.
set -euo pipefail
out=$1
mkdir -p "$out/image" "$out/chain"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
n=0
mk() {  # mk OPTS SIZE QEMU-IO-CMDS...
  local opts=$1 size=$2; shift 2
  n=$((n + 1))
  qemu-img create -q -f qcow2 -o "$opts" "s$n.qcow2" "$size"
  local args=(); for c in "$@"; do args+=(-c "$c"); done
  [ ${#args[@]} -eq 0 ] || qemu-io -f qcow2 "${args[@]}" "s$n.qcow2" >/dev/null
  cp "s$n.qcow2" "$out/image/seed-$n.qcow2"
}
mk cluster_size=512 64k 'write -P 1 0 4k' 'write -z 8k 1k' 'write -c -P 2 16k 512'
mk cluster_size=512,compat=0.10 32k 'write -P 3 1k 2k' 'write -c -P 4 8k 512'
mk cluster_size=4k 128k 'write -P 5 4k 8k' 'write -z 64k 4k' 'write -c -P 6 96k 4k'
mk cluster_size=4k,compression_type=zstd 128k 'write -c -P 7 0 8k' 'write -P 8 64k 4k'
mk cluster_size=16k,extended_l2=on 256k 'write -P 9 1k 1k' 'write -z 20k 2k' 'write -c -P 10 64k 16k'
mk cluster_size=64k 1M 'write -P 11 0 64k' 'write -z 128k 64k'
mk cluster_size=2M 4M 'write -P 12 1M 4k'
mk cluster_size=4k,lazy_refcounts=on 64k 'write -P 13 0 4k'
# Chains: [u32 LE len(top)][top][base]
i=0
for top in "$out"/image/seed-1.qcow2 "$out"/image/seed-3.qcow2 "$out"/image/seed-5.qcow2; do
  i=$((i + 1))
  qemu-img create -q -f qcow2 -o cluster_size=4k base$i.qcow2 64k
  qemu-io -f qcow2 -c "write -P $i 0 32k" base$i.qcow2 >/dev/null
  qemu-img create -q -f qcow2 -o cluster_size=512 -b base$i.qcow2 -F qcow2 top$i.qcow2 128k
  qemu-io -f qcow2 -c "write -P 9 4k 1k" -c "write -z 8k 512" top$i.qcow2 >/dev/null
  python3 -c "
import struct,sys
t=open('top$i.qcow2','rb').read(); b=open('base$i.qcow2','rb').read()
open('$out/chain/seed-$i','wb').write(struct.pack('<I',len(t))+t+b)"
done
printf 'raw base bytes' > rawbase
qemu-img create -q -f qcow2 -o cluster_size=512 -b rawbase -F raw rtop.qcow2 4k
python3 -c "
import struct
t=open('rtop.qcow2','rb').read(); b=open('rawbase','rb').read()
open('$out/chain/seed-raw','wb').write(struct.pack('<I',len(t))+t+b)"
echo "seeds: $(ls "$out/image" | wc -l) images, $(ls "$out/chain" | wc -l) chains"
