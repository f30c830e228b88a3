#!/usr/bin/env bash
# A VM on this host cloned from a snapshot into a pool of host h2 (no
# shared storage): its disk equals qemu's reading of the snapshot
# (qemu-img compare on h2), it is defined on h2 and runs there under h2's
# own libvirtd and qemu, the copy crossed the link encrypted (a capture of
# h2's end holds none of the marker the disk is full of), and nothing of
# the job is left on h2 but the image.
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/hosts/netns.sh"
command -v tcpdump >/dev/null || { echo "SKIP: tcpdump not installed"; exit 77; }
[ -c /dev/kvm ] || [ -n "$(command -v qemu-system-x86_64)" ] || { echo "SKIP: no qemu to run the clone"; exit 77; }
with_h2 --nbd-ports 20000-20009

# base <- mid <- top. The snapshot 'v1-mid' reads base's and mid's data,
# all of it marker text; top writes over part of it (not in the clone).
python3 -c "import sys; sys.stdout.write(('CLONEKIT-PLAINTEXT-MARKER-51c2e8\\n' * 40000)[:1 << 20])" >marker.bin
qemu-img create -q -f qcow2 pool/v1-base.qcow2 64M
for m in 0 1 2 3 4 5 6 7; do qemu-io -f qcow2 -c "write -s marker.bin ${m}M 1M" pool/v1-base.qcow2 >/dev/null; done
qemu-img create -q -f qcow2 -b "$WORK/pool/v1-base.qcow2" -F qcow2 pool/v1-mid.qcow2
qemu-io -f qcow2 -c "write -s marker.bin 40M 1M" -c "write -z 2M 1M" pool/v1-mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b "$WORK/pool/v1-mid.qcow2" -F qcow2 pool/v1.qcow2
qemu-io -f qcow2 -c "write -P 0x5a 0 4M" pool/v1.qcow2 >/dev/null
qemu-img convert -O raw pool/v1-mid.qcow2 want.raw
sums() { sha256sum pool/v1-base.qcow2 pool/v1-mid.qcow2 pool/v1.qcow2; }
sums >before.sum
ck vm import v1 "$WORK/pool/v1.qcow2" >/dev/null

capture_link h2 2 20000-20009

check "vm clone --snapshot v1-mid --host h2 --disk vda=pool:far" \
  bash -c "'$CLONEKIT' vm clone v1 --snapshot v1-mid --name c1 --host h2 --disk vda=pool:far --json >clone.json"
JOB=$(jq_ "d['id']" <clone.json)
check "the job succeeds" bash -c "'$CLONEKIT' job wait $JOB >/dev/null"
ck job show "$JOB" >job.json
end_capture
echo "# link.pcap: $(stat -c %s link.pcap) bytes; $(grep -E "captured|dropped by kernel" tcpdump.err | tr '\n' ' ')"
OUT=$(jq_ "d['outputs'][0]" <job.json)
check "its image is in far on h2 ($OUT)" [ "$OUT" = /var/lib/libvirt/far/c1-vda.qcow2 ]
check "... which this host does not have" [ ! -e "$OUT" ]
check "the image equals qemu's reading of the snapshot (qemu-img compare on h2)" \
  on_host h2 qemu-img compare -U -f raw -F qcow2 "$WORK/want.raw" "$OUT"
standalone() { on_host h2 qemu-img info -U --output=json "$1" >info.json && ! grep -q backing-filename info.json; }
check "... and is a standalone qcow2 (no backing file)" standalone "$OUT"
check "the clone is on h2 in the API" [ "$(ck vm list --json | jq_ "[v['host'] for v in d if v['name'] == 'c1'][0]")" = h2 ]
check "vm list --host h2 lists it alone" [ "$(ck vm list --host h2 --json | jq_ "[v['name'] for v in d]")" = "['c1']" ]
check "h2's libvirt runs it (virsh over qemu+ssh)" [ "$(in_mgr virsh -c "$H2" domstate c1)" = running ]
runs_on() { local list; list=$(in_mgr virsh -c "$H2" domblklist c1) && grep -qF "$1" <<<"$list"; }
check "... on that image" runs_on "$OUT"
check "... and the service says it runs" [ "$(ck vm list --json | jq_ "[v['status'] for v in d if v['name'] == 'c1'][0]")" = running ]
check "far holds the image and nothing else of the job" [ "$(on_host h2 ls -A /var/lib/libvirt/far)" = c1-vda.qcow2 ]
no_export() { ! pgrep_here "qemu-nbd.*/var/lib/libvirt/far/.clonekit" >/dev/null; }
check "no export is left on h2" no_export
check "the capture saw the copy (more than half of its 9 MiB of data)" [ "$(stat -c %s link.pcap)" -gt $((9 << 19)) ]
check "no plaintext of the disk on the link" bash -c "! grep -q CLONEKIT-PLAINTEXT-MARKER link.pcap"
check "the source chain is unchanged" cmp -s <(sums) before.sum

check "stop on h2 through the service" ck vm stop c1 --force
check "... h2's libvirt says shut off" [ "$(in_mgr virsh -c "$H2" domstate c1)" = "shut off" ]
ck vm show c1 --json | jq_ "d['xml']" >c1.xml
check "an edit of a VM on h2's definition is refused, naming the host" one_line_error "is on host 'h2'" ck vm edit c1 --xml c1.xml
check "host remove h2 is refused while a VM is on it" one_line_error "holds VM 'c1'" ck host remove h2
check "delete on h2 through the service" ck vm delete c1
gone() { ! in_mgr virsh -c "$H2" dominfo c1 >/dev/null 2>&1 && in_mgr virsh -c "$H2" hostname >/dev/null; }
check "... h2's libvirt no longer has it (and answers)" gone
stop_svc
check "service log has no crash" sanitizer_clean serve.log
finish
