#!/usr/bin/env bash
# Pools on another host, checked there over SSH (the host's own files: a
# directory that exists only in its mount namespace), its free space in
# `host list` (df over the same SSH as oracle), a pool shared by two hosts,
# the refusals (missing there, not a directory, host in use), and a clone
# into a pool on another host refused with one line (not made yet).
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/hosts/netns.sh"
start_manager_ns
start_host h2 2
on_h2() { in_mgr ssh root@10.77.2.2 "$@"; }
serve_in_mgr
ck host add h2 qemu+ssh://root@10.77.2.2/system >/dev/null

# /var/lib/libvirt is h2's own tmpfs: this directory exists only there.
on_h2 mkdir /var/lib/libvirt/far
check "the directory is not on this host" [ ! -e /var/lib/libvirt/far ]
check "pool add far (on h2)" ck pool add far /var/lib/libvirt/far --host h2
check "pool list says it is on h2" bash -c "'$CLONEKIT' pool list | grep -q '^far .*/var/lib/libvirt/far *h2$'"
read -r avail size < <(on_h2 df -B1 --output=avail,size /var/lib/libvirt/far | tail -1)
read -r free total < <(ck host list --json | jq_ "' '.join(str(p[k]) for h in d if h['name'] == 'h2' for p in h['pools'] for k in ('free_bytes', 'size_bytes'))")
within() { python3 -c "import sys; a, b = int(sys.argv[1]), int(sys.argv[2]); sys.exit(0 if abs(a - b) <= b // 100 else 1)" "$1" "$2"; }
check "host list: far's free space is h2's df ($avail)" within "$free" "$avail"
check "host list: far's size is h2's df ($size)" [ "$total" = "$size" ]

check "refused: a directory h2 does not have" \
  one_line_error "host h2: realpath: /var/lib/libvirt/nothere: No such file" ck pool add gone /var/lib/libvirt/nothere --host h2
on_h2 touch /var/lib/libvirt/afile
check "refused: a file" one_line_error "is not a directory on host h2" ck pool add afile /var/lib/libvirt/afile --host h2
check "refused: a host that is not there" one_line_error "no host 'h9'" ck pool add p9 /tmp --host h9
# The directory is an argument of realpath on h2, never shell text there.
check "a name with shell syntax is one argument" \
  one_line_error "No such file" ck pool add evil "/var/lib/libvirt/x';touch $WORK/pwned;'\$(touch $WORK/pwned2)" --host h2
check "... nothing it spelled ran on h2" [ ! -e "$WORK/pwned" ] && [ ! -e "$WORK/pwned2" ]
check "a path with a backslash is refused before any SSH" \
  one_line_error "without control characters or" ck pool add bs '/var/lib/libvirt/a\b' --host h2
on_h2 mkdir /var/lib/libvirt/far/sub
check "refused: inside a pool on the same host" one_line_error "is inside pool 'far'" ck pool add sub /var/lib/libvirt/far/sub --host h2

# Shared: the same path on both (the namespaces share this file system).
mkdir shared
check "pool add both (local and h2)" ck pool add both "$WORK/shared" --host local --host h2
check "... listed on both hosts" [ "$(ck host list --json | jq_ "sorted(h['name'] for h in d for p in h['pools'] if p['name'] == 'both')")" = "['h2', 'local']" ]
check "... and the check it wrote there is gone" [ -z "$(ls -A shared)" ]
# The same path on both, but each its own storage (h2's /var/lib/libvirt is its own tmpfs).
SEP=/var/lib/libvirt/ck-sep-$$
mkdir -p "$SEP"
cleanup_fns+=("rmdir $SEP")
on_h2 mkdir "$SEP"
check "the same path on two hosts' own disks is not a shared pool" \
  one_line_error "is not the same storage as on host" ck pool add sep "$SEP" --host local --host h2
both_empty() { [ -z "$(ls -A "$SEP")" ] && [ -z "$(on_h2 ls -A "$SEP")" ]; }
check "... nothing is left in either directory" both_empty

check "host remove h2 is refused while it holds pools" one_line_error "holds pool" ck host remove h2

# A clone into a pool on h2 is refused, naming it (cross-host clones: next).
mkdir pool
ck pool add main "$WORK/pool" >/dev/null
qemu-img create -q -f qcow2 pool/v1-base.qcow2 16M
qemu-img create -q -f qcow2 -b "$WORK/pool/v1-base.qcow2" -F qcow2 pool/v1.qcow2
ck vm import v1 "$WORK/pool/v1.qcow2" >/dev/null
check "a clone into far is refused, naming the host" \
  one_line_error "pool 'far' is not on this host (it is on h2)" ck vm clone v1 --snapshot v1-base --disk vda=pool:far --no-start
stop_svc
check "service log has no crash" sanitizer_clean serve.log
finish
