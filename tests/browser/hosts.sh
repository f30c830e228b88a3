#!/usr/bin/env bash
# The console with two hosts (issue #16): the Host column and filter, and a
# clone made on host h2 from the Clone dialog (the host chosen there, its
# pools offered, only a full copy), and the Clone dialog of that VM on h2
# (a full copy only, made there). Hosts are network namespaces as in
# tests/e2e/hosts/ (h2 runs its own libvirtd + qemu and sshd); the service
# and chromium run in the manager's namespace. The clone's disk is checked
# against qemu's reading of the source on h2.
BROWSER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$BROWSER_DIR/../e2e/lib.sh"
source "$BROWSER_DIR/../e2e/hosts/netns.sh"
: "${WEB_DIR:=}"
[ -n "$WEB_DIR" ] && [ -f "$WEB_DIR/index.html" ] || { echo "FAIL - the web console is not built: npm ci in web/ (scripts/deps.sh), then rebuild"; exit 1; }
export NODE_PATH=$BROWSER_DIR/../../web/node_modules
node "$BROWSER_DIR/hosts.mjs" --probe || { echo "SKIP: chromium cannot start here"; exit 77; }
with_h2 --web "$WEB_DIR"
qemu-img create -q -f qcow2 pool/v1.qcow2 32M
qio pool/v1.qcow2 'write -P 0x61 0 6M' 'write -P 0x62 20M 2M'
ck vm import v1 "$WORK/pool/v1.qcow2" >/dev/null
ck snapshot create v1 s1 >/dev/null
qio pool/v1-vda-s1.qcow2 'write -P 0x63 0 1M'
qemu-img convert -O raw pool/v1.qcow2 want.raw
in_mgr env URL="http://127.0.0.1:$SVC_PORT/" TOKEN="$(cat "$WORK/token")" NODE_PATH="$NODE_PATH" \
  SCREENSHOTS="${SCREENSHOTS:-}" node "$BROWSER_DIR/hosts.mjs" && st=0 || st=$?
OUT=$(ck job list --json | jq_ "[j['outputs'][0] for j in d if j['clone_name'] == 'c1'][0]")
check "the clone's disk on h2 ($OUT) equals qemu's reading of s1" \
  on_host h2 qemu-img compare -U -f raw -F qcow2 "$WORK/want.raw" "$OUT"
stop_svc
check "service log has no crash" sanitizer_clean serve.log
[ "$st" = 0 ] && finish
