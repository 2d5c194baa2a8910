#!/usr/bin/env bash
# Builds BudPipeline and starts it on the embedded defaults: the SQLite store under ./data
# (created and migrated on first start) and the bundled plugins. Stop it with Ctrl-C.
#
# Until the HTTP API lands this runs the execution runtime (`budpipeline worker`); extra
# arguments are passed on.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh run

swift build
.build/debug/budpipeline plugins list
exec .build/debug/budpipeline worker --migrate "$@"
