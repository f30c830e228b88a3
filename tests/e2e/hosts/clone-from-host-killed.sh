#!/usr/bin/env bash
# The service killed (-9) during a clone of a VM on h2 into h3's pool: the
# copy on h2 ends by itself (its SSH channel closed), and the service's
# next start removes the job's files on h3 and says the job was
# interrupted.
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/hosts/netns.sh"
with_h2 --nbd-ports 20060-20069 --copy-rate 2M
with_h3
vm_on_h2

start_job 5 c1 --name c2 --host h3 --disk vda=pool:far3 --no-start
copies() { pgrep_here "clonekit collapse .*/var/lib/libvirt/far/c1-vda.qcow2" | wc -l; }
check "the copy runs on h2" [ "$(copies)" = 1 ]
stop_svc KILL
stopped() { for _ in $(seq 1 100); do [ "$(copies)" = 0 ] && return 0; sleep 0.1; done; return 1; }
check "killed: the copy on h2 stops within 10 s" stopped
check "... and the export's key there goes with it" [ -z "$(find "$WORK/host-h2/tmp" -maxdepth 1 -name 'clonekit-key.*')" ]
serve_in_mgr --hypervisor test:///default --nbd-ports 20060-20069
check "after the restart the job is failed as interrupted" [ "$(field state)" = failed ] && [[ "$(field error)" == interrupted* ]]
check "... h3's pool holds nothing of it" [ -z "$(on_host h3 ls -A /var/lib/libvirt/far3)" ]
no_export() { ! pgrep_here "qemu-nbd.*/var/lib/libvirt/far3/.clonekit" >/dev/null; }
check "... no export is left on h3" no_export
check "... the clone entry is gone" [ "$(ck vm list --json | jq_ "len([v for v in d if v['name'] == 'c2'])")" = 0 ]
check "service log has no crash" sanitizer_clean serve.log
finish
