#!/usr/bin/env bash
# The shape sweep: clonekit collapse against qemu-img convert -O raw and
# against cp --sparse=always of the already flattened file (the floor of a
# buffered durable copy), on chains of many shapes.
#   bench/sweep.sh [--grid] [--runs N] [--vmib N] [--points LIST] [--work DIR]
# Axes: depth {1,4,16,64,256} x written per layer {1,10,25 %} x data
# {half (compressible), random} x layout {random, sorted host order} x cluster
# size {4K, 64K, 2M}. By default a subset (one axis at a time around depth 4
# / 25 % / half / random / 64K, plus the shapes the issue names); --grid runs
# all 180 points (hours, and tens of GB of chains at depth 256 x 25 %).
# Each point: the three commands run in turn N times (interleaved; all to a
# durable output; warm page cache), each clonekit output first checked equal
# to qemu's reading. Prints one row per point: the median ratio clonekit /
# other and its spread (min-max over the N interleaved runs), and whether
# the target (<= 0.5 x qemu-img, or <= 1.0 x the cp floor) is met.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ck=${CLONEKIT:-$root/build/tools/clonekit}
runs=5 vmib=1024 grid=0 points="" work=/tmp/clonekit-bench/sweep
while [ $# -gt 0 ]; do
  case $1 in
    --grid) grid=1 ;;
    --runs) runs=$2; shift ;;
    --vmib) vmib=$2; shift ;;
    --points) points=$2; shift ;;
    --work) work=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$ck" ] || BUILD_DIR="$root/build" bash "$root/scripts/build.sh"
mkdir -p "$work"

python3 - "$root" "$ck" "$work" "$runs" "$vmib" "$grid" "$points" <<'PY'
import itertools, os, statistics, subprocess, sys, time
root, ck, work, runs, vmib, grid, only = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "1", sys.argv[7]

# (depth, percent per layer, data, order, cluster KiB)
center = (4, 25, "half", "random", 64)
subset = [
    (1, 25, "half", "random", 64), center, (16, 10, "half", "random", 64),
    (64, 1, "half", "random", 64), (256, 1, "half", "random", 64),
    (4, 1, "half", "random", 64), (4, 10, "half", "random", 64),
    (4, 25, "random", "random", 64), (4, 25, "half", "sorted", 64),
    (4, 25, "half", "random", 4), (4, 25, "half", "random", 2048),
    (16, 25, "random", "random", 64), (16, 10, "random", "sorted", 64),
]
full = list(itertools.product([1, 4, 16, 64, 256], [1, 10, 25], ["half", "random"], ["random", "sorted"], [4, 64, 2048]))
shapes = full if grid else subset
if only:
    shapes = [shapes[int(i)] for i in only.split(",")]

def name(s):
    return f"d{s[0]}-p{s[1]}-{s[2]}-{s[3]}-{s[4]}k"

def build(s):
    d = os.path.join(work, f"{vmib}m-" + name(s))
    top = os.path.join(d, f"layer-{s[0] - 1}.qcow2")
    if not os.path.exists(os.path.join(d, ".done")):
        subprocess.run(["rm", "-rf", d], check=True)
        env = dict(os.environ, CLUSTER_KIB=str(s[4]), DATA=s[2], ORDER=s[3])
        subprocess.run(["bash", os.path.join(root, "bench/make-chain.sh"), d, str(vmib), str(s[0]), str(s[1]), "1"],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        open(os.path.join(d, ".done"), "w").close()
    return top

def timed(cmd):
    t = time.monotonic()
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t

out, copy, flat = (os.path.join(work, n) for n in ("out.raw", "copy.raw", "flat.raw"))
print(f"| shape ({vmib} MiB virtual) | allocated | clonekit s | / qemu-img (spread) | / cp floor (spread) | met |")
print("|---|---:|---:|---:|---:|---|")
for s in shapes:
    top = build(s)
    subprocess.run(f"rm -f {flat} && qemu-img convert -f qcow2 -O raw {top} {flat}", shell=True, check=True)
    subprocess.run(f"rm -f {out} && {ck} collapse {top} {out} && qemu-img compare -q -f qcow2 -F raw {top} {out}",
                   shell=True, check=True)
    alloc = int(subprocess.run(["du", "-B1", flat], capture_output=True, text=True).stdout.split()[0])
    subprocess.run(f"cat {os.path.dirname(top)}/*.qcow2 {flat} > /dev/null", shell=True, check=True)  # warm
    cmds = {
        "ck": f"{ck} collapse {top} {out}",
        "qi": f"qemu-img convert -f qcow2 -O raw {top} {out} && sync {out}",
        "cp": f"cp --sparse=always {flat} {copy} && sync {copy}",
    }
    t = {k: [] for k in cmds}
    for _ in range(runs):
        for k, c in cmds.items():
            subprocess.run(f"rm -f {out} {copy}", shell=True, check=True)
            t[k].append(timed(c))
    rq = [a / b for a, b in zip(t["ck"], t["qi"])]
    rc = [a / b for a, b in zip(t["ck"], t["cp"])]
    mq, mc = statistics.median(rq), statistics.median(rc)
    met = "yes" if mq <= 0.5 or mc <= 1.0 else "**no**"
    print(f"| {name(s)} | {alloc / 2**30:.2f} GiB | {statistics.median(t['ck']):.3f} | "
          f"{mq:.2f} ({min(rq):.2f}-{max(rq):.2f}) | {mc:.2f} ({min(rc):.2f}-{max(rc):.2f}) | {met} |", flush=True)
    subprocess.run(f"rm -f {out} {copy} {flat}", shell=True, check=True)
PY
