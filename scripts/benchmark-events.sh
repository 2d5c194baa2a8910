#!/usr/bin/env bash
# Measures the latency from an inbound event to the awaiting step completed and its dependant
# dispatched, and the lag of timers, on SQLite and on a PostgreSQL server started for the run (see
# docs/performance.md). Extra arguments go to `budpipeline-benchmarks events`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh test

swift build -c release --product budpipeline-benchmarks
swift build -c release --product Greeter
source scripts/postgres.sh
start_test_postgres
trap stop_test_postgres EXIT

.build/release/budpipeline-benchmarks events --backend sqlite "$@"
echo
.build/release/budpipeline-benchmarks events --backend postgres "$@"
echo
.build/release/budpipeline-benchmarks timers --backend sqlite
echo
.build/release/budpipeline-benchmarks timers --backend postgres
