#!/usr/bin/env bash
# A clone of a VM on h2 into h3's pool, cancelled mid-copy: the copy on h2
# (clonekit, reading c1's chain there) stops, the export on h3 and the
# job's files there go, the export's key on h2 goes, and the job says it
# was cancelled.
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/hosts/netns.sh"
with_h2 --nbd-ports 20050-20059 --copy-rate 2M
with_h3
vm_on_h2

start_job 5 c1 --name c2 --host h3 --disk vda=pool:far3 --no-start
copies() { pgrep_here "clonekit collapse .*/var/lib/libvirt/far/c1-vda.qcow2" | wc -l; }
keys() { find "$WORK/host-h2/tmp" -maxdepth 1 -name "clonekit-key.*" | wc -l; }
check "the copy runs on h2 (clonekit collapse of c1's chain)" [ "$(copies)" = 1 ]
check "... with the export's key in a private directory there" [ "$(keys)" = 1 ]
check "cancel" ck job cancel "$JOB"
stopped() { for _ in $(seq 1 50); do [ "$(copies)" = 0 ] && return 0; sleep 0.1; done; return 1; }
check "... the copy on h2 stops within 5 s" stopped
ck job wait "$JOB" >/dev/null 2>&1 || true
echo "# job: $(field state): $(field error)"
check "... the job is cancelled" [ "$(field state)" = cancelled ]
check "... h3's pool holds nothing of it" [ -z "$(on_host h3 ls -A /var/lib/libvirt/far3)" ]
no_export() { ! pgrep_here "qemu-nbd.*/var/lib/libvirt/far3/.clonekit" >/dev/null; }
check "... no export is left on h3" no_export
check "... nor the key on h2" [ "$(keys)" = 0 ]
check "... nor the clone's entry" [ "$(ck vm list --json | jq_ "len([v for v in d if v['name'] == 'c2'])")" = 0 ]
stop_svc
check "service log has no crash" sanitizer_clean serve.log
finish
