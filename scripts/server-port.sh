# Sourced by the scripts that start `budpipeline serve --port 0` in the background.

# Prints the port the server logging to LOG listens on, once it says so; fails (printing the log)
# when it does not within SECONDS (default 20).
server_port() {
    local log=$1 limit=${2:-20} port=""
    for _ in $(seq 1 $((limit * 10))); do
        port=$(grep -o 'address=127.0.0.1:[0-9]*' "$log" | head -1 | cut -d: -f2 || true)
        if [ -n "$port" ]; then
            echo "$port"
            return 0
        fi
        sleep 0.1
    done
    echo "the server did not start:" >&2
    cat "$log" >&2
    return 1
}
