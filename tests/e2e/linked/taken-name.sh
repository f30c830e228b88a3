#!/usr/bin/env bash
# The snapshot a current-state clone takes is named after its job,
# "clone-job-N"; when a user already took that name, the job takes
# "clone-job-N-2" instead of failing, and the user's snapshot is untouched.
source "$(dirname "$0")/lib.sh"
ck snapshot create src clone-job-1 >/dev/null  # the name job 1 would take
before=$(ck snapshot list src --json | jq_ "[s['disks'] for s in d if s['name'] == 'clone-job-1']")
check "a linked clone of the current state succeeds" ck vm clone src --linked --no-start --name lc --wait
check "its job is job 1, and it took clone-job-1-2" [ "$(ck job show 1 | jq_ "d['snapshot']")" = clone-job-1-2 ]
check "the user's clone-job-1 is unchanged" \
  [ "$(ck snapshot list src --json | jq_ "[s['disks'] for s in d if s['name'] == 'clone-job-1']")" = "$before" ]
check "the clone is linked to clone-job-1-2" [ "$(vmf lc "d['linked_to']['snapshot']")" = clone-job-1-2 ]
finish
