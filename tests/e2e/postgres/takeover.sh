#!/usr/bin/env bash
# Two services on one PostgreSQL: one active, one standby. kill -9 of the
# active one mid-clone: the standby takes over within 10 s, fails the job
# as interrupted, removes its partial image and clone entry, restarts the
# source the job had shut down, and serves the API (and clones).
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/postgres/lib.sh"
start_postgres

PORT_A=$(free_port) PORT_B=$(free_port)
export TOKEN_FILE=$WORK/token
# serve NAME PORT: a service with its own port and socket, the same token.
serve() {
  "$CLONEKIT" serve --db "$PG_URL" --token-file "$TOKEN_FILE" --port "$2" --socket "$WORK/$1.sock" \
    --hypervisor test:///default --shutdown-timeout 3 --copy-rate 8M >/dev/null 2>>"$1.log" &
}
health() { python3 "$E2E_DIR/http_req.py" --timeout 2 --tcp "127.0.0.1:$1" --token-file "$TOKEN_FILE" GET /api/v1/health 2>/dev/null | grep -q '^200 '; }
not() { ! "$@"; }
ck() { CLONEKIT_SOCKET=$WORK/$1.sock "$CLONEKIT" "${@:2}"; }
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
job_field() { ck "$1" job show "$2" | jq_ "d['$3']"; }

serve a "$PORT_A"; A=$!; cleanup_fns+=("kill -9 $A 2>/dev/null")
for _ in $(seq 1 100); do health "$PORT_A" && break; sleep 0.1; done
serve b "$PORT_B"; B=$!; cleanup_fns+=("kill -9 $B 2>/dev/null")
for _ in $(seq 1 100); do grep -q standby b.log 2>/dev/null && break; sleep 0.1; done
check "A is active and serves" health "$PORT_A"
check "B says it is a standby" grep -q "clonekit: standby: another clonekit service is active on $PG_URL" b.log
check "B does not serve" not health "$PORT_B"

mkdir pool
ck a pool add main "$WORK/pool" >/dev/null
qemu-img create -q -f qcow2 pool/vm1-vda.qcow2 64M
qio pool/vm1-vda.qcow2 'write -P 0x5a 0 48M'
cat > vm1.xml <<XML
<domain type='test'><name>vm1</name><memory unit='MiB'>128</memory><os><type arch='x86_64'>hvm</type></os>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$WORK/pool/vm1-vda.qcow2'/><target dev='vda' bus='virtio'/></disk></devices>
</domain>
XML
ck a vm define vm1.xml >/dev/null
ck a vm start vm1 >/dev/null
check "the source runs" [ "$(ck a vm show vm1 | jq_ "d['status']")" = running ]

# A reader of A's change feed, as the console is: the number of the last
# event it saw.
last_event() {  # last_event PORT: the id of the newest event, waiting up to 2 s for one
  python3 - "$1" "$TOKEN_FILE" <<'PY'
import http.client, sys
port, token = sys.argv[1], open(sys.argv[2]).read().strip()
c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=2)
c.request("GET", "/api/v1/events?after=0", headers={"Authorization": "Bearer " + token})
r = c.getresponse()
last = ""
try:
    while True:
        line = r.fp.readline().decode()
        if not line: break
        if line.startswith("id: "): last = line[4:].strip()
except Exception:
    pass
print(last)
PY
}
seen=$(last_event "$PORT_A")
check "A's feed numbers its events" [ -n "$seen" ]

# A clone of its current state shuts the source down and copies (48 MiB at
# 8 MiB/s: ~6 s); kill -9 of A a second into the copy.
j=$(ck a vm clone vm1 --name moved --no-start --json | jq_ "d['id']")
for _ in $(seq 1 100); do [ "$(job_field a "$j" state)" = running ] && [ -n "$(find pool -name '.moved*')" ] && break; sleep 0.1; done
sleep 1
check "the copy is under way (a partial image exists)" [ -n "$(find pool -name '.moved*')" ]
# A client given both addresses follows the job across the takeover.
CLONEKIT_SERVER=127.0.0.1:$PORT_A,127.0.0.1:$PORT_B CLONEKIT_TOKEN_FILE=$TOKEN_FILE \
  "$CLONEKIT" job wait "$j" >waiter.out 2>&1 &
waiter=$!
sleep 0.5
kill -9 "$A"; wait "$A" 2>/dev/null || true
killed=$(date +%s%N)
for _ in $(seq 1 200); do health "$PORT_B" && break; sleep 0.05; done
took=$(( ($(date +%s%N) - killed) / 1000000 ))
echo "# the standby served $took ms after the kill"
check "B serves within 10 s of the kill ($took ms)" [ "$took" -lt 10000 ]
wait "$waiter" && st=0 || st=$?
check "a 'job wait' given both addresses saw the job end on B (exit 1)" [ "$st" -eq 1 ]
check "... and printed why" grep -q "interrupted" waiter.out
check "B says it took over" grep -q "clonekit: active: took over $PG_URL" b.log
check "the job is failed as interrupted" [ "$(job_field b "$j" state)" = failed ]
check "its error says why" grep -q 'interrupted: the service stopped during the clone' <<<"$(job_field b "$j" error)"
check "no clone entry" not ck b vm show moved
check "no partial image" test -z "$(find pool -name '*moved*')"
check "the source runs again" [ "$(ck b vm show vm1 | jq_ "d['status']")" = running ]

# The console reconnects to B with the last number A gave it: it must get
# B's events, not wait for B's numbers to catch up with A's.
mkdir pool2
( sleep 0.5; ck b pool add second "$WORK/pool2" >/dev/null 2>&1 || true ) &
events=$(python3 - "$PORT_B" "$TOKEN_FILE" "$seen" <<'PY'
import http.client, sys
port, token, after = sys.argv[1], open(sys.argv[2]).read().strip(), sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
c.request("GET", "/api/v1/events?after=" + after, headers={"Authorization": "Bearer " + token})
r = c.getresponse()
try:
    while True:
        line = r.fp.readline().decode()
        if line.startswith("event: "):
            print(line[7:].strip()); break
except Exception:
    pass
PY
)
check "a reader with A's last event number gets B's events" [ -n "$events" ]

# B clones as A did.
check "B clones from the same state" ck b vm clone vm1 --name moved --no-start --wait
check "the clone equals the source" qemu-img compare -q pool/vm1-vda.qcow2 "$(ck b vm show moved | jq_ "d['disks'][0]['file']")"
check "the job history is one: the first job is there too" [ "$(ck b job list --json | jq_ "len(d)")" -ge 2 ]
check "no crash in A's log" sanitizer_clean a.log
check "no crash in B's log" sanitizer_clean b.log
finish
