#!/usr/bin/env bash
# A quiesced snapshot waits for the guest agent (here 4 s to freeze); the
# service answers other requests meanwhile: its libvirt calls run at once
# on the connection, not one after another.
source "$(dirname "$0")/lib.sh"
source "$E2E_DIR/live/guest.sh"
start_service
start_guest slow
check "the guest's agent answers" wait_agent "$vm"
ck snapshot create "$vm" s1 > snap.out 2>&1 &
snap=$!
sleep 1  # the freeze is under way
t0=$(date +%s%N)
ck vm list >/dev/null
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "vm list answers within 1 s while the guest freezes (took $ms ms)" [ "$ms" -lt 1000 ]
check "... and the snapshot was still being taken then" kill -0 "$snap"
check "the snapshot succeeds" wait "$snap"
check "... listed as application-consistent" \
  [ "$(ck snapshot list "$vm" --json | jq_ "[s['consistency'] for s in d]")" = "['application']" ]
finish
