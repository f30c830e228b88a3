#!/usr/bin/env bash
# What instant and linked clones refuse, each with one line and nothing
# made: both at once, an instant clone not started, a raw overlay, a
# snapshot name that is not a name.
source "$(dirname "$0")/lib.sh"
src=$(vmf src "d['id']")
req() { python3 "$E2E_DIR/http_req.py" --unix "$WORK/api.sock" "$@"; }
check "instant and linked at once: 400" \
  bash -c "[[ \"\$(python3 '$E2E_DIR/http_req.py' --unix '$WORK/api.sock' POST /api/v1/vms/$src/clone '{\"snapshot\": \"s1\", \"instant\": true, \"linked\": true}')\" == 400*cannot\ both* ]]"
check "instant with start off: refused, says to use linked" one_line_error '"start": false is for a linked clone' \
  ck vm clone src --snapshot s1 --instant --no-start
check "a raw overlay: refused, naming the disk" one_line_error "disk vda: a linked clone's disks are qcow2 overlays" \
  ck vm clone src --snapshot s1 --linked --disk vda=format:raw
check "--instant and --linked together: the CLI refuses" bash -c "! '$CLONEKIT' vm clone src --instant --linked >/dev/null 2>&1"
check "a snapshot name that is not a name: 400" [ "$(req DELETE "/api/v1/vms/$src/snapshots/..%20x" | cut -d' ' -f1)" = 400 ]
check "nothing was made: no clone, no job, no file" \
  [ "$(ck vm list --json | jq_ "len(d)"):$(ck job list --json | jq_ "len(d)"):$(ls pool | grep -c clone || true)" = "1:0:0" ]
finish
