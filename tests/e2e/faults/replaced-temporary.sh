#!/usr/bin/env bash
# Someone who can write the destination directory replaces a collapse's
# temporary while it is being written (unlinks it and puts their own file
# under its name): the collapse fails with one line saying so, and their
# file is never moved under the final name.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
source "$here/lib.sh"

qemu-img create -q -f qcow2 base.qcow2 64M
qio base.qcow2 'write -P 1 0 24M'
mkdir out

# 24 MiB at 6 MiB/s: about 4 s to replace the temporary in.
"$CLONEKIT" collapse --rate-limit 6M base.qcow2 out/disk.raw 2>err &
pid=$!
cleanup_fns+=("kill -9 $pid 2>/dev/null")
temp=
for _ in $(seq 400); do
  temp=$(temporaries out | head -1)
  [ -n "$temp" ] && break
  sleep 0.01
done
check "the temporary appears" test -n "$temp"
rm -f "out/$temp"
echo "attacker's bytes" >"out/$temp"

rc=0; wait "$pid" || rc=$?
check "the collapse fails (exit $rc)" test "$rc" -eq 1
check "one line saying the temporary was replaced" \
  bash -c "[ \$(wc -l <err) -eq 1 ] && grep -q 'removed or replaced while being written' err"
check "nothing under the final name" test ! -e out/disk.raw
check "the planted file stays where it was" grep -qx "attacker's bytes" "out/$temp"
finish
