# Shared by the security scripts (sourced): a real `clonekit serve` on a
# real SQLite file and libvirt's test driver, a pool, and request helpers.
# Each script checks one class of attack from issue #12.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# Debian's python (a user-local one may not be readable by the test users),
# and the helper copied where they can read it.
cp "$E2E_DIR/http_req.py" "$WORK/http_req.py" && chmod 755 "$WORK/http_req.py"
REQ="/usr/bin/python3 $WORK/http_req.py"
PORT=$((20000 + RANDOM % 20000))
SOCK=$WORK/api.sock
TOKEN_FILE=$WORK/token
export CLONEKIT_SOCKET=$SOCK
chmod 755 "$WORK"  # unprivileged test users reach the socket's directory
ck() { "$CLONEKIT" "$@"; }
start_service() {  # start_service [serve options]
  "$CLONEKIT" serve --db "$WORK/state.db" --port "$PORT" --socket "$SOCK" --hypervisor test:///default \
    --shutdown-timeout 3 "$@" 2>>serve.log &
  SVC=$!
  cleanup_fns+=("kill -9 $SVC 2>/dev/null")
  for _ in $(seq 1 100); do [ -S "$SOCK" ] && unix GET /api/v1/health | grep -q '^200 ' && return 0; sleep 0.05; done
  echo "service did not start"; cat serve.log; return 1
}
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
