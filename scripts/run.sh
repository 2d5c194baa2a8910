#!/usr/bin/env bash
# Builds BudPipeline and starts it on the embedded defaults: the HTTP API on 127.0.0.1:8010
# (HOST and PORT change it), the SQLite store under ./data (created and migrated on first start)
# and the bundled plugins. Stop it with Ctrl-C. Extra arguments go to `budpipeline serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh run

swift build
.build/debug/budpipeline plugins list
exec .build/debug/budpipeline serve --migrate "$@"
