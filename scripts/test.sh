#!/usr/bin/env bash
# Runs every check of the project, the way CI does: format, build, unit and end-to-end tests
# against SQLite and a PostgreSQL server it starts itself, schemathesis against the served OpenAPI
# document, libFuzzer on the parsers and the template evaluator, the plugin ABI check, the Rust
# plugin SDK, a plugin in each language rendered from plugin-template/, built and checked standalone,
# and the Kubernetes manifests in deploy/. (The container image has its own scripts:
# scripts/container-image.sh and scripts/container-smoke.sh, too slow for this run.)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh test

started=$SECONDS
step() {
    echo
    echo "==> $* ($((SECONDS - started))s)"
}

step "format (swift format lint)"
swift format lint --strict --recursive Package.swift Sources Tests Plugins Benchmarks Fuzz plugin-template sdk/swift/Package.swift sdk/swift/Sources/PluginKitTesting

step "build"
swift build --build-tests

step "PostgreSQL for the tests (initdb in a temporary directory, a free loopback port)"
source scripts/postgres.sh
start_test_postgres
trap stop_test_postgres EXIT
# The PostgreSQL suites must run: without a server they fail instead of being skipped; so must
# the comparison of the template engine with Jinja2.
export BUDPIPELINE_REQUIRE_POSTGRES=1
export BUDPIPELINE_REQUIRE_JINJA=1
# So must the graph tests that lay graphs out with Graphviz.
export BUDPIPELINE_REQUIRE_GRAPHVIZ=1
# And the web console's browser test (Chromium and chromedriver from Debian).
export BUDPIPELINE_REQUIRE_BROWSER=1

step "Rust plugin SDK (cargo test, offline)"
cargo test --offline --quiet --manifest-path sdk/rust/budpipeline-plugin/Cargo.toml --target-dir .build/rust

step "tests (SQLite and PostgreSQL)"
# The browser suites run on their own afterwards: Chromium takes both cores while it renders,
# and the other suites' timing-sensitive tests should not share the machine with it.
browser_suites="ConsoleBrowserTests|BrowserHarnessTests"
swift test --skip-build --skip "$browser_suites"

step "tests in a headless browser (the web console)"
swift test --skip-build --filter "$browser_suites"

step "HTTP API fuzzing (schemathesis against /openapi.json, SQLite and PostgreSQL)"
# The libFuzzer driver (a release build) is built meanwhile: schemathesis waits on the server
# more than it computes, and the build uses the idle core.
fuzz_build_log=$(mktemp)
scripts/fuzz.sh --build-only >"$fuzz_build_log" 2>&1 &
fuzz_build=$!
scripts/api-fuzz.sh sqlite
scripts/api-fuzz.sh postgres "$BUDPIPELINE_TEST_POSTGRES_URL"
wait "$fuzz_build" || { cat "$fuzz_build_log" >&2; exit 1; }

step "fuzzing (libFuzzer: templates, DAG documents, cron, JSON, events; ${FUZZ_SECONDS:-45}s each, one per core)"
scripts/fuzz.sh

step "plugin ABI (abidiff against the committed baseline)"
scripts/abi-check.sh

step "plugin template: render, build and test standalone"
scripts/template-check.sh

step "Kubernetes manifests (deploy/: rendered, schema-checked, cross-checked; broken copies refused)"
scripts/deploy-check.sh

step "all checks passed in $((SECONDS - started))s"
