#!/usr/bin/env bash
# The service killed (-9) in the middle of a clone to host h2: h2 keeps the
# partial image (its export ends with its client) until the service starts
# again, whose recovery removes the job's files there; the job says it was
# interrupted, the clone entry is gone, and the dead service's key
# directory here is gone too.
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/hosts/netns.sh"
with_h2 --nbd-ports 20020-20029 --copy-rate 4M
head -c 32M /dev/urandom >data.raw
qemu-img convert -O qcow2 data.raw pool/v1.qcow2
sha256sum pool/v1.qcow2 >before.sum
ck vm import v1 "$WORK/pool/v1.qcow2" >/dev/null

start_job 10 v1 --name c1 --host h2 --disk vda=pool:far --no-start
exports() { pgrep_here "qemu-nbd.*/var/lib/libvirt/far/.clonekit" | wc -l; }
keydirs() { find /tmp -maxdepth 1 -name "clonekit-nbd-$SVC-*" | wc -l; }
check "the copy is under way, through an export on h2" [ "$(exports)" = 1 ]
check "... whose key is in a directory of the service's" [ "$(keydirs)" = 1 ]
OLD=$SVC
stop_svc KILL
check "killed: h2 still has the job's files" [ -n "$(on_host h2 ls -A /var/lib/libvirt/far)" ]
serve_in_mgr --hypervisor test:///default --nbd-ports 20020-20029
check "after the restart the job is failed as interrupted" [ "$(field state)" = failed ] && [[ "$(field error)" == interrupted* ]]
echo "# error: $(field error)"
check "... h2's pool holds nothing of it" [ -z "$(on_host h2 ls -A /var/lib/libvirt/far)" ]
check "... its export on h2 is stopped" [ "$(exports)" = 0 ]
check "... the clone entry is gone" [ "$(ck vm list --json | jq_ "len([v for v in d if v['name'] == 'c1'])")" = 0 ]
SVC=$OLD
check "... and the dead service's key directory here too" [ "$(keydirs)" = 0 ]
check "the source chain is unchanged" sha256sum -c --quiet before.sum
check "service log has no crash" sanitizer_clean serve.log
finish
