#!/bin/sh
# Inclusive instructions per accepted batch for the write path's hot functions in a callgrind
# profile of regie-bench-server ($1), batches = calls of regie_server::metrics::batch_accepted.
f=$1
batches=$(python3 - "$f" <<'PY'
import re,sys
names={};cur=None;n=0
for line in open(sys.argv[1],errors='replace'):
    m=re.match(r'(c?fn)=\((\d+)\)(?: (.*))?',line)
    if m:
        k,i,name=m.groups()
        if name: names[i]=name.strip()
        cur=names.get(i) if k=='cfn' else None
        continue
    m=re.match(r'calls=(\d+)',line)
    if m and cur and 'metrics::batch_accepted' in cur: n+=int(m.group(1))
print(n)
PY
)
echo "batches accepted: $batches"
callgrind_annotate --inclusive=yes --threshold=100 "$f" 2>/dev/null | grep -E "PROGRAM TOTALS|receive_sync::|receive_changes::|check_batch|SyncDoc>::receive_sync_message |SyncDoc>::generate_sync_message|Automerge as core::clone::Clone>::clone|get_changes_added|from_build_meta |fan_out|validate_paths|group::commit|append_changes_audited|load_incremental_log_patches|sync::message::Message>::decode|check_sync_message|touched_entries|answer_owed" | grep -v "'2" | awk -v b="$batches" '{gsub(",","",$1); printf "%12.0f  %s\n", $1/b, $0}' | cut -c1-200
