#!/usr/bin/env bash
# Compares the plugin ABI (Sources/PluginABI/include/budpipeline_plugin.h) with the committed
# baseline Tests/ABI/budpipeline_plugin_v1.abi using libabigail's abidiff.
#
#   scripts/abi-check.sh            check; fails on any difference
#   scripts/abi-check.sh --update   rewrite the baseline (after an intended, compatible ABI change:
#                                   fields appended, struct_size-guarded, docs/plugins.md updated)
set -euo pipefail
cd "$(dirname "$0")/.."

baseline=Tests/ABI/budpipeline_plugin_v1.abi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The same compile flags on every machine; the file name in the baseline is fixed.
cc -std=c11 -g -O0 -shared -fPIC -fvisibility=hidden -I Sources/PluginABI/include \
    -o "$work/libbudpipeline_abi.so" Tests/ABI/abi_surface.c

if [ "${1:-}" = "--update" ]; then
    abidw --no-corpus-path --no-comp-dir-path --no-show-locs --out-file "$baseline" "$work/libbudpipeline_abi.so"
    echo "abi-check: wrote $baseline"
    exit 0
fi

set +e
report=$(abidiff --no-show-locs "$baseline" "$work/libbudpipeline_abi.so" 2>&1)
status=$?
set -e
if [ $status -ne 0 ]; then
    echo "abi-check: the plugin ABI differs from $baseline (abidiff status $status):"
    echo "$report"
    echo
    echo "A released field, constant or function signature changed: that breaks shipped plugins."
    echo "If the change only appends fields as docs/plugins.md allows, review it and run"
    echo "scripts/abi-check.sh --update to record the new baseline."
    exit 1
fi
echo "abi-check: the plugin ABI matches $baseline"
