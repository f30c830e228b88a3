#!/usr/bin/env bash
# What a clone or a snapshot of a VM on h2 refuses, each with one line and
# nothing made:
#   - this service's own pools (the copy runs on h2: it would need an
#     export here), an instant clone, a guest item;
#   - a chain on h2 that reads a file outside h2's pools (a backing file
#     rewritten to point at /etc), and a top that is a symlink out of
#     them: h2 reads only its pools, as this host does;
#   - a snapshot whose overlay's name someone took (a symlink planted
#     there is never followed), or in a pool others may write to.
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/hosts/netns.sh"
with_h2 --nbd-ports 20070-20079
vm_on_h2 16
FAR=/var/lib/libvirt/far
nothing_made() {
  [ "$(ck job list --json | jq_ "len([j for j in d if j['clone_name'] != 'c1'])")" = 0 ] &&
    [ "$(ck vm list --json | jq_ 'len(d)')" = 2 ] && [ "$(on_host h2 ls -A "$FAR")" = c1-vda.qcow2 ] &&
    [ -z "$(ls -A "$WORK/pool" | grep -v '^v1.qcow2$')" ]
}

check "into this service's own pool: refused" \
  one_line_error "cannot be written into this service's own pools" ck vm clone c1 --host local --disk vda=pool:main
check "an instant clone: refused" one_line_error "must be a full clone" ck vm clone c1 --instant
check "a guest item: refused" one_line_error "may change only host items" ck vm clone c1 --generalize hostname
check "... nothing was made" nothing_made

# The VM's image on h2 rewritten to read a file outside the pools.
on_host h2 cp "$FAR/c1-vda.qcow2" "$WORK/saved.qcow2"
on_host h2 qemu-img rebase -u -f qcow2 -b /etc/hostname -F raw "$FAR/c1-vda.qcow2"
check "a backing file outside h2's pools: refused, named" one_line_error "/etc/hostname" ck vm clone c1
check "... nothing was made" nothing_made
on_host h2 cp "$WORK/saved.qcow2" "$FAR/c1-vda.qcow2"
on_host h2 mv "$FAR/c1-vda.qcow2" /var/lib/libvirt/elsewhere.qcow2
on_host h2 ln -s /var/lib/libvirt/elsewhere.qcow2 "$FAR/c1-vda.qcow2"
check "a top that is a symlink: refused" one_line_error "is not a regular file" ck vm clone c1
on_host h2 rm "$FAR/c1-vda.qcow2"
on_host h2 mv /var/lib/libvirt/elsewhere.qcow2 "$FAR/c1-vda.qcow2"
check "... nothing was made" nothing_made
check "once whole again, the clone is made" ck vm clone c1 --name c2 --no-start --wait

# Snapshots: their overlays are made beside the tops, never through a name
# someone put there, and only where nobody else may swap the directories.
on_host h2 ln -s /etc/planted "$FAR/c1-vda-s1.qcow2"
check "a snapshot whose overlay's name is taken (a symlink): refused" one_line_error "c1-vda-s1.qcow2" ck snapshot create c1 s1
planted_intact() { [ "$(on_host h2 readlink "$FAR/c1-vda-s1.qcow2")" = /etc/planted ] && [ ! -e /etc/planted ]; }
check "... the link is left as it was, and nothing made through it" planted_intact
check "... no snapshot listed" [ "$(ck snapshot list c1 --json | jq_ 'len(d)')" = 0 ]
on_host h2 rm "$FAR/c1-vda-s1.qcow2"
on_host h2 chmod 0777 "$FAR"
check "a snapshot in a pool others may write to: refused" one_line_error "others may write to $FAR (mode 777" ck snapshot create c1 s1
on_host h2 chmod 0755 "$FAR"
check "... nothing was made there" [ "$(on_host h2 ls -A "$FAR" | tr '\n' ' ')" = "c1-vda.qcow2 c2-vda.qcow2 " ]
check "in a safe pool, it is taken" ck snapshot create c1 s1
stop_svc
check "service log has no crash" sanitizer_clean serve.log
finish
