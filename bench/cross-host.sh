#!/usr/bin/env bash
# Issue #16: a clone's data from the host that holds the chain to another
# host, over a link between two network namespaces (a veth pair, a
# private /24; nothing leaves this machine).
#
#   bench/cross-host.sh CHAIN_DIR [--runs N] [--work DIR]
#
# The target is a raw file the size of the disk, served on the far side by
# qemu-nbd; every run starts cold (drop_caches) with the file emptied. Same
# run, in turn:
#   - clonekit collapse -> nbds:// (TLS 1.3, pre-shared key), the data path
#     clonekit uses between hosts, with its 4 connections and with 1;
#   - clonekit collapse -> nbd:// (no TLS), to see what TLS costs;
#   - qemu-img convert -n -> nbd:// (no TLS): the reference the issue names;
#   - qemu-img convert -n -> NBD with the same TLS credentials;
#   - the link itself: iperf3 (one TCP stream, and 4), and an SSH channel
#     (dd of zeros | ssh | cat >/dev/null), the other way data could go.
# Prints one line per measurement; needs root.
set -euo pipefail
chain=$(readlink -f "$1"); shift
runs=3 work=/tmp/clonekit-bench/cross-host
while [ $# -gt 0 ]; do
  case $1 in --runs) runs=$2; shift 2 ;; --work) work=$2; shift 2 ;; *) echo "unknown option $1"; exit 2 ;; esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
CLONEKIT=${CLONEKIT:-$here/build/tools/clonekit}
top=$(ls "$chain"/layer-*.qcow2 | sort -V | tail -1)
size=$(qemu-img info --output=json "$top" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
rm -rf "$work" && mkdir -p "$work/psk" "$work/ssh" && chmod 700 "$work/psk"
cd "$work"
A=ckbencha$$ B=ckbenchb$$
pids=()
finish() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f sshd.pid ] && kill "$(cat sshd.pid)" 2>/dev/null
  ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true
}
trap finish EXIT
ip netns add "$A"; ip netns add "$B"
ip link add "ba$$" type veth peer name "bb$$"
ip link set "ba$$" netns "$A"; ip link set "bb$$" netns "$B"
ip -n "$A" addr add 10.78.0.1/24 dev "ba$$"; ip -n "$B" addr add 10.78.0.2/24 dev "bb$$"
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set "ba$$" up; ip -n "$B" link set "bb$$" up
echo "clonekit:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >psk/keys.psk
chmod 600 psk/keys.psk

cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
secs() { echo "$(now) - $1" | bc; }
mibs() { echo "scale=0; $2 / 1048576 / $1" | bc; }
# serve_target PORT [TLS]: qemu-nbd on B over an empty raw file target.raw.
serve_target() {
  rm -f target.raw; truncate -s "$size" target.raw
  local tls=()
  [ "${2:-}" = TLS ] && tls=(--object "tls-creds-psk,id=tls0,endpoint=server,dir=$work/psk" --tls-creds tls0)
  ip netns exec "$B" qemu-nbd "${tls[@]}" -f raw -b 10.78.0.2 -p "$1" -x disk --shared=8 --cache=none --aio=native target.raw &
  server=$!
  for _ in $(seq 1 50); do ip netns exec "$A" bash -c "exec 3<>/dev/tcp/10.78.0.2/$1" 2>/dev/null && return; sleep 0.1; done
}
stop_target() { kill "$server"; wait "$server" 2>/dev/null || true; }
# timed NAME CMD...: one cold run, checked against qemu's reading.
timed() {
  local name=$1; shift
  cold
  local t0; t0=$(now)
  ip netns exec "$A" "$@" >/dev/null
  local t; t=$(secs "$t0")
  stop_target
  local ok=ok
  qemu-img compare -q -f raw -F qcow2 target.raw "$top" || ok=DIFFERENT
  printf '%-34s %6.2f s  %5s MiB/s of data  (%s)\n' "$name" "$t" "$(mibs "$t" "$data")" "$ok"
}
data=$(qemu-img map --output=json "$top" | python3 -c 'import json,sys; print(sum(e["length"] for e in json.load(sys.stdin) if e["data"]))')
echo "# chain $top: $((size >> 20)) MiB virtual, $((data >> 20)) MiB of data; link: veth between two namespaces; $(nproc) cores"

ip netns exec "$B" iperf3 -s -D -B 10.78.0.2 -p 5201 --pidfile "$work/iperf.pid" >/dev/null
sleep 0.5
pids+=("$(cat iperf.pid)")
for p in 1 4; do
  bps=$(ip netns exec "$A" iperf3 -c 10.78.0.2 -p 5201 -t 5 -P "$p" -J | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]))')
  printf '%-34s %6s    %5s MiB/s\n' "link: iperf3, $p TCP stream(s)" "" "$((bps / 8 / 1048576))"
done

# An SSH channel over the same link (the host's key and root's key made here).
ssh-keygen -q -t ed25519 -N '' -f ssh/host_key; ssh-keygen -q -t ed25519 -N '' -f ssh/id
cat >ssh/sshd_config <<CFG
ListenAddress 10.78.0.2
HostKey $work/ssh/host_key
PidFile $work/sshd.pid
AuthorizedKeysFile $work/ssh/id.pub
PermitRootLogin prohibit-password
PasswordAuthentication no
UsePAM no
StrictModes no
CFG
mkdir -p /run/sshd
ip netns exec "$B" /usr/sbin/sshd -f ssh/sshd_config
echo "10.78.0.2 $(cut -d' ' -f1,2 ssh/host_key.pub)" >ssh/known_hosts
sshq() { ip netns exec "$A" ssh -i ssh/id -o UserKnownHostsFile=ssh/known_hosts -o BatchMode=yes root@10.78.0.2 "$@"; }
for _ in $(seq 1 50); do sshq true 2>/dev/null && break; sleep 0.1; done
t0=$(now)
dd if=/dev/zero bs=4M count=256 status=none | sshq 'cat >/dev/null'
t=$(secs "$t0")
printf '%-34s %6.2f s  %5s MiB/s\n' "link: ssh channel, 1 GiB" "$t" "$(mibs "$t" $((1 << 30)))"

psk_uri="nbds://clonekit@10.78.0.2:10810/disk?tls-psk-file=$work/psk/keys.psk"
for run in $(seq 1 "$runs"); do
  echo "# run $run"
  serve_target 10810 TLS; timed "clonekit collapse -> nbds (TLS)" "$CLONEKIT" collapse "$top" "$psk_uri"
  serve_target 10814 TLS; timed "clonekit collapse -j 1 -> nbds (TLS)" "$CLONEKIT" collapse -j 1 "$top" "${psk_uri/10810/10814}"
  serve_target 10811;     timed "clonekit collapse -> nbd (plain)" "$CLONEKIT" collapse "$top" "nbd://10.78.0.2:10811/disk"
  serve_target 10812;     timed "qemu-img convert -> nbd (plain)" qemu-img convert -n -O raw "$top" "nbd://10.78.0.2:10812/disk"
  serve_target 10813 TLS
  timed "qemu-img convert -> nbd (TLS)" qemu-img convert -n --object "tls-creds-psk,id=tls0,endpoint=client,dir=$work/psk,username=clonekit" \
    --target-image-opts "$top" "driver=nbd,host=10.78.0.2,port=10813,export=disk,tls-creds=tls0"
done
