#!/usr/bin/env bash
# Property-based fuzzing of the HTTP API against its generated OpenAPI document (issue 13, item 6):
# starts `regie-server demo` on 127.0.0.1 (a free port, its own temp directory) and runs
# schemathesis against /api/v1/openapi.json as each of a few demo roles. Fails on any 5xx, any
# response outside its documented schema, and any status the document does not list.
#
# The coverage phase is left out: schemathesis 4.32.5 itself failed in it (a KeyError inside its
# generator) on one operation. Environment: SCHEMATHESIS_EXAMPLES (examples per operation and phase, default 20),
# SCHEMATHESIS_MAX_TIME (seconds per role, default 60), SCHEMATHESIS_ROLES (default
# "worker privacy_officer resident"), REGIE_SERVER (a built binary; otherwise built here),
# SCHEMATHESIS_VENV (where schemathesis is installed; default under the cargo target dir).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version=4.32.5
examples=${SCHEMATHESIS_EXAMPLES:-20}
max_time=${SCHEMATHESIS_MAX_TIME:-60}
roles=${SCHEMATHESIS_ROLES:-worker privacy_officer resident}
target=${CARGO_TARGET_DIR:-$root/target}
venv=${SCHEMATHESIS_VENV:-$target/schemathesis-venv}

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis==$version"
fi
bin=${REGIE_SERVER:-}
if [ -z "$bin" ]; then
    cargo build -q -p regie-server
    bin=$target/debug/regie-server
fi
bin=$(realpath "$bin")

work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
(cd "$work" && exec "$bin" demo --listen 127.0.0.1:0 >demo.log 2>&1) &
server_pid=$!
for _ in $(seq 1 120); do
    [ -s "$work/regie-demo.json" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/demo.log" >&2; exit 1; }
    sleep 0.5
done
[ -s "$work/regie-demo.json" ] || { echo "the demo did not start" >&2; cat "$work/demo.log" >&2; exit 1; }
demo() { python3 -c "import json,sys; d=json.load(open('$work/regie-demo.json')); print(eval(sys.argv[1]))" "$1"; }
server=$(demo 'd["server"]')
echo "schemathesis $version against $server (examples $examples, at most ${max_time}s per role)"

status=0
for role in $roles; do
    token=$(demo "d['roles']['$role']['token']")
    echo "== as $role"
    "$venv/bin/schemathesis" run "$server/api/v1/openapi.json" \
        --url "$server" \
        --header "Authorization: Bearer $token" \
        --checks not_a_server_error,response_schema_conformance,status_code_conformance \
        --max-examples "$examples" \
        --max-time "$max_time" \
        --phases examples,fuzzing \
        --exclude-path /sync \
        --request-timeout 10 \
        --workers 2 \
        --seed 13 \
        --suppress-health-check all \
        --no-color || status=1
done
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "the server died during the run" >&2
    tail -50 "$work/demo.log" >&2
    status=1
fi
if grep -q "panicked" "$work/demo.log"; then
    echo "a handler panicked during the run:" >&2
    grep -A3 "panicked" "$work/demo.log" | head -40 >&2
    status=1
fi
exit $status
