#!/usr/bin/env bash
# While a flatten works on a VM its disks and definition are the job's: a
# snapshot of it, a clone of its current state, an edit, a start and a
# delete are refused (409 naming the job). Cancelled, it leaves the VM as
# it was, still linked, and removes the files it made.
SERVE_OPTS=(--copy-rate 512K)  # the flatten of 10 MiB lasts ~10 s
source "$(dirname "$0")/lib.sh"
ck vm clone src --snapshot s1 --linked --no-start --name lc --wait >/dev/null
job=$(ck vm flatten lc --json | jq_ "d['id']")
check "a snapshot of it is refused, naming the job" one_line_error "job $job is making it standalone" ck snapshot create lc x
check "a clone of its current state is refused" one_line_error "job $job is making it standalone" ck vm clone lc --name lc2
check "an edit is refused" one_line_error "job $job is making it standalone" ck vm edit lc --description new
check "start is refused (it is off while its overlays are copied)" one_line_error "job $job" ck vm start lc
check "delete is refused" one_line_error "job $job" ck vm delete lc
check "cancel the flatten" ck job cancel "$job"
check "it ends cancelled" until_done "$job" cancelled
check "the VM is as it was: linked, on its overlay" \
  [ "$(vmf lc "d['linked_to']['snapshot'], [x['file'] for x in d['disks'] if x['target'] == 'vda'][0]")" = "s1 $WORK/pool/lc-vda.qcow2" ]
check "the files the flatten made are gone" [ -z "$(ls pool | grep -- -flat)" ]
check "its vda still reads as s1" qemu-img compare -q pool/lc-vda.qcow2 s1-vda.raw
finish
