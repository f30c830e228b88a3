#!/usr/bin/env bash
# make-chain.sh DIR VIRTUAL_MIB DEPTH PERCENT [SEED] [BASE]
# Builds DIR/layer-0.qcow2 <- ... <- DIR/layer-(DEPTH-1).qcow2 with 64 KiB
# clusters and relative backing names. Every layer writes PERCENT % of the
# clusters, whole and in random order (as a guest leaves them), with
# half-compressible data: each 4 KiB block is 2 KiB random + 2 KiB text,
# drawn from 16 different 64 KiB pattern files. Reproducible from SEED.
# With BASE=zstd-full, layer-0 is instead a fully allocated zstd-compressed
# image of the same kind of data. Prints the top's path.
# The shape sweep (bench/sweep.sh) also sets, in the environment:
#   CLUSTER_KIB  cluster size in KiB (default 64)
#   DATA         half (default: half random, half text) or random (incompressible)
#   ORDER        random (default: clusters written in random order) or sorted
set -euo pipefail
dir=$1 vmib=$2 depth=$3 pct=$4 seed=${5:-1} base=${6:-}
mkdir -p "$dir/patterns"
python3 - "$dir" "$vmib" "$depth" "$pct" "$seed" "$base" <<'PY'
import os, random, subprocess, sys
d, vmib, depth, pct, seed, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
cluster = int(os.environ.get("CLUSTER_KIB", "64")) * 1024
incompressible = os.environ.get("DATA", "half") == "random"
ordered = os.environ.get("ORDER", "random") == "sorted"
rng = random.Random(seed)
text = (b"clonekit collapses qcow2 backing chains; " * 64)[:2048]
pats = []
for p in range(16):
    path = os.path.join(d, "patterns", f"p{p}.bin")
    with open(path, "wb") as f:
        for _ in range(max(16, cluster // 4096)):
            f.write(rng.randbytes(4096) if incompressible else rng.randbytes(2048) + text)
    pats.append(path)
clusters = vmib * (1 << 20) // cluster
per_layer = max(1, clusters * pct // 100)
for k in range(depth):
    img = os.path.join(d, f"layer-{k}.qcow2")
    if k == 0 and base == "zstd-full":
        raw = os.path.join(d, "base.raw")
        with open(raw, "wb") as f:
            blobs = [open(p, "rb").read() for p in pats]
            for c in range(clusters):
                f.write(blobs[rng.randrange(16)])
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-c", "-o",
                        "compression_type=zstd,cluster_size=64k", raw, img], check=True)
        os.unlink(raw)
        continue
    cmd = ["qemu-img", "create", "-q", "-f", "qcow2", "-o", f"cluster_size={cluster}"]
    if k:
        cmd += ["-b", f"layer-{k-1}.qcow2", "-F", "qcow2"]
    subprocess.run(cmd + [img, f"{vmib}M"], check=True)
    picks = rng.sample(range(clusters), per_layer)
    if ordered:
        picks.sort()
    script = "".join(f"write -s {pats[rng.randrange(16)]} {c * cluster} {cluster}\n" for c in picks)
    subprocess.run(["qemu-io", "-f", "qcow2", img], input=script.encode(), check=True,
                   stdout=subprocess.DEVNULL)
PY
echo "$dir/layer-$((depth - 1)).qcow2"
