#!/usr/bin/env bash
# The main job, as a short tour: starts a real registry (Debian's docker-registry, CNCF
# distribution) and registry-gateway in front of it on loopback ports, with the "Path-Specific
# Limits" ConfigMap of the product it replaces, then pushes real images with skopeo:
#
#   1. an allowed push,                      4. a refused 4th tag (the limit is 3),
#   2. a refused image that is too large,    5. an allowed re-push of an existing tag,
#   3. two more allowed tags,                6. a refused Docker schema 1 push,
#
# each with the message skopeo printed; then `registry-gateway explain` and the decision
# metrics. It stops everything it started, and exits non-zero when any push does not end as
# expected.
#
# Needs cargo (https://rustup.rs); installs docker-registry, skopeo, umoci and curl through
# scripts/install-deps.sh when they are missing (apt, as root or with sudo).
#
# The gateway is built in the debug profile: on a small machine that is minutes quicker than
# --release, it shares most compiled dependencies with scripts/test.sh (which builds debug too),
# and a few 5-25 MiB pushes do not need the optimiser. DEMO_PROFILE=release builds and runs the
# release binary instead.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -t 1 ]; then bold=$'\e[1m' dim=$'\e[2m' red=$'\e[31m' green=$'\e[32m' reset=$'\e[0m'
else bold='' dim='' red='' green='' reset=''; fi

say() { printf '%s\n' "$*"; }
setup() { printf '%s[setup]%s %s\n' "$dim" "$reset" "$*"; }
step() { printf '\n%s%s%s\n' "$bold" "$*" "$reset"; }
indent() { sed 's/^/     /'; }

failures=0
expected() { printf '   %sas expected:%s %s\n' "$green" "$reset" "$*"; }
unexpected() {
    failures=$((failures + 1))
    printf '   %sUNEXPECTED:%s %s\n' "$red" "$reset" "$*"
}

# --- what the demo starts, and how it is stopped ------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/registry-gateway-demo.XXXXXX")
registry_pid=''
gateway_pid=''

stop() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ "$status" -ne 0 ] && [ -d "$work" ]; then
        for log in "$work"/gateway.log "$work"/registry.log; do
            [ -s "$log" ] || continue
            printf '\n--- last lines of %s ---\n' "$(basename "$log")" >&2
            # distribution logs every 404 answer at level error; those are normal here
            grep -v 'response completed with error' "$log" | tail -n 15 >&2 || true
        done
    fi
    stop "$gateway_pid"
    stop "$registry_pid"
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
    printf '%serror:%s %s\n' "$red" "$reset" "$*" >&2
    exit 1
}

# Runs a command silently; shows its output when it fails.
quiet() {
    local out
    if ! out=$("$@" 2>&1); then
        printf '%s\n' "$out" >&2
        die "failed: $*"
    fi
}

# free_port VAR: sets VAR to a loopback TCP port nobody listens on (and not handed out before).
used_ports=' '
free_port() {
    local port
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 40000))
        case "$used_ports" in *" $port "*) continue ;; esac
        if ! (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            used_ports+="$port "
            printf -v "$1" '%s' "$port"
            return 0
        fi
    done
    die "no free loopback port found"
}

# Waits until `url` answers with a 2xx status while `pid` is alive.
wait_for() {
    local url=$1 pid=$2 what=$3
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || die "$what exited during start-up"
        curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    die "$what did not answer $url within 15 s"
}

# --- tools, build ---------------------------------------------------------------------------
say "${bold}registry-gateway demo${reset}: a real registry, the gateway in front of it, real pushes."
say ""
setup "checking tools (scripts/install-deps.sh installs what is missing)"
scripts/install-deps.sh
for tool in docker-registry skopeo umoci curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing; run scripts/install-deps.sh as root"
done
command -v cargo >/dev/null 2>&1 || die "cargo is missing; install Rust from https://rustup.rs"

profile=${DEMO_PROFILE:-debug}
case "$profile" in
    debug) build=(cargo build --locked -p gateway-bin) ;;
    release) build=(cargo build --locked --release -p gateway-bin) ;;
    *) die "DEMO_PROFILE must be debug or release, not \"$profile\"" ;;
esac
setup "building the gateway: ${build[*]} (the first build takes a few minutes)"
"${build[@]}" --quiet
gateway="${CARGO_TARGET_DIR:-target}/$profile/registry-gateway"
[ -x "$gateway" ] || die "$gateway was not built"

# --- the registry ---------------------------------------------------------------------------
free_port registry_port
mkdir -p "$work/storage"
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$registry_port
  secret: registry-gateway-demo
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
wait_for "http://127.0.0.1:$registry_port/v2/" "$registry_pid" "docker-registry"
setup "docker-registry (CNCF distribution) on 127.0.0.1:$registry_port, storage in a temporary directory"

# --- the gateway, with the seed's "Path-Specific Limits" ConfigMap, verbatim ------------------
config="$work/registry-gateway-config.yaml"
cat >"$config" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: registry-gateway-config
data:
  max_image_size: "100MB"
  tag_count_limit: "100"
  rules: |
    - path: ^project-1/.*
      limit:
        max_image_size: "20MB"
        tag_count_limit: "3"
    - path: ^project-2/.*
      limit:
        max_image_size: "50MB"
        tag_count_limit: "10"
EOF
setup "configuration: the ConfigMap registry-gateway-config of the original's \"Path-Specific Limits\" example;"
setup "registry-gateway check-config reads it as:"
"$gateway" check-config "$config" | indent

free_port gateway_port
free_port admin_port
"$gateway" serve --config "$config" \
    --upstream "http://127.0.0.1:$registry_port" \
    --listen "127.0.0.1:$gateway_port" \
    --admin-listen "127.0.0.1:$admin_port" >"$work/gateway.log" 2>&1 &
gateway_pid=$!
wait_for "http://127.0.0.1:$admin_port/readyz" "$gateway_pid" "registry-gateway"
setup "registry-gateway on 127.0.0.1:$gateway_port (metrics on 127.0.0.1:$admin_port), proxying 127.0.0.1:$registry_port"

# --- two images, built with umoci from random bytes (random bytes do not compress) ----------
layout="$work/oci"
quiet umoci init --layout "$layout"
mkdir -p "$work/files"
add_layer() { # image, MiB
    local file="$work/files/random-$RANDOM-$2M"
    head -c "$2M" /dev/urandom >"$file"
    quiet umoci insert --rootless --image "$layout:$1" "$file" "/data/$(basename "$file")"
}
quiet umoci new --image "$layout:small"
add_layer small 5
quiet umoci new --image "$layout:big"
for _ in 1 2 3; do add_layer big 8; done
setup "images built with umoci: \"small\" (1 layer of 5 MiB) and \"big\" (3 layers of 8 MiB = 24 MiB)"

# --- pushes -----------------------------------------------------------------------------------
target="127.0.0.1:$gateway_port/project-1/app"

# push IMAGE TAG [skopeo args...]: runs skopeo copy through the gateway; leaves its exit status in
# push_status and the line of its output that carries the registry's message in push_message.
push() {
    local image=$1 tag=$2
    shift 2
    set +e
    push_output=$(timeout 300 skopeo --insecure-policy copy --dest-tls-verify=false "$@" \
        "oci:$layout:$image" "docker://$target:$tag" 2>&1)
    push_status=$?
    # skopeo prints `time=... level=fatal msg="writing manifest: ...: denied: ..."` (older) or
    # `Error: writing manifest: ...` (newer); keep the message, unquoted.
    push_message=$(printf '%s\n' "$push_output" | grep -E 'denied:|manifest invalid:|invalid|error|Error|fatal' |
        tail -n 1 | sed -e 's/^.*level=fatal msg="//' -e 's/"$//' -e 's/\\"/"/g' -e 's/^Error: //')
    set -e
}

expect_allowed() { # image tag what
    push "$1" "$2"
    if [ "$push_status" -eq 0 ]; then
        expected "skopeo pushed project-1/app:$2 ($3)"
    else
        unexpected "the push of project-1/app:$2 failed (skopeo exited with $push_status):"
        printf '%s\n' "$push_output" | tail -n 5 | indent
    fi
}

expect_refused() { # image tag pattern [skopeo args...]
    local image=$1 tag=$2 pattern=$3
    shift 3
    push "$image" "$tag" "$@"
    if [ "$push_status" -eq 0 ]; then
        unexpected "the push of project-1/app:$tag was ACCEPTED; it should have been refused"
    elif printf '%s\n' "$push_message" | grep -qF -- "$pattern"; then
        expected "skopeo printed:"
        printf '%s\n' "$push_message" | indent
    else
        unexpected "the push of project-1/app:$tag failed, but not with \"$pattern\":"
        printf '%s\n' "$push_output" | tail -n 5 | indent
    fi
}

step "1. Push the 5 MiB image as project-1/app:v1."
say "   Rule 1 (^project-1/.*) allows 20 MiB and 3 tags; this is 5 MiB and the first tag: allowed."
expect_allowed small v1 "image size and tag count within the limits"

step "2. Push the 24 MiB image as project-1/app:big."
say "   Each 8 MiB layer uploads (none alone exceeds 20 MiB); the manifest adds them up: refused."
expect_refused big big "denied: image size"

step "3. Push the small image as v2 and v3: tags 2 and 3 of 3, allowed."
expect_allowed small v2 "tag 2 of 3"
expect_allowed small v3 "tag 3 of 3"

step "4. Push a 4th tag, project-1/app:v4: refused (the gateway counts the registry's tags)."
expect_refused small v4 "denied: tag count"
tags=$(curl -fsS "http://127.0.0.1:$registry_port/v2/project-1/app/tags/list" || true)
say "   The registry itself (asked directly) holds: $tags"
case "$tags" in
    *'"v1"'*'"v2"'*'"v3"'*) case "$tags" in *v4* | *big*) unexpected "a refused tag reached the registry" ;; esac ;;
    *) unexpected "the registry does not hold v1, v2 and v3" ;;
esac

step "5. Push v1 again: an existing tag adds nothing to the count, so it is allowed."
expect_allowed small v1 "re-push of an existing tag"

step "6. Push a Docker schema 1 manifest (skopeo --format v2s1): refused, schema 1 is deprecated."
expect_refused small legacy "manifest invalid: docker schema 1" --format v2s1

step "7. Which rule applied? registry-gateway explain --config <ConfigMap> project-1/app"
"$gateway" explain --config "$config" project-1/app | indent

step "8. What the gateway counted (http://127.0.0.1:$admin_port/metrics, decisions and refusals):"
curl -fsS "http://127.0.0.1:$admin_port/metrics" |
    grep -E '^registry_gateway_(decisions|refusals)_total' | sort | indent || true
say "   One log line per decision is in the gateway's log, e.g.:"
grep -m 1 'verdict="denied"' "$work/gateway.log" | sed 's/\x1b\[[0-9;]*m//g' | indent || true

say ""
if [ "$failures" -ne 0 ]; then
    printf '%s%d outcome(s) were not as expected.%s Stopping the registry and the gateway.\n' "$red" "$failures" "$reset"
    exit 1
fi
say "${green}Every push ended as expected.${reset} Stopping the registry and the gateway."
