#!/usr/bin/env bash
# What a host's URI may not say, refused with one line before anything is
# stored or connected to: libvirt parameters that choose a program or a
# file (command=, netcat=, socket=, keyfile=), plaintext qemu+tcp, the
# local libvirt again, a password, a test driver file; and who may add.
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/hosts/lib.sh"
start_service --hypervisor test:///default
refused() {  # refused URI PATTERN
  check "refused: $1" one_line_error "$2" ck host add h "$1"
}
refused 'qemu+ssh://root@h2/system?command=/tmp/x' "choose programs and files the service would use as root"
refused 'qemu+ssh://h2/system?netcat=/tmp/nc' "choose programs and files"
refused 'qemu+ext:///system?command=/bin/sh' "has a query or fragment"
refused 'qemu+ext://h2/system' "has transport 'qemu+ext'"
refused 'qemu+unix:///system?socket=/tmp/s' "has a query or fragment"
refused 'qemu+tls://h2/system?pkipath=/root' "has a query or fragment"
refused 'qemu+tcp://h2/system' "qemu+tcp is neither encrypted nor authenticated"
refused 'qemu:///system' "is this machine's own libvirt"
refused 'qemu+ssh://root:secret@h2/system' "holds a password"
refused 'qemu+ssh://h2/session' "must end in /system"
refused 'qemu+ssh:///system' "names no host"
refused 'test:///etc/shadow' "the test driver's one host is test:///default"
refused 'qemu+ssh://h2/system#x' "has a query or fragment"
refused $'qemu+ssh://h2/sys\ntem' "control or non-ASCII"
refused 'qemu+ssh://-oProxyCommand=x/system' "names no valid host"
refused 'qemu+ssh://h2%60id%60/system' "has a percent-escape"
refused 'qemu+ssh://h2/system?' "has a query or fragment"
refused 'QEMU+SSH://h2/system' "has transport 'QEMU+SSH'"
check "refused: an SSH address that is an option" \
  one_line_error "SSH address '-oProxyCommand=x': is not" ck host add h qemu+ssh://h2/system --ssh=-oProxyCommand=x
check "refused: the name 'local'" one_line_error "is the service's own --hypervisor" ck host add local qemu+ssh://h2/system
check "refused: a name with a slash" one_line_error "host name 'a/b' is not valid" ck host add a/b qemu+ssh://h2/system
check "nothing was stored" [ "$(ck host list --json | jq_ "len(d)")" = 1 ]
# Over TCP with the token: reading, yes; adding or removing, no (root on the socket only).
tcp() { python3 "$E2E_DIR/http_req.py" --tcp "127.0.0.1:$PORT" --token-file "$WORK/token" "$@"; }
check "TCP: host list answers" bash -c "$(declare -f tcp); PORT=$PORT WORK=$WORK E2E_DIR=$E2E_DIR; tcp GET /api/v1/hosts | grep -q '^200 '"
check "TCP: host add is 403" bash -c "$(declare -f tcp); PORT=$PORT WORK=$WORK E2E_DIR=$E2E_DIR; tcp POST /api/v1/hosts '{\"name\":\"h\",\"uri\":\"qemu+ssh://h2/system\"}' | grep -q '^403 '"
check "TCP: host remove is 403" bash -c "$(declare -f tcp); PORT=$PORT WORK=$WORK E2E_DIR=$E2E_DIR; tcp DELETE /api/v1/hosts/h | grep -q '^403 '"
check "a body without a uri: one line" one_line_error "uri" ck host add h ""
kill "$SVC"; wait "$SVC" 2>/dev/null || true
check "service log has no crash" sanitizer_clean serve.log
finish
