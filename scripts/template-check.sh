#!/usr/bin/env bash
# Renders plugin-template/ with `budpipeline plugin new` in each language, then builds and checks
# each new plugin on its own, offline, with no edits — what a team starting a plugin does:
#   Swift: swift build && swift test, with a fresh package cache and no network (the SDK copied in)
#   C:     the C SDK installed into a fresh prefix (scripts/install-sdk.sh), make && make check
#   Rust:  cargo test && cargo build --release (the SDK crate copied in), plugins check
set -euo pipefail
cd "$(dirname "$0")/.."
repository=$(pwd)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

swift build --product budpipeline
budpipeline="$repository/.build/debug/budpipeline"

echo "template-check: Swift (a fresh package cache and no network)"
"$budpipeline" plugin new acme_resize --output "$work/swift"
# The plugin must build with nothing but its vendored SDK: empty SwiftPM cache, configuration and
# security directories, and no network — a network namespace of its own when the system allows
# one, otherwise proxies that lead nowhere.
offline=()
if unshare -n true 2>/dev/null; then offline=(unshare -n); fi
swiftpm=(--cache-path "$work/swiftpm/cache" --config-path "$work/swiftpm/config" --security-path "$work/swiftpm/security")
(
    cd "$work/swift"
    export http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9
    dependencies=$("${offline[@]}" swift package "${swiftpm[@]}" show-dependencies --format flatlist)
    [ "$dependencies" = "budpipeline-plugin-sdk" ] || { echo "template-check: unexpected dependencies: $dependencies" >&2; exit 1; }
    "${offline[@]}" swift build --build-tests "${swiftpm[@]}"
    # Built offline; the test run itself needs no network either, but swift-testing's runner does
    # not start in a namespace without one, so it runs as usual.
    BUDPIPELINE="$budpipeline" swift test --skip-build "${swiftpm[@]}"
)

echo "template-check: C"
scripts/install-sdk.sh "$work/prefix"
"$budpipeline" plugin new acme_resize --lang c --output "$work/c"
(cd "$work/c" && PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" make BUDPIPELINE="$budpipeline" libacme_resize.so check)

echo "template-check: Rust"
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then PATH="$HOME/.cargo/bin:$PATH"; fi
"$budpipeline" plugin new acme_resize --lang rust --output "$work/rust"
(cd "$work/rust" && CARGO_HOME="$work/cargo-home" cargo test --offline --quiet \
    && CARGO_HOME="$work/cargo-home" cargo build --offline --release --quiet \
    && "$budpipeline" plugins check target/release/libacme_resize.so --execute)
echo "template-check: all three plugins built and checked"
