#!/usr/bin/env bash
# Installs the plugin C SDK — the ABI header, the jansson helpers and a pkg-config file — under a
# prefix (default /usr/local), so that a plugin builds with
#   cc ... $(pkg-config --cflags budpipeline-plugin jansson) ... $(pkg-config --libs jansson)
# Usage: scripts/install-sdk.sh [PREFIX]   (PKG_CONFIG_PATH must then include PREFIX/lib/pkgconfig
# unless PREFIX is one pkg-config searches already, as /usr/local is.)
set -euo pipefail
prefix="${1:-/usr/local}"
root="$(cd "$(dirname "$0")/.." && pwd)"
version="$(sed -n 's/.*version: "\([0-9][0-9.]*\) (plugin ABI.*/\1/p' "$root/Sources/budpipeline/BudPipelineCommand.swift")"
[ -n "$version" ] || { echo "install-sdk: could not read the version" >&2; exit 1; }
install -d "$prefix/include/budpipeline" "$prefix/lib/pkgconfig"
install -m 0644 "$root/Sources/PluginABI/include/budpipeline_plugin.h" "$root/sdk/c/include/budpipeline_plugin_helpers.h" \
    "$prefix/include/budpipeline/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" "$root/sdk/c/budpipeline-plugin.pc.in" \
    > "$prefix/lib/pkgconfig/budpipeline-plugin.pc"
echo "install-sdk: headers in $prefix/include/budpipeline, budpipeline-plugin.pc in $prefix/lib/pkgconfig"
