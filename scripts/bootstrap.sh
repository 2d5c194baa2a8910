#!/usr/bin/env bash
# Installs what BudPipeline needs on a Debian machine, skipping what is already there.
#
#   scripts/bootstrap.sh run     what building and running the server needs
#   scripts/bootstrap.sh test    that plus what the test suite needs
#   scripts/bootstrap.sh quickstart   what running plus scripts/quickstart.sh needs (curl)
#
# Sourced by scripts/run.sh and scripts/test.sh; safe to run again.
set -euo pipefail

mode=${1:-run}

# Swift: the toolchain lives in /opt/swift on this machine kind.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="$PATH:/opt/swift/usr/bin"
fi
if ! command -v swift >/dev/null 2>&1; then
    echo "bootstrap: no Swift toolchain found (expected swift on PATH or in /opt/swift)" >&2
    exit 1
fi

# C compilers (plugins), SQLite and libpq headers (the two store backends), and Graphviz (the
# SVG graphs of `budpipeline graph` and the web console; DOT and Mermaid need nothing).
packages=(gcc g++ libsqlite3-dev libpq-dev graphviz)
if [ "$mode" = "quickstart" ]; then
    # The REST calls of scripts/quickstart.sh.
    packages+=(curl)
fi
if [ "$mode" = "test" ]; then
    # The PostgreSQL server the tests start, abidiff for the plugin ABI check, jansson with
    # pkg-config for the C SDK's example plugin (sdk/c), and Chromium with its WebDriver for the
    # web console's browser test.
    packages+=(postgresql abigail-tools libjansson-dev pkg-config chromium chromium-driver)
fi

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Rust (cargo): the Rust plugin SDK (sdk/rust) and its example plugin are built and loaded by the
# tests. rustup's toolchain when there is one, else Debian's (the crate needs Rust 1.63 and std only).
if [ "$mode" = "test" ]; then
    if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$PATH:$HOME/.cargo/bin"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "bootstrap: installing cargo"
        sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends cargo >/dev/null
    fi
fi

# schemathesis (PyPI) fuzzes the HTTP API against its OpenAPI document.
if [ "$mode" = "test" ] && ! python3 -m schemathesis.cli --version >/dev/null 2>&1; then
    echo "bootstrap: installing schemathesis"
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis==4.32.5"
fi

# Jinja2 (PyPI): the template engine is compared with it on generated expressions.
if [ "$mode" = "test" ] && ! python3 -c "import jinja2" >/dev/null 2>&1; then
    echo "bootstrap: installing Jinja2"
    python3 -m pip install --quiet --disable-pip-version-check "Jinja2==3.1.6"
fi
