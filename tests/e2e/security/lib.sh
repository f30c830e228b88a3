# Shared by the security scripts (sourced): a real `clonekit serve` on a
# real SQLite file and libvirt's test driver, a pool, and request helpers.
# Each script checks one class of attack from issue #12.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# Debian's python (a user-local one may not be readable by the test users),
# and the helper copied where they can read it.
cp "$E2E_DIR/http_req.py" "$WORK/http_req.py" && chmod 755 "$WORK/http_req.py"
REQ="/usr/bin/python3 $WORK/http_req.py"
PORT=$(free_port)
SOCK=$WORK/api.sock
TOKEN_FILE=$WORK/token
export CLONEKIT_SOCKET=$SOCK
chmod 755 "$WORK"  # unprivileged test users reach the socket's directory
start_service() { serve_on test:///default "$@"; }  # start_service [serve options]
stop_service() { kill "$SVC"; wait "$SVC" 2>/dev/null || true; }
unix() { $REQ --unix "$SOCK" "$@"; }                       # as root, on the socket
tcp() { $REQ --tcp "127.0.0.1:$PORT" --token-file "$TOKEN_FILE" "$@"; }  # with the token
code() { cut -d' ' -f1; }
# as_nobody CMD...: run as uid/gid 65534 with no groups.
as_nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
one_line_error() {  # the last $err is one line containing $1 and $st is non-zero
  [ "$st" -ne 0 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && [[ "$err" == *"$1"* ]]
}
# status_is EXPECTED REPLY [TEXT]: the reply's code, and text in it
status_is() { [ "${2%% *}" = "$1" ] && [[ "$2" == *"${3:-}"* ]] || { echo "  got: $2"; return 1; }; }
mkdir pool
# domain_xml NAME DEVICES [EXTRA]: a test-driver definition with these
# devices and extra top-level elements.
domain_xml() {
  local os="<os><type>hvm</type></os>"
  [[ "${3:-}" == *"<os>"* ]] && os=
  echo "<domain type='test'><name>$1</name><memory unit='MiB'>64</memory>${3:-}$os<devices>$2</devices></domain>"
}
disk_xml() {  # disk_xml FILE [TARGET]
  echo "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$1'/><target dev='${2:-vda}' bus='virtio'/></disk>"
}
# define_json XML [NAMESPACE]: the POST /api/v1/vms body.
define_json() { python3 -c 'import json,sys; print(json.dumps({"xml": sys.argv[1], "namespace": sys.argv[2]}))' "$1" "${2:-default}"; }
define() { unix POST /api/v1/vms "$(define_json "$@")"; }
vm_count() { unix GET /api/v1/vms | cut -d' ' -f2- | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
job_state() { ck job show "$1" | jq_ "d['state']"; }
wait_end() { for _ in $(seq 1 600); do case "$(job_state "$1")" in queued|running) sleep 0.05 ;; *) return 0 ;; esac; done; }
