#!/usr/bin/env bash
# The data path between hosts: `clonekit collapse` on one host writes the
# collapsed chain into an export on another (qemu-nbd) over NBD with TLS
# (a pre-shared key, nbds://). The copy equals qemu's reading of the chain,
# and a capture of the link (tcpdump on the target's end) holds no
# plaintext of a marker written into the disk; the same copy without TLS
# shows the marker in the capture (so the capture would have seen it).
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/hosts/netns.sh"
command -v tcpdump >/dev/null || { echo "SKIP: tcpdump not installed"; exit 77; }
command -v qemu-nbd >/dev/null || { echo "SKIP: qemu-nbd not installed"; exit 77; }
start_manager_ns
start_link b 3  # (no libvirtd or sshd needed: just the link)

# A chain whose data includes a text marker.
python3 -c "import sys; sys.stdout.write(('CLONEKIT-PLAINTEXT-MARKER-7f3a9c\\n' * 40000)[:1 << 20])" >marker.bin
# All of its 9 MiB of data is marker text, so any part of a plaintext
# stream that a capture holds shows the marker.
qemu-img create -q -f qcow2 base.qcow2 64M
for m in 0 1 2 3 4 5 6 7; do qemu-io -f qcow2 -c "write -s marker.bin ${m}M 1M" base.qcow2 >/dev/null; done
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 64M
qemu-io -f qcow2 -c "write -s marker.bin 16M 1M" top.qcow2 >/dev/null
qemu-img convert -O raw top.qcow2 want.raw

mkdir -m 700 psk
echo "clonekit:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >psk/keys.psk
chmod 600 psk/keys.psk

# copy_over TLS|PLAIN OUT [CLIENT_PSK]: qemu-nbd on host b serves OUT
# (raw); collapse from the manager's namespace (with the client's key file,
# psk/keys.psk unless given); tcpdump captures b's end to OUT.pcap.
not_ok() { ! "$@" 2>/dev/null; }
copy_over() {
  local mode=$1 out=$2 client_psk=${3:-psk/keys.psk} tls=() uri
  truncate -s 64M "$out"
  if [ "$mode" = TLS ]; then
    tls=(--object "tls-creds-psk,id=tls0,endpoint=server,dir=$WORK/psk" --tls-creds tls0)
    uri="nbds://clonekit@10.77.3.2:10809/disk?tls-psk-file=$WORK/$client_psk"
  else
    uri="nbd://10.77.3.2:10809/disk"
  fi
  ip netns exec "$(ns_of b)" tcpdump -i "$(veth_of b 3)" -s 0 -B 65536 -U -w "$out.pcap" tcp port 10809 2>"$out.tcpdump" &
  local dump=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$out.tcpdump" 2>/dev/null && break; sleep 0.05; done
  ip netns exec "$(ns_of b)" qemu-nbd "${tls[@]}" -f raw -b 10.77.3.2 -p 10809 -x disk --shared=8 "$out" &
  local server=$!
  for _ in $(seq 1 50); do in_mgr bash -c 'exec 3<>/dev/tcp/10.77.3.2/10809' 2>/dev/null && break; sleep 0.1; done
  in_mgr "$CLONEKIT" collapse top.qcow2 "$uri"
  local st=$?
  kill "$server"; wait "$server" 2>/dev/null || true
  sleep 0.3; kill "$dump"; wait "$dump" 2>/dev/null || true
  echo "# $out.pcap: $(stat -c %s "$out.pcap") bytes; $(grep -E "captured|dropped by kernel" "$out.tcpdump" | tr '\n' ' ')"
  return $st
}
check "collapse into nbds:// on host b (TLS, pre-shared key)" copy_over TLS tls.raw
check "the copy is qemu's reading of the chain" cmp -s tls.raw want.raw
# (At least half of it: a capture may miss packets on a loaded machine;
# the marker is everywhere in the data, so half of it in plaintext would show.)
check "the capture saw the copy (most of the 9 MiB of data, encrypted)" [ "$(stat -c %s tls.raw.pcap)" -gt $((9 << 19)) ]
check "no plaintext marker on the wire with TLS" bash -c "! grep -q CLONEKIT-PLAINTEXT-MARKER tls.raw.pcap"
check "collapse into nbd:// (no TLS), for the capture's sake" copy_over PLAIN plain.raw
check "... the marker is in that capture" grep -q CLONEKIT-PLAINTEXT-MARKER plain.raw.pcap
echo "clonekit:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >wrong.psk
chmod 600 wrong.psk
check "with another key the handshake fails" not_ok copy_over TLS wrong.raw wrong.psk
check "... (the copy ran and failed: its export existed)" test -e wrong.raw
check "... and nothing was written" cmp -s wrong.raw <(head -c 64M /dev/zero)
finish
