#!/usr/bin/env bash
# Validates the Kubernetes manifests in deploy/ on this machine, with no cluster: renders each
# kustomization (kubectl's built-in kustomize), checks every object against the Kubernetes JSON
# schemas of the oldest and the newest version we support (kubernetes-validate from PyPI, which
# carries them offline; strict: an unknown or misspelt field fails), the Dapr resources against
# their CRDs' fields, and then what no schema sees: selectors that match their pods, named ports,
# volumes and config maps that exist, the Dapr token secrets given to the app as the same
# secrets, probes, resources and the restricted security context on every container.
#
#   scripts/deploy-check.sh [KUSTOMIZATION_DIR...]    default: deploy/base and deploy/overlays/*
#
# It first proves it can fail: broken copies of deploy/base (a misspelt field, a token secret
# that differs from the annotation, a selector that matches nothing, ...) must each be refused.
set -euo pipefail
cd "$(dirname "$0")/.."

# The versions checked: 1.30 is the oldest with the preStop `sleep` action the server uses.
kube_versions=(1.30.0 1.37.0)

if ! command -v kubectl >/dev/null 2>&1; then
    echo "deploy-check: installing kubectl"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends kubectl >/dev/null 2>&1 ||
        apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
fi
if ! python3 -c "import kubernetes_validate" >/dev/null 2>&1; then
    echo "deploy-check: installing kubernetes-validate"
    python3 -m pip install --quiet --disable-pip-version-check "kubernetes-validate==1.37.0"
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(deploy/base)
    for overlay in deploy/overlays/*/; do targets+=("${overlay%/}"); done
fi

scratch=$(mktemp -d /tmp/budpipeline-deploy-check.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

# check_rendered FILE: the checks on one rendered stream of objects (exit status 1 on any error).
check_rendered() {
    python3 - "$1" "${kube_versions[@]}" <<'EOF'
import sys
import yaml
import jsonschema
import kubernetes_validate

path, versions = sys.argv[1], sys.argv[2:]
documents = [d for d in yaml.safe_load_all(open(path)) if d]
errors = []

def fail(obj, message):
    errors.append("%s/%s: %s" % (obj.get("kind"), obj.get("metadata", {}).get("name"), message))

# Dapr's custom resources: the fields of their CRDs (dapr.io/v1alpha1 Component, v2alpha1 Subscription).
name_value = {"type": "object", "additionalProperties": False, "required": ["name"], "properties": {
    "name": {"type": "string"}, "value": {}, "envRef": {"type": "string"},
    "secretKeyRef": {"type": "object", "additionalProperties": False, "required": ["name"],
                     "properties": {"name": {"type": "string"}, "key": {"type": "string"}}}}}
metadata = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
dapr_schemas = {
    ("dapr.io/v1alpha1", "Component"): {"type": "object", "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"], "properties": {
            "apiVersion": {}, "kind": {}, "metadata": metadata,
            "auth": {"type": "object", "properties": {"secretStore": {"type": "string"}}},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "spec": {"type": "object", "additionalProperties": False, "required": ["type", "version"], "properties": {
                "type": {"type": "string"}, "version": {"type": "string"},
                "ignoreErrors": {"type": "boolean"}, "initTimeout": {"type": "string"},
                "metadata": {"type": "array", "items": name_value}}}}},
    ("dapr.io/v2alpha1", "Subscription"): {"type": "object", "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"], "properties": {
            "apiVersion": {}, "kind": {}, "metadata": metadata,
            "scopes": {"type": "array", "items": {"type": "string"}},
            "spec": {"type": "object", "additionalProperties": False, "required": ["pubsubname", "topic", "routes"], "properties": {
                "pubsubname": {"type": "string"}, "topic": {"type": "string"},
                "deadLetterTopic": {"type": "string"}, "metadata": {"type": "object"},
                "bulkSubscribe": {"type": "object"},
                "routes": {"type": "object", "additionalProperties": False, "properties": {
                    "default": {"type": "string"},
                    "rules": {"type": "array", "items": {"type": "object", "additionalProperties": False,
                              "required": ["match", "path"],
                              "properties": {"match": {"type": "string"}, "path": {"type": "string"}}}}}}}}}},
}

for obj in documents:
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key in dapr_schemas:
        try:
            jsonschema.validate(obj, dapr_schemas[key])
        except jsonschema.ValidationError as error:
            fail(obj, "%s at %s" % (error.message, "/".join(str(p) for p in error.absolute_path)))
        continue
    if str(obj.get("apiVersion", "")).split("/")[0].endswith("dapr.io"):
        fail(obj, "no schema here for %s %s" % key)
        continue
    for version in versions:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            fail(obj, "not a Kubernetes %s kind: %s %s" % (version, *key))
            break
        except kubernetes_validate.ValidationError as error:
            fail(obj, "Kubernetes %s schema: %s at %s" % (
                version, error.message, "/".join(str(p) for p in error.absolute_path)))
            break

# The pod annotations Dapr's sidecar injector reads (pkg/injector/patcher/sidecar.go, Dapr 1.13+).
dapr_annotations = set("""
enabled app-port config app-protocol app-ssl app-id enable-profiling log-level api-token-secret
app-token-secret log-as-json app-max-concurrency enable-metrics metrics-port enable-debug debug-port
env env-from-secret grpc-port internal-grpc-port sidecar-cpu-request sidecar-cpu-limit
sidecar-memory-request sidecar-memory-limit sidecar-listen-addresses
sidecar-liveness-probe-delay-seconds sidecar-liveness-probe-timeout-seconds
sidecar-liveness-probe-period-seconds sidecar-liveness-probe-threshold
sidecar-readiness-probe-delay-seconds sidecar-readiness-probe-timeout-seconds
sidecar-readiness-probe-period-seconds sidecar-readiness-probe-threshold sidecar-image
sidecar-seccomp-profile-type http-max-request-size max-body-size http-read-buffer-size
read-buffer-size graceful-shutdown-seconds block-shutdown-duration enable-api-logging
unix-domain-socket-path volume-mounts volume-mounts-rw disable-builtin-k8s-secret-store
enable-app-health-check app-health-check-path app-health-probe-interval app-health-probe-timeout
app-health-threshold placement-host-address scheduler-host-address pluggable-components
pluggable-components-sockets-folder component-container inject-pluggable-components
app-channel-address sentry-request-jwt-audiences
""".split())

# The checks below read the objects' structure: only once the schemas accept them.
if errors:
    for error in errors:
        print("  " + error)
    sys.exit(1)

def kind(k):
    return [o for o in documents if o.get("kind") == k]

def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

workloads = kind("Deployment") + kind("StatefulSet") + kind("Job")
templates = [(w, (w.get("spec") or {}).get("template") or {}) for w in workloads]
config_maps = {o["metadata"]["name"] for o in kind("ConfigMap")}

for workload, template in templates:
    spec = template.get("spec") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    selector = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels")
    if workload["kind"] != "Job" and not matches(selector, labels):
        fail(workload, "spec.selector does not match the pod template's labels")
    pod_security = spec.get("securityContext") or {}
    if pod_security.get("runAsNonRoot") is not True:
        fail(workload, "the pod must set securityContext.runAsNonRoot: true")
    if (pod_security.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        fail(workload, "the pod must set a seccompProfile (RuntimeDefault)")
    if workload["kind"] == "Deployment" and (spec.get("terminationGracePeriodSeconds") or 30) < 30:
        fail(workload, "terminationGracePeriodSeconds must leave the server its 20 s stop (at least 30)")
    volumes = {v["name"] for v in spec.get("volumes") or []}
    containers = spec.get("containers") or []
    ports = {}
    for container in containers + (spec.get("initContainers") or []):
        where = "container %s" % container.get("name")
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") not in volumes:
                fail(workload, "%s mounts volume %s, which the pod does not have" % (where, mount.get("name")))
        for source in container.get("envFrom") or []:
            reference = (source.get("configMapRef") or {}).get("name")
            if reference and reference not in config_maps:
                fail(workload, "%s reads config map %s, which is not among the manifests" % (where, reference))
        resources = container.get("resources") or {}
        for part in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (resources.get(part) or {}):
                    fail(workload, "%s has no resources.%s.%s" % (where, part, resource))
        security = container.get("securityContext") or {}
        if security.get("readOnlyRootFilesystem") is not True:
            fail(workload, "%s must set readOnlyRootFilesystem: true" % where)
        if security.get("allowPrivilegeEscalation") is not False:
            fail(workload, "%s must set allowPrivilegeEscalation: false" % where)
        if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
            fail(workload, "%s must drop ALL capabilities" % where)
        for port in container.get("ports") or []:
            ports[port.get("name") or str(port["containerPort"])] = port["containerPort"]
    for container in containers:
        where = "container %s" % container.get("name")
        for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container.get(probe_name)
            if probe and "httpGet" in probe:
                port = probe["httpGet"].get("port")
                if isinstance(port, str) and port not in ports:
                    fail(workload, "%s %s uses port %s, which no container names" % (where, probe_name, port))
                if (probe.get("timeoutSeconds") or 1) < 3:
                    fail(workload, "%s %s needs timeoutSeconds >= 3 (the server's own deadline is 2 s)" % (where, probe_name))

    # Dapr reads only the annotations it knows; a misspelt one is ignored without a word.
    for annotation in annotations:
        if annotation.startswith("dapr.io/") and annotation[len("dapr.io/"):] not in dapr_annotations:
            fail(workload, "unknown Dapr annotation %s (Dapr would ignore it)" % annotation)
    # Dapr: the sidecar's tokens must be the app's, from the same secrets (the injector gives them
    # to the sidecar only).
    if annotations.get("dapr.io/enabled") == "true":
        if not annotations.get("dapr.io/app-id"):
            fail(workload, "dapr.io/enabled without dapr.io/app-id")
        env = {e["name"]: e for c in containers for e in c.get("env") or []}
        for annotation, variable in (("dapr.io/app-token-secret", "APP_API_TOKEN"),
                                     ("dapr.io/api-token-secret", "DAPR_API_TOKEN")):
            secret = annotations.get(annotation)
            if not secret:
                continue
            reference = ((env.get(variable) or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
            if reference.get("name") != secret or reference.get("key") != "token":
                fail(workload, "%s is %s, so %s must come from that secret's key `token` (found %s)"
                     % (annotation, secret, variable, reference or "none"))
        app_port = annotations.get("dapr.io/app-port")
        if app_port:
            if int(app_port) not in ports.values():
                fail(workload, "dapr.io/app-port %s is no container port" % app_port)
            if "APP_API_TOKEN" in env and not annotations.get("dapr.io/app-token-secret"):
                fail(workload, "APP_API_TOKEN is set but the sidecar is given no dapr.io/app-token-secret")
            probes = {c.get(p, {}).get("httpGet", {}).get("path") for c in containers
                      for p in ("livenessProbe", "readinessProbe")}
            if not {"/health", "/ready"} <= probes:
                fail(workload, "the HTTP server needs liveness /health and readiness /ready probes")
    scrape_port = annotations.get("prometheus.io/port")
    if scrape_port and int(scrape_port) not in ports.values():
        fail(workload, "prometheus.io/port %s is no container port" % scrape_port)

pod_labels = [((t.get("metadata") or {}).get("labels") or {}, t) for _, t in templates]
for service in kind("Service"):
    selector = (service.get("spec") or {}).get("selector") or {}
    selected = [t for labels, t in pod_labels if matches(selector, labels)]
    if not selected:
        fail(service, "spec.selector matches no pod template")
    for port in (service.get("spec") or {}).get("ports") or []:
        target = port.get("targetPort")
        if isinstance(target, str):
            names = {p.get("name") for t in selected for c in (t.get("spec") or {}).get("containers") or []
                     for p in c.get("ports") or []}
            if target not in names:
                fail(service, "targetPort %s is not a port of the selected pods" % target)
for budget in kind("PodDisruptionBudget"):
    selector = ((budget.get("spec") or {}).get("selector") or {}).get("matchLabels")
    if not any(matches(selector, labels) for labels, _ in pod_labels):
        fail(budget, "spec.selector matches no pod template")

for error in errors:
    print("  " + error)
sys.exit(1 if errors else 0)
EOF
}

render() { # kustomization dir, output file
    kubectl kustomize "$1" >"$2" 2>"$2.err" || {
        echo "  kustomize: $(head -c 600 "$2.err")"
        return 1
    }
}

# 1. The checker must refuse broken manifests.
echo "==> the checks refuse broken manifests"
self_test() { # description, then a Python snippet editing the YAML text `t` of one file
    local description=$1 file=$2 edit=$3 copy=$scratch/broken
    rm -rf "$copy"
    cp -r deploy "$copy"
    python3 -c "
import sys
path = sys.argv[1]
t = open(path).read()
$edit
open(path, 'w').write(t)" "$copy/base/$file"
    local reason
    if reason=$(render "$copy/base" "$scratch/broken.yaml" && check_rendered "$scratch/broken.yaml"); then
        echo "deploy-check: FAILED: a broken manifest passed: $description" >&2
        exit 1
    fi
    echo "  refused: $description:"
    echo "    $(head -n 1 <<<"$reason" | sed 's/^ *//' | cut -c1-150)"
}
self_test "a misspelt field (targtPort)" server-service.yaml "t = t.replace('targetPort:', 'targtPort:')"
self_test "a field at the wrong place (readOnlyRootFilesystem in the pod)" server-deployment.yaml \
    "t = t.replace('        runAsNonRoot: true', '        runAsNonRoot: true\n        readOnlyRootFilesystem: true', 1)"
self_test "a wrong type (replicas: two)" worker-deployment.yaml "t = t.replace('replicas: 2', 'replicas: two')"
self_test "APP_API_TOKEN from another secret than dapr.io/app-token-secret" server-deployment.yaml \
    "t = t.replace('dapr.io/app-token-secret: budpipeline-app-token', 'dapr.io/app-token-secret: other-token')"
self_test "a misspelt Dapr annotation (app-token-secrets)" server-deployment.yaml \
    "t = t.replace('dapr.io/app-token-secret:', 'dapr.io/app-token-secrets:')"
self_test "a Service selecting no pod" server-service.yaml "t = t.replace('component: server', 'component: sever')"
self_test "a container without a memory limit" worker-deployment.yaml "t = t.replace('              memory: 1Gi\n', '')"
self_test "a writable root file system" worker-deployment.yaml "t = t.replace('readOnlyRootFilesystem: true', 'readOnlyRootFilesystem: false')"
self_test "a broken kustomization (missing resource)" kustomization.yaml "t = t.replace('  - worker-pdb.yaml', '  - worker-pbd.yaml')"

# 2. Ours must pass.
failed=0
for target in "${targets[@]}"; do
    echo "==> $target (Kubernetes ${kube_versions[*]})"
    rendered=$scratch/$(echo "$target" | tr '/' '_').yaml
    if ! render "$target" "$rendered"; then
        failed=1
        continue
    fi
    if check_rendered "$rendered"; then
        echo "  valid: $(grep -c '^kind:' "$rendered") objects ($(grep '^kind:' "$rendered" | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $3; sep=", "}'))"
    else
        failed=1
    fi
done
if [ "$failed" -ne 0 ]; then
    echo "deploy-check: FAILED: the manifests above are invalid" >&2
    exit 1
fi
echo "deploy-check: all manifests valid"
