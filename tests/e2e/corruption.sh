#!/usr/bin/env bash
# Hostile images: fields of real qemu-img-made images are damaged one at a
# time. Each must give exit status 1, exactly one stderr line that names the
# file and the fault, no output file (not even a temporary), an unchanged
# source, within 1 GiB of address space and 10 s of CPU.
source "$(dirname "$0")/lib.sh"

# The good chain every case starts from: raw base <- l1 (zlib, compressed
# clusters) <- l2 (zstd) <- l3 <- top.
make_chain() {
  rm -rf chain && mkdir chain && cd chain
  qemu-img create -q -f raw base.raw 4M
  qemu-io -f raw -c 'write -P 1 0 4M' base.raw >/dev/null
  qemu-img create -q -f qcow2 -b base.raw -F raw l1.qcow2 4M
  qio l1.qcow2 'write -c -P 2 0 128k' 'write -P 3 1M 64k' 'write -z 2M 64k'
  qemu-img create -q -f qcow2 -o compression_type=zstd -b l1.qcow2 -F qcow2 l2.qcow2 4M
  qio l2.qcow2 'write -c -P 4 512k 128k' 'write -P 5 3M 64k'
  qemu-img create -q -f qcow2 -b l2.qcow2 -F qcow2 l3.qcow2 4M
  qio l3.qcow2 'write -P 6 1536k 64k'
  qemu-img create -q -f qcow2 -b l3.qcow2 -F qcow2 top.qcow2 4M
  qio top.qcow2 'write -P 7 64k 64k'
  cd ..
}
make_chain
cp -a chain pristine

# ASan reserves terabytes of shadow address space: under a sanitizer build
# only the CPU limit applies (ASan itself then polices memory use).
limits=(prlimit --as=1073741824 --cpu=10)
if ldd "$CLONEKIT" 2>/dev/null | grep >/dev/null libasan; then limits=(prlimit --cpu=10); fi

# expect_refusal LABEL FRAGMENT FILE-NAMED [clonekit args...]
# Runs `clonekit collapse top.qcow2 out.raw` (or the given args) in chain/.
expect_refusal() {
  local label=$1 fragment=$2 named=$3; shift 3
  local args=("$@")
  [ ${#args[@]} -gt 0 ] || args=(collapse top.qcow2 out.raw)
  local before after rc=0
  before=$(cd chain && find . -type f -exec sha256sum {} + | sort)
  (cd chain && "${limits[@]}" timeout 10 "$CLONEKIT" "${args[@]}" >/dev/null 2>../err) || rc=$?
  after=$(cd chain && find . -type f -exec sha256sum {} + | sort)
  local lines problems=()
  lines=$(wc -l < err)
  [ "$rc" -eq 1 ] || problems+=("exit status $rc")
  [ "$lines" -eq 1 ] || problems+=("$lines stderr lines")
  grep -q "^clonekit: .*$named" err || problems+=("message does not name $named")
  grep -qF -- "$fragment" err || problems+=("message lacks '$fragment'")
  [ -z "$(ls -A chain | grep -E '^out\.raw$|clonekit-' || true)" ] || problems+=("output left behind")
  [ -z "$(ls -A chain/.[!.]* 2>/dev/null | grep clonekit || true)" ] || problems+=("temporary left behind")
  [ "$before" = "$after" ] || problems+=("source changed")
  if [ ${#problems[@]} -eq 0 ]; then
    pass "$label: $(cat err)"
  else
    fail "$label: ${problems[*]}: $(head -c 300 err)"
  fi
  rm -rf chain && cp -a pristine chain
}

hdr() { $POKE "chain/$1" header "$2" "$3" >/dev/null; }

# --- Header fields (qemu-iotests 080 and qcow2_do_open checks) ---
hdr l3.qcow2 magic 0x514649fa;            expect_refusal "bad magic" "bad magic" l3.qcow2
for v in 0 1 4; do hdr top.qcow2 version $v; expect_refusal "version $v" "unsupported qcow2 version" top.qcow2; done
truncate -s 50 chain/l2.qcow2;            expect_refusal "truncated header" "truncated header" l2.qcow2
for v in 0x7fffffff 0xffffffff 8 0x20000; do
  hdr top.qcow2 header_length $v; expect_refusal "header_length $v" "header_length" top.qcow2
done
for v in 0 8 22 31 32 63 0xffffffff; do
  hdr top.qcow2 cluster_bits $v; expect_refusal "cluster_bits $v" "cluster_bits" top.qcow2
done
hdr top.qcow2 l1_size 0;                  expect_refusal "L1 too small" "L1 table is too small" top.qcow2
hdr top.qcow2 l1_size 0xffffffff;         expect_refusal "L1 size 0xffffffff" "L1 table too large" top.qcow2
hdr top.qcow2 l1_size 0x7fffffff;         expect_refusal "L1 size 0x7fffffff" "L1 table too large" top.qcow2
hdr top.qcow2 l1_size 0x300000;           expect_refusal "L1 larger than file" "past end of file" top.qcow2
hdr top.qcow2 size 0xffffffffffffffff;    expect_refusal "size overflow" "too large" top.qcow2
hdr top.qcow2 size 0x4000000000000;       expect_refusal "size beyond L1" "L1 table is too small" top.qcow2
hdr top.qcow2 l1_table_offset 0x7fffffffffff0000; expect_refusal "L1 offset past EOF" "past end of file" top.qcow2
hdr top.qcow2 l1_table_offset 0x30200;    expect_refusal "L1 offset unaligned" "not cluster aligned" top.qcow2
hdr top.qcow2 incompatible_features 0x20; expect_refusal "unknown incompatible bit" "unknown incompatible feature bits 0x20" top.qcow2
hdr l2.qcow2 incompatible_features 0x2;   expect_refusal "corrupt bit" "marked corrupt" l2.qcow2
hdr top.qcow2 incompatible_features 0x4;  expect_refusal "external data file bit" "external data file" top.qcow2
for c in 1 2; do hdr top.qcow2 crypt_method $c; expect_refusal "crypt_method $c" "encrypted" top.qcow2; done
hdr top.qcow2 compression_type 7;         expect_refusal "unknown compression type" "unknown compression type 7" top.qcow2
hdr top.qcow2 refcount_order 7;           expect_refusal "refcount_order 7" "refcount_order 7" top.qcow2
hdr top.qcow2 refcount_table_clusters 0xffffffff; expect_refusal "refcount table huge" "refcount table too large" top.qcow2
hdr top.qcow2 refcount_table_offset 0x1234567890abcdef; expect_refusal "refcount table misaligned" "refcount table offset" top.qcow2
hdr top.qcow2 nb_snapshots 0xffffffff;    expect_refusal "nb_snapshots huge" "too many internal snapshots" top.qcow2
hdr top.qcow2 nb_snapshots 1; hdr top.qcow2 snapshots_offset 0x1234567; expect_refusal "snapshots offset" "snapshot table offset" top.qcow2
# Extended L2 with 4 KiB clusters.
(cd chain && qemu-img create -q -f qcow2 -o cluster_size=4k small.qcow2 1M)
hdr small.qcow2 incompatible_features 0x10
expect_refusal "extended L2 with 4 KiB clusters" "extended L2 entries need clusters of at least 16 KiB" small.qcow2 collapse small.qcow2 out.raw
# An external data file named in a header extension.
(cd chain && qemu-img create -q -f qcow2 -o data_file=data.raw df.qcow2 1M)
expect_refusal "data_file image" "external data file" df.qcow2 collapse df.qcow2 out.raw
# A huge unknown header extension.
$POKE chain/top.qcow2 bytes 0x70 "12345678 7fffffff"
expect_refusal "huge header extension" "too large" top.qcow2

# --- Backing names ---
hdr top.qcow2 backing_file_size 1024;     expect_refusal "backing name too long" "backing file name too long" top.qcow2
hdr top.qcow2 backing_file_size 0xffffffff; expect_refusal "backing name 0xffffffff" "backing file name too long" top.qcow2
hdr top.qcow2 backing_file_offset 0x20000; expect_refusal "backing offset past cluster" "invalid backing file offset" top.qcow2
off=$($POKE chain/top.qcow2 header backing_file_offset)
truncate -s $((off + 3)) chain/top.qcow2;  expect_refusal "backing name past EOF" "past end of file" top.qcow2
rm chain/l2.qcow2;                        expect_refusal "missing backing file" "backing file 'l2.qcow2' cannot be opened" l3.qcow2
for name in 'json:{"file.filename":"/etc/passwd"}' 'nbd://127.0.0.1/x' 'file:/etc/passwd'; do
  (cd chain && qemu-img rebase -q -u -b "$name" -F raw top.qcow2)
  expect_refusal "backing name $name" "protocol or json" top.qcow2
done
(cd chain && qemu-img rebase -q -u -b /etc/passwd -F raw top.qcow2)
expect_refusal "absolute backing outside --backing-dir" "outside the allowed directories" top.qcow2 \
  collapse --backing-dir . top.qcow2 out.raw
(cd chain && qemu-img rebase -q -u -b l3.qcow2 -F vmdk top.qcow2)
expect_refusal "unsupported backing format" "'vmdk' is not supported" top.qcow2
# A backing name with no recorded format: clear the format extension's type.
(cd chain && qemu-img rebase -q -u -b l3.qcow2 -F qcow2 top.qcow2)
$POKE chain/top.qcow2 bytes 0x70 "00000000"
expect_refusal "no backing format" "no recorded format" top.qcow2

# --- Loops (detected by device + inode) ---
(cd chain && qemu-img rebase -q -u -b top.qcow2 -F qcow2 top.qcow2)
expect_refusal "loop A->A" "backing file 'top.qcow2' is top.qcow2 again" top.qcow2
(cd chain && qemu-img rebase -q -u -b top.qcow2 -F qcow2 l3.qcow2)
expect_refusal "loop A->B->A" "is top.qcow2 again: the backing chain loops" l3.qcow2
(cd chain && ln -s top.qcow2 alias.qcow2 && qemu-img rebase -q -u -b alias.qcow2 -F qcow2 l3.qcow2)
expect_refusal "loop through a symlink" "backing file 'alias.qcow2' is top.qcow2 again" l3.qcow2
(cd chain && ln top.qcow2 hard.qcow2 && qemu-img rebase -q -u -b hard.qcow2 -F qcow2 l2.qcow2)
expect_refusal "loop through a hard link" "backing file 'hard.qcow2' is top.qcow2 again" l2.qcow2
expect_refusal "depth over --max-depth" "deeper than 3 layers" top.qcow2 collapse --max-depth 3 top.qcow2 out.raw

# --- A malformed layer deep in the chain ---
hdr l1.qcow2 cluster_bits 30;             expect_refusal "bad layer at depth 3" "cluster_bits" l1.qcow2

# --- L1 / L2 / data / compressed pointers ---
$POKE chain/top.qcow2 l1 0 0x80000000fff00000 >/dev/null; expect_refusal "L2 table past EOF" "is past end of file" top.qcow2
l1=$($POKE chain/top.qcow2 l1 0)
$POKE chain/top.qcow2 l1 0 $((l1 | 0x200)) >/dev/null; expect_refusal "L2 table unaligned" "L2 table offset" top.qcow2
$POKE chain/top.qcow2 l1 0 $((l1 | 0x2)) >/dev/null; expect_refusal "L1 reserved bits" "reserved bits set in L1 entry" top.qcow2
read -r i j e < <($POKE chain/l3.qcow2 first-l2 data)
$POKE chain/l3.qcow2 l2 "$i" "$j" $((e | 0x200)) >/dev/null; expect_refusal "data cluster unaligned" "unaligned" l3.qcow2
$POKE chain/l3.qcow2 l2 "$i" "$j" 0x8000000010000000 >/dev/null; expect_refusal "data cluster past EOF" "data cluster at 0x10000000" l3.qcow2
$POKE chain/l3.qcow2 l2 "$i" "$j" $((e | (1 << 57))) >/dev/null; expect_refusal "L2 reserved bits" "reserved bits set in L2 entry" l3.qcow2
read -r i j e < <($POKE chain/l1.qcow2 first-l2 compressed)
$POKE chain/l1.qcow2 l2 "$i" "$j" $(((e & ~((1 << 54) - 1)) | 0x40000000)) >/dev/null
expect_refusal "compressed cluster past EOF" "compressed cluster at 0x40000000" l1.qcow2
coff=$((e & ((1 << 54) - 1)))
$POKE chain/l1.qcow2 bytes $coff "$(head -c 600 /dev/urandom | od -An -tx1 | tr -d ' \n')"
expect_refusal "corrupt deflate stream" "compressed cluster at" l1.qcow2
# A valid raw-deflate stream that inflates to 1000 bytes, not one cluster.
python3 -c "
import zlib,sys
c=zlib.compressobj(9,zlib.DEFLATED,-12); d=c.compress(b'x'*1000)+c.flush()
f=open('chain/l1.qcow2','r+b'); f.seek($coff); f.write(d)"
expect_refusal "deflate stream shorter than a cluster" "not one cluster" l1.qcow2
read -r i j e < <($POKE chain/l2.qcow2 first-l2 compressed)
coff=$((e & ((1 << 54) - 1)))
$POKE chain/l2.qcow2 bytes $coff "28b52ffd$(head -c 300 /dev/urandom | od -An -tx1 | tr -d ' \n')"
expect_refusal "corrupt zstd stream" "zstd" l2.qcow2

# --- map and info refuse the same way ---
hdr top.qcow2 cluster_bits 22;            expect_refusal "map refuses" "cluster_bits" top.qcow2 map top.qcow2
hdr top.qcow2 cluster_bits 22;            expect_refusal "info refuses" "cluster_bits" top.qcow2 info top.qcow2

finish
