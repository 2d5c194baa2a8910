#!/usr/bin/env bash
# Measures `GET /executions/{id}` at 64 connections against a release build of `budpipeline serve`,
# on PostgreSQL (a server started for the run) and on SQLite (see docs/performance.md): the most
# it serves (wrk, closed loop) and the latency at a fixed 8,000 requests/s (open loop, the
# `http-load` benchmark). Usage: scripts/benchmark-api.sh [SECONDS]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh test
if ! command -v wrk >/dev/null 2>&1; then
    echo "benchmark-api: installing wrk"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
duration=${1:-20}
token=bench-token-$RANDOM$RANDOM

swift build -c release --product budpipeline
swift build -c release --product budpipeline-benchmarks
source scripts/postgres.sh
source scripts/server-port.sh
start_test_postgres
workdir=$(mktemp -d /tmp/budpipeline-bench.XXXXXX)
server_pid=""
finish() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    stop_test_postgres
    rm -rf "$workdir"
}
trap finish EXIT

measure() {
    local label=$1 url=$2
    # As in production: the app API token required, and presented by every request.
    APP_API_TOKEN=$token DATABASE_URL=$url LOG_LEVEL=notice .build/release/budpipeline serve --migrate --port 0 >"$workdir/$label.log" 2>&1 &
    server_pid=$!
    local port
    port=$(server_port "$workdir/$label.log")
    local base="http://127.0.0.1:$port" id
    id=$(curl -sf -X POST "$base/executions/run" -H 'Content-Type: application/json' -H "dapr-api-token: $token" \
        -d '{"pipeline_definition": {"name": "bench", "steps": [{"id": "a", "name": "A", "action": "log"}, {"id": "b", "name": "B", "action": "log", "depends_on": ["a"]}]}}' |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["execution_id"])')
    sleep 1
    curl -sf -H "dapr-api-token: $token" "$base/executions/$id" >/dev/null
    echo "== $label: GET /executions/{id}, 64 connections, 2 threads, ${duration}s, as fast as it answers (wrk)"
    wrk -t2 -c64 -d5s -H "dapr-api-token: $token" "$base/executions/$id" >/dev/null
    wrk -t2 -c64 -d"${duration}s" --latency -H "dapr-api-token: $token" "$base/executions/$id" | grep -E 'Requests/sec|Latency  |50%|90%|99%|requests in|Non-2xx'
    echo "-- $label: at a fixed rate (http-load)"
    .build/release/budpipeline-benchmarks http-load --url "$base/executions/$id" --connections 64 --rate 8000 --duration "$duration" --warmup 3 \
        --header "dapr-api-token: $token"
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

psql -q "$BUDPIPELINE_TEST_POSTGRES_URL" -c "CREATE DATABASE bench" >/dev/null
measure postgres "${BUDPIPELINE_TEST_POSTGRES_URL%/*}/bench"
echo
measure sqlite "sqlite://$workdir/bench.db"
