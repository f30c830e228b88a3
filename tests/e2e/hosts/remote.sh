#!/usr/bin/env bash
# A host in its own network namespace, reached over qemu+ssh with the
# admin's SSH keys: `host add` and `host list` get its own libvirt's answer
# (its host name and daemon's version, as virsh over the same URI says);
# with its link cut, list says it is unreachable within the probe's 5 s,
# and it comes back when the link does.
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/hosts/netns.sh"
start_manager_ns
start_host h2 2
uri=qemu+ssh://root@10.77.2.2/system
serve_in_mgr

check "host add h2 $uri" ck host add h2 "$uri"
want=$(in_mgr virsh -c "$uri" version --daemon | sed -n 's/^Running against daemon: //p')
check "h2 answers with its own host name (its UTS namespace's)" [ "$(ck host list --json | jq_ "d[1]['hostname']")" = h2 ]
check "... and its daemon's libvirt version, as virsh says ($want)" \
  [ "$(ck host list --json | jq_ "d[1]['reachable'], d[1]['libvirt_version']")" = "True $want" ]

link h2 2 down
start=$(date +%s%N)
listed=$(ck host list --json)
took=$(( ($(date +%s%N) - start) / 1000000 ))
echo "# host list with h2 cut off took $took ms: $(echo "$listed" | jq_ "d[1]['error']")"
check "link cut: h2 is unreachable" [ "$(echo "$listed" | jq_ "d[1]['reachable']")" = False ]
check "... with a reason" [ -n "$(echo "$listed" | jq_ "d[1]['error']")" ]
check "... said within 6 s ($took ms)" [ "$took" -lt 6000 ]
check "... and 'local' is still listed first" [ "$(echo "$listed" | jq_ "d[0]['name']")" = local ]
link h2 2 up
back() {  # (an attempt begun while cut may still be finishing: it is not doubled)
  for _ in $(seq 1 30); do [ "$(ck host list --json | jq_ "d[1]['reachable']")" = True ] && return 0; sleep 0.5; done
  return 1
}
check "link back: h2 answers again" back
stop_svc
check "service log has no crash" sanitizer_clean serve.log
finish
