#!/usr/bin/env bash
# The domain plugins on one machine, no cluster needed: starts the simulated bud services behind a
# stand-in Dapr sidecar (bud-simulator, port 3500) and BudPipeline (port 8010, a fresh SQLite store),
# then, through REST, stores docs/examples/deploy-benchmark-notify.json, runs it, and streams its
# progress until it ends. Everything stops when the script does.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh quickstart

api_port=${PORT:-8010}
sidecar_port=${DAPR_PORT:-3500}
api="http://127.0.0.1:$api_port"
token=quickstart-token
data_dir=$(mktemp -d)

swift build --quiet # the server, the plugin libraries and bud-simulator

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$data_dir"
}
trap cleanup EXIT

.build/debug/bud-simulator --port "$sidecar_port" --app-url "$api" --app-token "$token" --pace-milliseconds 1500 &
pids+=($!)
BUDPIPELINE_DATA_DIR="$data_dir" APP_API_TOKEN="$token" DAPR_HTTP_ENDPOINT="http://127.0.0.1:$sidecar_port" LOG_LEVEL=warning \
    .build/debug/budpipeline serve --migrate --port "$api_port" &
pids+=($!)
for _ in $(seq 1 100); do curl -fs "$api/health" >/dev/null && break; sleep 0.1; done

echo "== storing the pipeline"
pipeline=$(curl -fsS -X POST "$api/pipelines" -H 'Content-Type: application/json' \
    -d "{\"name\": \"quickstart\", \"dag\": $(cat docs/examples/deploy-benchmark-notify.json)}")
pipeline_id=$(echo "$pipeline" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
echo "pipeline $pipeline_id"

echo "== running it for user quickstart-user"
params='{"model_id": "0d2a5b4e-1c3f-4a6b-9d8e-7f6a5b4c3d2e", "cluster_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
         "bud_cluster_id": "9b2f3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "project_id": "5e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"}'
started=$(curl -fsS -X POST "$api/executions" -H 'Content-Type: application/json' \
    -d "{\"workflow_id\": \"$pipeline_id\", \"params\": $params, \"user_id\": \"quickstart-user\"}")
execution_id=$(echo "$started" | grep -o '"execution_id":"[^"]*"' | head -1 | cut -d'"' -f4)
echo "execution $execution_id"

echo "== live progress (GET /executions/$execution_id/stream)"
curl -fsSN "$api/executions/$execution_id/stream" | awk '
    function field(name,    found) {
        if (match($0, "\"" name "\":(\"[^\"]*\"|[0-9.]+)")) {
            found = substr($0, RSTART + length(name) + 3, RLENGTH - length(name) - 3)
            gsub(/"/, "", found)
            return found
        }
        return ""
    }
    /^event: / { event = substr($0, 8) }
    /^data: / {
        line = sprintf("  %-20s", event)
        if (field("step_id") != "") line = line " step=" field("step_id")
        if (field("progress") != "") line = line " progress=" field("progress") "%"
        if (field("eta_seconds") != "") line = line " eta=" field("eta_seconds") "s"
        print line
        fflush()
    }'

echo "== the execution"
curl -fsS "$api/executions/$execution_id" | grep -o '"status":"[A-Z]*"' | head -1
echo "== its steps: GET $api/executions/$execution_id/steps"
curl -fsS "$api/executions/$execution_id/steps" | grep -o '"step_id":"[^"]*","step_name":"[^"]*","status":"[A-Z]*"' | sed 's/^/  /'
