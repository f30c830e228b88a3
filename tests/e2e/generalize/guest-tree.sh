#!/usr/bin/env bash
# guest-tree.sh DIR HOSTNAME MAC: a minimal Linux tree with every file a
# generalize item touches (os-release, machine-id, SSH host keys made by
# ssh-keygen, hostname, cloud-init state and a NoCloud seed, a
# NetworkManager profile and a udev rule naming MAC, a DHCP lease) and one
# no item touches (/root/notes.txt). Used by tests/e2e/generalize and
# bench/generalize.sh.
set -euo pipefail
d=$1 SRC_MAC=$3
mkdir -p "$d"/{etc/ssh,etc/NetworkManager/system-connections,etc/udev/rules.d,var/lib/dbus,var/lib/dhcp,bin,usr/bin,root}
mkdir -p "$d"/var/lib/cloud/{instances/iid-src/sem,data,sem,seed/nocloud}
cat > "$d/etc/os-release" <<'OS'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
ID=debian
OS
echo 12.8 > "$d/etc/debian_version"
printf '/dev/sda1 / ext4 defaults 0 1\n' > "$d/etc/fstab"
echo 0123456789abcdef0123456789abcdef > "$d/etc/machine-id"
echo 0123456789abcdef0123456789abcdef > "$d/var/lib/dbus/machine-id"
echo "$2" > "$d/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s.example.org %s\n# %s stays in comments\n' "$2" "$2" "$2" > "$d/etc/hosts"
for t in rsa ecdsa ed25519; do ssh-keygen -q -t $t -N '' -C "root@$2" -f "$d/etc/ssh/ssh_host_${t}_key"; done
echo 'Port 22' > "$d/etc/ssh/sshd_config"
cat > "$d/etc/NetworkManager/system-connections/wired.nmconnection" <<NM
[connection]
id=wired
type=ethernet
[ethernet]
mac-address=${SRC_MAC^^}
[ipv4]
method=auto
NM
chmod 600 "$d/etc/NetworkManager/system-connections/wired.nmconnection"
echo "SUBSYSTEM==\"net\", ACTION==\"add\", ATTR{address}==\"$SRC_MAC\", NAME=\"eth0\"" \
  > "$d/etc/udev/rules.d/70-persistent-net.rules"
printf 'lease {\n  fixed-address 192.168.122.50;\n}\n' > "$d/var/lib/dhcp/dhclient.eth0.leases"
ln -s /var/lib/cloud/instances/iid-src "$d/var/lib/cloud/instance"
echo iid-src > "$d/var/lib/cloud/data/instance-id"
touch "$d/var/lib/cloud/instances/iid-src/sem/config_ssh" "$d/var/lib/cloud/instances/iid-src/boot-finished"
printf 'instance-id: iid-src\nlocal-hostname: %s\n' "$2" > "$d/var/lib/cloud/seed/nocloud/meta-data"
echo 'a file no item touches' > "$d/root/notes.txt"
