#!/usr/bin/env bash
# Class 3, files: every path the service opens lies beneath a pool without
# a symlink and is a regular file (a FIFO never blocks it); backing chains
# stay in the pools; what a clone writes is created O_EXCL, mode 0600, and
# never replaces a file that was there.
source "$(dirname "$0")/lib.sh"
start_service
ck pool add main "$WORK/pool" >/dev/null
qemu-img create -q -f qcow2 pool/a.qcow2 16M
qio pool/a.qcow2 'write -P 0x41 0 1M'
echo "host secret" > secret.txt

ln -s "$WORK/secret.txt" pool/link.qcow2
r=$(define "$(domain_xml sym "$(disk_xml "$WORK/pool/link.qcow2")")")
check "a symlink inside a pool is refused at define" status_is 400 "$r" "is or goes through a symlink"
err=$(ck vm import sym "$WORK/pool/link.qcow2" 2>&1) && st=0 || st=$?
check "... and at import" one_line_error "is or goes through a symlink"
mkdir pool/sub && ln -s "$WORK" pool/sub/up
r=$(define "$(domain_xml up "$(disk_xml "$WORK/pool/sub/up/secret.txt")")")
check "a symlinked directory on the way is refused" status_is 400 "$r" "symlink"
r=$(define "$(domain_xml dots "$(disk_xml "$WORK/pool/../secret.txt")")")
check "'..' out of the pool is refused" status_is 400 "$r" "leaves pool 'main'"

mkfifo pool/fifo.qcow2
r=$(timeout 10 $REQ --unix "$SOCK" POST /api/v1/vms "$(define_json "$(domain_xml fifo "$(disk_xml "$WORK/pool/fifo.qcow2")")")")
check "a FIFO in a pool is refused at once, not waited on" status_is 400 "$r" "is not a regular file"
check "... and the service still answers" status_is 200 "$(unix GET /api/v1/health)"

qemu-img create -q -f qcow2 outside.qcow2 16M
qemu-img create -q -f qcow2 -b "$WORK/outside.qcow2" -F qcow2 pool/over.qcow2
r=$(define "$(domain_xml bk "$(disk_xml "$WORK/pool/over.qcow2")")")
check "a backing file outside the pools is refused at define (400)" status_is 400 "$r" "outside the allowed directories"
qemu-img create -q -f qcow2 -b 'json:{"file":{"driver":"file","filename":"/etc/shadow"}}' -F raw -u pool/json.qcow2 16M
r=$(define "$(domain_xml js "$(disk_xml "$WORK/pool/json.qcow2")")")
check "a json: backing name is refused at define" status_is 400 "$r" "json: name"

# A raw disk whose guest wrote a qcow2 header naming another VM's image:
# its format is the definition's, never guessed, so the clone is its bytes.
qemu-img create -q -f qcow2 pool/victim.qcow2 16M && qio pool/victim.qcow2 'write -P 0x76 0 1M'
qemu-img create -q -f qcow2 -b "$WORK/pool/victim.qcow2" -F qcow2 pool/guest.raw 16M
r=$(define "$(domain_xml guest "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$WORK/pool/guest.raw'/><target dev='vda'/></disk>")")
check "a raw disk holding a qcow2 header is defined as raw" status_is 201 "$r"
j=$(ck vm clone guest --name guest-clone --no-start --json | jq_ "d['id']"); wait_end "$j"
gout=$(ck vm show guest-clone | jq_ "d['disks'][0]['file']")
check "... its clone is the raw bytes, not the other VM's image" \
  bash -c "qemu-img compare -q -f raw -F raw '$WORK/pool/guest.raw' '$gout' && ! qemu-img compare -q -f qcow2 -F raw '$WORK/pool/victim.qcow2' '$gout' 2>/dev/null"
r=$(define "$(domain_xml good "$(disk_xml "$WORK/pool/a.qcow2")")")
check "a VM whose disk is in the pool is defined" status_is 201 "$r"
id=$(jq_ "d['id']" <<<"${r#* }")
put_xml() { unix PUT "/api/v1/vms/$id" "$(python3 -c 'import json,sys; print(json.dumps({"xml": sys.argv[1]}))' "$1")"; }
r=$(put_xml "$(domain_xml good "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='json:{\"file\":{\"filename\":\"/etc/shadow\"}}'/><target dev='vda'/></disk>")")
check "an edit to a json: disk name is refused" status_is 400 "$r" "devices/disk/source/@file: value 'json:"
r=$(put_xml "$(domain_xml good "$(disk_xml "$WORK/pool/a.qcow2" "../../x")")")
check "a <target dev> with '..' is refused" status_is 400 "$r" "target/@dev"

# The clone: its image 0600; a file already at its name is left alone.
echo "not yours" > pool/good-clone-vda.qcow2
j=$(ck vm clone good --name good-clone --no-start --json | jq_ "d['id']")
wait_end "$j"
out=$(ck vm show good-clone | jq_ "d['disks'][0]['file']")
check "the clone's image is a new name (the taken one kept)" [ "$out" = "$WORK/pool/good-clone-vda-2.qcow2" ]
check "... the file that was there is unchanged" [ "$(cat pool/good-clone-vda.qcow2)" = "not yours" ]
check "the clone's image is mode 600" [ "$(stat -c %a "$out")" = 600 ]
check "the clone equals qemu's reading of the source" qemu-img compare -q pool/a.qcow2 "$out"
check "the snapshot point is made read-only through its descriptor" ck snapshot create good s1
check "... the old top is mode 444" [ "$(stat -c %a pool/a.qcow2)" = 444 ]
check "... the secret was not touched" [ "$(stat -c %a secret.txt)" = 644 ]

# NVRAM: confined, copied into a file made O_EXCL, never through a symlink.
cp pool/a.qcow2 pool/fw.qcow2 && chmod 644 pool/fw.qcow2 && echo vars > pool/fw_VARS.fd && echo code > pool/code.fd
NV="<os><type>hvm</type><loader readonly='yes' type='pflash'>$WORK/pool/code.fd</loader><nvram>$WORK/pool/fw_VARS.fd</nvram></os>"
check "a VM with NVRAM in the pool is defined" status_is 201 "$(define "$(domain_xml fw "$(disk_xml "$WORK/pool/fw.qcow2")" "$NV")")"
ln -s "$WORK/secret.txt" pool/fw-clone_VARS.fd
err=$(ck vm clone fw --name fw-clone --no-start 2>&1) && st=0 || st=$?
check "a symlink at the clone's NVRAM name: the clone is refused" one_line_error "fw-clone_VARS.fd: already exists"
check "... the symlink's target is untouched" [ "$(cat secret.txt)" = "host secret" ]
check "... nothing of the clone is left" [ -z "$(ls pool | grep '^fw-clone-')" ]
rm pool/fw-clone_VARS.fd
j=$(ck vm clone fw --name fw-clone --no-start --json | jq_ "d['id']"); wait_end "$j"
check "the clone's NVRAM is a copy, mode 600" bash -c "[ \"\$(cat '$WORK/pool/fw-clone_VARS.fd')\" = vars ] && [ \"\$(stat -c %a '$WORK/pool/fw-clone_VARS.fd')\" = 600 ]"
stop_service
check "service log has no crash" sanitizer_clean serve.log
finish
