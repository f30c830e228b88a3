#!/usr/bin/env bash
# End-to-end comparison: clonekit collapse against qemu-img convert,
# qemu-nbd + nbdcopy and cp, on the same chains in the same run.
#   bench/compare.sh [--small] [--cold] [--runs N] [--cases abcdm] [--work DIR]
# Every writer is timed to a durable output (clonekit syncs itself; the
# others get `&& sync FILE`). Each output is first checked identical to the
# chain with qemu-img compare. Prints one markdown table per case with
# medians and the ratio clonekit / other (below 1 = clonekit faster).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ck=${CLONEKIT:-$root/build/tools/clonekit}
small=0 cold=0 runs=5 cases=abcdm work=/tmp/clonekit-bench
while [ $# -gt 0 ]; do
  case $1 in
    --small) small=1 ;;
    --cold) cold=1 ;;
    --runs) runs=$2; shift ;;
    --cases) cases=$2; shift ;;
    --work) work=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
# From a fresh clone: install the project's and the reference tools' packages, build.
bash "$root/scripts/deps.sh"
missing=()
for tool in hyperfine:hyperfine nbdcopy:libnbd-bin qemu-nbd:qemu-utils; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "needs: apt-get install ${missing[*]}"; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -x "$ck" ] || BUILD_DIR="$root/build" bash "$root/scripts/build.sh"
mkdir -p "$work"
source "$root/bench/chains.sh"

prepare_cmd() {
  local p="rm -f $work/out.raw $work/out.qcow2 $work/copy.raw"
  [ $cold = 1 ] && p="$p; sync; echo 3 > /proc/sys/vm/drop_caches"
  echo "$p"
}

# bench_case TITLE TOP [extra hyperfine commands as NAME=CMD ...]
bench_case() {
  local title=$1 top=$2; shift 2
  local flat=$work/flat.raw sock=$work/nbd.sock
  rm -f "$flat" "$sock"
  qemu-img convert -f qcow2 -O raw "$top" "$flat"
  qemu-nbd -r -t -e 8 -f qcow2 -k "$sock" "$top" & local nbd=$!
  trap "kill $nbd 2>/dev/null" RETURN
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done

  local names=() cmds=()
  add() { names+=("$1"); cmds+=("$2"); }
  add "clonekit" "$ck collapse $top $work/out.raw"
  add "qemu-img convert" "qemu-img convert -f qcow2 -O raw $top $work/out.raw && sync $work/out.raw"
  add "qemu-img convert -m 16 -W" "qemu-img convert -f qcow2 -O raw -m 16 -W $top $work/out.raw && sync $work/out.raw"
  add "qemu-nbd + nbdcopy" "nbdcopy 'nbd+unix:///?socket=$sock' $work/out.raw && sync $work/out.raw"
  add "cp --sparse=always (flattened)" "cp --sparse=always $flat $work/copy.raw && sync $work/copy.raw"
  for extra in "$@"; do add "${extra%%=*}" "${extra#*=}"; done

  # Correctness first: every raw output equals the chain.
  for i in "${!cmds[@]}"; do
    rm -f "$work/out.raw" "$work/out.qcow2" "$work/copy.raw"
    bash -c "${cmds[$i]}" >/dev/null 2>&1 || { echo "command failed: ${cmds[$i]}"; exit 1; }
    local out=$work/out.raw; [ -f "$work/copy.raw" ] && out=$work/copy.raw; [ -f "$work/out.qcow2" ] && out=$work/out.qcow2
    if [ -f "$out" ] && ! qemu-img compare -q "$top" "$out"; then echo "output of '${names[$i]}' differs"; exit 1; fi
  done

  hyperfine -w 1 -r "$runs" --prepare "$(prepare_cmd)" --export-json "$work/h.json" "${cmds[@]}" >/dev/null 2>&1
  echo
  echo "### $title ($( [ $cold = 1 ] && echo cold || echo warm ) cache, median of $runs)"
  echo
  python3 - "$work/h.json" "${names[@]}" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
med = {n: r["median"] for n, r in zip(sys.argv[2:], res)}
print("| command | median s | clonekit / this |")
print("|---|---:|---:|")
for n, t in med.items():
    # qcow2 writers are compared with clonekit's qcow2 run, the rest with its raw run.
    ours = med["clonekit qcow2 zstd"] if "qcow2" in n else med["clonekit"]
    print(f"| {n} | {t:.3f} | {ours / t:.2f} |")
PY
}

v4=$(scale 4096); v1=$(scale 1024)
d256=256; [ $small = 1 ] && d256=64
[[ $cases == *a* ]] && bench_case "(a) ${v4} MiB, depth 4, 25 % per layer" "$(chain a "$v4" 4 25)" \
  "clonekit --page-cache fill=$ck collapse --page-cache fill $(chain a "$v4" 4 25) $work/out.raw" \
  "clonekit --direct=$ck collapse --direct $(chain a "$v4" 4 25) $work/out.raw" \
  "clonekit --copy-offload=$ck collapse --copy-offload $(chain a "$v4" 4 25) $work/out.raw" \
  "clonekit qcow2 zstd=$ck collapse -O qcow2 -c $(chain a "$v4" 4 25) $work/out.qcow2" \
  "qemu-img qcow2 zstd=qemu-img convert -f qcow2 -O qcow2 -c -o compression_type=zstd $(chain a "$v4" 4 25) $work/out.qcow2 && sync $work/out.qcow2"
[[ $cases == *b* ]] && bench_case "(b) ${v4} MiB, depth 64, 2 % per layer" "$(chain b "$v4" 64 2)"
if [[ $cases == *c* ]]; then
  top=$(chain c "$v1" "$d256" 1)
  flatq=$work/c-flat.qcow2
  [ -f "$flatq" ] || qemu-img convert -f qcow2 -O qcow2 "$top" "$flatq"
  bench_case "(c) ${v1} MiB, depth $d256, 1 % per layer" "$top" \
    "clonekit, flattened control=$ck collapse $flatq $work/out.raw"
fi
[[ $cases == *d* ]] && bench_case "(d) ${v4} MiB zstd-compressed base + 2 x 10 %" "$(chain d "$v4" 3 10 zstd-full)" \
  "clonekit --page-cache fill=$ck collapse --page-cache fill $(chain d "$v4" 3 10 zstd-full) $work/out.raw"
if [[ $cases == *m* ]]; then
  top=$(chain c "$v1" "$d256" 1)
  hyperfine -N -w 2 -r 10 --export-json "$work/m.json" "$ck map --output=json $top" "qemu-img map --output=json $top" >/dev/null
  echo
  echo "### map at depth $d256"
  python3 -c "
import json; r=json.load(open('$work/m.json'))['results']
print(f'clonekit map {r[0][\"median\"]*1000:.1f} ms, qemu-img map {r[1][\"median\"]*1000:.1f} ms: clonekit {r[1][\"median\"]/r[0][\"median\"]:.1f} x faster')"
fi
