#!/usr/bin/env bash
# Renders plugin-template/ with `budpipeline plugin new` in each language, then builds and checks
# each new plugin on its own, offline, with no edits — what a team starting a plugin does:
#   Swift: swift build && swift test
#   C:     the C SDK installed into a fresh prefix (scripts/install-sdk.sh), make && make check
#   Rust:  cargo test && cargo build --release (the SDK crate copied in), plugins check
set -euo pipefail
cd "$(dirname "$0")/.."
repository=$(pwd)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

swift build --product budpipeline
budpipeline="$repository/.build/debug/budpipeline"

echo "template-check: Swift"
"$budpipeline" plugin new acme_resize --output "$work/swift"
(cd "$work/swift" && swift build && swift test)

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
