#!/usr/bin/env bash
# The database restarts under an active and a standby service: the active
# one has lost its session, and with it the role, so it stops (75); the
# standby's own connection dropped too, but it reconnects, takes the role
# and serves.
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/postgres/lib.sh"
start_postgres
PORT_A=$(free_port) PORT_B=$(free_port)
serve() {  # serve NAME PORT
  "$CLONEKIT" serve --db "$PG_URL" --token-file "$WORK/token" --port "$2" --socket "$WORK/$1.sock" \
    --hypervisor test:///default >/dev/null 2>>"$1.log" &
}
serve a "$PORT_A"; A=$!; cleanup_fns+=("kill -9 $A 2>/dev/null")
for _ in $(seq 1 100); do grep -q "serving on" a.log 2>/dev/null && break; sleep 0.1; done
serve b "$PORT_B"; B=$!; cleanup_fns+=("kill -9 $B 2>/dev/null")
for _ in $(seq 1 100); do grep -q "standby" b.log 2>/dev/null && break; sleep 0.1; done
check "A serves, B waits" bash -c 'grep -q "serving on" a.log && grep -q "standby" b.log && ! grep -q "serving on" b.log'

(cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w restart >/dev/null)
for _ in $(seq 1 100); do kill -0 "$A" 2>/dev/null || break; sleep 0.1; done
kill -9 "$A" 2>/dev/null || true
wait "$A" 2>/dev/null && st=0 || st=$?
check "A stopped with status 75" [ "$st" -eq 75 ]
check "A said it lost the database" grep -q "lost the connection to the database" a.log
for _ in $(seq 1 150); do grep -q "serving on" b.log && break; sleep 0.1; done
check "B is still there" kill -0 "$B"
check "B took over and serves" grep -q "clonekit: active: took over $PG_URL" b.log
check "B answers" bash -c "CLONEKIT_SOCKET=$WORK/b.sock '$CLONEKIT' vm list >/dev/null"
finish
