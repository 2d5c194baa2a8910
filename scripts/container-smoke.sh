#!/usr/bin/env bash
# Proves the container image runs, without a container engine: unpacks the image that
# scripts/container-image.sh built (umoci) and runs its entrypoint in that root file system the
# way the Kubernetes manifests in deploy/ run it — as the image's user (65532) with the image's
# environment, no capabilities and no_new_privs, the root file system read-only, an empty /tmp and
# data dir, in PID, mount and network namespaces of its own (only loopback inside). Then:
#
#   - `budpipeline plugins list --strict` loads every bundled plugin, and `plugins check --execute`
#     runs one Swift plugin in a plugin process (the isolation mode);
#   - `config check` accepts every setting the manifests in deploy/ give the containers;
#   - `serve` (the image's CMD, HOST=0.0.0.0, SQLite, migrated at start) answers GET /health and
#     GET /ready with 200, GET /metrics with the token, GET /actions lists the plugins' actions;
#   - a pipeline stored with POST /pipelines and started with POST /executions (log, a Swift plugin,
#     a C plugin) reaches COMPLETED;
#   - SIGTERM stops the server, PID 1 of its namespace as in a pod, with status 0;
#   - `worker` with BUDPIPELINE_WORKER_PORT (as deploy/ runs it) answers its probes and stops the same way;
#   - on PostgreSQL (a test server started in the namespace, scripts/postgres.sh), as deploy/ runs
#     the image: `migrate` (the init container), then a server and a worker sharing the database,
#     both ready, and the pipeline again.
#
#   scripts/container-smoke.sh [LAYOUT:TAG]     default: the image container-image.sh built last
#
# Exits non-zero with one line saying what failed.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    local message=$* code=0
    if [ -n "${server_pid:-}" ] && ! kill -0 "$server_pid" 2>/dev/null; then
        wait "$server_pid" 2>/dev/null || code=$?
        server_pid=""
        if [ "$code" -gt 128 ]; then
            message="$message (the process died of signal $((code - 128)), $(kill -l $((code - 128)) 2>/dev/null))"
        else
            message="$message (the process ended with status $code)"
        fi
    fi
    if [ -n "${log:-}" ] && [ -s "$log" ]; then
        echo "--- its last lines ($log):" >&2
        tail -n 15 "$log" >&2
    fi
    echo "container-smoke: FAILED: $message" >&2
    exit 1
}

missing=()
for package in umoci curl iproute2 util-linux postgresql; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "container-smoke: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ "$(id -u)" -eq 0 ] || fail "run as root (namespaces, mounts and the switch to the image's user need it)"

work=${BUDPIPELINE_IMAGE_DIR:-$PWD/.build-image}
image=${1:-}
if [ -z "$image" ]; then
    [ -f "$work/image-tag" ] || fail "no image: run scripts/container-image.sh first, or name LAYOUT:TAG"
    image="$work/oci:budpipeline:$(cat "$work/image-tag")"
fi
started=$SECONDS
step() {
    echo "==> $* ($((SECONDS - started))s)"
}

smoke=$(mktemp -d /tmp/budpipeline-smoke.XXXXXX)
netns=budpipeline-smoke-$$
server_pid=""
started_pids=()
cleanup() {
    local pid process
    for pid in "${started_pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            # The process itself first: PID 1 of its namespace, it takes the namespace with it (the
            # switch of user cleared the parent-death signal that would have ended it).
            process=$(find_process "$pid") && kill -KILL "$process" 2>/dev/null || true
            pkill -KILL -P "$pid" 2>/dev/null || true
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [ -n "${BUDPIPELINE_TEST_POSTGRES_DIR:-}" ]; then stop_test_postgres; fi
    ip netns delete "$netns" 2>/dev/null || true
    rm -rf "$smoke"
}
trap cleanup EXIT

step "unpack $image"
umoci unpack --image "$image" "$smoke/bundle" >/dev/null || fail "umoci cannot unpack $image"
rootfs=$smoke/bundle/rootfs

# The process the image describes (the runtime spec umoci derived from the image's config).
eval "$(python3 - "$smoke/bundle/config.json" <<'EOF'
import json, shlex, sys
process = json.load(open(sys.argv[1]))["process"]
print("image_uid=%d" % process["user"]["uid"])
print("image_gid=%d" % process["user"]["gid"])
print("image_cwd=%s" % shlex.quote(process.get("cwd") or "/"))
print("image_args=(%s)" % " ".join(shlex.quote(a) for a in process["args"]))
print("image_env=(%s)" % " ".join(shlex.quote(e) for e in process.get("env", [])))
EOF
)"
[ "$image_uid" -ne 0 ] || fail "the image runs as root"
echo "entrypoint: ${image_args[*]} as $image_uid:$image_gid in $image_cwd"
entrypoint=("${image_args[@]:0:${#image_args[@]}-1}") # the image's CMD (serve) is the last word

ip netns add "$netns"
ip -n "$netns" link set lo up

# run_in_image ENV... -- ARGS...: runs ARGS (the entrypoint's words first) in the unpacked image.
# The mounts mirror the pod: read-only root, tmpfs /tmp and data dir (the emptyDirs), /proc, a few
# devices; then the image's user (switching to it from root clears every capability), no
# supplementary groups and no_new_privs (allowPrivilegeEscalation: false).
run_in_image() {
    local env=()
    while [ "$1" != "--" ]; do env+=("$1"); shift; done
    shift
    ip netns exec "$netns" unshare --mount --pid --fork --kill-child --propagation private \
        sh -euc '
            root=$1; uid=$2; gid=$3; cwd=$4; shift 4
            mount --bind "$root" "$root"
            mount -o remount,bind,ro "$root"
            mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
            mount -t tmpfs -o nosuid,nodev,mode=1777,size=64m tmpfs "$root/tmp"
            mount -t tmpfs -o nosuid,nodev,mode=0750,size=256m,uid="$uid",gid="$gid" tmpfs "$root/var/lib/budpipeline"
            mount -t tmpfs -o nosuid,noexec,mode=0755,size=1m tmpfs "$root/dev"
            for device in null zero random urandom; do
                touch "$root/dev/$device"
                mount --bind "/dev/$device" "$root/dev/$device"
            done
            exec "$@"
        ' sh "$rootfs" "$image_uid" "$image_gid" "$image_cwd" \
        env -i "${image_env[@]}" "${env[@]}" \
        setpriv --no-new-privs --clear-groups \
        unshare --root "$rootfs" --wd "$image_cwd" --setgid "$image_gid" --setuid "$image_uid" -- "$@"
}

step "bundled plugins load (plugins list --strict)"
plugins_json=$(run_in_image -- "${entrypoint[@]}" plugins list --json --strict) ||
    fail "plugins list --strict in the image: $plugins_json"
read -r plugin_count action_list < <(python3 -c '
import json, sys
plugins = json.loads(sys.stdin.read())["plugins"]
print(len(plugins), ",".join(sorted(action for plugin in plugins for action in plugin["actions"])))
' <<<"$plugins_json") || fail "cannot read plugins list --json: $plugins_json"
run_in_image -- "${entrypoint[@]}" plugins list
[ "$plugin_count" -ge 6 ] || fail "expected the 6 bundled plugins, plugins list shows $plugin_count"

step "a Swift plugin in a plugin process (plugins check --execute)"
run_in_image -- "${entrypoint[@]}" plugins check /usr/lib/budpipeline/plugins/libGreeter.so --execute ||
    fail "plugins check --execute of libGreeter.so in the image"

step "the settings deploy/ gives the containers (config check)"
# The ConfigMap's literals and the Deployments' plain env values, secrets replaced by stand-ins.
mapfile -t deploy_env < <(python3 - deploy/base <<'EOF'
import glob, os, sys, yaml
base = sys.argv[1]
settings = {}
for literal in yaml.safe_load(open(os.path.join(base, "kustomization.yaml"))).get("configMapGenerator", [{}])[0].get("literals", []):
    name, value = literal.split("=", 1)
    settings[name] = value
for path in sorted(glob.glob(os.path.join(base, "*.yaml"))):
    for document in yaml.safe_load_all(open(path)):
        if not document or document.get("kind") != "Deployment":
            continue
        spec = document["spec"]["template"]["spec"]
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            for variable in container.get("env", []):
                if "value" in variable:
                    settings[variable["name"]] = variable["value"]
                elif "secretKeyRef" in variable.get("valueFrom", {}):
                    key = variable["valueFrom"]["secretKeyRef"]["key"]
                    settings[variable["name"]] = "postgresql://budpipeline:stand-in@db:5432/budpipeline" if key == "url" else "stand-in-token"
                elif "fieldRef" in variable.get("valueFrom", {}):
                    settings[variable["name"]] = "budpipeline-server-0"
for name, value in sorted(settings.items()):
    print("%s=%s" % (name, value))
EOF
)
[ ${#deploy_env[@]} -gt 0 ] || fail "found no settings in deploy/base"
check_output=$(run_in_image "${deploy_env[@]}" -- "${entrypoint[@]}" config check 2>&1 >/dev/null) ||
    fail "config check refuses the settings of deploy/: $check_output"
if grep -qi "warning" <<<"$check_output"; then fail "config check warns about the settings of deploy/: $check_output"; fi
echo "accepted: ${deploy_env[*]%%=*}"

token=smoke-$RANDOM$RANDOM
call_port=8010
call() { # METHOD PATH [BODY]: prints the body, then the status on its own line (000: no answer)
    local args=(-sS -o - -w '\n%{http_code}' -X "$1" -H "Authorization: Bearer $token" "http://127.0.0.1:$call_port$2")
    if [ $# -ge 3 ]; then args+=(-H 'Content-Type: application/json' -d "$3"); fi
    ip netns exec "$netns" curl "${args[@]}" 2>>"$smoke/curl.log" || echo
}
status_of() { tail -n 1 <<<"$1"; }
body_of() { sed '$d' <<<"$1"; }

# start_in_image NAME ENV... -- ARGS...: starts ARGS in the image in the background; its log is
# $smoke/NAME.log, its job's pid in $server_pid (which fail() explains when it died). The shell's
# own report of a job that died of a signal goes to jobs.log: fail() says it in one line.
start_in_image() {
    local name=$1
    shift
    log=$smoke/$name.log
    (
        exec 2>>"$smoke/jobs.log"
        run_in_image "$@" >"$log" 2>&1
        exit $?
    ) &
    server_pid=$!
    started_pids+=("$server_pid")
}
find_process() { # JOB: the descendant of a background job that runs /usr/bin/budpipeline
    local parents=("$1") children parent child
    while [ ${#parents[@]} -gt 0 ]; do
        children=()
        for parent in "${parents[@]}"; do
            for child in $(pgrep -P "$parent" || true); do
                if [ "$(tr '\0' '\n' <"/proc/$child/cmdline" 2>/dev/null | head -n 1)" = /usr/bin/budpipeline ]; then
                    echo "$child"
                    return 0
                fi
                children+=("$child")
            done
        done
        parents=("${children[@]}")
    done
    return 1
}
wait_until_serving() { # PORT WHAT: until GET /health answers
    for _ in $(seq 1 300); do
        if ip netns exec "$netns" curl -fs -o /dev/null "http://127.0.0.1:$1/health"; then return 0; fi
        kill -0 "$server_pid" 2>/dev/null || fail "$2 exited before answering /health"
        sleep 0.1
    done
    fail "$2 did not answer /health within 30 s"
}
expect() { # STATUS METHOD PATH [BODY]: the call must answer STATUS; its body is in $body
    local answer
    answer=$(call "${@:2}")
    body=$(body_of "$answer")
    [ "$(status_of "$answer")" = "$1" ] || fail "$2 $3 answered $(status_of "$answer"), not $1: $(head -c 300 <<<"$body")"
}
stop_in_image() { # JOB WHAT: SIGTERM to the process, as Kubernetes sends it; it must end with status 0
    local process code=0 stop_started=$SECONDS
    process=$(find_process "$1") || fail "cannot find the process of $2"
    kill -TERM "$process"
    wait "$1" || code=$?
    [ "$code" -eq 0 ] || fail "$2 exited with status $code after SIGTERM (0 is a clean stop)"
    echo "$2: SIGTERM, stopped with status 0 in $((SECONDS - stop_started))s"
}
run_pipeline() { # NAME: stores a pipeline (log, a Swift plugin, a C plugin), runs it, waits for COMPLETED
    local dag pipeline_id execution_id status=""
    dag='{"name": "'"$1"'", "steps": [
      {"id": "hello", "name": "Say hello", "action": "log", "params": {"message": "hello from the container"}},
      {"id": "greet", "name": "Greet", "action": "greet", "depends_on": ["hello"], "params": {"name": "container"}},
      {"id": "stats", "name": "Count", "action": "text_stats", "depends_on": ["greet"],
       "params": {"text": "{{ steps.greet.outputs.greeting }}"}}]}'
    expect 201 POST /pipelines "{\"dag\": $dag}"
    pipeline_id=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])' <<<"$body")
    expect 201 POST /executions "{\"workflow_id\": \"$pipeline_id\", \"params\": {}}"
    execution_id=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["execution_id"])' <<<"$body")
    for _ in $(seq 1 300); do
        expect 200 GET "/executions/$execution_id"
        status=$(python3 -c 'import json, sys; print(json.load(sys.stdin).get("status", ""))' <<<"$body")
        case $status in
            COMPLETED | FAILED | CANCELLED) break ;;
        esac
        sleep 0.1
    done
    [ "$status" = COMPLETED ] || fail "execution $execution_id ended ${status:-not at all}: $(head -c 600 <<<"$body")"
    expect 200 GET "/executions/$execution_id/graph?format=svg"
    grep -q 'class="node step status&#45;completed"' <<<"$body" || fail "the execution's SVG graph (Graphviz in the image) lacks its steps: $(head -c 300 <<<"$body")"
    echo "GET /executions/$execution_id/graph: an SVG laid out by the image's dot"
    expect 200 GET "/executions/$execution_id/steps"
    echo "execution $execution_id: COMPLETED; steps:"
    python3 -c '
import json, sys
steps = json.load(sys.stdin)
steps = steps.get("steps", steps) if isinstance(steps, dict) else steps
for step in steps:
    print("  %-6s %-10s %s" % (step.get("step_id"), step.get("status"), json.dumps(step.get("outputs"))[:120]))' <<<"$body"
}

step "serve (the image's CMD) on SQLite"
start_in_image server APP_API_TOKEN="$token" AUTO_MIGRATE=true -- "${image_args[@]}"
wait_until_serving 8010 "the server"
expect 200 GET /health
echo "GET /health: 200 $(head -c 300 <<<"$body")"
expect 200 GET /ready
echo "GET /ready: 200 $(head -c 300 <<<"$body")"
server=$(find_process "$server_pid") || fail "cannot find the server's process"
identity=$(awk '$1 ~ /^(Uid|Gid|Groups|CapEff|CapBnd|NoNewPrivs|NSpid):$/ { $1 = $1; printf "%s%s", sep, $0; sep = "; " }' "/proc/$server/status")
echo "server process: $identity"
grep -q '^Uid:[[:space:]]*65532[[:space:]]' "/proc/$server/status" || fail "the server does not run as 65532: $identity"
grep -q '^CapEff:[[:space:]]*0*$' "/proc/$server/status" || fail "the server kept capabilities: $identity"
expect 200 GET /metrics
grep -q '^budpipeline_build_info' <<<"$body" || fail "GET /metrics has no budpipeline_build_info"
echo "GET /metrics: 200, $(grep -c '^budpipeline_' <<<"$body") budpipeline_* series"
expect 200 GET /actions
for action in ${action_list//,/ }; do
    grep -q "\"$action\"" <<<"$body" || fail "GET /actions does not list the plugin action $action"
done
echo "GET /actions: 200, lists the plugins' actions: $action_list"
step "a pipeline through REST on SQLite (log, greet: Swift plugin, text_stats: C plugin)"
run_pipeline container-smoke
step "SIGTERM to the server (PID 1 of its namespace, as in a pod)"
stop_in_image "$server_pid" "the server"
server_pid=""

step "worker with its probe port (as deploy/ runs it), SQLite"
start_in_image worker APP_API_TOKEN="$token" AUTO_MIGRATE=true BUDPIPELINE_WORKER_PORT=8011 -- "${entrypoint[@]}" worker
wait_until_serving 8011 "the worker"
call_port=8011
for route in /health /ready /metrics; do expect 200 GET $route; done
expect 404 GET /pipelines
echo "GET /health, /ready, /metrics: 200; GET /pipelines: 404 (no API on a worker)"
stop_in_image "$server_pid" "the worker"
server_pid=""

# PostgreSQL, as deploy/ runs the image: migrate (the init container), then a server and a worker
# sharing the database. The test server runs in the smoke test's network namespace.
step "PostgreSQL: migrate, then serve and worker together (as deploy/ runs them)"
source scripts/postgres.sh
eval "$(ip netns exec "$netns" bash -c 'source scripts/postgres.sh && start_test_postgres >&2 &&
    declare -p BUDPIPELINE_TEST_POSTGRES_DIR BUDPIPELINE_TEST_POSTGRES_URL BUDPIPELINE_TEST_POSTGRES_BIN BUDPIPELINE_TEST_POSTGRES_RUN_AS' |
    sed 's/^declare -[a-zA-Z-]* /declare -g /')" || fail "cannot start a PostgreSQL server for the smoke test"
database_url=$BUDPIPELINE_TEST_POSTGRES_URL
postgres_env=(DATABASE_URL="$database_url" APP_API_TOKEN="$token")
migrated=$(run_in_image "${postgres_env[@]}" -- "${entrypoint[@]}" migrate 2>&1) || fail "migrate on PostgreSQL: $migrated"
echo "migrate: $migrated"
start_in_image pg-server "${postgres_env[@]}" -- "${image_args[@]}"
pg_server=$server_pid
wait_until_serving 8010 "the server on PostgreSQL"
start_in_image pg-worker "${postgres_env[@]}" BUDPIPELINE_WORKER_PORT=8011 -- "${entrypoint[@]}" worker
pg_worker=$server_pid
wait_until_serving 8011 "the worker on PostgreSQL"
call_port=8011
expect 200 GET /ready
call_port=8010
server_pid=$pg_server
expect 200 GET /ready
echo "GET /ready: 200 from the server and the worker: $(head -c 200 <<<"$body")"
run_pipeline container-smoke-postgres
stop_in_image "$pg_worker" "the worker on PostgreSQL"
stop_in_image "$pg_server" "the server on PostgreSQL"
server_pid=""
stop_test_postgres

step "container smoke test passed"
