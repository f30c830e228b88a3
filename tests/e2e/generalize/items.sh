#!/usr/bin/env bash
# A clone from a snapshot with `--generalize default`: every guest item is
# changed in the clone's disk (read back by e2fsprogs' debugfs, a reader
# independent of libguestfs), files no item touches are unchanged, the
# job's report names each change, and the source chain is byte-identical.
source "$(dirname "$0")/lib.sh"
ext4_guest base.raw src-host
qemu-img convert -q -f raw -O qcow2 base.raw pool/src.qcow2
define_src src.qcow2
ck snapshot create src s1 >/dev/null
qio pool/src-vda-s1.qcow2 'write -P 0x63 40M 1M'  # after s1: not in the clone
sha256sum pool/* > source.sums
qemu-img convert -O raw pool/src.qcow2 s1.raw 2>/dev/null || true
out=$(ck vm clone src --snapshot s1 --name web_2 --no-start --generalize default --wait)
check "the clone job succeeded" grep -q "succeeded" <<<"$out"
job=$(ck job list --json 2>/dev/null | jq_ "max(j['id'] for j in d)")
ck job show "$job" > job.json
clone_disk=$(ck vm show web_2 | jq_ "d['disks'][0]['file']" 2>/dev/null || true)
[ -n "$clone_disk" ] || clone_disk=$(ls pool/web_2*.qcow2 | head -1)
qemu-img convert -O raw "$clone_disk" clone.raw
# The partition at 1 MiB, read by debugfs (no mount, no libguestfs).
dd if=clone.raw of=clonefs.img bs=1M skip=1 status=none
dd if=base.raw of=basefs.img bs=1M skip=1 status=none
cat_() { debugfs -R "cat $2" "$1" 2>/dev/null; }
ls_() { debugfs -R "ls -l $2" "$1" 2>/dev/null; }
check "/etc/machine-id is empty" test -z "$(cat_ clonefs.img /etc/machine-id)"
check "/var/lib/dbus/machine-id is gone" bash -c "! debugfs -R 'stat /var/lib/dbus/machine-id' clonefs.img 2>&1 | grep -q Inode:"
check "/etc/hostname names the clone" test "$(cat_ clonefs.img /etc/hostname)" = web-2
check "/etc/hosts names the clone, the comment stays" \
  test "$(cat_ clonefs.img /etc/hosts)" = "$(printf '127.0.0.1\tlocalhost\n127.0.1.1\tweb-2.example.org web-2\n# src-host stays in comments')"
for t in rsa ecdsa ed25519; do
  check "ssh_host_${t}_key is a new key (Debian makes none at boot)" \
    bash -c "[ \"\$(debugfs -R 'cat /etc/ssh/ssh_host_${t}_key' clonefs.img 2>/dev/null | sha256sum)\" != \"\$(debugfs -R 'cat /etc/ssh/ssh_host_${t}_key' basefs.img 2>/dev/null | sha256sum)\" ]"
  debugfs -R "cat /etc/ssh/ssh_host_${t}_key" clonefs.img 2>/dev/null > k; chmod 600 k
  debugfs -R "cat /etc/ssh/ssh_host_${t}_key.pub" clonefs.img 2>/dev/null > k.pub
  check "ssh_host_${t}_key.pub is the new key's public half" \
    test "$(ssh-keygen -y -f k | cut -d' ' -f1-2)" = "$(cut -d' ' -f1-2 k.pub)"
  check "ssh_host_${t}_key is mode 0600" bash -c "debugfs -R 'stat /etc/ssh/ssh_host_${t}_key' clonefs.img 2>/dev/null | grep -q 'Mode:  0600'"
done
check "cloud-init's instance state is gone, its seed stays" \
  test "$(ls_ clonefs.img /var/lib/cloud | awk 'NF>=9{print $NF}' | grep -v '^\.' | tr '\n' ' ')" = "seed "
check "the NoCloud seed has the clone's UUID as instance-id" \
  grep -qx "instance-id: $(ck vm show web_2 | jq_ "d['uuid']")" <(cat_ clonefs.img /var/lib/cloud/seed/nocloud/meta-data)
new_mac=$(ck vm show web_2 | jq_ "d['summary']['nics'][0]['mac'] if 'summary' in d else d['nics'][0]['mac']")
check "the NetworkManager profile names the clone's MAC (upper case, as it was)" \
  grep -qx "mac-address=${new_mac^^}" <(cat_ clonefs.img /etc/NetworkManager/system-connections/wired.nmconnection)
check "the udev rule names the clone's MAC" grep -q "ATTR{address}==\"$new_mac\"" <(cat_ clonefs.img /etc/udev/rules.d/70-persistent-net.rules)
check "the DHCP lease is gone" bash -c "! debugfs -R 'stat /var/lib/dhcp/dhclient.eth0.leases' clonefs.img 2>&1 | grep -q Inode:"
check "a file no item touches is unchanged" test "$(cat_ clonefs.img /root/notes.txt)" = "a file no item touches"
check "the source chain is byte-identical" sha256sum -c --quiet source.sums
# The report: one line per change, each naming its disk and file.
check "the report lists every guest file changed" python3 - job.json <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
got = {(c["item"], c["disk"], c["path"]) for c in j["identity_changes"]}
want = {("machine-id", "vda", "/etc/machine-id"), ("machine-id", "vda", "/var/lib/dbus/machine-id"),
        ("hostname", "vda", "/etc/hostname"), ("hostname", "vda", "/etc/hosts"),
        ("cloud-init", "vda", "/var/lib/cloud/instance"), ("cloud-init", "vda", "/var/lib/cloud/instances"),
        ("cloud-init", "vda", "/var/lib/cloud/data"), ("cloud-init", "vda", "/var/lib/cloud/sem"),
        ("cloud-init", "vda", "/var/lib/cloud/seed/nocloud/meta-data"),
        ("network-bindings", "vda", "/etc/NetworkManager/system-connections/wired.nmconnection"),
        ("network-bindings", "vda", "/etc/udev/rules.d/70-persistent-net.rules"),
        ("network-bindings", "vda", "/var/lib/dhcp/dhclient.eth0.leases")}
for t in ("rsa", "ecdsa", "ed25519"):
    want |= {("ssh-host-keys", "vda", f"/etc/ssh/ssh_host_{t}_key"), ("ssh-host-keys", "vda", f"/etc/ssh/ssh_host_{t}_key.pub")}
missing, extra = want - got, {g for g in got if g[1] and g not in want}
assert not missing and not extra, (missing, extra)
assert j["generalize"] == ["machine-id", "ssh-host-keys", "hostname", "cloud-init", "network-bindings",
                           "mac-addresses", "smbios-serial", "genid"], j["generalize"]
assert any(c["item"] == "mac-addresses" and c["path"] == "interface 1" for c in j["identity_changes"])
PY
finish
