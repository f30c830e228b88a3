#!/usr/bin/env bash
# A clone to host h2 whose link is cut mid-copy: the job fails within
# seconds with one line naming h2, its clone entry goes, and the job says
# that h2 still holds its partial files until h2 answers again; once the
# link is back they are removed (the retry), the job says so, and h2's pool
# holds nothing of the job, nor any export. The source chain is untouched.
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/hosts/netns.sh"
with_h2 --nbd-ports 20010-20019 --copy-rate 4M
# 48 MiB of data: 12 s at 4 MiB/s.
head -c 48M /dev/urandom >data.raw
truncate -s 64M data.raw
qemu-img convert -O qcow2 data.raw pool/v1.qcow2
sha256sum pool/v1.qcow2 >before.sum
ck vm import v1 "$WORK/pool/v1.qcow2" >/dev/null

start_job 10 v1 --name c1 --host h2 --disk vda=pool:far --no-start
check "the copy is under way (10 %)" [ "$(field percent | cut -d. -f1)" -ge 10 ]
check "... into its reserved name and its own directory on h2" \
  [ "$(on_host h2 ls -A /var/lib/libvirt/far | sed -E 's/^\.clonekit-[0-9a-f-]+-vda$/.clonekit-UUID-vda/' | sort | tr '\n' ' ')" = ".clonekit-UUID-vda c1-vda.qcow2 " ]
link h2 2 down
cut_at=$(date +%s)
for _ in $(seq 1 600); do [ "$(field state)" = running ] || break; sleep 0.1; done
failed_after=$(($(date +%s) - cut_at))
check "the job failed ($(field state), ${failed_after} s after the cut)" [ "$(field state)" = failed ]
check "... within 30 s" [ "$failed_after" -le 30 ]
ERR=$(field error)
echo "# error: $ERR"
check "its error is one line naming h2" bash -c '[[ "$1" == "host h2: disk vda: the copy to 10.77.2.2:200"*" stopped: "* ]] && [ "$(wc -l <<<"$1")" = 1 ]' _ "$ERR"
check "... and says the partial files wait for h2" bash -c '[[ "$1" == *"its partial files on host '"'"'h2'"'"' are removed when it answers again" ]]' _ "$ERR"
check "... cleanup_pending in the API" [ "$(field cleanup_pending)" = True ]
check "the clone entry is gone" [ "$(ck vm list --json | jq_ "len([v for v in d if v['name'] == 'c1'])")" = 0 ]
check "h2 still holds them (its link is down)" [ -n "$(on_host h2 ls -A /var/lib/libvirt/far)" ]

link h2 2 up
up_at=$(date +%s)
for _ in $(seq 1 600); do [ "$(field cleanup_pending)" = False ] && break; sleep 0.1; done
check "once h2 answers, they are removed ($(($(date +%s) - up_at)) s after the link came back)" [ "$(field cleanup_pending)" = False ]
check "... the job says so" bash -c '[[ "$1" == *"its partial files on host '"'"'h2'"'"' were removed when it answered again" ]]' _ "$(field error)"
check "... h2's pool holds nothing of the job" [ -z "$(on_host h2 ls -A /var/lib/libvirt/far)" ]
no_export() { ! pgrep_here "qemu-nbd.*/var/lib/libvirt/far/.clonekit" >/dev/null; }
check "... and no export is left on h2" no_export
check "the source chain is unchanged" sha256sum -c --quiet before.sum
stop_svc
check "service log has no crash" sanitizer_clean serve.log
finish
