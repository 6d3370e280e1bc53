#!/usr/bin/env bash
# Every `kubectl apply -k PATH` that README.md, docs/ and deploy/ document, and every other
# kustomization under deploy/ (Components aside, which render only inside one), must:
#   1. render with kubectl's kustomize (`kubectl kustomize PATH`), as `kubectl apply -k` does;
#   2. pass kubernetes-validate --strict against the Kubernetes API schemas;
#   3. refer only to objects in the same render, or to the objects listed below as the
#      operator's to create (scripts/kustomize_refs.py says what is checked).
# A kustomization that is not documented fails too. Needs kubectl (kustomize v5); installs
# kubernetes-validate and PyYAML from PyPI when missing. Never skipped: without kubectl it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

# Objects the operator creates (or already has) before applying a path, as "PATH KIND/NAME";
# documented in docs/deployment.md#objects-you-create. The registry to protect is one of them:
# REGISTRY_GATEWAY_UPSTREAM names its Service.
operator_objects=(
    "deploy/kubernetes/base Service/docker-registry"
    "deploy/kubernetes/overlays/with-redis Service/docker-registry"
    "deploy/kubernetes/overlays/external-redis Service/docker-registry"
    "deploy/kubernetes/overlays/external-redis Secret/registry-gateway-coordination"
    "deploy/kubernetes/overlays/tls Service/docker-registry"
    "deploy/kubernetes/overlays/tls Secret/registry-gateway-tls"
)
# The oldest Kubernetes the manifests are checked against.
kubernetes_version=1.30.0

fail() {
    echo "error: $*" >&2
    exit 1
}

if ! command -v kubectl >/dev/null 2>&1; then
    fail "kubectl is missing: install kubectl 1.27 or later (its built-in kustomize v5 renders the manifests); this check is never skipped${CI:+ (CI=$CI)}"
fi
kustomize_major=$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9][0-9]*\).*/\1/p')
if [ "${kustomize_major:-0}" -lt 5 ]; then
    fail "kubectl's kustomize is older than v5 ($(kubectl version --client 2>&1 | tr '\n' ' ')): install kubectl 1.27 or later"
fi
if ! command -v kubernetes-validate >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.*' 2>&1 |
        grep -v 'Running pip as the' || true
fi
command -v kubernetes-validate >/dev/null 2>&1 || fail "kubernetes-validate could not be installed"
if ! python3 -c 'import yaml' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check PyYAML 2>&1 |
        grep -v 'Running pip as the' || true
fi
python3 -c 'import yaml' 2>/dev/null || fail "PyYAML could not be installed"

# The documented paths (placeholders such as <dir> or PATH aside).
documented=$(grep -rhoE 'kubectl (apply|delete|diff) -k [^ `"]+' README.md docs deploy |
    awk '{print $4}' | sed -E 's#[.,;:)]+$##; s#/+$##' | grep -vE '^(<.*>|[A-Z_]+)$' | sort -u)
# Every kustomization under deploy/ that is not a Component must be among them.
for file in $(find deploy -name kustomization.yaml -o -name kustomization.yml -o -name Kustomization | sort); do
    grep -q '^kind: Component' "$file" && continue
    dir=$(dirname "$file")
    grep -qxF "$dir" <<<"$documented" ||
        fail "$dir holds a kustomization that no \`kubectl apply -k\` in README.md, docs/ or deploy/ documents"
done
[ -n "$documented" ] || fail "no \`kubectl apply -k\` path is documented"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=0
for path in $documented; do
    echo "kubectl apply -k $path"
    render="$scratch/render.yaml"
    if ! kubectl kustomize "$path" >"$render" 2>"$scratch/err"; then
        sed 's/^/  /' "$scratch/err" >&2
        echo "  FAILED: does not render" >&2
        failed=1
        continue
    fi
    if ! kubernetes-validate -k "$kubernetes_version" --strict --quiet "$render" >"$scratch/err" 2>&1; then
        sed 's/^/  /' "$scratch/err" >&2
        echo "  FAILED: not valid for Kubernetes $kubernetes_version (strict)" >&2
        failed=1
        continue
    fi
    operator=()
    for entry in "${operator_objects[@]}"; do
        [ "${entry%% *}" = "$path" ] && operator+=(--operator "${entry#* }")
    done
    if ! python3 scripts/kustomize_refs.py "$render" "${operator[@]}"; then
        echo "  FAILED: a reference does not resolve" >&2
        failed=1
    fi
done
for entry in "${operator_objects[@]}"; do
    grep -qxF "${entry%% *}" <<<"$documented" || {
        echo "error: the operator's list names ${entry%% *}, which no documented path is" >&2
        failed=1
    }
    grep -qF "${entry##*/}" docs/deployment.md || {
        echo "error: docs/deployment.md does not name ${entry#* }, an object the operator creates" >&2
        failed=1
    }
done
[ "$failed" -eq 0 ] || fail "the Kubernetes manifests do not render, validate or resolve (above)"
echo "every documented kustomize path renders, validates and resolves"
