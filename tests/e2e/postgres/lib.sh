# start_postgres: a private PostgreSQL cluster for one test, on
# 127.0.0.1:$PG_PORT (loopback only), in its own directory, stopped and
# removed on exit. Role `clonekit` logs in with a password (SCRAM) kept in
# $PGPASSFILE, as an admin would: the URL carries none. Sets PG_URL,
# PG_BIN, and psql_ck (psql as clonekit). Sourced after ../lib.sh.
start_postgres() {
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] || { echo "SKIP: the PostgreSQL server (postgresql-15) is not installed"; exit 77; }
  id postgres >/dev/null 2>&1 || { echo "SKIP: no 'postgres' user to run the server as (initdb refuses root)"; exit 77; }
  PG_DIR=$(mktemp -d /tmp/clonekit-pg.XXXXXX)
  chown postgres: "$PG_DIR"
  echo "super-$RANDOM$RANDOM" >"$PG_DIR/superpw"
  chown postgres: "$PG_DIR/superpw"
  # (from /: the server's user cannot enter the test's private directory)
  (cd / && runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=scram-sha-256 \
    --pwfile="$PG_DIR/superpw" -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1) \
    || { cat "$PG_DIR/initdb.log"; return 1; }
  PG_PORT=$(free_port)
  cleanup_fns+=("(cd / && runuser -u postgres -- '$PG_BIN/pg_ctl' -D '$PG_DIR/data' -m immediate stop >/dev/null 2>&1); rm -rf '$PG_DIR'")
  (cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1" start >/dev/null) \
    || { cat "$PG_DIR/server.log"; return 1; }
  local pw="ck-$RANDOM$RANDOM"
  PGPASSWORD=$(cat "$PG_DIR/superpw") psql -qX -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    -c "CREATE ROLE clonekit LOGIN PASSWORD '$pw'" -c "CREATE DATABASE clonekit OWNER clonekit" >/dev/null
  export PGPASSFILE=$WORK/pgpass
  echo "127.0.0.1:$PG_PORT:clonekit:clonekit:$pw" >"$PGPASSFILE"
  chmod 600 "$PGPASSFILE"
  PG_URL="postgresql://clonekit@127.0.0.1:$PG_PORT/clonekit"
}

# psql_ck SQL: one value per line, as role clonekit.
psql_ck() { psql -qXAt -h 127.0.0.1 -p "$PG_PORT" -U clonekit -d clonekit -c "$1"; }
