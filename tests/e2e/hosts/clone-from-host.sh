#!/usr/bin/env bash
# A VM on host h2 (not this service's host) snapshotted and cloned from
# that snapshot: the chain is read on h2, where it is. Into h2's own pool
# (clonekit writes the file there) and into h3's pool (clonekit on h2
# writes into h3's NBD export, TLS: a capture of h3's link holds none of
# the disk's marker). Each clone equals qemu's reading of the snapshot
# point on h2 (qemu-img compare where the clone is), each is defined on its
# host, and the source's files are unchanged.
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/hosts/netns.sh"
command -v tcpdump >/dev/null || { echo "SKIP: tcpdump not installed"; exit 77; }
with_h2 --nbd-ports 20040-20049
with_h3
vm_on_h2
FAR=/var/lib/libvirt/far

check "snapshot create of c1 on h2" ck snapshot create c1 s1
TOP=$FAR/c1-vda-s1.qcow2
names_top() { local list; list=$(in_mgr virsh -c "$H2" domblklist c1) && grep -qF "$TOP" <<<"$list"; }
check "... h2's libvirt made the overlay and its definition names it" names_top
backed() { local info; info=$(on_host h2 qemu-img info -U --output=json "$TOP") && grep -qF '"backing-filename": "./c1-vda.qcow2"' <<<"$info"; }
check "... the overlay is backed by the old top (the file beside it)" backed
check "... and is root's alone" [ "$(on_host h2 stat -c '%U %a' "$TOP")" = "root 600" ]
check "... which is read-only now (the snapshot's point)" [ "$(on_host h2 stat -c %a "$FAR/c1-vda.qcow2")" = 444 ]
# The VM writes on after the snapshot: not in its clones.
on_host h2 qemu-io -f qcow2 -c "write -P 0x33 0 2M" "$TOP" >/dev/null
on_host h2 qemu-img convert -U -O raw "$FAR/c1-vda.qcow2" "$WORK/want.raw"
sums() { on_host h2 sha256sum "$FAR/c1-vda.qcow2" "$TOP"; }
sums >before.sum

check "clone of s1 into h2's own pool (the default)" \
  bash -c "'$CLONEKIT' vm clone c1 --snapshot s1 --name c2 --no-start --json >c2.json"
check "... the job succeeds" ck job wait "$(jq_ "d['id']" <c2.json)"
check "... its image equals qemu's reading of s1 (compare on h2)" \
  on_host h2 qemu-img compare -U -f raw -F qcow2 "$WORK/want.raw" "$FAR/c2-vda.qcow2"
check "... root's alone" [ "$(on_host h2 stat -c '%U %a' "$FAR/c2-vda.qcow2")" = "root 600" ]
check "... defined on h2" [ "$(ck vm list --host h2 --json | jq_ "sorted(v['name'] for v in d)")" = "['c1', 'c2']" ]
check "... h2's libvirt has it" in_mgr virsh -c "$H2" dominfo c2

capture_link h3 3 20040-20049
check "clone of s1 into h3's pool" \
  bash -c "'$CLONEKIT' vm clone c1 --snapshot s1 --name c3 --host h3 --disk vda=pool:far3 --no-start --json >c3.json"
check "... the job succeeds" ck job wait "$(jq_ "d['id']" <c3.json)"
end_capture
check "... its image equals qemu's reading of s1 (compare on h3)" \
  on_host h3 qemu-img compare -U -f raw -F qcow2 "$WORK/want.raw" /var/lib/libvirt/far3/c3-vda.qcow2
check "... defined on h3" in_mgr virsh -c "$H3" dominfo c3
check "... the copy went h2 -> h3 (more than half of its 8 MiB of data on h3's link)" \
  [ "$(stat -c %s link.pcap)" -gt $((8 << 19)) ]
check "... none of it in clear" bash -c "! grep -q CLONEKIT-PLAINTEXT-MARKER link.pcap"

check "the source's files are unchanged" cmp -s <(sums) before.sum
check "h2's pool holds c1's files and c2's image, nothing of the jobs" \
  [ "$(on_host h2 ls -A "$FAR" | tr '\n' ' ')" = "c1-vda-s1.qcow2 c1-vda.qcow2 c2-vda.qcow2 " ]
check "h3's pool holds c3's image only" [ "$(on_host h3 ls -A /var/lib/libvirt/far3)" = c3-vda.qcow2 ]
no_copy() { ! pgrep_here "clonekit collapse" >/dev/null && ! pgrep_here "qemu-nbd.*clonekit" >/dev/null; }
check "no copy or export is left running" no_copy
stop_svc
check "service log has no crash" sanitizer_clean serve.log
finish
