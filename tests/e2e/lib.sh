# Shared helpers for the end-to-end scripts (sourced). Each script runs in
# its own temporary directory, removed on exit, and uses the real qemu-img
# and qemu-io to build chains: qemu's own reading is the oracle.
set -euo pipefail

: "${CLONEKIT:?CLONEKIT must point to the clonekit binary}"
CLONEKIT=$(readlink -f "$CLONEKIT")
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POKE="python3 $E2E_DIR/qcow2poke.py"

for tool in qemu-img qemu-io; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/clonekit-e2e.XXXXXX")
cleanup_fns=()
cleanup() {  # last registered first: a VM is destroyed before its libvirtd stops
  local i
  for ((i = ${#cleanup_fns[@]} - 1; i >= 0; i--)); do eval "${cleanup_fns[i]}" || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
# Debian's python3 first: the scripts run it for every JSON field they
# read, and a version manager's shim in PATH (pyenv) costs ~0.4 s a call
# (60 ms for Debian's), enough to miss a copy the checks act on mid-way.
if [ -x /usr/bin/python3 ]; then
  mkdir -p "$WORK/.python"
  ln -s /usr/bin/python3 "$WORK/.python/python3"
  PATH=$WORK/.python:$PATH
fi

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
check() {  # check "description" command...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# ck ARGS...: the CLI as a client. Under the sanitizers its leak check at
# exit is off: LeakSanitizer scans the whole heap at every exit (a call on
# the ASan build: 0.44 s with it, 0.35 without), and the scripts make
# hundreds of calls. The service and the engine's commands keep theirs.
ck() { ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 "$CLONEKIT" "$@"; }

# free_port: a TCP port nothing listens on now (the kernel's choice).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# one_line_error PATTERN CMD...: CMD exits 1 with one line matching *PATTERN*.
one_line_error() {
  local pattern=$1 out st; shift
  out=$("$@" 2>&1) && st=0 || st=$?
  [ "$st" = 1 ] && [ "$(wc -l <<<"$out")" = 1 ] && [[ "$out" == *$pattern* ]] || { echo "got ($st): $out"; return 1; }
}

# qio IMG CMD...: run qemu-io commands on a qcow2 image quietly.
qio() {
  local img=$1; shift
  local args=()
  for c in "$@"; do args+=(-c "$c"); done
  qemu-io -f qcow2 "${args[@]}" "$img" >/dev/null
}

# Per-byte classification of a qemu-img-map-style JSON list, merged, so two
# maps compare equal when every byte has the same depth/present/zero/data
# (and offset, when both give one).
map_norm() {
  python3 - "$1" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
out = []
for r in rows:
    key = (r["depth"], r["present"], r["zero"], r["data"])
    off = r.get("offset")
    if out and out[-1][2] == key and out[-1][0] + out[-1][1] == r["start"] and \
       ((out[-1][3] is None and off is None) or
        (out[-1][3] is not None and off is not None and out[-1][3] + out[-1][1] == off)):
        out[-1][1] += r["length"]
    else:
        out.append([r["start"], r["length"], key, off])
for s, l, k, o in out:
    print(s, l, *k, o)
PY
}

# info_same QEMU.json OURS.json: every field we print equals qemu's; qemu
# may additionally list internal snapshots and bitmaps, which we do not read.
info_same() {
  python3 - "$1" "$2" <<'PY'
import json, sys
q, c = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
def same(a, b, path):
    if isinstance(a, dict):
        extra = set(a) - set(b) - {"snapshots", "bitmaps"}
        if extra or set(b) - set(a):
            sys.exit(f"{path}: keys differ: qemu-only {extra}, ours-only {set(b) - set(a)}")
        for k in b:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        if len(a) != len(b):
            sys.exit(f"{path}: {len(a)} vs {len(b)} entries")
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    elif a != b:
        sys.exit(f"{path}: qemu {a!r} vs ours {b!r}")
same(q, c, "info")
PY
}

# oracle_check IMG LABEL [nomap]: collapse IMG both ways and compare with qemu.
oracle_check() {
  local img=$1 label=$2 map=${3:-map}
  rm -f ref.raw ours.raw ours.qcow2 ours-z.qcow2 q.map c.map
  qemu-img convert -O raw "$img" ref.raw
  if "$CLONEKIT" collapse "$img" ours.raw && cmp -s ref.raw ours.raw; then
    pass "$label: raw output equals qemu-img convert -O raw"
  else
    fail "$label: raw output differs from qemu-img convert -O raw"
  fi
  qemu-img map --output=json "$img" > q.json
  "$CLONEKIT" map --output=json "$img" > c.json
  if [ "$map" = nomap ]; then
    :
  elif [ "$(map_norm q.json)" = "$(map_norm c.json)" ]; then
    pass "$label: map equals qemu-img map per byte"
  else
    fail "$label: map differs from qemu-img map"; diff <(map_norm q.json) <(map_norm c.json) | head -5
  fi
  qemu-img info --backing-chain --output=json "$img" > qi.json
  "$CLONEKIT" info --backing-chain --output=json "$img" > ci.json
  if info_same qi.json ci.json; then
    pass "$label: info --backing-chain --output=json equals qemu-img info"
  else
    fail "$label: info differs from qemu-img info"
  fi
  if "$CLONEKIT" collapse -O qcow2 "$img" ours.qcow2 && qemu-img check -q ours.qcow2 &&
     qemu-img compare -q ref.raw ours.qcow2 && [ -z "$(qemu-img info --output=json ours.qcow2 | grep backing)" ]; then
    pass "$label: qcow2 output passes check and compares equal"
  else
    fail "$label: qcow2 output check/compare"
  fi
}

# Starts `clonekit collapse SRC DEST [args]` in the background and stops it
# (SIGSTOP) once its temporary output exists, i.e. mid-copy with the source
# locked. Sets BG_PID. The chain must be large enough to take a while.
start_stopped_collapse() {
  local src=$1 dest=$2; shift 2
  "$CLONEKIT" collapse "$@" "$src" "$dest" >bg.out 2>bg.err &
  BG_PID=$!
  cleanup_fns+=("kill -9 $BG_PID 2>/dev/null")
  local dir base
  dir=$(dirname "$dest"); base=$(basename "$dest")
  for _ in $(seq 1 2000); do
    if compgen -G "$dir/.$base.clonekit-*" >/dev/null; then
      kill -STOP "$BG_PID"
      return 0
    fi
    kill -0 "$BG_PID" 2>/dev/null || break
    sleep 0.005
  done
  echo "collapse did not start or finished too soon"; return 1
}

# make_big IMG SIZE: a qcow2 image full of data (slow enough to interrupt).
make_big() {
  qemu-img create -q -f qcow2 "$1" "$2"
  qemu-io -f qcow2 -c "write -P 0x5a 0 $2" "$1" >/dev/null
}

# --- NBD and FUSE helpers ----------------------------------------------------

SYS_PYTHON=/usr/bin/python3  # python3-libnbd lives in Debian's python

# nbdkit_bg SOCKET ARGS...: starts nbdkit (options in NBDKIT_OPTS) with our plugin on a Unix socket,
# in the foreground of a background job (NBDKIT_PID), its stderr in
# nbdkit.SOCKET.log, and waits for the socket. Under the sanitizer build the
# plugin needs the sanitizer runtime preloaded into nbdkit.
nbdkit_bg() {
  local sock=$1; shift
  : "${PLUGIN:?PLUGIN must point to nbdkit-clonekit-plugin.so}"
  rm -f "$sock"
  env ${NBDKIT_PRELOAD:+LD_PRELOAD=$NBDKIT_PRELOAD} ASAN_OPTIONS=detect_leaks=0:quarantine_size_mb=16 \
    nbdkit -f --exit-with-parent ${NBDKIT_OPTS:-} -U "$sock" "$PLUGIN" "$@" 2>"nbdkit.$(basename "$sock").log" &
  NBDKIT_PID=$!
  cleanup_fns+=("kill $NBDKIT_PID 2>/dev/null")
  for _ in $(seq 1 500); do
    [ -S "$sock" ] && return 0
    kill -0 "$NBDKIT_PID" 2>/dev/null || break
    sleep 0.01
  done
  echo "nbdkit did not start:"; cat "nbdkit.$(basename "$sock").log"; return 1
}

# nbd_uri SOCKET EXPORT
nbd_uri() { echo "nbd+unix:///$2?socket=$1"; }

# ofd_read_locks FILE: the offsets of the OFD read locks held on FILE
# (qemu's scheme: 100 = consistent read, 201/203 = no write, no resize).
ofd_read_locks() {
  grep -E "OFDLCK +ADVISORY +READ .*:$(stat -c %i "$1") " /proc/locks | awk '{print $(NF-1)}' | sort -n | tr '\n' ' '
}
# write_lock_refused FILE: qemu-io cannot open FILE for writing because of a lock.
write_lock_refused() { ! qemu-io -f qcow2 -c 'write 0 512' "$1" >qerr 2>&1 && grep -q 'Failed to get "write" lock' qerr; }
# start_qemu_writer FILE SOCK: qemu-nbd serving FILE read-write, like a
# running VM; its pid in WRITER_PID.
start_qemu_writer() {
  qemu-nbd -f qcow2 -k "$2" "$1" &
  WRITER_PID=$!
  cleanup_fns+=("kill $WRITER_PID 2>/dev/null; wait $WRITER_PID 2>/dev/null")
  for _ in $(seq 1 200); do [ -S "$2" ] && break; sleep 0.05; done
}

# sanitizer_clean LOG: no sanitizer report in a server's stderr.
sanitizer_clean() { ! grep -qE 'runtime error|AddressSanitizer|LeakSanitizer' "$1"; }

# same_reads A B COUNT SIZE: COUNT random reads (and the last sector) through
# qemu-io from A (an NBD URI) and B (a raw file) give the same bytes.
same_reads() {
  local a=$1 b=$2 count=$3 size=$4 cmds=() off
  for _ in $(seq 1 "$count"); do
    off=$(( (RANDOM * 32768 + RANDOM) % (size / 512) * 512 ))
    cmds+=(-c "read -v $off $(( size - off < 4096 ? size - off : 4096 ))")
  done
  cmds+=(-c "read -v $((size - 512)) 512")
  diff -q <(qemu-io -r -f raw "${cmds[@]}" "$a" | grep -E '^[0-9a-f]{8}:') \
          <(qemu-io -r -f raw "${cmds[@]}" "$b" | grep -E '^[0-9a-f]{8}:') >/dev/null
}

# stop_nbdkit PID: SIGTERM, and the server must be gone within 10 s. Under
# the sanitizer build nbdkit can deadlock in its exit handlers (glibc's
# locale lock, taken by libp11-kit's destructor; seen only with the ASan
# runtime preloaded): there it is killed and noted, not failed.
stop_nbdkit() {
  local pid=$1
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid" 2>/dev/null || true
    if [ -n "${NBDKIT_PRELOAD:-}" ]; then
      echo "note: nbdkit (ASan runtime preloaded) hung at exit; killed"
    else
      fail "nbdkit exits within 10 s of SIGTERM"
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

# start_libvirtd: a system libvirtd (qemu:///system) without systemd, as in
# reference/environment.md, started here unless one answers already; says
# why and returns 1 where that cannot be (callers skip).
start_libvirtd() {
  local tool
  for tool in libvirtd virtlogd qemu-system-x86_64 virsh; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed (libvirt-daemon-driver-qemu, qemu-system-x86)"; return 1; }
  done
  [ "$(id -u)" = 0 ] || { echo "SKIP: needs root to run libvirtd"; return 1; }
  if ! virsh -c qemu:///system version >/dev/null 2>&1; then
    mkdir -p /var/log/libvirt /var/run/libvirt /var/lib/libvirt
    getent passwd libvirt-qemu >/dev/null || useradd -r -M -s /usr/sbin/nologin libvirt-qemu
    getent group kvm >/dev/null || groupadd -r kvm
    grep -q '^user = "root"' /etc/libvirt/qemu.conf || printf 'user = "root"\ngroup = "root"\n' >> /etc/libvirt/qemu.conf
    virtlogd -d; libvirtd -d
    cleanup_fns+=('kill $(cat /run/libvirtd.pid) $(cat /run/virtlogd.pid) 2>/dev/null')  # (no newline in the pid files)
    for _ in $(seq 1 100); do virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  virsh -c qemu:///system version >/dev/null 2>&1 || { echo "SKIP: libvirtd does not answer here"; return 1; }
}

# serve_on URI [serve options]: `clonekit serve` on $WORK/state.db, TCP port
# $PORT and the socket $WORK/api.sock, with hypervisor URI, in the
# background ($SVC, killed at exit); returns once it answers on the socket.
serve_on() {
  local uri=$1; shift
  "$CLONEKIT" serve --db "$WORK/state.db" --port "$PORT" --socket "$WORK/api.sock" --hypervisor "$uri" \
    --shutdown-timeout 3 "$@" 2>>serve.log &
  SVC=$!
  cleanup_fns+=("kill -9 $SVC 2>/dev/null")
  for _ in $(seq 1 100); do
    [ -S "$WORK/api.sock" ] && CLONEKIT_SOCKET=$WORK/api.sock "$CLONEKIT" pool list >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "service did not start"; cat serve.log; return 1
}
