#!/usr/bin/env bash
# Exports every configuration example of docs/configuration-examples.md (the original product's
# examples included) as Registry v2 LimitRanges with `registry-gateway export registry-v2`, and
# validates each export against the Kubernetes 1.30 API schemas (kubernetes-validate, strict).
# Usage: scripts/validate-exports.sh [path/to/registry-gateway]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/registry-gateway}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$work" <<'PY'
import re, sys
text = open("docs/configuration-examples.md").read()
for n, block in enumerate(re.findall(r"```yaml\n(.*?)```", text, re.S)):
    open(f"{sys.argv[1]}/example-{n:02}.yaml", "w").write(block)
PY
count=0
for example in "$work"/example-*.yaml; do
    name=$(basename "$example" .yaml)
    # The namespaces the rules name, and two more (one no rule covers).
    "$bin" export registry-v2 --config "$example" >"$work/$name.rules.out"
    "$bin" export registry-v2 --config "$example" --namespaces project-1,unnamed >"$work/$name.named.out"
    for out in "$work/$name.rules.out" "$work/$name.named.out"; do
        if grep -q '^kind: LimitRange' "$out"; then
            kubernetes-validate -k 1.30.0 --strict --quiet "$out"
            count=$((count + 1))
        fi
    done
done
[ "$count" -gt 0 ] || { echo "error: no export held a LimitRange" >&2; exit 1; }
echo "$count exports of $(ls "$work"/example-*.yaml | wc -l) examples valid"
