#!/usr/bin/env bash
# Issue #16: a whole clone job to another host, as an admin runs it
# (`clonekit vm clone VM --host h2 --disk vda=pool:far --no-start --wait`),
# against qemu-img convert into nbd:// of a qemu-nbd on the same target in
# the same run. Hosts are the tests' network namespaces
# (tests/e2e/hosts/netns.sh: h2 with its own libvirtd, sshd and a tmpfs
# /var/lib/libvirt, where both targets are written).
#
#   bench/cross-host-clone.sh CHAIN_DIR [--runs N]
#
# The job's time includes what only a job does: the plan's SSH round
# (reserve), the export's start (qemu-img create, key, qemu-nbd), the
# finish (stop, sync, rename) and the define on h2. Every run starts cold
# (drop_caches), and each result is checked against qemu's reading.
set -euo pipefail
chain=$(readlink -f "$1"); shift
runs=3
while [ $# -gt 0 ]; do
  case $1 in --runs) runs=$2; shift 2 ;; *) echo "unknown option $1"; exit 2 ;; esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
export CLONEKIT=${CLONEKIT:-$here/build/tools/clonekit}
source "$here/tests/e2e/lib.sh"
source "$here/tests/e2e/hosts/netns.sh"
top=$(ls "$chain"/layer-*.qcow2 | sort -V | tail -1)
size=$(qemu-img info --output=json "$top" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
data=$(qemu-img map --output=json "$top" | python3 -c 'import json,sys; print(sum(e["length"] for e in json.load(sys.stdin) if e["data"]))')
with_h2
ck pool add bench "$chain" >/dev/null
ck vm import bench "$top" >/dev/null
echo "# chain $top: $((size >> 20)) MiB virtual, $((data >> 20)) MiB of data; target: h2's tmpfs; $(nproc) cores"
cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
report() {  # NAME SECONDS FILE-ON-H2
  local ok=ok
  on_host h2 qemu-img compare -q -U "$top" "$3" || ok=DIFFERENT
  printf '%-40s %6.2f s  %5s MiB/s of data  (%s)\n' "$1" "$2" "$(echo "scale=0; $data / 1048576 / $2" | bc)" "$ok"
}
for run in $(seq 1 "$runs"); do
  echo "# run $run"
  cold
  t0=$(now)
  ck vm clone bench --name "c$run" --host h2 --disk vda=pool:far,format:raw --no-start --wait >/dev/null
  t=$(echo "$(now) - $t0" | bc)
  report "clonekit vm clone --host h2 (TLS)" "$t" "/var/lib/libvirt/far/c$run-vda.raw"
  ck vm delete "c$run" >/dev/null
  on_host h2 rm -f "/var/lib/libvirt/far/c$run-vda.raw"

  on_host h2 truncate -s "$size" /var/lib/libvirt/far/q.raw
  ip netns exec "$(ns_of h2)" nsenter -t "$(cat "$WORK/host-h2/holder.pid")" -m -- \
    qemu-nbd --persistent -f raw -b 10.77.2.2 -p 10899 -x disk --shared=8 /var/lib/libvirt/far/q.raw &
  server=$!
  for _ in $(seq 1 50); do in_mgr bash -c 'exec 3<>/dev/tcp/10.77.2.2/10899' 2>/dev/null && break; sleep 0.1; done
  cold
  t0=$(now)
  in_mgr qemu-img convert -n -O raw "$top" nbd://10.77.2.2:10899/disk
  t=$(echo "$(now) - $t0" | bc)
  kill "$server"; wait "$server" 2>/dev/null || true
  report "qemu-img convert -> nbd (plain)" "$t" /var/lib/libvirt/far/q.raw
  on_host h2 rm -f /var/lib/libvirt/far/q.raw
done
stop_svc
