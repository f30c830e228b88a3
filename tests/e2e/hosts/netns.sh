# Hosts as network namespaces on this machine (sourced after ../lib.sh).
#
# start_manager_ns: namespace $MGR_NS, where the service runs (the host
#   'local'); its end of every link is 10.77.N.1.
# start_host NAME N: namespace ck<NAME>$$ holding "host" NAME: a veth link
#   to the manager's namespace (10.77.N.1 <-> 10.77.N.2, a private /24 that
#   exists only inside the two namespaces: nothing leaves this machine),
#   and, in its own mount and UTS namespaces (host name NAME, private
#   /run/libvirt and /var/lib/libvirt), its own libvirtd and sshd. Root's
#   key for it is $WORK/ssh/id; its host key is in $WORK/ssh/known_hosts.
# in_mgr CMD...: runs CMD in the manager's namespace, with `ssh` reading
#   $WORK/ssh/config (the admin's keys and known hosts: OpenSSH reads
#   root's own files otherwise), as libvirt's qemu+ssh transport runs it.
# Skips (77) where the kernel forbids namespaces or a tool is missing.
for tool in ip unshare sshd libvirtd virsh ssh-keygen; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "SKIP: $tool not installed"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: namespaces need root"; exit 77; }

MGR_NS=ckmgr$$
TEST_NS=()  # every namespace this test made
start_manager_ns() {
  ip netns add "$MGR_NS" 2>netns.err || { echo "SKIP: cannot make a network namespace here: $(cat netns.err)"; exit 77; }
  TEST_NS+=("$MGR_NS")
  cleanup_fns+=("end_netns $MGR_NS")
  ip -n "$MGR_NS" link set lo up
  # (it routes between the hosts' links, as a switch would: h2 reaches h3)
  ip netns exec "$MGR_NS" sysctl -qw net.ipv4.ip_forward=1
  mkdir -p "$WORK/ssh" "$WORK/bin"
  ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/id"
  : >"$WORK/ssh/known_hosts"
  cat >"$WORK/ssh/config" <<CFG
Host *
  IdentityFile $WORK/ssh/id
  UserKnownHostsFile $WORK/ssh/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 4
CFG
  printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$WORK/ssh/config" >"$WORK/bin/ssh"
  chmod +x "$WORK/bin/ssh"
}

in_mgr() { ip netns exec "$MGR_NS" env PATH="$WORK/bin:$PATH" "$@"; }

# end_netns NS: every process left in it (a host's daemons, its qemu and
# exports; a service) is killed, then the namespace goes.
end_netns() {
  ip netns pids "$1" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns del "$1"
}

# pgrep_here PATTERN: pgrep -f PATTERN among the processes of this test's
# namespaces only. Tests run side by side, and their hosts share the
# machine's PID space (and /tmp: each host's sessions get TMPDIR=its tmp/).
pgrep_here() {
  local ns mine
  mine=$(for ns in "${TEST_NS[@]}"; do ip netns pids "$ns"; done)
  pgrep -f "$1" | grep -Fx -e "${mine:-none}"
}

# ns_of NAME, veth_of NAME N: host NAME's namespace and its end of the link.
ns_of() { echo "ck$1$$"; }
veth_of() { echo "ckh$2-$$"; }

# start_link NAME N: host NAME's namespace and its link only (no daemons);
#   the other hosts' links are reached through the manager's namespace.
start_link() {
  local name=$1 n=$2 ns=ck$1$$
  ip netns add "$ns"
  TEST_NS+=("$ns")
  cleanup_fns+=("end_netns $ns")
  ip link add "ckm$n-$$" type veth peer name "ckh$n-$$"
  ip link set "ckm$n-$$" netns "$MGR_NS"
  ip link set "ckh$n-$$" netns "$ns"
  ip -n "$MGR_NS" addr add "10.77.$n.1/24" dev "ckm$n-$$"
  ip -n "$ns" addr add "10.77.$n.2/24" dev "ckh$n-$$"
  ip -n "$MGR_NS" link set "ckm$n-$$" up
  ip -n "$ns" link set "ckh$n-$$" up
  ip -n "$ns" link set lo up
  ip -n "$ns" route add 10.77.0.0/16 via "10.77.$n.1"
}

start_host() {  # start_host NAME N
  local name=$1 n=$2 ns=ck$1$$ dir=$WORK/host-$1
  mkdir -p "$dir/tmp"
  start_link "$name" "$n"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
  cp "$WORK/ssh/id.pub" "$dir/authorized_keys"
  echo "10.77.$n.2 $(cut -d' ' -f1,2 "$dir/host_key.pub")" >>"$WORK/ssh/known_hosts"
  cat >"$dir/sshd_config" <<CFG
ListenAddress 10.77.$n.2
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SetEnv TMPDIR=$dir/tmp
CFG
  cat >"$dir/start.sh" <<SH
set -e
hostname $name
mount -t tmpfs tmpfs /run/libvirt
mount -t tmpfs tmpfs /var/lib/libvirt
for d in /etc/libvirt/qemu /var/log/libvirt /var/cache/libvirt; do mkdir -p \$d && mount -t tmpfs tmpfs \$d; done
mkdir -p /run/sshd
virtlogd -d --pid-file $dir/virtlogd.pid
libvirtd -d --pid-file $dir/libvirtd.pid
/usr/sbin/sshd -f $dir/sshd_config
echo \$\$ >$dir/holder.pid
exec sleep infinity
SH
  mkdir -p /run/libvirt /var/lib/libvirt
  ip netns exec "$ns" unshare --mount --uts --propagation private bash "$dir/start.sh" >"$dir/start.log" 2>&1 &
  disown  # (ended by end_netns: no "Killed" line from this shell)
  cleanup_fns+=("kill \$(cat $dir/sshd.pid $dir/libvirtd.pid $dir/virtlogd.pid $dir/holder.pid 2>/dev/null) 2>/dev/null")
  for _ in $(seq 1 100); do
    in_mgr virsh -c "qemu+ssh://root@10.77.$n.2/system" hostname >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "host $name did not answer over qemu+ssh"; cat "$dir/start.log"; return 1
}

# on_host NAME CMD...: CMD in host NAME's mount namespace (its own
# /var/lib/libvirt), from this machine: works while its link is down.
on_host() { nsenter -t "$(cat "$WORK/host-$1/holder.pid")" -m -n -- "${@:2}"; }

# link NAME N up|down: host NAME's end of its link. Down, the host
# vanishes as a powered-off one does: the manager's packets go out and
# nothing answers (its own end and route stay).
link() { ip -n "ck$1$$" link set "ckh$2-$$" "$3"; }

# serve_in_mgr: the service in the manager's namespace (no hypervisor of
# its own unless given), its socket $WORK/api.sock for ck; $SVC.
export CLONEKIT_SOCKET=$WORK/api.sock
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
serve_in_mgr() {  # serve_in_mgr [SERVE OPTIONS...]; its TCP port: $SVC_PORT
  SVC_PORT=$(free_port)
  rm -f "$WORK/svc.pid"
  # (`ip netns exec` forks: the service's own pid comes from the shell it replaces)
  in_mgr bash -c 'echo $$ >"$0"; exec "$@"' "$WORK/svc.pid" "$CLONEKIT" serve --db "$WORK/state.db" \
    --token-file "$WORK/token" --port "$SVC_PORT" --socket "$WORK/api.sock" "$@" >/dev/null 2>>serve.log &
  for _ in $(seq 1 100); do [ -s "$WORK/svc.pid" ] && break; sleep 0.02; done
  SVC=$(cat "$WORK/svc.pid")
  cleanup_fns+=("kill -9 $SVC 2>/dev/null")
  for _ in $(seq 1 100); do ck host list >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "service did not start"; cat serve.log; return 1
}
# stop_svc [SIGNAL]: the service ends (SIGTERM unless given); waits for it.
stop_svc() {
  kill "-${1:-TERM}" "$SVC" 2>/dev/null || true
  for _ in $(seq 1 200); do kill -0 "$SVC" 2>/dev/null || return 0; sleep 0.05; done
  echo "service $SVC did not stop"; return 1
}

# with_h2 [SERVE OPTIONS...]: the setup of the cross-host clone scripts:
# the service (its own --hypervisor: the test driver), host h2 added by
# qemu+ssh, pool 'far' on h2 only (/var/lib/libvirt/far, in h2's own
# mount namespace) and pool 'main' here ($WORK/pool).
H2=qemu+ssh://root@10.77.2.2/system
with_h2() {
  start_manager_ns
  start_host h2 2
  serve_in_mgr --hypervisor test:///default "$@"
  ck host add h2 "$H2" >/dev/null
  on_host h2 mkdir /var/lib/libvirt/far
  ck pool add far /var/lib/libvirt/far --host h2 >/dev/null
  mkdir -p "$WORK/pool"
  ck pool add main "$WORK/pool" >/dev/null
}

# with_h3: host h3 too (10.77.3.2, qemu+ssh), its pool 'far3'
# (/var/lib/libvirt/far3 in its own mount namespace).
H3=qemu+ssh://root@10.77.3.2/system
with_h3() {
  start_host h3 3
  ck host add h3 "$H3" >/dev/null
  on_host h3 mkdir /var/lib/libvirt/far3
  ck pool add far3 /var/lib/libvirt/far3 --host h3 >/dev/null
}

# vm_on_h2 [SIZE_MIB]: VM 'c1' on h2, not running: cloned there from 'v1'
# here, its disk far/c1-vda.qcow2 (SIZE_MIB, default 64) holding the
# marker text of marker.bin in its first 8 MiB.
vm_on_h2() {
  python3 -c "import sys; sys.stdout.write(('CLONEKIT-PLAINTEXT-MARKER-51c2e8\\n' * 40000)[:1 << 20])" >marker.bin
  qemu-img create -q -f qcow2 pool/v1.qcow2 "${1:-64}M"
  for m in 0 1 2 3 4 5 6 7; do qemu-io -f qcow2 -c "write -s marker.bin ${m}M 1M" pool/v1.qcow2 >/dev/null; done
  ck vm import v1 "$WORK/pool/v1.qcow2" >/dev/null
  ck vm clone v1 --name c1 --host h2 --disk vda=pool:far --no-start --wait >/dev/null
}


# capture_link NAME N PORTS: tcpdump of host NAME's end of its link, TCP on
# PORTS (FIRST-LAST), into link.pcap; end_capture stops it (all written).
capture_link() {
  ip netns exec "$(ns_of "$1")" tcpdump -i "$(veth_of "$1" "$2")" -s 0 -B 65536 -U -w link.pcap tcp portrange "$3" \
    2>tcpdump.err &
  DUMP=$!
  cleanup_fns+=("kill $DUMP 2>/dev/null")
  for _ in $(seq 1 100); do grep -q "listening on" tcpdump.err 2>/dev/null && break; sleep 0.05; done
}
end_capture() { sleep 0.3; kill "$DUMP"; wait "$DUMP" 2>/dev/null || true; }

# start_job PCT CLONE-ARGS...: a clone job started (--json), and waited for
# until its copy is at PCT % or more; $JOB; field NAME: the job's field.
start_job() {
  local pct=$1
  shift
  ck vm clone "$@" --json >clone.json
  JOB=$(jq_ "d['id']" <clone.json)
  for _ in $(seq 1 100); do [ "$(field percent | cut -d. -f1)" -ge "$pct" ] && break; sleep 0.1; done
}
field() { ck job show "$JOB" | jq_ "d['$1']"; }
