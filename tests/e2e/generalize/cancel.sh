#!/usr/bin/env bash
# Cancelling a clone while its guest is being generalized (the appliance
# is starting) ends the job cancelled and leaves nothing.
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
ck job cancel "$job" >/dev/null
check "the job ends cancelled" test "$(until_done "$job")" = cancelled
check "no clone entry is left" bash -c "! $CLONEKIT vm show gone >/dev/null 2>&1"
check "no file is left in the pool" diff before.txt <(ls pool)
finish
