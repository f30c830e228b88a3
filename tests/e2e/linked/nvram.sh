#!/usr/bin/env bash
# A linked clone of a UEFI VM gets its own copy of the NVRAM, and keeps it:
# the files a kept clone uses are never counted among the job's leftovers.
source "$(dirname "$0")/lib.sh"
echo vars > pool/fw_VARS.fd && echo code > pool/code.fd
sed -e 's|<name>src</name>|<name>fw</name>|' \
    -e "s|<os><type arch='x86_64'>hvm</type></os>|<os><type arch='x86_64'>hvm</type><loader readonly='yes' type='pflash'>$WORK/pool/code.fd</loader><nvram>$WORK/pool/fw_VARS.fd</nvram></os>|" \
    -e "s|$WORK/pool/src|$WORK/pool/fw|g" src.xml > fw.xml
cp pool/src.qcow2 pool/fw.qcow2 && cp pool/src-b.qcow2 pool/fw-b.qcow2  # (s1's points: fw's own copies)
chmod 644 pool/fw.qcow2 pool/fw-b.qcow2
ck vm define fw.xml >/dev/null
ck snapshot create fw f1 >/dev/null
check "a linked clone of it succeeds" ck vm clone fw --snapshot f1 --linked --no-start --name fwl --wait
check "its NVRAM is a copy of the source's, still there" [ "$(cat pool/fwl_VARS.fd 2>/dev/null)" = vars ]
check "its definition names that copy" bash -c "ck() { '$CLONEKIT' \"\$@\"; }; ck vm show fwl | grep -q 'fwl_VARS.fd'"
check "flattened (off), it keeps it too" ck vm flatten fwl --wait
check "... still there" [ "$(cat pool/fwl_VARS.fd 2>/dev/null)" = vars ]
finish
