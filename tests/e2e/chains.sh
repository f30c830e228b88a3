#!/usr/bin/env bash
# Differential correctness: chains built with qemu-img/qemu-io, every
# snapshot point collapsed by clonekit and compared with qemu's own reading
# (raw bytes, map per byte, qcow2 output through check and compare).
source "$(dirname "$0")/lib.sh"

# 1. Raw base, v3 layers: data, zero clusters and compressed clusters that
#    mask backing data, a discard, a zero-alloc cluster.
qemu-img create -q -f raw base.raw 8M
qemu-io -f raw -c 'write -P 0x11 0 1M' -c 'write -P 0x12 3M 1M' -c 'write -P 0x13 7M 512' base.raw >/dev/null
qemu-img create -q -f qcow2 -b base.raw -F raw s1.qcow2 8M
qio s1.qcow2 'write -P 0x21 64k 64k' 'write -z 256k 128k' 'write -c -P 0x22 3M 128k' 'write -P 0x23 5M 64k' \
    'write -z 5M 64k' 'discard 3200k 64k'
qemu-img create -q -f qcow2 -b s1.qcow2 -F qcow2 s2.qcow2 8M
qio s2.qcow2 'write -c -P 0x31 0 64k' 'write -P 0x32 3M 4k' 'write -z 7M 64k'
qemu-img create -q -f qcow2 -b s2.qcow2 -F qcow2 top.qcow2 8M
for img in base.raw s1.qcow2 s2.qcow2 top.qcow2; do oracle_check "$img" "raw-base chain @ $img"; done

# 2. zstd-compressed layers, and compressed output (zstd and zlib).
qemu-img create -q -f qcow2 -o compression_type=zstd zb.qcow2 4M
qio zb.qcow2 'write -c -P 0x41 0 1M' 'write -c -P 0x42 2M 64k'
qemu-img create -q -f qcow2 -o compression_type=zstd -b zb.qcow2 -F qcow2 zt.qcow2 4M
qio zt.qcow2 'write -c -P 0x43 512k 64k' 'write -z 2M 64k'
oracle_check zt.qcow2 "zstd chain"
for ct in zstd zlib; do
  rm -f c.qcow2
  if "$CLONEKIT" collapse -O qcow2 -c --compression-type "$ct" s2.qcow2 c.qcow2 && qemu-img check -q c.qcow2 &&
     qemu-img compare -q -F qcow2 s2.qcow2 c.qcow2 &&
     qemu-img info --output=json c.qcow2 | grep >/dev/null "\"compression-type\": \"$ct\"" &&
     qemu-img check c.qcow2 | grep >/dev/null 'compressed clusters'; then
    pass "compressed $ct output: check, compare, compression type"
  else
    fail "compressed $ct output"
  fi
done

# 3. Mixed cluster sizes and v2/v3 layers.
qemu-img create -q -f qcow2 -o cluster_size=512,compat=0.10 m0.qcow2 6M
qio m0.qcow2 'write -P 0x51 0 6M'
qemu-img create -q -f qcow2 -o cluster_size=2M -b m0.qcow2 -F qcow2 m1.qcow2 6M
qio m1.qcow2 'write -P 0x52 1000k 3k' 'write -z 4M 2M' 'write -c -P 0x56 2M 2M'
qemu-img create -q -f qcow2 -o cluster_size=4k,compat=0.10 -b m1.qcow2 -F qcow2 m2.qcow2 6M
qio m2.qcow2 'write -P 0x53 4M 12k' 'write -c -P 0x54 5M 4k'
qemu-img create -q -f qcow2 -o cluster_size=64k -b m2.qcow2 -F qcow2 m3.qcow2 6M
qio m3.qcow2 'write -P 0x55 100k 1k'
for img in m1.qcow2 m2.qcow2 m3.qcow2; do oracle_check "$img" "mixed clusters @ $img"; done

# 4. Grow and shrink: a backing file shorter than its overlay reads as zeros
#    past its end; data past the end of the chosen layer never shows.
qemu-img create -q -f qcow2 g0.qcow2 8M
qio g0.qcow2 'write -P 0x61 0 8M'
qemu-img create -q -f qcow2 -b g0.qcow2 -F qcow2 g1.qcow2 3M
qio g1.qcow2 'write -P 0x62 1M 64k'
qemu-img create -q -f qcow2 -b g1.qcow2 -F qcow2 g2.qcow2 12M
qio g2.qcow2 'write -P 0x63 10M 64k'
qemu-img create -q -f qcow2 -b g2.qcow2 -F qcow2 g3.qcow2 5000k
for img in g1.qcow2 g2.qcow2 g3.qcow2; do oracle_check "$img" "grow/shrink @ $img"; done
# A raw base whose size is not a multiple of 512.
printf 'odd-sized raw base' > odd.raw
truncate -s 1000 odd.raw
qemu-img create -q -f qcow2 -b odd.raw -F raw odd-top.qcow2 2M
oracle_check odd-top.qcow2 "odd-sized raw base"

# 5. Extended L2: subcluster writes, zeroes and unallocated subclusters.
qemu-img create -q -f qcow2 e0.qcow2 4M
qio e0.qcow2 'write -P 0x71 0 4M'
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=64k -b e0.qcow2 -F qcow2 e1.qcow2 4M
qio e1.qcow2 'write -P 0x72 2k 2k' 'write -z 8k 6k' 'write -P 0x73 1M 64k' 'write -z 1M 2k' 'discard 2M 64k'
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=32k -b e1.qcow2 -F qcow2 e2.qcow2 4M
qio e2.qcow2 'write -P 0x74 1025k 1k' 'write -c -P 0x75 3M 32k'
for img in e1.qcow2 e2.qcow2; do oracle_check "$img" "extended L2 @ $img"; done

# 6. Relative backing names resolve against the naming image's directory,
#    whatever the cwd; absolute names work too.
mkdir -p pool/a pool/b "pool/with space"
qemu-img create -q -f qcow2 "pool/with space/base.qcow2" 2M
qio "pool/with space/base.qcow2" 'write -P 0x81 0 2M'
qemu-img create -q -f qcow2 -b "../with space/base.qcow2" -F qcow2 pool/b/mid.qcow2 2M
qio pool/b/mid.qcow2 'write -P 0x82 64k 64k'
qemu-img create -q -f qcow2 -b ../b/mid.qcow2 -F qcow2 pool/a/top.qcow2 2M
qio pool/a/top.qcow2 'write -P 0x83 128k 64k'
qemu-img create -q -f qcow2 -b "$WORK/pool/a/top.qcow2" -F qcow2 abs.qcow2 2M
(cd / && qemu-img convert -O raw "$WORK/pool/a/top.qcow2" "$WORK/rel-ref.raw")
(cd / && "$CLONEKIT" collapse "$WORK/pool/a/top.qcow2" "$WORK/rel-ours.raw")
check "relative backing names from another cwd" cmp -s rel-ref.raw rel-ours.raw
(cd pool && "$CLONEKIT" collapse a/top.qcow2 ../rel-ours2.raw)
check "relative backing names from a sub-directory cwd" cmp -s rel-ref.raw rel-ours2.raw
oracle_check abs.qcow2 "absolute backing name"
# Like qemu, a symlinked top resolves its backing names from the link's directory.
ln -s top.qcow2 pool/a/link.qcow2
oracle_check pool/a/link.qcow2 "top image through a symlink"

# 7. Internal snapshots present, lazy refcounts, a dirty image.
qemu-img create -q -f qcow2 -o lazy_refcounts=on i0.qcow2 4M
qio i0.qcow2 'write -P 0x91 0 1M'
qemu-img snapshot -c snap1 i0.qcow2
qio i0.qcow2 'write -P 0x92 512k 1M'
qemu-io -f qcow2 -c 'write -P 0x93 2M 64k' -c abort i0.qcow2 >/dev/null 2>&1 || true
if qemu-img info --output=json i0.qcow2 | grep >/dev/null '"dirty-flag": true'; then
  pass "qemu-io abort left a dirty image"
else
  fail "could not make a dirty image"
fi
oracle_check i0.qcow2 "internal snapshot + lazy refcounts + dirty"

# 7b. refcount widths 1 and 64 bits, persistent dirty bitmaps present.
qemu-img create -q -f qcow2 -o refcount_bits=1 r1.qcow2 4M
qio r1.qcow2 'write -P 0x94 0 1M'
qemu-img bitmap --add r1.qcow2 bm0
qemu-img create -q -f qcow2 -o refcount_bits=64 -b r1.qcow2 -F qcow2 r64.qcow2 4M
qio r64.qcow2 'write -P 0x95 512k 64k'
qemu-img bitmap --add r64.qcow2 bm1
oracle_check r64.qcow2 "refcount_bits 1 and 64 + persistent bitmaps"

# 7c. A data cluster cut short by the end of the file reads zeros past EOF,
#     as qemu reads it (qemu-img pads short reads).
qemu-img create -q -f qcow2 cut.qcow2 1M
qio cut.qcow2 'write -P 0x96 960k 64k'
size=$(stat -c %s cut.qcow2)
truncate -s $((size - 40000)) cut.qcow2
# (qemu's map calls that tail "data" and "zero" at once; ours calls it zero,
# so only the bytes are compared here.)
oracle_check cut.qcow2 "data cluster cut by end of file" nomap
check "map: the tail past EOF is zero" bash -c "'$CLONEKIT' map --output=json cut.qcow2 | grep -q '\"start\": 1008576, \"length\": 40000, \"depth\": 0, \"present\": true, \"zero\": true, \"data\": false'"

# 8. A raw image alone, and a v2 chain with compressed clusters.
oracle_check base.raw "raw image alone"
qemu-img create -q -f qcow2 -o compat=0.10 v0.qcow2 2M
qio v0.qcow2 'write -c -P 0xa1 0 1M'
qemu-img create -q -f qcow2 -o compat=0.10 -b v0.qcow2 -F qcow2 v1.qcow2 2M
qio v1.qcow2 'write -P 0xa2 64k 64k'
oracle_check v1.qcow2 "v2 chain with compressed clusters"

# 9. Deep chain: 120 layers, each writing a few clusters at random.
RANDOM=7
qemu-img create -q -f qcow2 -o cluster_size=4k d0.qcow2 2M
for i in $(seq 1 120); do
  qemu-img create -q -f qcow2 -o cluster_size=4k -b "d$((i - 1)).qcow2" -F qcow2 "d$i.qcow2" 2M
  a=$((RANDOM % 512)); b=$((RANDOM % 512)); c=$((RANDOM % 512))
  # Compressed first: qemu only compresses into an unallocated cluster.
  qio "d$i.qcow2" "write -c -P $(((i + 7) % 250 + 1)) $((c * 4096)) 4k" \
      "write -P $((i % 250 + 1)) $((a * 4096)) 4k" "write -z $((b * 4096)) 4k"
done
oracle_check d120.qcow2 "depth 121 chain"
oracle_check d60.qcow2 "depth 61 chain (middle snapshot point)"
check "--max-depth refuses a deeper chain" \
  bash -c "! '$CLONEKIT' map --max-depth 100 d120.qcow2 >/dev/null 2>err && grep -q 'deeper than 100' err"

# 10. Progress reaches 100 %.
"$CLONEKIT" collapse -p s2.qcow2 prog.raw > prog.out
check "-p prints progress up to 100%" grep -q '(100.00/100%)' prog.out

finish
