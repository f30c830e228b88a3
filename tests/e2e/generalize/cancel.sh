#!/usr/bin/env bash
# The appliance runs confined: its qemu (a child of the root service)
# drops to nobody once it has opened the disks and runs under qemu's
# seccomp sandbox. Cancelling the clone while the appliance works kills it
# at once, ends the job cancelled and leaves nothing.
source "$(dirname "$0")/lib.sh"
ext4_guest base.raw src-host
qemu-img convert -q -f raw -O qcow2 base.raw pool/src.qcow2
define_src src.qcow2
ck snapshot create src s1 >/dev/null
ls pool > before.txt
job=$(ck vm clone src --snapshot s1 --name gone --no-start --generalize default --json 2>/dev/null | jq_ "d['id']")
# The copy is the job's first 80 %; past it, the guest's part runs.
end=$((SECONDS + 60))
until [ "$(ck job show "$job" | jq_ "int(d['percent'] >= 80)")" = 1 ] || [ $SECONDS -gt $end ]; do sleep 0.1; done
check "the job reached the guest's part" test "$(ck job show "$job" | jq_ "d['state']")" = running
disk=$(ck vm show gone | jq_ "d['disks'][0]['file']")
qemu_of_job() { pgrep -P "$SVC" -f "file=$disk" | head -1 || true; }
until_true() { local end=$((SECONDS + $1)); shift; until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 0.1; done; }
check "the appliance's qemu runs as nobody" until_true 60 bash -c "[ \"\$(ps -o user= -p \"\$(pgrep -P $SVC -f 'file=$disk')\" 2>/dev/null)\" = nobody ]"
check "... under qemu's seccomp sandbox" bash -c "grep -q '^Seccomp:[[:space:]]*2' /proc/$(qemu_of_job)/status"
SECONDS_AT_CANCEL=$SECONDS
ck job cancel "$job" >/dev/null
check "the job ends cancelled" test "$(until_done "$job")" = cancelled
check "within seconds (the appliance killed, not waited for)" test $((SECONDS - SECONDS_AT_CANCEL)) -le 5
check "its qemu is gone" test -z "$(qemu_of_job)"
check "no clone entry is left" bash -c "! $CLONEKIT vm show gone >/dev/null 2>&1"
check "no file is left in the pool" diff before.txt <(ls pool)
finish
