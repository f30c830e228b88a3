#!/usr/bin/env bash
# The manager end to end: the real service (clonekit serve) on a real SQLite
# file, libvirt's test:///default hypervisor, chains built with qemu-img.
# Clone from a snapshot with two disks (each new disk equal to qemu's reading
# of the snapshot), defaults and validation, the source locked while copied,
# cancel at start / middle / near the end, a running source shut down and
# restarted, a failing copy, kill -9 of the service and recovery, and
# several clones at once with clients polling.
source "$(dirname "$0")/lib.sh"
command -v virt-xml-validate >/dev/null || { echo "SKIP: virt-xml-validate (libvirt-clients) missing"; exit 77; }

PORT=$(free_port)
PORT2=$(free_port)  # (a second service, refused or waiting)
# The CLI goes over the Unix socket (its default door); api() below over
# TCP with the token the service made beside its database.
SERVER=127.0.0.1:$PORT
export SERVER CLONEKIT_SOCKET=$WORK/api.sock TOKEN_FILE=$WORK/token
# The state: a SQLite file, or (CLONEKIT_TEST_POSTGRES=1) a private
# PostgreSQL: every step below runs the same on both.
DB=$WORK/state.db
if [ -n "${CLONEKIT_TEST_POSTGRES:-}" ]; then
  source "$E2E_DIR/postgres/lib.sh"
  start_postgres
  DB=$PG_URL
fi
start_service() {  # start_service [serve options]
  "$CLONEKIT" serve --db "$DB" --token-file "$WORK/token" --port "$PORT" --socket "$WORK/api.sock" --hypervisor test:///default \
    --shutdown-timeout 3 "$@" \
    2>>serve.log &
  SVC=$!
  cleanup_fns+=("kill -9 $SVC 2>/dev/null")
  for _ in $(seq 1 100); do api GET /api/v1/health 2>/dev/null | grep -qE '^(200|401) ' && return 0; sleep 0.05; done
  echo "service did not start"; cat serve.log; return 1
}
stop_service() { kill "$SVC"; wait "$SVC" 2>/dev/null || true; }
# api METHOD PATH [JSON]: prints "STATUS BODY" (python, no curl needed).
api() {
  python3 - "$@" <<'PY'
import json, os, sys, urllib.request, urllib.error
method, path = sys.argv[1], sys.argv[2]
data = sys.argv[3].encode() if len(sys.argv) > 3 else None
token = open(os.environ["TOKEN_FILE"]).read().strip()
req = urllib.request.Request(f"http://{os.environ['SERVER']}{path}", data=data, method=method,
                             headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
try:
    with urllib.request.urlopen(req) as r:
        print(r.status, r.read().decode().replace("\n", " "))
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode().replace("\n", " "))
PY
}
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
job_field() { ck job show "$1" | jq_ "d['$2']"; }
wait_percent() {  # wait_percent JOB PCT: until the job passed PCT % (or ended)
  for _ in $(seq 1 600); do
    [ "$(job_field "$1" state)" != running ] && return 0
    python3 -c "import sys; sys.exit(0 if $(job_field "$1" percent) >= $2 else 1)" && return 0
    sleep 0.05
  done
}
wait_end() { for _ in $(seq 1 1200); do [ "$(job_field "$1" state)" != running ] && return 0; sleep 0.05; done; }
no_partials() {  # no temporary or stray clone images in the pools
  [ -z "$(find pool pool2 -name '.*.clonekit-*' 2>/dev/null)" ] &&
  [ -z "$(find pool pool2 -name "$1*" 2>/dev/null)" ]
}
sources_sum() { sha256sum pool/vm1-vd*.qcow2 | sha256sum; }
vm_absent() { [ "$(api GET "/api/v1/vms?name=$1" | cut -d' ' -f1)" = 404 ]; }
gone_cleanly() { vm_absent "$1" && no_partials "$1"; }
job_failed_with() { [ "$(job_field "$1" state)" = failed ] && [[ "$(job_field "$1" error)" == *"$2"* ]]; }
vm_field() { ck vm show "$1" | jq_ "d$2"; }

mkdir pool pool2
start_service
check "pools are added" ck pool add main "$WORK/pool"
ck pool add second "$WORK/pool2" >/dev/null

# A VM with two disks; snapshot s1, more writes, snapshot s2, more writes.
qemu-img create -q -f qcow2 pool/vm1-vda.qcow2 64M
qemu-img create -q -f qcow2 pool/vm1-vdb.qcow2 48M
qio pool/vm1-vda.qcow2 'write -P 0x11 0 12M' 'write -c -P 0x12 20M 2M'
qio pool/vm1-vdb.qcow2 'write -P 0x21 1M 10M' 'write -z 2M 1M'
cat > vm1.xml <<XML
<domain type='test'>
  <name>vm1</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <memory unit='MiB'>128</memory>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$WORK/pool/vm1-vda.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$WORK/pool/vm1-vdb.qcow2'/><target dev='vdb' bus='virtio'/></disk>
    <interface type='network'><mac address='52:54:00:11:22:33'/><source network='default'/><target dev='vnet7'/></interface>
    <graphics type='vnc' port='5901' autoport='no'/>
  </devices>
</domain>
XML
check "vm define" ck vm define vm1.xml
check "snapshot s1" ck snapshot create vm1 s1
qio pool/vm1-vda-s1.qcow2 'write -P 0x13 4M 4M' 'write -z 8M 1M'
qio pool/vm1-vdb-s1.qcow2 'write -P 0x22 0 2M'
check "snapshot s2" ck snapshot create vm1 s2
qio pool/vm1-vda-s2.qcow2 'write -P 0x14 0 1M'
check "two snapshots listed" [ "$(ck snapshot list vm1 | awk '{print $1}' | tr '\n' ' ')" = "s1 s2 " ]
read_only() { [ "$(stat -c %a "$1")" = 444 ]; }
check "snapshot points are read-only (mode 444)" read_only pool/vm1-vda.qcow2

# 1. Defaults (configuration by snapshot).
defaults=$(api GET "/api/v1/vms/1/clone-defaults?snapshot=s1" | cut -d' ' -f2-)
check "defaults: name vm1-clone, namespace default, start on" \
  [ "$(echo "$defaults" | jq_ "d['name'], d['namespace'], d['start']")" = "vm1-clone default True" ]
check "defaults: the configuration at s1 points at the s1 layers" \
  [ "$(echo "$defaults" | jq_ "' '.join(x['source'].split('/')[-1] for x in d['disks'])")" = "vm1-vda.qcow2 vm1-vdb.qcow2" ]
check "defaults: each disk on its source's pool, same format" \
  [ "$(echo "$defaults" | jq_ "' '.join(x['pool'] + ':' + x['format'] for x in d['disks'])")" = "main:qcow2 main:qcow2" ]

# 2. The full flow from s1, vdb as raw on the second pool.
before=$(sources_sum)
check "clone from s1 (--wait) succeeds" ck vm clone vm1 --snapshot s1 --disk vdb=pool:second,format:raw --wait
clone_json=$(ck vm show vm1-clone)
vda=$(echo "$clone_json" | jq_ "d['disks'][0]['file']"); vdb=$(echo "$clone_json" | jq_ "d['disks'][1]['file']")
check "vda equals qemu's reading of snapshot s1" qemu-img compare -q pool/vm1-vda.qcow2 "$vda"
on_pool2_raw() { [[ "$1" == "$WORK"/pool2/*.raw ]]; }
check "vdb is raw on pool second" on_pool2_raw "$vdb"
check "vdb equals qemu's reading of s1" qemu-img compare -q -F raw pool/vm1-vdb.qcow2 "$vdb"
echo "$clone_json" | jq_ "d['xml']" > clone.xml
check "the clone's XML validates (virt-xml-validate)" virt-xml-validate clone.xml domain
new_identity() {
  echo "$clone_json" | python3 -c "
import json, sys; d = json.load(sys.stdin)
assert d['name'] == 'vm1-clone' and d['uuid'] != '11111111-2222-3333-4444-555555555555', d
assert d['macs'] and d['macs'][0] != '52:54:00:11:22:33', d['macs']"
}
check "new identity: name, UUID, MAC" new_identity
host_bits_cleared() { grep -q 'autoport="yes"' clone.xml && ! grep -q 'port="5901"' clone.xml && ! grep -q vnet7 clone.xml; }
check "host bits cleared: graphics autoport, no tap name" host_bits_cleared
check "the clone was started (start after clone)" [ "$(echo "$clone_json" | jq_ "d['power']")" = running ]
check "the source chain is untouched" [ "$(sources_sum)" = "$before" ]
check "next default name is vm1-clone-2" \
  [ "$(api GET /api/v1/vms/1/clone-defaults | cut -d' ' -f2- | jq_ "d['name']")" = vm1-clone-2 ]

# 3. Validation errors: HTTP codes and one-line CLI errors.
code() { api POST /api/v1/vms/1/clone "$1" | cut -d' ' -f1; }
check "bad name -> 400" [ "$(code '{"name": "bad name!"}')" = 400 ]
check "name in use -> 409" [ "$(code '{"name": "vm1-clone"}')" = 409 ]
check "unknown pool -> 400" [ "$(code '{"name": "x1", "disks": {"vda": {"pool": "nope"}}}')" = 400 ]
check "bad format -> 400" [ "$(code '{"name": "x2", "disks": {"vda": {"format": "vmdk"}}}')" = 400 ]
check "unknown snapshot -> 404" [ "$(code '{"name": "x3", "snapshot": "nope"}')" = 404 ]
check "bad namespace -> 400" [ "$(code '{"name": "x4", "namespace": "Bad_NS"}')" = 400 ]
err=$(ck vm clone vm1 --name 'bad name!' 2>&1) && st=0 || st=$?
one_line_error() { [ "$st" = 1 ] && [ "$(wc -l <<<"$err")" = 1 ] && [[ "$err" == *"$1"* ]]; }
check "CLI: one-line error, exit 1" one_line_error "not valid"
check "no clone entries from refused requests" [ "$(ck vm list --json | jq_ 'len(d)')" = 2 ]

# Copies are throttled from here on so that the test can act mid-copy, at
# a rate set by this machine's pace: how long a CLI call and its JSON read
# take (a sanitizer build's are several times slower, and a fixed rate let
# its copies end before the checks).
t0=$(date +%s%N)
for _ in 1 2 3 4 5; do ck vm show vm1 | jq_ "d['status']" >/dev/null; done
pace_ms=$(( ($(date +%s%N) - t0) / 5000000 ))
echo "# pace: ${pace_ms} ms per CLI call"
rate_for() {  # rate_for CALLS MAX: bytes/s at which vda (13 MiB) outlasts CALLS calls, at most MAX
  python3 -c "print(max(64 << 10, min($2, (13 << 20) * 1000 // ($1 * max($pace_ms, 1)))))"
}

# 4. Locked while its current state is copied (ten CLI calls mid-copy);
# a clone from a snapshot only keeps it from being deleted.
stop_service
start_service --copy-rate "$(rate_for 24 $((2 << 20)))"
job=$(ck vm clone vm1 --name locked-clone --no-start --json | jq_ "d['id']")
wait_percent "$job" 5
check "while cloning: the source is locked" [ "$(ck vm show vm1 | jq_ "d['status']")" = locked ]
check "while cloning: the clone shows cloning with a percent" \
  [ "$(ck vm show locked-clone | jq_ "d['status'] + ' ' + str(d['percent'] > 0)")" = "cloning True" ]
err=$(ck vm start vm1 2>&1) && st=0 || st=$?
check "while cloning: run is refused with a clear error" one_line_error locked
err=$(ck vm delete vm1 2>&1) && st=0 || st=$?
check "while cloning: delete is refused" one_line_error locked
check "while cloning: editing the source is allowed" ck vm edit vm1 --description "edited during a clone"
err=$(ck vm delete locked-clone 2>&1) && st=0 || st=$?
check "while cloning: deleting the clone is refused" one_line_error "cancel its clone job"
err=$(ck vm clone locked-clone --name clone-of-a-clone 2>&1) && st=0 || st=$?
check "while cloning: the clone itself cannot be cloned yet" one_line_error "still being cloned"
job2=$(ck vm clone vm1 --snapshot s2 --name second-clone --no-start --json | jq_ "d['id']")
check "while cloning: a second clone of the source (from s2) starts" [ "$(job_field "$job2" state)" = running ]
locks=$(ck vm show vm1 | jq_ "(d['locked_by'], sorted(d['read_by']))")
echo "# vm1's locks: $locks (jobs $job, $job2)"
check "while cloning: locked by the clone of its current state, read by both" [ "$locks" = "([$job], [$job, $job2])" ]
# The change feed shows live progress.
events=$(timeout 3 python3 -c "
import urllib.request, os
r = urllib.request.urlopen(urllib.request.Request('http://' + os.environ['SERVER'] + '/api/v1/events',
    headers={'Authorization': 'Bearer ' + open(os.environ['TOKEN_FILE']).read().strip()}))
for line in r:
    print(line.decode().strip())
" 2>/dev/null || true)
check "the event stream carries job progress" [ "$(grep -c '^event: job' <<<"$events")" -ge 2 ]
wait_end "$job"; wait_end "$job2"
check "both clones succeed" [ "$(job_field "$job" state) $(job_field "$job2" state)" = "succeeded succeeded" ]
check "the edit is kept" [ "$(vm_field vm1 "['description']")" = "edited during a clone" ]
check "the clone from s2 is unaffected by the edit (equals qemu's s2)" \
  qemu-img compare -q pool/vm1-vda-s1.qcow2 "$(vm_field second-clone "['disks'][0]['file']")"
check "after the clones: the source is unlocked" [ "$(ck vm show vm1 | jq_ "d['status']")" = shutoff ]
check "progress reached 100 only at success" [ "$(job_field "$job" percent)" = 100.0 ]

# 5. Cancel at the start, in the middle and near the end: never a half state.
#    (The last 20 % must outlast the four calls that see 80 % and cancel.)
stop_service
start_service --copy-rate "$(rate_for 30 $((2 << 20)))"
for at in 0 45 80; do
  name=cancel-$at
  j=$(ck vm clone vm1 --snapshot s2 --name "$name" --no-start --json | jq_ "d['id']")
  [ "$at" = 0 ] || wait_percent "$j" "$at"
  reached=$(job_field "$j" percent)
  ck job cancel "$j" >/dev/null || true  # (it may just have ended: then the check below fails)
  wait_end "$j"
  check "cancel at ${reached}%: job cancelled" [ "$(job_field "$j" state)" = cancelled ]
  check "cancel at ${reached}%: no clone entry, no partial image" gone_cleanly "$name"
  check "cancel at ${reached}%: the source is unlocked" [ "$(ck vm show vm1 | jq_ "d['status']")" = shutoff ]
done

stop_service
start_service --copy-rate "$(rate_for 20 $((4 << 20)))"

# 6. A running source is shut down first and started again afterwards.
ck vm start vm1 >/dev/null
check "the source runs" [ "$(ck vm show vm1 | jq_ "d['power']")" = running ]
j=$(ck vm clone vm1 --name from-running --no-start --json | jq_ "d['id']")
wait_end "$j"
check "running source: clone succeeded, source was running" \
  [ "$(job_field "$j" state) $(job_field "$j" source_was_running)" = "succeeded True" ]
check "running source: started again after the clone" [ "$(ck vm show vm1 | jq_ "d['power']")" = running ]
# Two clones of a running source: the first to end must not start it while
# the second still reads its disks; the last, even cancelled, does.
a=$(ck vm clone vm1 --name run-a --no-start --json | jq_ "d['id']")
wait_percent "$a" 5
b=$(ck vm clone vm1 --name run-b --no-start --json | jq_ "d['id']")
wait_percent "$b" 5
ck job cancel "$a" >/dev/null; wait_end "$a"
power_status() { ck vm show vm1 | jq_ "d['power'] + ' ' + d['status']"; }
check "two clones of a running source: the first ends, the source stays off and locked" \
  [ "$(job_field "$b" state) $(power_status)" = "running shutoff locked" ]
ck job cancel "$b" >/dev/null; wait_end "$b"
check "the last clone ends (cancelled): the source runs again" [ "$(power_status)" = "running running" ]
ck vm stop vm1 >/dev/null

# 7. A clone that does not fit its pool is refused up front with the numbers
#    (the copy's own ENOSPC path is tests/e2e/nbd-dest.sh's): nothing made.
mkdir tiny
if mount -t tmpfs -o size=2M tmpfs tiny 2>/dev/null; then
  cleanup_fns+=("umount $WORK/tiny")
  ck pool add tiny "$WORK/tiny" >/dev/null
  err=$(ck vm clone vm1 --name full-clone --disk vda=pool:tiny,format:raw --no-start 2>&1) && st=0 || st=$?
  check "full pool: refused before anything starts, with the numbers" one_line_error "pool 'tiny': the clone needs 13.0 MiB but 2.0 MiB is free"
  check "full pool: the API says 507" [ "$(api POST /api/v1/vms/1/clone '{"name":"full-clone","disks":{"vda":{"pool":"tiny"}}}' | cut -d' ' -f1)" = 507 ]
  check "full pool: nothing in the full pool" [ -z "$(ls -A tiny)" ]
  check "full pool: no clone entry, no partial image anywhere" gone_cleanly full-clone
  check "full pool: the source is unlocked" [ "$(ck vm show vm1 | jq_ "d['status']")" = shutoff ]
else
  echo "note: cannot mount a tmpfs here; the full-pool case is not run"
fi

# 8. kill -9 of the service mid-clone, then restart: the job is failed with a
#    reason, its partial images removed, the source unlocked, the database sound.
j=$(ck vm clone vm1 --name killed-clone --no-start --json | jq_ "d['id']")
wait_percent "$j" 20
kill -9 "$SVC"; wait "$SVC" 2>/dev/null || true
check "after kill -9: a partial image was left behind (so recovery has work)" \
  [ -n "$(find pool pool2 -name '.killed-clone*.clonekit-*')" ]
start_service --copy-rate 6M
check "after restart: the job is failed as interrupted" job_failed_with "$j" interrupted
check "after restart: no clone entry, no partial image" gone_cleanly killed-clone
check "after restart: the source is not locked" [ "$(ck vm show vm1 | jq_ "d['status']")" = shutoff ]
check "after restart: PRAGMA integrity_check is ok" [ "$(api GET /api/v1/health | cut -d' ' -f2- | jq_ "d['integrity']")" = ok ]
stop_service

# 9. Several clones at once while clients poll: all succeed, no busy errors.
start_service
jobs=()
for n in 1 2 3; do jobs+=("$(ck vm clone vm1 --snapshot s$(( n % 2 + 1 )) --name par-$n --no-start --json | jq_ "d['id']")"); done
pollers=()
for p in 1 2 3 4; do
  ( for _ in $(seq 1 40); do ck vm list >/dev/null 2>>poll.err || echo fail >> poll.err; ck job list >/dev/null 2>>poll.err; done ) &
  pollers+=($!)
done
wait_end "${jobs[0]}"; wait_end "${jobs[1]}"; wait_end "${jobs[2]}"
wait "${pollers[@]}"
check "3 concurrent clones all succeed" \
  [ "$(for j in "${jobs[@]}"; do job_field "$j" state; done | sort -u)" = succeeded ]
check "pollers saw no errors (no SQLITE_BUSY)" [ ! -s poll.err ]
distinct_identities() {
  ck vm list --json | python3 -c "
import json, sys
vms = json.load(sys.stdin)
uuids = [v['uuid'] for v in vms]; macs = [m for v in vms for m in v.get('macs', [])]
assert len(set(uuids)) == len(uuids) and len(set(macs)) == len(macs), (uuids, macs)"
}
check "concurrent clones: distinct UUIDs and MACs across the inventory" distinct_identities
check "database integrity ok" [ "$(api GET /api/v1/health | cut -d' ' -f2- | jq_ "d['integrity']")" = ok ]
stop_service
# 10. Import existing chains (their lower layers become snapshots), clone
#     from an imported snapshot, delete a VM.
start_service
qemu-img create -q -f qcow2 pool/imp-a0.qcow2 16M; qio pool/imp-a0.qcow2 'write -P 0x71 0 2M'
qemu-img create -q -f qcow2 -b imp-a0.qcow2 -F qcow2 pool/imp-a1.qcow2; qio pool/imp-a1.qcow2 'write -P 0x72 1M 1M'
qemu-img create -q -f qcow2 pool/imp-b0.qcow2 8M; qio pool/imp-b0.qcow2 'write -P 0x73 0 1M'
qemu-img create -q -f qcow2 -b imp-b0.qcow2 -F qcow2 pool/imp-b1.qcow2; qio pool/imp-b1.qcow2 'write -P 0x74 0 4k'
check "import two chains" ck vm import imported "$WORK/pool/imp-a1.qcow2" "$WORK/pool/imp-b1.qcow2"
check "the base layers became snapshot imp-a0" [ "$(ck snapshot list imported | awk '{print $1}')" = imp-a0 ]
check "clone from the imported snapshot" ck vm clone imported --snapshot imp-a0 --no-start --wait
check "its disks are the base layers" \
  qemu-img compare -q pool/imp-b0.qcow2 "$(vm_field imported-clone "['disks'][1]['file']")"
check "a disk outside every pool is refused" bash -c "! '$CLONEKIT' vm import stray /etc/hostname 2>/dev/null"
check "delete a VM" ck vm delete imported-clone
check "deleted: gone from the list, its images kept" vm_absent imported-clone
stop_service

# 11. One service per database (access itself: tests/e2e/security/access.sh).
start_service
if [ -z "${CLONEKIT_TEST_POSTGRES:-}" ]; then
  err=$(timeout 10 "$CLONEKIT" serve --db "$DB" --port "$PORT2" --socket "" 2>&1) && st=0 || st=$?
  check "a second service on the same database is refused" one_line_error "state.db: another clonekit service is using this database"
else
  # On PostgreSQL a second service is a standby: it waits, and does not serve.
  timeout 3 "$CLONEKIT" serve --db "$DB" --port "$PORT2" --socket "" --token-file "$WORK/token" 2>standby.log && st=0 || st=$?
  check "a second service on the same database waits as a standby" \
    grep -q "standby: another clonekit service is active on postgresql://clonekit@127.0.0.1:$PG_PORT/clonekit" standby.log
  check "... until stopped" test "$st" -eq 124
  check "... and never served" bash -c '! grep -q "serving on" standby.log'
  check "the tables are in PostgreSQL, at the last schema version (7)" [ "$(psql_ck 'SELECT version FROM clonekit_schema')" -eq 7 ]
  check "with the VMs made above" [ "$(psql_ck 'SELECT count(*) FROM vms')" -ge 3 ]
fi
stop_service
check "service log has no crash" sanitizer_clean serve.log
finish
