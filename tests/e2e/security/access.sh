#!/usr/bin/env bash
# Class 1, who may call the service: the Unix socket is the door (root and
# group clonekit, checked by the kernel and by the peer's credentials); TCP,
# loopback included, always needs the token from the 0600 token file; pool
# changes need root on the socket; bodies must be application/json.
source "$(dirname "$0")/lib.sh"
# A group clonekit for the duration (removed after, unless it was there).
if ! getent group clonekit >/dev/null; then groupadd -r clonekit && cleanup_fns+=("groupdel clonekit"); fi
GID=$(getent group clonekit | cut -d: -f3)
as_member() { setpriv --reuid 65534 --regid 65534 --groups "$GID" "$@"; }
start_service

check "TCP without a token: 401, loopback too" status_is 401 "$($REQ --tcp 127.0.0.1:$PORT GET /api/v1/vms)"
check "TCP without a token, as uid 65534: 401" status_is 401 "$(as_nobody $REQ --tcp 127.0.0.1:$PORT GET /api/v1/vms)"
check "TCP with a wrong token: 401" status_is 401 "$($REQ --tcp 127.0.0.1:$PORT -H 'Authorization: Bearer nope' GET /api/v1/vms)"
check "TCP with the token: 200" status_is 200 "$(tcp GET /api/v1/vms)"
check "the token file was made at the first start, mode 600" [ "$(stat -c '%a %U' "$TOKEN_FILE")" = "600 root" ]
check "the database and its WAL are mode 600" [ "$(stat -c %a state.db state.db-wal | sort -u)" = 600 ]
check "the token is on no command line" bash -c "! grep -qaF '$(cat "$TOKEN_FILE")' /proc/$SVC/cmdline"
check "the socket is 660 root:clonekit" [ "$(stat -c '%a %U:%G' "$SOCK")" = "660 root:clonekit" ]
check "uid 65534 cannot connect to the socket" status_is 000 "$(as_nobody $REQ --unix "$SOCK" GET /api/v1/vms)"
chmod 666 "$SOCK"  # a loosened socket: the peer check still refuses
check "with the socket opened to all, uid 65534 is refused by its credentials: 403" \
  status_is 403 "$(as_nobody $REQ --unix "$SOCK" GET /api/v1/vms)" "group clonekit"
chmod 660 "$SOCK"
check "a member of group clonekit may use the socket" status_is 200 "$(as_member $REQ --unix "$SOCK" GET /api/v1/vms)"
check "... but not add a pool (403)" \
  status_is 403 "$(as_member $REQ --unix "$SOCK" POST /api/v1/pools "{\"name\":\"p\",\"dir\":\"$WORK/pool\"}")" "needs root"
check "TCP with the token cannot add a pool (403)" \
  status_is 403 "$(tcp POST /api/v1/pools "{\"name\":\"p\",\"dir\":\"$WORK/pool\"}")" "needs root"
check "root on the socket adds a pool (the CLI's default door)" ck pool add main "$WORK/pool"
mkdir -p pool/inner outer dbdir
err=$(ck pool add root / 2>&1) && st=0 || st=$?
check "'/' cannot be a pool" one_line_error "'/' cannot be a pool"
err=$(ck pool add inner "$WORK/pool/inner" 2>&1) && st=0 || st=$?
check "a pool inside a pool is refused" one_line_error "is inside pool 'main'"
mkdir -p outer/p2 && ck pool add p2 "$WORK/outer/p2" >/dev/null
err=$(ck pool add outer "$WORK/outer" 2>&1) && st=0 || st=$?
check "a directory containing a pool is refused" one_line_error "contains pool 'p2'"
err=$(ck pool add work "$WORK" 2>&1) && st=0 || st=$?
check "the database's directory is refused" one_line_error "holds the service's database"
check "TCP cannot remove a pool (403)" status_is 403 "$(tcp DELETE /api/v1/pools/main)"
check "root on the socket removes an empty pool" ck pool remove main

check "a text/plain POST is refused: 415" \
  status_is 415 "$(tcp -H 'Content-Type: text/plain' POST /api/v1/vms '{"xml":"<domain/>"}')"
check "a form POST is refused: 415" \
  status_is 415 "$(tcp -H 'Content-Type: application/x-www-form-urlencoded' POST /api/v1/jobs/1/cancel 'a=b')"
check "a foreign Origin is refused even with the token: 403" \
  status_is 403 "$(tcp -H 'Origin: http://evil.example' POST /api/v1/jobs/1/cancel '{}')"
check "a DNS-rebound Host is refused: 403" status_is 403 "$(tcp -H "Host: evil.example:$PORT" GET /api/v1/vms)"
check "the CLI over TCP uses the token file" env CLONEKIT_SERVER=127.0.0.1:$PORT CLONEKIT_TOKEN_FILE="$TOKEN_FILE" "$CLONEKIT" vm list
check "even a refused request forbids framing and foreign scripts" python3 -c "
import urllib.request, urllib.error
try: urllib.request.urlopen('http://127.0.0.1:$PORT/api/v1/health')
except urllib.error.HTTPError as e: assert e.code == 401 and \"frame-ancestors 'none'\" in e.headers['Content-Security-Policy']
else: raise SystemExit('no 401')"
stop_service
check "a token file readable by others is refused at start" bash -c "
  chmod 644 '$TOKEN_FILE'; err=\$('$CLONEKIT' serve --db '$WORK/state.db' --port $PORT --socket '$SOCK' 2>&1); st=\$?
  chmod 600 '$TOKEN_FILE'; [ \$st -ne 0 ] && [[ \"\$err\" == *'mode 0600'* ]]"
check "service log has no crash" sanitizer_clean serve.log
finish
