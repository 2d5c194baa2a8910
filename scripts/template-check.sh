#!/usr/bin/env bash
# Renders plugin-template/ with `budpipeline plugin new`, then builds and tests the new package on
# its own, offline, with no edits — what a team starting a plugin does.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

swift build --product budpipeline
.build/debug/budpipeline plugin new acme_resize --output "$work/acme_resize"
cd "$work/acme_resize"
swift build
swift test
