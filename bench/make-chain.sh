#!/usr/bin/env bash
# make-chain.sh DIR VIRTUAL_MIB DEPTH PERCENT [SEED]
# Builds DIR/layer-0.qcow2 <- ... <- DIR/layer-(DEPTH-1).qcow2, 64 KiB
# clusters, relative backing names; every layer writes PERCENT % of the
# clusters, whole, in random order (as a guest leaves them). Reproducible
# from SEED. Prints the top's path.
set -euo pipefail
dir=$1 vmib=$2 depth=$3 pct=$4 seed=${5:-1}
mkdir -p "$dir"
clusters=$((vmib * 16))
per_layer=$(( clusters * pct / 100 ))
[ "$per_layer" -gt 0 ] || per_layer=1
python3 - "$dir" "$vmib" "$depth" "$per_layer" "$seed" <<'PY'
import os, random, subprocess, sys
d, vmib, depth, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(seed)
clusters = vmib * 16
for k in range(depth):
    img = os.path.join(d, f"layer-{k}.qcow2")
    cmd = ["qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=64k"]
    if k:
        cmd += ["-b", f"layer-{k-1}.qcow2", "-F", "qcow2"]
    subprocess.run(cmd + [img, f"{vmib}M"], check=True)
    picks = rng.sample(range(clusters), n)
    # qemu-io reads commands from stdin: one write per cluster, random order.
    script = "".join(f"write -P {(k * 7 + c) % 255 + 1} {c * 65536} 64k\n" for c in picks)
    subprocess.run(["qemu-io", "-f", "qcow2", img], input=script.encode(), check=True,
                   stdout=subprocess.DEVNULL)
PY
echo "$dir/layer-$((depth - 1)).qcow2"
