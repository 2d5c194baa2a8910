#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests: initdb in a temporary directory, a free loopback
# port, trust authentication, stopped and deleted by stop_test_postgres.
#
#   source scripts/postgres.sh
#   start_test_postgres          # exports BUDPIPELINE_TEST_POSTGRES_URL (an admin URL; tests create their databases)
#   stop_test_postgres
#
# Installs PostgreSQL with apt-get when it is missing.

find_postgres_bin() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
    done
    return 1
}

start_test_postgres() {
    local bin
    if ! bin=$(find_postgres_bin); then
        echo "postgres: installing postgresql"
        local sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
        bin=$(find_postgres_bin) || { echo "postgres: no initdb/pg_ctl after installing postgresql" >&2; return 1; }
    fi
    BUDPIPELINE_TEST_POSTGRES_DIR=$(mktemp -d /tmp/budpipeline-pg.XXXXXX)
    export BUDPIPELINE_TEST_POSTGRES_DIR
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # initdb refuses to run as root: run the server as the postgres user then.
    BUDPIPELINE_TEST_POSTGRES_RUN_AS=()
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown postgres "$BUDPIPELINE_TEST_POSTGRES_DIR"
        BUDPIPELINE_TEST_POSTGRES_RUN_AS=(runuser -u postgres --)
    fi
    "${BUDPIPELINE_TEST_POSTGRES_RUN_AS[@]}" "$bin/initdb" -D "$BUDPIPELINE_TEST_POSTGRES_DIR/data" -U budpipeline \
        --auth=trust -E UTF8 --no-locale >"$BUDPIPELINE_TEST_POSTGRES_DIR/initdb.log" 2>&1 \
        || { cat "$BUDPIPELINE_TEST_POSTGRES_DIR/initdb.log" >&2; return 1; }
    "${BUDPIPELINE_TEST_POSTGRES_RUN_AS[@]}" "$bin/pg_ctl" -D "$BUDPIPELINE_TEST_POSTGRES_DIR/data" -w -t 60 \
        -l "$BUDPIPELINE_TEST_POSTGRES_DIR/server.log" \
        -o "-p $port -k $BUDPIPELINE_TEST_POSTGRES_DIR -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null \
        || { cat "$BUDPIPELINE_TEST_POSTGRES_DIR/server.log" >&2; return 1; }
    BUDPIPELINE_TEST_POSTGRES_BIN=$bin
    export BUDPIPELINE_TEST_POSTGRES_BIN
    export BUDPIPELINE_TEST_POSTGRES_URL="postgresql://budpipeline@127.0.0.1:$port/postgres"
    echo "postgres: test server $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}

stop_test_postgres() {
    [ -n "${BUDPIPELINE_TEST_POSTGRES_DIR:-}" ] || return 0
    "${BUDPIPELINE_TEST_POSTGRES_RUN_AS[@]}" "$BUDPIPELINE_TEST_POSTGRES_BIN/pg_ctl" -D "$BUDPIPELINE_TEST_POSTGRES_DIR/data" \
        -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$BUDPIPELINE_TEST_POSTGRES_DIR"
    unset BUDPIPELINE_TEST_POSTGRES_DIR BUDPIPELINE_TEST_POSTGRES_URL
}
