#!/usr/bin/env bash
# Pieces of compressed clusters: an overlay with 2 KiB subclusters
# (extended L2) written here and there over a compressed base, so one
# request holds several pieces of one compressed cluster, and a cluster
# spans requests. Every piece must come out as qemu reads it, whatever the
# request size and number of workers (each cluster is read and inflated
# once per request, and a worker reuses the cluster it inflated last).
source "$(dirname "$0")/lib.sh"

head -c 6M /dev/urandom | base64 -w0 | head -c 16M >src.raw  # compressible
for codec in zstd zlib; do
  qemu-img convert -q -f raw -O qcow2 -c -o compression_type=$codec src.raw base.qcow2
  qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=64k -b base.qcow2 -F qcow2 top.qcow2 16M
  for i in $(seq 0 60); do echo "write -P $((i + 1)) $((i * 263 * 1024 + 2048 * (i % 3))) 2k"; done |
    qemu-io -f qcow2 top.qcow2 >/dev/null
  qemu-img convert -O raw top.qcow2 ref.raw
  for args in "" "-j 1" "-j 2 --request-size 65536" "-j 1 --request-size 4096" "-j 3 --queue-depth 1" "--page-cache fill"; do
    rm -f out.raw
    check "$codec, collapse $args: equals qemu's reading" \
      bash -c "'$CLONEKIT' collapse $args top.qcow2 out.raw && cmp -s out.raw ref.raw"
  done
  rm -f out.qcow2
  check "$codec, qcow2 output: equals qemu's reading" \
    bash -c "'$CLONEKIT' collapse -O qcow2 top.qcow2 out.qcow2 && qemu-img compare -q top.qcow2 out.qcow2"
done
finish
