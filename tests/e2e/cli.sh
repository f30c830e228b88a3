#!/usr/bin/env bash
# One `clonekit` command, two executables: the storage commands (info, map,
# collapse, mount) load none of the manager's libraries, and the manager's
# commands (serve, console, pool, vm, snapshot, job) are handed over to
# clonekit-manager and behave as before, `console` included (it ran collapse).
source "$(dirname "$0")/security/lib.sh"

libs=$(ldd "$CLONEKIT")
check "clonekit loads no libvirt, SQLite, curl or HTTP server" \
  bash -c "! grep -qE 'libvirt|libsqlite3|libcurl|httplib' <<<'$libs'"
check "--help lists the storage and the manager commands" \
  bash -c "'$CLONEKIT' --help | grep -qE '^  map ' && '$CLONEKIT' --help | grep -qE '^  serve '"

start_service
out=$(ck console --server "127.0.0.1:$PORT" --token-file "$TOKEN_FILE" 2>&1) && st=0 || st=$?
check "console prints the console's address with the token" \
  [ "$st:$out" = "0:http://127.0.0.1:$PORT/#token=$(cat "$TOKEN_FILE")" ]
check "vm list goes through to the service (over its socket)" ck vm list
err=$(ck vm show nosuchvm 2>&1) && st=0 || st=$?
check "an error from a handed-over command is one line" one_line_error "nosuchvm"
err=$(ck vm --bogus 2>&1) && st=0 || st=$?
check "a usage error of a handed-over command exits 2" [ "$st" -eq 2 ]
finish
