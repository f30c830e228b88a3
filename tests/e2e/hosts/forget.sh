#!/usr/bin/env bash
# A host that is gone for good: `host remove --forget` drops it with the
# entries of its VMs and pools, and its jobs stop waiting to clean up there.
# Refused while it answers, and while a job uses it. A pool it shares with
# this host stays, without it. Nothing on the host is touched: when it comes
# back, its VM's disk and domain are still there.
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/hosts/netns.sh"
with_h2 --nbd-ports 20090-20099 --copy-rate 4M
vm_on_h2 16
mkdir shared
ck pool add both "$WORK/shared" --host local --host h2 >/dev/null
# 24 MiB of data: 6 s at 4 MiB/s.
head -c 24M /dev/urandom >data.raw
qemu-img convert -O qcow2 data.raw pool/v2.qcow2
ck vm import v2 "$WORK/pool/v2.qcow2" >/dev/null

check "plain remove: refused, h2 holds VM c1" one_line_error "holds VM 'c1'" ck host remove h2
check "--forget: refused while h2 answers" one_line_error "answers: --forget is for a host that is gone" \
  ck host remove h2 --forget

start_job 10 v2 --name c2 --host h2 --disk vda=pool:far --no-start
link h2 2 down
check "--forget: refused while a job copies to h2 (link cut)" one_line_error "clone job $JOB uses it; cancel it first" \
  ck host remove h2 --forget
for _ in $(seq 1 600); do [ "$(field state)" = running ] || break; sleep 0.1; done
check "the copy to h2 failed, its files there pending" [ "$(field state) $(field cleanup_pending)" = "failed True" ]
check "c1 cannot be deleted while h2 is cut off" one_line_error "does not answer" ck vm delete c1

ck host remove h2 --forget --json >forgot.json
check "--forget: h2, VM c1, pools far and both, job $JOB" \
  [ "$(jq_ "d['name'], d['vms'], sorted(d['pools']), d['jobs']" <forgot.json | tr '\n' ' ')" = "h2 ['c1'] ['both', 'far'] [$JOB] " ]
echo "# why h2 was judged gone: $(jq_ "d['why']" <forgot.json)"
check "... and it says why h2 was judged gone (its libvirt's silence, asked afresh)" [ -n "$(jq_ "d['why']" <forgot.json)" ]
check "h2 is no longer listed" [ "$(ck host list --json | jq_ "[h['name'] for h in d]")" = "['local']" ]
check "nor c1; v1 and v2 stay" [ "$(ck vm list --json | jq_ "sorted(v['name'] for v in d)")" = "['v1', 'v2']" ]
check "pool far is gone, both stays on local only" \
  [ "$(ck pool list --json | jq_ "sorted((p['name'], p['hosts']) for p in d)")" = "[('both', ['local']), ('main', ['local'])]" ]
files_left() { [ "$(field cleanup_pending)" = False ] && [[ "$(field error)" == *"were left there when the host was forgotten" ]]; }
check "job $JOB no longer waits for h2, and says its files stay there" files_left
check "a clone into far is now refused (no such pool)" one_line_error "no storage pool 'far'" ck vm clone v1 --name c3 --disk vda=pool:far
check "forgetting it again: no host 'h2'" one_line_error "no host 'h2'" ck host remove h2 --forget
check "'local' cannot be forgotten" one_line_error "cannot be removed" ck host remove local --forget

link h2 2 up
check "h2 back: c1's disk is still there, untouched" on_host h2 test -s /var/lib/libvirt/far/c1-vda.qcow2
check "... and its domain in h2's libvirt" in_mgr virsh -c "$H2" domstate c1
readded() {
  ck host add h2 "$H2" >/dev/null &&
    [ "$(ck host list --json | jq_ "[h['reachable'] for h in d if h['name'] == 'h2']")" = "[True]" ] &&
    [ "$(ck vm list --host h2 --json | jq_ 'len(d)')" = 0 ]
}
check "h2 added again under its name: reachable, none of the old one's VMs" readded
stop_svc
check "service log has no crash" sanitizer_clean serve.log
finish
