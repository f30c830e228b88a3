#!/usr/bin/env bash
# The main job on a built-in demo: build a VM disk's snapshot chain with
# qemu-img/qemu-io (raw-like base, compressed and zero clusters, several
# snapshots), clone the disk as it was at a middle snapshot, and check the
# result against qemu's own reading of the same chain.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/deps.sh"
echo "Building clonekit..."
BUILD_DIR="$root/build" bash "$root/scripts/build.sh"
ck="$root/build/tools/clonekit"

demo=${DEMO_DIR:-$root/demo}
rm -rf "$demo"; mkdir -p "$demo/images" "$demo/clones"
cd "$demo/images"
now() { date +%s.%N; }
secs() { printf '%.2f' "$(echo "$2 - $1" | bc 2>/dev/null || python3 -c "print($2 - $1)")"; }

echo
echo "1. A VM disk with three snapshots (1 GiB virtual, qcow2 backing chain):"
qemu-img create -q -f qcow2 base.qcow2 1G
qemu-io -f qcow2 -c 'write -P 0x11 0 192M' -c 'write -c -P 0x12 256M 64M' base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 snap1.qcow2
qemu-io -f qcow2 -c 'write -P 0x21 64M 32M' -c 'write -z 128M 16M' -c 'write -c -P 0x22 512M 16M' snap1.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o compression_type=zstd -b snap1.qcow2 -F qcow2 snap2.qcow2
qemu-io -f qcow2 -c 'write -P 0x31 32M 8M' -c 'write -c -P 0x32 600M 32M' -c 'write -z 270M 4M' snap2.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b snap2.qcow2 -F qcow2 active.qcow2
qemu-io -f qcow2 -c 'write -P 0x41 0 300M' active.qcow2 >/dev/null
"$ck" info --backing-chain active.qcow2 | grep -E '^(image|virtual size|disk size|backing file):' | sed 's/^/   /'

echo
echo "2. Where the disk's bytes come from at snapshot 'snap2' (clonekit map):"
"$ck" map snap2.qcow2 | sed 's/^/   /' | head -14

echo
echo "3. Clone the disk as it was at snap2 (base <- snap1 <- snap2 collapsed):"
t0=$(now); "$ck" collapse snap2.qcow2 ../clones/vm-clone.raw; t1=$(now)
echo "   raw   -> clones/vm-clone.raw    in $(secs "$t0" "$t1") s (sparse: $(du -h ../clones/vm-clone.raw | cut -f1) used of 1 GiB)"
t0=$(now); "$ck" collapse -O qcow2 -c snap2.qcow2 ../clones/vm-clone.qcow2; t1=$(now)
echo "   qcow2 -> clones/vm-clone.qcow2  in $(secs "$t0" "$t1") s (zstd-compressed, $(du -h ../clones/vm-clone.qcow2 | cut -f1))"
t0=$(now); qemu-img convert -O raw snap2.qcow2 ../clones/qemu-reference.raw; sync ../clones/qemu-reference.raw; t1=$(now)
echo "   (qemu-img convert -O raw of the same snapshot, for reference: $(secs "$t0" "$t1") s)"

echo
echo "4. Verify against qemu's own reading of snap2:"
ok=1
if cmp -s ../clones/vm-clone.raw ../clones/qemu-reference.raw; then
  echo "   raw clone is byte-identical to qemu-img convert -O raw           ok"
else echo "   raw clone differs from qemu's reading                            FAILED"; ok=0; fi
if qemu-img check -q ../clones/vm-clone.qcow2 && qemu-img compare -q -F qcow2 snap2.qcow2 ../clones/vm-clone.qcow2; then
  echo "   qcow2 clone passes qemu-img check and qemu-img compare            ok"
else echo "   qcow2 clone failed qemu-img check/compare                        FAILED"; ok=0; fi
if [ -z "$(qemu-img info --output=json ../clones/vm-clone.qcow2 | grep backing)" ]; then
  echo "   qcow2 clone is standalone (no backing file)                       ok"
else echo "   qcow2 clone has a backing file                                   FAILED"; ok=0; fi
if qemu-img compare -q -F qcow2 active.qcow2 ../clones/vm-clone.qcow2 2>/dev/null; then
  echo "   the clone unexpectedly contains writes made after snap2          FAILED"; ok=0
else
  echo "   writes made after snap2 (active layer) are not in the clone       ok"
fi
rm -f ../clones/qemu-reference.raw

echo
echo "5. The same as a VM clone through the manager (clonekit serve + its CLI):"
port=$((20000 + RANDOM % 20000))
export CLONEKIT_SOCKET=$demo/api.sock  # the CLI's door (root); TCP would need $demo/token
"$ck" serve --db "$demo/state.db" --port "$port" --socket "$demo/api.sock" 2>"$demo/serve.log" &
svc=$!
trap 'kill $svc 2>/dev/null' EXIT
for _ in $(seq 1 100); do "$ck" pool list >/dev/null 2>&1 && break; sleep 0.05; done
mkdir -p "$demo/vms"
qemu-img create -q -f qcow2 "$demo/vms/web-root.qcow2" 256M
qemu-img create -q -f qcow2 "$demo/vms/web-data.qcow2" 128M
qemu-io -f qcow2 -c 'write -P 0x51 0 64M' "$demo/vms/web-root.qcow2" >/dev/null
qemu-io -f qcow2 -c 'write -P 0x52 0 32M' "$demo/vms/web-data.qcow2" >/dev/null
run() { echo "   \$ clonekit $*"; "$ck" "$@" | sed 's/^/     /'; }
run pool add vms "$demo/vms"
run vm import web "$demo/vms/web-root.qcow2" "$demo/vms/web-data.qcow2"
run snapshot create web before-upgrade
qemu-io -f qcow2 -c 'write -P 0x53 0 16M' "$demo/vms/web-vda-before-upgrade.qcow2" >/dev/null
echo "     (the VM keeps writing: 16 MiB into its disk after the snapshot)"
run vm clone web --snapshot before-upgrade --name web-test --wait
run vm list
clone_root=$("$ck" vm show web-test | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["file"])')
clone_data=$("$ck" vm show web-test | python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][1]["file"])')
if qemu-img compare -q "$demo/vms/web-root.qcow2" "$clone_root" && qemu-img compare -q "$demo/vms/web-data.qcow2" "$clone_data"; then
  echo "   both disks of web-test equal qemu's reading of the snapshot      ok"
else echo "   the clone's disks differ from the snapshot                     FAILED"; ok=0; fi
kill $svc; wait $svc 2>/dev/null || true
trap - EXIT
echo
if [ $ok -eq 1 ]; then echo "Demo passed. Files are in $demo."; else echo "Demo FAILED."; exit 1; fi
