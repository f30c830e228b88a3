#!/usr/bin/env bash
# The service out of threads (pthread_create fails with EAGAIN, as when its
# cgroup's pids.max or the machine's limit is reached), on the real service
# and a real pids cgroup: requests are still answered (before, the first
# connection killed the service): the reserve thread serves them; a clone
# that gets no thread waits in the queue, and starts once threads can be made
# again (the janitor retries); and with a few threads to spare, each clone
# ends, succeeded or failed in one line (the copy takes fewer workers), and
# the service lives on.
source "$(dirname "$0")/../security/lib.sh"
# The cgroup: v1's pids hierarchy, or v2 with the pids controller on.
if [ -w /sys/fs/cgroup/pids/cgroup.procs ]; then
  cg=/sys/fs/cgroup/pids/clonekit-test-$$
elif grep -qw pids /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
  cg=/sys/fs/cgroup/clonekit-test-$$
else
  echo "SKIP: no pids cgroup to limit the service's threads in"; exit 77
fi
mkdir "$cg" 2>/dev/null || { echo "SKIP: cannot make a pids cgroup ($cg)"; exit 77; }
# (the service killed and its threads gone, the cgroup can go)
end_cgroup() {
  echo max > "$cg/pids.max"
  kill -9 "$SVC" 2>/dev/null
  wait "$SVC" 2>/dev/null
  for _ in $(seq 1 50); do
    for p in $(cat "$cg/cgroup.procs"); do echo "$p" > "${cg%/*}/cgroup.procs"; done
    rmdir "$cg" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "cgroup $cg left behind"
}

start_service
cleanup_fns+=(end_cgroup)
ck pool add main "$WORK/pool" >/dev/null
qemu-img create -q -f qcow2 pool/src.qcow2 64M
qio pool/src.qcow2 'write -P 0x5a 0 4M'
define "$(domain_xml src "$(disk_xml "$WORK/pool/src.qcow2")")" >/dev/null

echo "$SVC" > "$cg/cgroup.procs"
cat "$cg/pids.current" > "$cg/pids.max"  # not one thread more
echo "# service: $(cat "$cg/pids.current") threads, the most it may have"

check "a request is answered with no thread to spare" [ "$(ck vm show src | jq_ "d['name']")" = src ]
check "... by the reserve thread" grep -q "a connection waits for the reserve thread" serve.log
job=$(ck vm clone src --name c1 --no-start --json | jq_ "d['id']")
check "a clone with no thread for its job waits in the queue" [ "$(job_state "$job")" = queued ]
check "... and the log says why" grep -q "job $job stays queued: cannot start its thread" serve.log
check "the service still answers" [ "$(ck vm show src | jq_ "d['name']")" = src ]

echo max > "$cg/pids.max"
for _ in $(seq 1 400); do [ "$(job_state "$job")" = succeeded ] && break; sleep 0.1; done
check "with threads again, the janitor starts it and it succeeds" [ "$(job_state "$job")" = succeeded ]
out=$(ck vm show c1 | jq_ "d['disks'][0]['file']")
check "... its disk reads as the source does" qemu-img compare -q "$out" pool/src.qcow2

# A few threads to spare: the job's thread, its disk's, the copy's and its
# workers take them in turn; whichever is refused, the clone ends.
ended_in_one_line() {
  local state; state=$(job_state "$1")
  [ "$state" = succeeded ] || { [ "$state" = failed ] && [ "$(ck job show "$1" | jq_ "d['error']" | wc -l)" = 1 ]; }
}
for spare in 1 2 3 4; do
  echo $(( $(cat "$cg/pids.current") + spare )) > "$cg/pids.max"
  job=$(ck vm clone src --name "s$spare" --no-start --json | jq_ "d['id']")
  for _ in $(seq 1 400); do case "$(job_state "$job")" in queued|running) sleep 0.1 ;; *) break ;; esac; done
  echo "# $spare threads to spare: job $job $(job_state "$job") $(ck job show "$job" | jq_ "d['error']")"
  check "$spare threads to spare: the clone ends, succeeded or failed in one line" ended_in_one_line "$job"
  check "... and the service answers" [ "$(ck vm show src | jq_ "d['name']")" = src ]
done
echo max > "$cg/pids.max"
stop_service
check "service log has no crash" sanitizer_clean serve.log
finish
