#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit, integration, end-to-end and
# doc tests, docs, a quick criterion pass, a short proxy benchmark and a fuzz smoke run.
# Installs what it needs (Debian packages, cargo-fuzz, kubernetes-validate) itself; kubectl
# (1.27 or later) must be there already. Runs as root: the Docker tests start a dockerd.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
started=$(date +%s)

step "installing test dependencies"
scripts/install-deps.sh
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

step "every documented kubectl apply -k path renders, validates (kubernetes-validate, strict) and resolves its references"
scripts/check-kustomize.sh

step "cargo fmt --all --check"
cargo fmt --all --check

step "module map: no import cycle between a crate's modules, no file over 500 lines before its unit tests"
# The tool lives in shared/ beside the repository; CI runs with a copy of it there.
module_map="$(cd .. && pwd)/shared/tools/module-map"
if [ -x "$module_map" ]; then
    "$module_map" --quiet
elif [ "${CI:-}" = "true" ]; then
    echo "error: $module_map is missing; CI needs shared/ beside the repository" >&2
    exit 1
else
    echo "skipped: $module_map not found (shared/ is not beside the repository)"
fi

step "every name docs/architecture.md puts in a code span exists in the source"
python3 scripts/check_doc_names.py docs/architecture.md

step "the pure crates do no I/O: no async runtime or HTTP stack in their dependencies"
for crate in limits-core oci-manifest registry-api; do
    if cargo tree --locked -p "$crate" -e normal --prefix none | grep -E '^(tokio|hyper|reqwest|http|mio|socket2) '; then
        echo "error: $crate depends on an I/O crate" >&2
        exit 1
    fi
done

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "cargo test --workspace (unit, integration, end-to-end against docker-registry with skopeo, docker, podman and buildah, the container image built and run by a dockerd of its own, doc tests)"
cargo test --locked --workspace

step "Registry v2 exports of every configuration example validate against the API schemas"
scripts/validate-exports.sh target/debug/registry-gateway

step "cargo doc --workspace --no-deps (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --workspace --no-deps --quiet

step "criterion benches, quick pass"
cargo bench --locked -p registry-gateway-benches --bench rule_lookup --bench manifest_parse -- --quick

step "proxy benchmark, short run (numbers printed, not asserted; fails only on request errors)"
benches/proxy/run.sh --quick

step "read-path benchmark, short run (numbers printed, not asserted; fails on request errors or when nothing is spliced)"
benches/proxy/reads.sh --quick --no-build

step "tag count benchmark, short run (numbers printed, not asserted; fails only on request errors)"
benches/proxy/tags.sh --quick --no-build

step "fuzz smoke run"
# cargo-fuzz needs nightly flags; without a nightly toolchain, stable accepts them with
# RUSTC_BOOTSTRAP (no sanitizer then).
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
    sanitizer=()
else
    fuzz=(env RUSTC_BOOTSTRAP=1 cargo fuzz)
    sanitizer=(--sanitizer none)
fi
for target in size_roundtrip config_parse manifest_parse request_route notification_parse; do
    mkdir -p "fuzz/corpus/$target"
    seeds=()
    [ -d "fuzz/seeds/$target" ] && seeds=("fuzz/seeds/$target")
    "${fuzz[@]}" run "${sanitizer[@]}" "$target" "fuzz/corpus/$target" "${seeds[@]}" -- -max_total_time="${FUZZ_SECONDS:-15}" 2>&1 | tail -n 3
done

echo
echo "all checks passed in $(( $(date +%s) - started )) s"
