#!/usr/bin/env bash
# Fuzzes the HTTP API with schemathesis against the OpenAPI document the server serves: a
# `budpipeline serve` on a fresh database, every operation, a bounded number of examples. Fails on
# any 5xx and on any response that breaks the document (status, content type, body schema).
#
#   scripts/api-fuzz.sh sqlite                 a throw-away SQLite file
#   scripts/api-fuzz.sh postgres ADMIN_URL     a new database on that PostgreSQL server
#
# BUDPIPELINE_FUZZ_EXAMPLES (default 10) bounds the examples per operation and phase.
set -euo pipefail
cd "$(dirname "$0")/.."

backend=${1:?usage: scripts/api-fuzz.sh sqlite|postgres [ADMIN_URL]}
workdir=$(mktemp -d /tmp/budpipeline-fuzz.XXXXXX)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$workdir"
}
trap cleanup EXIT

case "$backend" in
    sqlite) database_url="sqlite://$workdir/fuzz.db" ;;
    postgres)
        admin_url=${2:?scripts/api-fuzz.sh postgres needs the admin URL of the server}
        name="fuzz_$$_$RANDOM"
        psql -q "$admin_url" -c "CREATE DATABASE $name" >/dev/null
        database_url="${admin_url%/*}/$name"
        ;;
    *) echo "api-fuzz: unknown backend '$backend' (sqlite or postgres)" >&2; exit 2 ;;
esac

DATABASE_URL=$database_url BUDPIPELINE_PLUGIN_DIRS=.build/debug LOG_LEVEL=notice \
    .build/debug/budpipeline serve --migrate --port 0 >"$workdir/server.log" 2>&1 &
server_pid=$!
source scripts/server-port.sh
port=$(server_port "$workdir/server.log" 60)

status=0
python3 -m schemathesis.cli run "http://127.0.0.1:$port/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples "${BUDPIPELINE_FUZZ_EXAMPLES:-10}" --seed 20261122 --no-color \
    --report junit --report-dir "$workdir/report" >"$workdir/schemathesis.log" 2>&1 || status=$?
sed -n '/= SUMMARY =/,$p' "$workdir/schemathesis.log"
if [ "$status" -ne 0 ]; then
    sed -n '/= FAILURES =/,/= SUMMARY =/p' "$workdir/schemathesis.log" | head -200
    echo "api-fuzz: schemathesis failed on $backend (exit $status)" >&2
    exit "$status"
fi
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "api-fuzz: the server died during the run" >&2
    cat "$workdir/server.log" >&2
    exit 1
fi
