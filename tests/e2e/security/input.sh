#!/usr/bin/env bash
# Class 5, bad and heavy input: wrong JSON types are a 400 naming the field
# (generalize's items too);
# a clone name is required when given; imports are bounded; a body over
# 1 MiB is refused; event streams do not hold API workers; a second service
# cannot share the port nor remove the first one's socket; at most
# --max-clones copies run, later ones are queued (cancellable) up to a
# limit, then 429; a queued one starts when a slot frees.
source "$(dirname "$0")/lib.sh"
start_service --max-clones 1 --max-queued 1 --copy-rate 2M
ck pool add main "$WORK/pool" >/dev/null
qemu-img create -q -f qcow2 pool/src.qcow2 64M
qio pool/src.qcow2 'write -P 0x44 0 16M'
check "VM src" status_is 201 "$(define "$(domain_xml src "$(disk_xml "$WORK/pool/src.qcow2")")")"
id=$(unix GET '/api/v1/vms?name=src' | cut -d' ' -f2- | jq_ "d['id']")

check "clone with \"name\": \"\" is refused (required)" status_is 400 "$(unix POST /api/v1/vms/$id/clone '{"name":""}')" "field 'name': is required"
check "clone with a numeric name: 400 naming the field" status_is 400 "$(unix POST /api/v1/vms/$id/clone '{"name":5}')" "field 'name': must be a string"
check "start must be a boolean" status_is 400 "$(unix POST /api/v1/vms/$id/clone '{"start":"yes"}')" "field 'start'"
check "disks must be an object" status_is 400 "$(unix POST /api/v1/vms/$id/clone '{"disks":[1]}')" "field 'disks'"
check "a disk's pool must be a string" status_is 400 "$(unix POST /api/v1/vms/$id/clone '{"disks":{"vda":{"pool":1}}}')" "field 'disks.vda.pool'"
check "generalize: a key naming two items is not an item (it crashed the service)" \
  status_is 400 "$(unix POST /api/v1/vms/$id/clone '{"generalize":{"tpm,none":true}}')" "field 'generalize.tpm,none': is not an item"
check "generalize: a key \"default\" is not an item" \
  status_is 400 "$(unix POST /api/v1/vms/$id/clone '{"generalize":{"default":true}}')" "field 'generalize.default'"
check "generalize: an item's value must be a boolean" \
  status_is 400 "$(unix POST /api/v1/vms/$id/clone '{"generalize":{"tpm":"yes"}}')" "field 'generalize.tpm': must be true or false"
check "generalize: an unknown item in the spelling is named" \
  status_is 400 "$(unix POST /api/v1/vms/$id/clone '{"generalize":"default,-sysprep"}')" "unknown item 'sysprep'"
check "generalize: a number is refused" status_is 400 "$(unix POST /api/v1/vms/$id/clone '{"generalize":5}')" "field 'generalize'"
check "the service still answers" status_is 200 "$(unix GET /api/v1/vms)"
check "stop's force must be a boolean" status_is 400 "$(unix POST /api/v1/vms/$id/stop '{"force":1}')" "field 'force'"
check "define's xml must be a string" status_is 400 "$(unix POST /api/v1/vms '{"xml":["x"]}')" "field 'xml'"
check "nothing was cloned" [ "$(vm_count)" = 1 ]

for i in $(seq 1 65); do qemu-img create -q -f qcow2 "pool/d$i.qcow2" 1M; done
disks() { for i in $(seq 1 "$1"); do printf '"%s/pool/d%d.qcow2",' "$WORK" "$i"; done | sed 's/,$//'; }
check "import with 32 disks works (targets vda..vdaf)" status_is 201 "$(unix POST /api/v1/vms/import "{\"name\":\"many\",\"disks\":[$(disks 32)]}")" '"target": "vdaf"'
check "import with 65 disks is refused" status_is 400 "$(unix POST /api/v1/vms/import "{\"name\":\"more\",\"disks\":[$(disks 65)]}")" "at most 64"
head -c $((64 << 20)) /dev/zero | tr '\0' 'a' > big.json
rss() { awk '/^VmHWM/ {print $2}' /proc/$SVC/status; }  # peak resident
before=$(rss)
check "a 64 MiB body is refused (413)" status_is 413 "$($REQ --unix "$SOCK" --body-file big.json POST /api/v1/vms)"
after=$(rss)
# Growth, not size: a sanitizer build starts far larger.
check "... without reading it into memory (peak grew $(( (after - before) / 1024 )) MiB < 16)" [ $((after - before)) -lt 16384 ]

# 100 open event streams, then health over TCP in under a second.
python3 - "$SOCK" <<'PY' &
import socket, sys, time
socks = []
for _ in range(100):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
    s.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n"); socks.append(s)
time.sleep(4)
PY
streams=$!
sleep 1
t0=$(date +%s%N); r=$(tcp --timeout 5 GET /api/v1/health); t1=$(date +%s%N)
check "with 100 event streams open, health answers in < 1 s ($(( (t1 - t0) / 1000000 )) ms)" \
  bash -c "[ '${r%% *}' = 200 ] && [ $(( (t1 - t0) / 1000000 )) -lt 1000 ]"
wait $streams

# Admission: one copy at a time, one queued, then 429.
j1=$(ck vm clone src --name c1 --no-start --json | jq_ "d['id']")
j2=$(ck vm clone src --name c2 --no-start --json | jq_ "d['id']")
check "the first clone runs" [ "$(job_state "$j1")" = running ]
check "the second is queued, first in line" [ "$(ck job show "$j2" | jq_ "d['state'], d['queue_position']" | tr '\n' ' ')" = "queued 1 " ]
check "... and the VM list says so" [ "$(ck vm show c2 | jq_ "d['status'], d['queued']" | tr '\n' ' ')" = "cloning True " ]
r=$(unix POST /api/v1/vms/$id/clone '{"name":"c3"}')
check "a third is refused: 429" status_is 429 "$r" "try again later"
check "cancel the queued clone" ck job cancel "$j2"
check "... cancelled, its entry and reserved files gone" \
  bash -c "[ \"\$('$CLONEKIT' job show $j2 | grep -c '\"cancelled\"')\" -ge 1 ] && ! ls '$WORK/pool' | grep -q '^c2-'"
wait_end "$j1"
check "the running clone finished" [ "$(job_state "$j1")" = succeeded ]
# The queued job starts when the running one ends (that thread, ending,
# joined itself and the service died).
qemu-img create -q -f qcow2 pool/small.qcow2 4M
check "VM small" status_is 201 "$(define "$(domain_xml small "$(disk_xml "$WORK/pool/small.qcow2")")")"
j3=$(ck vm clone src --name c3 --no-start --json | jq_ "d['id']")
j4=$(ck vm clone small --name c4 --no-start --json | jq_ "d['id']")
check "a clone queued behind a running one" [ "$(job_state "$j4")" = queued ]
wait_end "$j3"; wait_end "$j4"
check "... starts when that one ends; both succeed" [ "$(job_state "$j3") $(job_state "$j4")" = "succeeded succeeded" ]
check "... and the service still answers" status_is 200 "$(unix GET /api/v1/health)"

# A second service on the same port: refused; the first keeps its socket.
# (Bounded: were the first service gone, the second would serve.)
err=$(timeout 20 "$CLONEKIT" serve --db "$WORK/other.db" --port "$PORT" --socket "$WORK/other.sock" 2>&1) && st=0 || st=$?
check "a second service cannot bind the same port (no SO_REUSEPORT)" one_line_error "cannot listen"
err=$(timeout 20 "$CLONEKIT" serve --db "$WORK/other.db" --port "$(free_port)" --socket "$SOCK" 2>&1) && st=0 || st=$?
check "nor take a live socket" one_line_error "another clonekit service is listening here"
check "... the first service's socket is still there and answers" status_is 200 "$(unix GET /api/v1/health)"
stop_service
check "service log has no crash" sanitizer_clean serve.log
finish
