#!/usr/bin/env bash
# Class 4, never touch what a job did not create: libvirt names are global,
# so clonekit's are injective in (namespace, name) and every call after
# define goes by UUID; a name or UUID libvirt already has is refused before
# any side effect; a cancelled or failed clone removes only its own files
# and entry. The test driver's own domain "test" stands for a domain
# clonekit never made.
source "$(dirname "$0")/lib.sh"
start_service --copy-rate 4M
ck pool add main "$WORK/pool" >/dev/null
qemu-img create -q -f qcow2 pool/src.qcow2 64M
qio pool/src.qcow2 'write -P 0x33 0 24M'
for f in web x_web; do qemu-img create -q -f qcow2 "pool/$f.qcow2" 16M; done

r=$(define "$(domain_xml test "$(disk_xml "$WORK/pool/web.qcow2")")")
check "a VM named like a domain clonekit did not make is refused (409)" status_is 409 "$r" "libvirt already has a domain of that name"
r=$(define "<domain type='test'><name>other</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid><memory>65536</memory></domain>")
check "a VM with that domain's UUID is refused (409)" status_is 409 "$r" "libvirt already has a domain with this UUID"
check "... the foreign domain is still there" status_is 409 "$(define "$(domain_xml test "$(disk_xml "$WORK/pool/web.qcow2")")")" "of that name"
check "nothing was stored" [ "$(vm_count)" = 0 ]
check "a VM with a UUID of its own" status_is 201 "$(define "<domain type='test'><name>u1</name><uuid>0a1b2c3d-0000-4000-8000-00000000abcd</uuid><memory>65536</memory><os><type>hvm</type></os></domain>")"
check "the same UUID spelled otherwise (no dashes, upper case) is refused" \
  status_is 409 "$(define "<domain type='test'><name>u2</name><uuid>0A1B2C3D000040008000-00000000ABCD</uuid><memory>65536</memory><os><type>hvm</type></os></domain>")" "belongs to VM 'u1'"
unix DELETE "/api/v1/vms/$(unix GET '/api/v1/vms?name=u1' | cut -d' ' -f2- | jq_ "d['id']")" >/dev/null

check "VM web in namespace default" status_is 201 "$(define "$(domain_xml web "$(disk_xml "$WORK/pool/web.qcow2")")")"
check "VM web in namespace x too (libvirt: x+web)" status_is 201 "$(define "$(domain_xml web "$(disk_xml "$WORK/pool/web.qcow2")")" x)"
check "VM x_web in namespace default" status_is 201 "$(define "$(domain_xml x_web "$(disk_xml "$WORK/pool/x_web.qcow2")")")"
check "VM src" status_is 201 "$(define "$(domain_xml src "$(disk_xml "$WORK/pool/src.qcow2")")")"

# A finished clone default/x_web-2 ... and a clone x/web2 cancelled mid-copy:
j=$(ck vm clone src --name x_web-c --no-start --json | jq_ "d['id']"); wait_end "$j"
done_disk=$(ck vm show x_web-c | jq_ "d['disks'][0]['file']")
j=$(ck vm clone src --name web-c --namespace x --no-start --json | jq_ "d['id']")
for _ in $(seq 1 100); do [ "$(job_state "$j")" = running ] && break; sleep 0.05; done
sleep 0.5
check "the x/web-c clone writes its own names (x+web-c-...)" bash -c "ls '$WORK/pool' | grep -q '^x+web-c-vda'"
ck job cancel "$j" >/dev/null; wait_end "$j"
check "cancelled" [ "$(job_state "$j")" = cancelled ]
check "... its files are gone" bash -c "! ls -A '$WORK/pool' | grep -q 'x+web-c'"
check "... the other namespace's finished clone is intact" qemu-img compare -q pool/src.qcow2 "$done_disk"
check "... default/web is still defined in libvirt (starts)" ck vm start web
check "... x/web too" ck vm start x/web
check "... and x_web" ck vm start x_web
check "default/web and x/web are two domains (both running)" \
  [ "$(ck vm list | awk '$3 == "web" {print $4}' | sort -u)" = running ]
stop_service
check "service log has no crash" sanitizer_clean serve.log
finish
