#!/usr/bin/env bash
# Two collapses into one directory, one of them killed (-9): the next
# collapse into that directory removes the dead one's temporary and never
# the live one's, which finishes right. Names that only look like ours (a
# symlink, a FIFO) are neither followed, opened, nor removed.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
source "$here/lib.sh"

qemu-img create -q -f qcow2 base.qcow2 64M
qio base.qcow2 'write -P 1 0 24M'
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 64M
qio top.qcow2 'write -P 2 4M 8M'
qemu-img convert -O raw top.qcow2 ref.raw
mkdir out

# wait_temporary NAME: until out/.NAME.clonekit-?????? exists.
wait_temporary() {
  for _ in $(seq 400); do
    temporaries out | grep -q "^\.$1\.clonekit-" && return 0
    sleep 0.01
  done
  return 1
}

# A: slow (24 MiB at 6 MiB/s: 4 s), alive throughout.
"$CLONEKIT" collapse --rate-limit 6M top.qcow2 out/a.raw 2>a.err &
a=$!
cleanup_fns+=("kill -9 $a 2>/dev/null")
check "A's temporary appears" wait_temporary a.raw
# B: killed mid-copy.
"$CLONEKIT" collapse --rate-limit 6M top.qcow2 out/b.raw 2>/dev/null &
b=$!
check "B's temporary appears" wait_temporary b.raw
kill -9 "$b"; wait "$b" 2>/dev/null || true
check "two temporaries now" test "$(temporaries out | wc -l)" -eq 2

# Look-alikes: a symlink to a file of someone else's, a FIFO, another
# user's file, and a second name of a file that has one elsewhere.
echo precious > precious
ln -s "$WORK/precious" out/.x.clonekit-AAAAAA
mkfifo out/.y.clonekit-BBBBBB
echo theirs > out/.z.clonekit-CCCCCC
chown 65534 out/.z.clonekit-CCCCCC
echo linked > linked
ln linked out/.w.clonekit-DDDDDD

"$CLONEKIT" collapse top.qcow2 out/c.raw
check "C: its output is right" cmp -s out/c.raw ref.raw
check "C removed B's stale temporary" bash -c "! temporaries out | grep -q '^\.b\.raw\.clonekit-'" 
check "C left A's live temporary" bash -c "temporaries out | grep -q '^\.a\.raw\.clonekit-'"
check "A is still running" kill -0 "$a"
check "the symlink's target is intact" grep -qx precious precious
check "the look-alike symlink and FIFO are left alone" test -L out/.x.clonekit-AAAAAA -a -p out/.y.clonekit-BBBBBB
check "another user's look-alike is left alone" grep -qx theirs out/.z.clonekit-CCCCCC
check "a hard link named like a temporary is left alone" grep -qx linked out/.w.clonekit-DDDDDD

rc=0; wait "$a" || rc=$?
check "A finishes (exit $rc)" test "$rc" -eq 0
check "A's output is right" cmp -s out/a.raw ref.raw
check "no temporary of ours is left" test "$(temporaries out | grep -cv '^\.[xyzw]\.')" -eq 0
check "B never appeared under its final name" test ! -e out/b.raw
finish
