#!/usr/bin/env bash
# Scale-out on one PostgreSQL (see docs/performance.md, "Scale-out"): 1, 2 and 4 release
# `budpipeline serve` processes share one database; `budpipeline-benchmarks end-to-end` spreads
# its clients over them (client i starts on process i mod n) and follows every execution on the
# *next* process's live stream, so each event crosses processes through LISTEN/NOTIFY when n > 1.
# Reported per process count: executions and steps per second, latency p50/p99, the servers' and
# the database's CPU per execution.
#
#   scripts/benchmark-scale-out.sh                         1, 2, 4 processes; chain-builtin; c = 64
#   PROCESSES="1 2" SHAPE=chain-plugin scripts/benchmark-scale-out.sh --executions 1000
#   STREAM_ON=same scripts/benchmark-scale-out.sh          each execution followed where it started
#   CLUSTER_SIGNALS=false STREAM_ON=same scripts/benchmark-scale-out.sh
#                                                          … and without the processes' group
#
# Extra arguments go to `end-to-end` (default: --concurrency 64 --executions 3000).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh test
source scripts/server-port.sh
source scripts/postgres.sh

swift build -c release --product budpipeline
swift build -c release --product budpipeline-benchmarks
workdir=$(mktemp -d /tmp/budpipeline-scale.XXXXXX)
pids=()
stop_servers() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
finish() {
    stop_servers
    stop_test_postgres
    rm -rf "$workdir"
}
start_test_postgres
trap finish EXIT

mkdir -p "$workdir/plugins"
${CC:-cc} -std=c11 -O2 -shared -fPIC -fvisibility=hidden -I Sources/PluginABI/include \
    Benchmarks/Plugins/noop.c -o "$workdir/plugins/libnoop.so"
token=bench-token-$RANDOM$RANDOM
arguments=("$@")
if [ ${#arguments[@]} -eq 0 ]; then arguments=(--concurrency 64 --executions 3000); fi
postmaster=$(head -1 "$BUDPIPELINE_TEST_POSTGRES_DIR/data/postmaster.pid")

for count in ${PROCESSES:-1 2 4}; do
    name="scale_$count"
    psql -q "$BUDPIPELINE_TEST_POSTGRES_URL" -c "CREATE DATABASE $name" >/dev/null
    url="${BUDPIPELINE_TEST_POSTGRES_URL%/*}/$name"
    urls=()
    for index in $(seq 1 "$count"); do
        log="$workdir/$name-$index.log"
        APP_API_TOKEN=$token DATABASE_URL=$url LOG_LEVEL=notice BUDPIPELINE_PLUGIN_DIRS="$workdir/plugins" \
            BUDPIPELINE_CLUSTER_SIGNALS=${CLUSTER_SIGNALS:-true} PSQL_POOL_SIZE=${POOL_SIZE:-10} \
            .build/release/budpipeline serve --migrate --port 0 >"$log" 2>&1 &
        pids+=($!)
        urls+=("http://127.0.0.1:$(server_port "$log")")
    done
    echo "-- $count process(es) on one PostgreSQL, ${SHAPE:-chain-builtin}"
    .build/release/budpipeline-benchmarks end-to-end --url "$(IFS=,; echo "${urls[*]}")" --token "$token" \
        --server-pid "$(IFS=,; echo "${pids[*]}")" --database-pid "$postmaster" --pipeline "${SHAPE:-chain-builtin}" \
        --stream-on "${STREAM_ON:-next}" \
        "${arguments[@]}"
    stop_servers
    # Processes that stop leave the group (no row left) and the notification queue drained.
    psql -q "$url" -At -c "SELECT 'members left after stop: ' || count(*) || ', notification queue in use: ' || pg_notification_queue_usage() FROM cluster_member"
done
