#!/usr/bin/env bash
# The clone queue at its edges, on the real service (libvirt's test driver):
#   - a source shut down for a clone is started again when the last job
#     holding its power ends, even when that one is cancelled in the queue;
#   - a stop with a job still queued ends the service cleanly (it died:
#     a job ending during the stop started the queued one on a thread that
#     nobody joined); the copying one is cancelled, and the next start
#     fails the queued one as interrupted.
source "$(dirname "$0")/security/lib.sh"
start_service --max-clones 1 --max-queued 2 --copy-rate 2M
ck pool add main "$WORK/pool" >/dev/null
for vm in src other; do
  qemu-img create -q -f qcow2 "pool/$vm.qcow2" 64M
  qio "pool/$vm.qcow2" 'write -P 0x51 0 16M'
  define "$(domain_xml "$vm" "$(disk_xml "$WORK/pool/$vm.qcow2")")" >/dev/null
done
power() { ck vm show "$1" | jq_ "d['power']"; }
ck vm start src >/dev/null
check "src runs" [ "$(power src)" = running ]

# a (src, 8 s) copies; c (other) and b (src) wait behind it, in that order.
a=$(ck vm clone src --name a --no-start --json | jq_ "d['id']")
c=$(ck vm clone other --name c --no-start --json | jq_ "d['id']")
b=$(ck vm clone src --name b --no-start --json | jq_ "d['id']")
check "a copies, src shut down for it; c and b queued" \
  [ "$(job_state "$a") $(power src) $(job_state "$c") $(job_state "$b")" = "running shutoff queued queued" ]
wait_end "$a"
check "a succeeded; src stays off: b, queued, will read it" \
  [ "$(job_state "$a") $(power src) $(job_state "$b")" = "succeeded shutoff queued" ]
ck job cancel "$b" >/dev/null
runs_again() { for _ in $(seq 1 50); do [ "$(power src)" = running ] && return 0; sleep 0.1; done; return 1; }
check "b cancelled in the queue, the last job holding src: src runs again" runs_again

# c (other) copies now; d waits behind it. Then the service is stopped.
d=$(ck vm clone other --name d --no-start --json | jq_ "d['id']")
check "c copies, d queued" [ "$(job_state "$c") $(job_state "$d")" = "running queued" ]
kill "$SVC"; wait "$SVC" && rc=0 || rc=$?
check "stopped with a job queued: the service ends cleanly (exit $rc)" [ "$rc" = 0 ]
start_service --max-clones 1 --max-queued 2
interrupted() { [ "$(job_state "$1")" = failed ] && [[ "$(ck job show "$1" | jq_ "d['error']")" == *interrupted* ]]; }
check "c, copying, was cancelled by the stop" [ "$(job_state "$c")" = cancelled ]
check "the next start fails d (queued) as interrupted" interrupted "$d"
check "... and leaves no clone entry" [ "$(ck vm list --json | jq_ "sorted(v['name'] for v in d)")" = "['a', 'other', 'src']" ]
stop_service
check "service log has no crash" sanitizer_clean serve.log
finish
