#!/usr/bin/env bash
# Measures runtime throughput on SQLite and on a PostgreSQL server started for the run (see
# docs/performance.md). Extra arguments go to `budpipeline-benchmarks runtime`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh test

swift build -c release --product budpipeline-benchmarks
source scripts/postgres.sh
start_test_postgres
trap stop_test_postgres EXIT

.build/release/budpipeline-benchmarks runtime --backend sqlite "$@"
echo
.build/release/budpipeline-benchmarks runtime --backend postgres "$@"
