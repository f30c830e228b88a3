#!/usr/bin/env bash
# Installs what clonekit needs to build and test on Debian 12 (run as root).
# (nbdfuse, a bench reference, comes with libnbd-bin.)
# Skips apt entirely when everything is already there.
set -euo pipefail
packages=(
  meson ninja-build pkg-config g++ clang libclang-rt-14-dev
  zlib1g-dev libzstd-dev liburing-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  qemu-utils python3 strace util-linux e2fsprogs
  nbdkit nbdkit-plugin-dev libnbd-dev libnbd-bin python3-libnbd
  libfuse3-dev fuse3
  libsqlite3-dev libxml2-dev uuid-dev libvirt-dev libvirt-clients libcpp-httplib-dev libcurl4-openssl-dev
  chromium fonts-dejavu-core
  # a real libvirtd running qemu under TCG (tests/e2e/manager-qemu.sh, the browser's shutdown failure)
  libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86
  # a real guest for the live tests (tests/e2e/live/guest.sh): Debian's kernel, busybox in an initramfs
  linux-image-amd64 busybox-static cpio kmod
  # a clone made a new machine inside (#15): libguestfs's appliance (it boots
  # linux-image-amd64), guestfish and real guest file systems for the tests,
  # ssh-keygen for new host keys, swtpm for an emulated TPM
  libguestfs-dev libguestfs0 libguestfs-xfs guestfish openssh-client xfsprogs lvm2 swtpm swtpm-tools
  # the manager's state shared by an active and a standby service (#16):
  # libpq, and a PostgreSQL server the tests start on loopback
  libpq-dev postgresql-15 postgresql-client-15
  # hosts as network namespaces in the tests, each with its own sshd
  openssh-server iproute2
  # the link between them captured (no plaintext on the wire), and its raw speed (bench)
  tcpdump iperf3
)
# The web console is built with Node.js (>= 20.19, for Vite 8). Debian 12's
# own nodejs is 18; a machine that has a newer one keeps it.
command -v node >/dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep >/dev/null 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "clonekit: missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "Installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The console's npm packages, exactly as web/package-lock.json pins them
# (from the npm registry; the browser tests use Debian's chromium, never a
# downloaded one).
web=$(cd "$(dirname "$0")/../web" && pwd)
if [ ! -f "$web/node_modules/.package-lock.json" ] || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  echo "Installing the web console's npm packages (npm ci)"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
fi
