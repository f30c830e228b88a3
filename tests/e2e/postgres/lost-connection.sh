#!/usr/bin/env bash
# An active service whose database session ends (the server killed it, or
# the network did) is no longer the active one: it stops at once, saying
# why, rather than go on with jobs a standby may be recovering (fencing).
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/postgres/lib.sh"
start_postgres
PORT=$(free_port)
"$CLONEKIT" serve --db "$PG_URL" --token-file "$WORK/token" --port "$PORT" --socket "$WORK/a.sock" \
  --hypervisor test:///default >/dev/null 2>a.log &
svc=$!
cleanup_fns+=("kill -9 $svc 2>/dev/null")
for _ in $(seq 1 100); do grep -q "serving on" a.log && break; sleep 0.1; done
check "the service is active" grep -q "serving on" a.log
check "its session is in PostgreSQL, named clonekit" \
  [ "$(psql_ck "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'clonekit'")" -eq 1 ]
PGPASSWORD=$(cat "$PG_DIR/superpw") psql -qXAt -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
  -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'clonekit'" >/dev/null
ended=$(date +%s%N)
st=0
for _ in $(seq 1 100); do kill -0 "$svc" 2>/dev/null || break; sleep 0.05; done
kill -9 "$svc" 2>/dev/null || true  # (still there: the check below fails, rather than wait)
wait "$svc" 2>/dev/null || st=$?
took=$(( ($(date +%s%N) - ended) / 1000000 ))
echo "# the service stopped $took ms after its session ended"
check "it stopped within 3 s, idle as it was ($took ms)" [ "$took" -lt 3000 ]
check "with exit status 75" [ "$st" -eq 75 ]
check "saying it lost the database" grep -q "clonekit: $PG_URL: lost the connection to the database: .*; stopping (a standby service takes over)" a.log
finish
