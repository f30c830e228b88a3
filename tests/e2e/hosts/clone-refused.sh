#!/usr/bin/env bash
# What a clone to another host refuses, each with one line and nothing
# left behind (no entry, no job, nothing on h2), and what it does with a
# name someone planted in the target pool:
#   - a pool others may write to (they could swap or plant the job's own
#     directory there); a sticky one is fine;
#   - a file the definition names besides its disks (a CD-ROM) that h2
#     would read at the same path, unless in a pool both hosts share;
#   - instant and linked clones, the guest's items, UEFI variables;
#   - a symlink planted at the clone's name: it is never written through;
#     the clone takes the next name.
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/hosts/netns.sh"
with_h2 --nbd-ports 20030-20039
qemu-img create -q -f qcow2 pool/v1.qcow2 16M
qio pool/v1.qcow2 'write -P 0x71 0 2M'
ck vm import v1 "$WORK/pool/v1.qcow2" >/dev/null
nothing_left() {
  [ "$(ck job list --json | jq_ 'len(d)')" = 0 ] && [ "$(ck vm list --json | jq_ 'len(d)')" = 1 ] &&
    [ -z "$(on_host h2 find /var/lib/libvirt/open /var/lib/libvirt/far -mindepth 1 2>/dev/null)" ]
}

on_host h2 mkdir -m 0777 /var/lib/libvirt/open
ck pool add open /var/lib/libvirt/open --host h2 >/dev/null
check "a pool others may write to is refused, saying so" \
  one_line_error "others may write to /var/lib/libvirt/open (mode 777, not sticky)" ck vm clone v1 --host h2 --disk vda=pool:open
check "... nothing was made" nothing_left
on_host h2 chmod 1777 /var/lib/libvirt/open
check "sticky, it is fine" ck vm clone v1 --name c-sticky --host h2 --disk vda=pool:open --no-start --wait
check "... the image is there, root's" [ "$(on_host h2 stat -c '%U %a' /var/lib/libvirt/open/c-sticky-vda.qcow2)" = "root 600" ]
ck vm delete c-sticky >/dev/null
on_host h2 rm -f /var/lib/libvirt/open/c-sticky-vda.qcow2

# A CD-ROM in this host's pool: h2 has no such file (or another one).
ck vm show v1 --json | jq_ "d['xml']" | sed "s|</devices>|<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='$WORK/pool/seed.iso'/><target dev='hdc' bus='ide'/><readonly/></disk></devices>|" >v2.xml
sed -i "s|<name>v1</name>|<name>v2</name>|; /<uuid>/d" v2.xml
truncate -s 1M pool/seed.iso
ck vm define v2.xml >/dev/null
check "a CD-ROM of this host is refused for h2, named" one_line_error "$WORK/pool/seed.iso is a file of this host" ck vm clone v2 --host h2
ck vm delete v2 >/dev/null

check "an instant clone to h2 is refused" one_line_error "must be a full clone" ck vm clone v1 --host h2 --instant
check "a linked clone to h2 is refused" one_line_error "must be a full clone" ck vm clone v1 --host h2 --linked
check "the guest's items for h2 are refused" one_line_error "may change only host items" ck vm clone v1 --host h2 --generalize default
check "a host that is not registered is refused" one_line_error "no host 'h9'" ck vm clone v1 --host h9
check "... nothing was made by any of them" [ "$(ck vm list --json | jq_ 'len(d)')" = 1 ]

# A symlink planted at the name the clone would take.
on_host h2 sh -c 'echo precious >/var/lib/libvirt/target; ln -s /var/lib/libvirt/target /var/lib/libvirt/far/c1-vda.qcow2'
check "with a symlink at its name, the clone to h2 works" ck vm clone v1 --name c1 --host h2 --no-start --wait
OUT=$(ck job list --json | jq_ "[j['outputs'][0] for j in d if j['clone_name'] == 'c1'][0]")
check "... under the next name ($OUT)" [ "$OUT" = /var/lib/libvirt/far/c1-vda-2.qcow2 ]
check "... the default pool was h2's own" [ "$(dirname "$OUT")" = /var/lib/libvirt/far ]
check "... the symlink's target is untouched" [ "$(on_host h2 cat /var/lib/libvirt/target)" = precious ]
check "... the image equals the source" on_host h2 qemu-img compare -U "$WORK/pool/v1.qcow2" "$OUT"
stop_svc
check "service log has no crash" sanitizer_clean serve.log
finish
