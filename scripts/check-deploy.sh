#!/usr/bin/env bash
# Renders every kustomization under deploy/ offline (kubectl kustomize) and validates each object
# against the Kubernetes 1.36 API (kubernetes-validate --strict: unknown fields are errors). An
# object kubernetes-validate does not know (a CRD's, or a kind newer than 1.36) only makes it
# warn and exit 0, so any line that is not a pass fails this check. deploy/monitoring holds the
# Prometheus Operator's ServiceMonitor, a CRD kubernetes-validate cannot know: it is checked
# against our own rules below. With dist/bin/xpu-kube built, the ResourceSlices the controller
# publishes for a sample inventory are validated too.
# Needs: kubectl (>= 1.27, for kustomize; not in Debian's archive, preinstalled on the build
# machines) and the PyPI package kubernetes-validate (scripts/lib/prereqs.sh installs it).
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
fi
echo "check-deploy.sh: every manifest is valid"
