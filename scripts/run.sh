#!/usr/bin/env bash
# Builds BudPipeline and starts it on the embedded defaults with the bundled plugins.
#
# Until the HTTP server lands, this builds everything and shows the plugins the host loads.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh run

swift build
exec .build/debug/budpipeline plugins list "$@"
