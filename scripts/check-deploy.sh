#!/usr/bin/env bash
# Renders every kustomization under deploy/ offline (kubectl kustomize) and validates each object
# against the Kubernetes 1.36 API (kubernetes-validate --strict: unknown fields are errors). An
# object kubernetes-validate does not know (a CRD's, or a kind newer than 1.36) only makes it
# warn and exit 0, so any line that is not a pass fails this check. deploy/monitoring holds the
# Prometheus Operator's ServiceMonitor, a CRD kubernetes-validate cannot know: it is checked
# against our own rules below. With dist/bin/xpu-kube built, the ResourceSlices the controller
# publishes for a sample inventory are validated too, and so are the CDI specs the kubelet
# plugin writes for sample claims (`xpu-kube cdi-spec`): against our JSON schema of the CDI spec
# (proto/cdi/spec.schema.json) and our own rules, after specs that must be refused were refused
# (scripts/check-cdi-specs.py).
# Needs: kubectl (>= 1.27, for kustomize; not in Debian's archive, preinstalled on the build
# machines) and the PyPI packages kubernetes-validate and jsonschema (scripts/lib/prereqs.sh
# installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v kubectl >/dev/null || { echo "check-deploy.sh: kubectl is missing" >&2; exit 1; }
command -v kubernetes-validate >/dev/null || {
    echo "check-deploy.sh: kubernetes-validate is missing (scripts/lib/prereqs.sh installs it)" >&2
    exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

validate() {  # FILE...: every object must pass, nothing else may be printed
    local output
    output=$(kubernetes-validate --strict -k 1.36.0 "$@" 2>&1) || { echo "$output" >&2; return 1; }
    if echo "$output" | grep -v " passed for resource " | grep -q .; then
        echo "check-deploy.sh: kubernetes-validate did not pass everything:" >&2
        echo "$output" | grep -v " passed for resource " >&2
        return 1
    fi
    echo "$output" | sed 's/^INFO /  /'
}

for kustomization in deploy/base deploy/examples; do
    name=$(basename "$kustomization")
    kubectl kustomize "$kustomization" > "$work/$name.yaml"
    echo "==> $kustomization"
    validate "$work/$name.yaml"
done

echo "==> deploy/monitoring (our rules: ServiceMonitor is a CRD)"
kubectl kustomize deploy/monitoring > "$work/monitoring.yaml"
python3 - "$work/monitoring.yaml" "$work/base.yaml" <<'PY'
import sys, yaml
monitors = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
services = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d and d.get("kind") == "Service"]
assert monitors, "no objects rendered"
for m in monitors:
    assert m["apiVersion"] == "monitoring.coreos.com/v1" and m["kind"] == "ServiceMonitor", m.get("kind")
    assert set(m) <= {"apiVersion", "kind", "metadata", "spec"}, set(m)
    spec = m["spec"]
    assert set(spec) <= {"selector", "namespaceSelector", "endpoints", "jobLabel"}, set(spec)
    labels = spec["selector"]["matchLabels"]
    # The selector must pick a Service of deploy/base with a port of each endpoint's name.
    matches = [s for s in services if all(s["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())]
    assert matches, f"ServiceMonitor {m['metadata']['name']} selects no Service of deploy/base"
    ports = {p["name"] for s in matches for p in s["spec"]["ports"]}
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scheme", "scrapeTimeout"}, set(endpoint)
        assert endpoint["port"] in ports, f"endpoint port {endpoint['port']} not in {ports}"
    print(f"  {sys.argv[1]} passed our rules for servicemonitor/{m['metadata']['name']}")
PY

if [ -x dist/bin/xpu-kube ]; then
    echo "==> ResourceSlices as the controller publishes them (dist/bin/xpu-kube slices)"
    dist/bin/xpu-kube slices --driver-name xpu-remote.io --pool-name xpu-remote --node-selector xpu-remote.io/slices=true \
        --server "10.0.0.5:7070=85899345920,85899345920" --server "gpu-b.example:7070=17179869184" > "$work/slices.yaml"
    validate "$work/slices.yaml"

    echo "==> CDI specs as the kubelet plugin writes them (dist/bin/xpu-kube cdi-spec), against proto/cdi/spec.schema.json and our rules"
    mkdir -p "$work/claims" "$work/cdi"
    claim() {  # NAME UID RESULTS [CONFIG]: an allocated ResourceClaim
        cat > "$work/claims/$1.json" <<JSON
{"metadata": {"name": "$1", "namespace": "team-a", "uid": "$2"},
 "status": {"allocation": {"devices": {"results": $3, "config": [${4:-}]}}}}
JSON
    }
    result() {  # DEVICE MEMORY COMPUTE
        echo "{\"request\": \"gpu\", \"driver\": \"xpu-remote.io\", \"pool\": \"xpu-remote\", \"device\": \"$1\", \"consumedCapacity\": {\"memory\": \"$2\", \"compute\": \"$3\"}}"
    }
    config() {  # JSON fields of a SliceConfig
        echo "{\"source\": \"FromClaim\", \"opaque\": {\"driver\": \"xpu-remote.io\", \"parameters\": {\"apiVersion\": \"xpu-remote.io/v1\", \"kind\": \"SliceConfig\", $1}}}"
    }
    claim pool-token 0f3a2b1c-7d4e-4f60-9a8b-112233445566 "[$(result 10-0-0-5-7070-d0 4Gi 30)]" "$(config '"priority": "high", "mode": "capped", "poolWait": "30s"')"
    claim pinned b7c1d2e3-0000-4000-8000-000000000001 "[$(result 10-0-0-5-7070-d1 16Gi 100)]" "$(config '"placement": "device"')"
    claim two-slices 3c4d5e6f-0000-4000-8000-000000000002 "[$(result 10-0-0-5-7070-d0 2Gi 20), $(result 10-0-0-5-7070-d1 2Gi 20)]"
    kube=dist/bin/xpu-kube
    $kube cdi-spec --claim "$work/claims/pool-token.json" --token --tls-ca > "$work/cdi/pool-token.json"
    $kube cdi-spec --claim "$work/claims/pinned.json" --server "10.0.0.5:7070=85899345920,85899345920" > "$work/cdi/pinned.json"
    $kube cdi-spec --claim "$work/claims/two-slices.json" --token > "$work/cdi/two-slices.json"
    python3 scripts/check-cdi-specs.py proto/cdi/spec.schema.json "$work"/cdi/*.json

    # The image is not built here (no container engine); what can be checked without one: the
    # recipe copies files that dist/ has, and every executable the manifests run is in dist/bin.
    echo "==> deploy/Containerfile's sources and the manifests' commands are in dist/"
    for source in $(awk '$1 == "COPY" { print $2 }' deploy/Containerfile); do
        [ -e "$source" ] || { echo "check-deploy.sh: deploy/Containerfile copies $source, which dist/ lacks" >&2; exit 1; }
    done
    for program in $(grep -oh '/opt/xpu-remote/bin/[A-Za-z0-9_-]*' "$work/base.yaml" | sort -u); do
        [ -x "dist/bin/$(basename "$program")" ] || { echo "check-deploy.sh: deploy/base runs $program, which dist/bin lacks" >&2; exit 1; }
        echo "  $program is dist/bin/$(basename "$program")"
    done
fi
echo "check-deploy.sh: every manifest is valid"
