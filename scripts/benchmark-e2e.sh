#!/usr/bin/env bash
# End to end through the HTTP API (see docs/performance.md): a release `budpipeline serve` on
# SQLite and on a PostgreSQL server started for the run; `budpipeline-benchmarks end-to-end`
# starts executions of each pipeline shape at each concurrency level and follows them on their
# live streams, reading the server's CPU time and memory from /proc.
#
#   scripts/benchmark-e2e.sh                       every shape, c = 8, 64, 256, 2,000 executions each
#   scripts/benchmark-e2e.sh --rounds 3 --max-memory-growth 10
#                                                  the same three times over, failing when the server's
#                                                  memory after the last round is 10 % above the first's
#   scripts/benchmark-e2e.sh --rate 500,1000       open load: executions started at fixed rates
#   BACKENDS=sqlite scripts/benchmark-e2e.sh       one store only
#   SHAPES="chain-plugin" scripts/benchmark-e2e.sh one pipeline shape only
#   SERVER_BINARY=/path/to/budpipeline …          another build of the server (before/after figures)
#
# Extra arguments go to `end-to-end` (e.g. --executions 500 --concurrency 8,64).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh test
source scripts/server-port.sh

swift build -c release --product budpipeline
swift build -c release --product budpipeline-benchmarks
workdir=$(mktemp -d /tmp/budpipeline-e2e.XXXXXX)
server_pid=""
postgres_started=0
finish() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    if [ "$postgres_started" -eq 1 ]; then stop_test_postgres; fi
    rm -rf "$workdir"
}
trap finish EXIT

# The `noop` plugin: an action that does nothing, so that plugin steps cost only the host's work.
mkdir -p "$workdir/plugins"
${CC:-cc} -std=c11 -O2 -shared -fPIC -fvisibility=hidden -I Sources/PluginABI/include \
    Benchmarks/Plugins/noop.c -o "$workdir/plugins/libnoop.so"

token=bench-token-$RANDOM$RANDOM
run_server() {
    local label=$1 url=$2 shape=$3
    shift 3
    APP_API_TOKEN=$token DATABASE_URL=$url LOG_LEVEL=notice BUDPIPELINE_PLUGIN_DIRS="$workdir/plugins" \
        "${SERVER_BINARY:-.build/release/budpipeline}" serve --migrate --port 0 >"$workdir/$label.log" 2>&1 &
    server_pid=$!
    local port
    port=$(server_port "$workdir/$label.log")
    echo "-- $label"
    local database=()
    if [[ "$url" == postgres* ]]; then
        # PostgreSQL's postmaster: the CPU of it and its connection processes is the database's.
        database=(--database-pid "$(head -1 "$BUDPIPELINE_TEST_POSTGRES_DIR/data/postmaster.pid")")
    fi
    .build/release/budpipeline-benchmarks end-to-end --url "http://127.0.0.1:$port" --token "$token" \
        --server-pid "$server_pid" "${database[@]}" --pipeline "$shape" "$@"
    if [[ "$url" == postgres* ]]; then
        # What the executions cost the database: rows written and tables read whole, per execution.
        sleep 1
        psql -q "$url" -At -F ' ' -c "
            SELECT relname, round(n_tup_ins::numeric / greatest(1, (SELECT count(*) FROM pipeline_execution)), 1),
                   seq_scan, seq_tup_read
            FROM pg_stat_user_tables WHERE relname IN ('outbox', 'progress_event', 'step_execution', 'execution_timer')
            ORDER BY relname" |
            while read -r table inserts scans rows; do
                echo "   $table: $inserts rows inserted per execution, $scans sequential scans reading $rows rows"
            done
    fi
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

for backend in ${BACKENDS:-sqlite postgres}; do
    for shape in ${SHAPES:-chain-builtin chain-plugin fan-out}; do
        case "$backend" in
            sqlite) run_server "sqlite, $shape" "sqlite://$workdir/$shape.db" "$shape" "$@" ;;
            postgres)
                if [ "$postgres_started" -eq 0 ]; then
                    source scripts/postgres.sh
                    start_test_postgres
                    postgres_started=1
                fi
                name="e2e_${shape//-/_}"
                psql -q "$BUDPIPELINE_TEST_POSTGRES_URL" -c "CREATE DATABASE $name" >/dev/null
                run_server "postgres, $shape" "${BUDPIPELINE_TEST_POSTGRES_URL%/*}/$name" "$shape" "$@"
                ;;
            *) echo "benchmark-e2e: unknown backend '$backend' (sqlite or postgres)" >&2; exit 2 ;;
        esac
    done
done
