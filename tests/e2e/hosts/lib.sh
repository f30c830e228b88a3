# A service for the host registry's scripts: no hypervisor of its own (so
# libvirt's test driver, test:///default, can be added as another host),
# one pool; ck runs the CLI on its socket (root: an admin).
PORT=$(free_port)
export CLONEKIT_SOCKET=$WORK/api.sock
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
start_service() {
  "$CLONEKIT" serve --db "$WORK/state.db" --token-file "$WORK/token" --port "$PORT" --socket "$WORK/api.sock" "$@" \
    >/dev/null 2>>serve.log &
  SVC=$!
  cleanup_fns+=("kill -9 $SVC 2>/dev/null")
  for _ in $(seq 1 100); do [ -S "$WORK/api.sock" ] && ck host list >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "service did not start"; cat serve.log; return 1
}
