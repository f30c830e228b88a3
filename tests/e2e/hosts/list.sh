#!/usr/bin/env bash
# `host add` and `host list`: the implicit host 'local' and an added one,
# each with what its libvirt says (checked against virsh) and the free
# space of each pool (checked against df).
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/hosts/lib.sh"
command -v virsh >/dev/null || { echo "SKIP: virsh (libvirt-clients) missing"; exit 77; }
mkdir pool
start_service
ck pool add main "$WORK/pool" >/dev/null

check "with no --hypervisor, 'local' says it has none" \
  [ "$(ck host list --json | jq_ "d[0]['name'], d[0]['reachable'], d[0]['error']")" = \
    "local False no hypervisor is configured (serve --hypervisor URI)" ]
check "host add t2 test:///default" ck host add t2 test:///default
want=$(virsh -c test:///default version | sed -n 's/^Using library: libvirt //p')
check "t2 is reachable, with the libvirt version virsh reports ($want)" \
  [ "$(ck host list --json | jq_ "d[1]['name'], d[1]['reachable'], d[1]['libvirt_version']")" = "t2 True $want" ]
check "... and the host name libvirt's test driver gives" \
  [ "$(ck host list --json | jq_ "d[1]['hostname']")" = "$(virsh -c test:///default hostname)" ]
# Free space moves a little between two readings: within 1 %.
read -r avail size < <(df -B1 --output=avail,size "$WORK/pool" | tail -1)
got=$(ck host list --json | jq_ "d[0]['pools'][0]['name'], d[0]['pools'][0]['free_bytes'], d[0]['pools'][0]['size_bytes']")
within() { python3 -c "import sys; a, b = int(sys.argv[1]), int(sys.argv[2]); sys.exit(0 if abs(a - b) <= b // 100 else 1)" "$1" "$2"; }
check "pool main's free space is df's ($avail bytes)" within "$(echo "$got" | cut -d' ' -f2)" "$avail"
check "pool main's size is df's ($size bytes)" [ "$(echo "$got" | cut -d' ' -f3)" = "$size" ]
check "the table names both hosts" bash -c "'$CLONEKIT' host list | grep -q '^t2 .*reachable, libvirt $want'"
check "a second host with the same URI is refused" one_line_error "test:///default is host 't2'" ck host add t3 test:///default
check "host remove t2" ck host remove t2
check "t2 is gone" [ "$(ck host list --json | jq_ "len(d)")" = 1 ]
check "removing it again: not found" one_line_error "no host 't2'" ck host remove t2
stop() { kill "$SVC"; wait "$SVC" 2>/dev/null || true; }
stop
check "service log has no crash" sanitizer_clean serve.log
finish
