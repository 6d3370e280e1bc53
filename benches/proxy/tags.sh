#!/usr/bin/env bash
# Tag count benchmark of registry-gateway (issue 24): what a manifest push creating a new tag
# costs through the gateway against going to the registry directly, as repositories grow, and
# how many such pushes the gateway carries at once.
#
# Starts on free loopback ports, in a temporary directory removed on exit: Debian's
# docker-registry (filesystem storage), registry-gateway (release build, tag_count_limit
# 100000) in front of it, and redis-server with a second registry-gateway coordinating through
# it (--coordination). Two scenarios, paths interleaved in rounds whose order rotates:
#   1. push overhead: sequential pushes of new tags (one connection) into repositories holding
#      10 and 10,000 tags, direct and through the gateway (p50 over all pushes; the overhead is
#      gateway p50 - direct p50);
#   2. throughput: 16 concurrent pushers, each pushing new tags into 25 repositories of its
#      own (400 repositories in all, each holding 10 tags), direct, through the gateway and
#      through the Redis-coordinated gateway (pushes per second; per-round ratios); with
#      --quota, also through a gateway whose configuration puts a namespace quota on the
#      namespace of those 400 repositories (its pushes are decided one at a time). One
#      unmeasured round per path first: every repository is counted once before the
#      measured rounds, as in a gateway that has been serving for a while.
# Prints a table; asserts nothing about speed, but fails when any request gets an unexpected
# answer. Needs cargo, docker-registry, redis-server, curl and coreutils.
set -euo pipefail
shopt -s inherit_errexit

usage() {
    cat <<'EOF'
usage: benches/proxy/tags.sh [--quick] [options]

  --quick            CI mode: 1,000 tags instead of 10,000, 2 rounds, few pushes
  --big N            tags of the large repositories (default 10000; quick 1000)
  --rounds N         rounds of each scenario (default 7; quick 2)
  --pushes N         new-tag pushes per path, repository size and round in scenario 1
                     (default 100; quick 20)
  --per-repo N       new tags per repository and round in scenario 2 (default 8; quick 1)
  --quota            scenario 2 through a gateway with a namespace quota on the namespace too
  --no-build         use target/release/registry-gateway as built
  --keep             keep the temporary directory (logs, raw samples)

GATEWAY_BIN=<path> in the environment runs that binary (say one built at an earlier commit)
instead of building target/release/registry-gateway.
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
command_line="${GATEWAY_BIN:+GATEWAY_BIN=$GATEWAY_BIN }benches/proxy/tags.sh${*:+ $*}"
# shellcheck source=benches/proxy/lib.sh
. "$here/lib.sh"

quick=0 build=1 keep=0 quota=0 big='' rounds='' pushes='' per_repo=''
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --big) big=$2; shift ;;
        --rounds) rounds=$2; shift ;;
        --pushes) pushes=$2; shift ;;
        --per-repo) per_repo=$2; shift ;;
        --quota) quota=1 ;;
        --no-build) build=0 ;;
        --keep) keep=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$quick" = 1 ]; then
    : "${big:=1000}" "${rounds:=2}" "${pushes:=20}" "${per_repo:=1}"
else
    : "${big:=10000}" "${rounds:=7}" "${pushes:=100}" "${per_repo:=8}"
fi
for n in "$big" "$rounds" "$pushes" "$per_repo"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "counts must be positive whole numbers" >&2; exit 2; }
done

require_tools cargo docker-registry redis-server curl sha256sum

gateway_bin=$(gateway_binary "$root" "$build")
started_at=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/tags-bench.XXXXXX")
cleanup() {
    local status=$?
    stop_spawned
    if [ "$keep" = 1 ] || [ "$status" -ne 0 ]; then
        rm -rf "$work/storage"
        log "kept $work (registry.log gateway.log gateway-redis.log samples/)"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

registry_port='' gateway_port='' admin_port='' redis_port='' redis_gw_port='' redis_admin_port=''
quota_port='' quota_admin_port=''
for v in registry_port gateway_port admin_port redis_port redis_gw_port redis_admin_port \
    quota_port quota_admin_port; do free_port "$v"; done
mkdir -p "$work/data" "$work/samples"
start_registry "$registry_port" tags-bench-secret
start_gateway "$work/gateway.log" "$gateway_port" "$admin_port"
gateway_pid=$spawned
spawn "$work/redis.log" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
    --appendonly no --dir "$work"
start_gateway "$work/gateway-redis.log" "$redis_gw_port" "$redis_admin_port" \
    --coordination "redis://127.0.0.1:$redis_port/0"
redis_gw_pid=$spawned
wait_ready docker-registry "http://127.0.0.1:$registry_port/v2/" "$registry_pid"
wait_ready registry-gateway "http://127.0.0.1:$gateway_port/v2/" "$gateway_pid"
wait_ready "registry-gateway (Redis)" "http://127.0.0.1:$redis_admin_port/readyz" "$redis_gw_pid"
declare -A base=(
    [direct]="http://127.0.0.1:$registry_port"
    [gateway]="http://127.0.0.1:$gateway_port"
    [redis]="http://127.0.0.1:$redis_gw_port"
    [quota]="http://127.0.0.1:$quota_port"
)
concurrent_paths=(direct gateway redis)
if [ "$quota" = 1 ]; then
    # The same limits, and a namespace quota on `bench` that no push reaches.
    printf 'max_image_size: 4GB\ntag_count_limit: 100000\nnamespace_quotas: |\n  - namespace: ^bench$\n    hard: {repositories: "1000000", tags: "100000000"}\n' >"$work/quota.yml"
    spawn "$work/gateway-quota.log" "$gateway_bin" serve --config "$work/quota.yml" \
        --upstream "http://127.0.0.1:$registry_port" \
        --listen "127.0.0.1:$quota_port" --admin-listen "127.0.0.1:$quota_admin_port"
    quota_pid=$spawned
    wait_ready "registry-gateway (quota)" "http://127.0.0.1:$quota_port/v2/" "$quota_pid"
    concurrent_paths+=(quota)
fi
direct=${base[direct]}

# A small image: one config blob and one layer.
printf '%s' "$(head -c 2048 /dev/urandom | base64 -w0)" >"$work/data/layer"
layer_digest="sha256:$(sha256sum "$work/data/layer" | cut -d' ' -f1)"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}' \
    "$layer_digest" >"$work/data/config"
config_digest="sha256:$(sha256sum "$work/data/config" | cut -d' ' -f1)"
manifest_type=application/vnd.oci.image.manifest.v1+json
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
    "$manifest_type" "$config_digest" "$(stat -c %s "$work/data/config")" "$layer_digest" \
    "$(stat -c %s "$work/data/layer")" >"$work/data/manifest"
for blob in config layer; do
    digest=$([ "$blob" = config ] && echo "$config_digest" || echo "$layer_digest")
    request 202 -X POST "$direct/v2/bench/src/blobs/uploads/" >/dev/null
    request 201 -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$work/data/$blob" \
        "$(with_query "$(location "$direct")" "digest=$digest")" >/dev/null
done

# ---------------------------------------------------------------------------------------------
# Set-up, directly: per path, a repository of $big tags, one of 10 per round and batch of 10
# pushes (so it never holds more than 19), and the 400 repositories of scenario 2.
batches=$((pushes / 10 > 0 ? pushes / 10 : 1))
per_batch=$((pushes / batches))
log "set-up: per path, one repository of $big tags, $((rounds * batches)) of 10, and 400 of 10 (scenario 2)"
populate() { # path
    mount_blobs "bench/big-$1"
    push_manifests '' "$direct/v2/bench/big-$1/manifests/pre[1-$big]"
    mount_blobs "bench/t10-$1-[1-$((rounds * batches))]"
    push_manifests '' "$direct/v2/bench/t10-$1-[1-$((rounds * batches))]/manifests/pre[1-10]"
}
# Waits for the given background jobs (a bare `wait` would wait for the servers too).
wait_all() { # pid...
    local pid status=0
    for pid in "$@"; do wait "$pid" || status=1; done
    return "$status"
}
populate_many() { # path
    local w started=()
    for w in $(seq 1 16); do
        (mount_blobs "bench/c-$1-w$w-[1-25]" &&
            push_manifests '' "$direct/v2/bench/c-$1-w$w-[1-25]/manifests/pre[1-10]") &
        started+=($!)
    done
    wait_all "${started[@]}" || die "set-up of scenario 2 failed"
}
jobs_started=()
for path in direct gateway; do populate "$path" & jobs_started+=($!); done
for job in "${jobs_started[@]}"; do wait "$job" || die "set-up failed"; done
for path in "${concurrent_paths[@]}"; do populate_many "$path"; done

# ---------------------------------------------------------------------------------------------
# Scenario 1: push overhead by repository size.
order2() { if [ $(($1 % 2)) = 1 ]; then echo direct gateway; else echo gateway direct; fi; }
log "scenario 1: $rounds rounds of $pushes new-tag pushes per path into repositories of 10 and $big tags"
for round in $(seq 1 "$rounds"); do
    for path in $(order2 "$round"); do
        for batch in $(seq 1 "$batches"); do
            repo="bench/t10-$path-$(((round - 1) * batches + batch))"
            push_manifests "push10.$path" "${base[$path]}/v2/$repo/manifests/r$round-b$batch-[1-$per_batch]"
        done
        push_manifests "pushbig.$path" "${base[$path]}/v2/bench/big-$path/manifests/r$round-[1-$pushes]"
    done
    log "  round $round done"
done

# ---------------------------------------------------------------------------------------------
# Scenario 2: 16 concurrent pushers into 400 repositories.
concurrent() { # path label: prints pushes per second
    local path=$1 label=$2 w start end started=()
    start=$(date +%s.%N)
    for w in $(seq 1 16); do
        push_manifests '' "${base[$path]}/v2/bench/c-$path-w$w-[1-25]/manifests/$label-[1-$per_repo]" &
        started+=($!)
    done
    wait_all "${started[@]}" || die "concurrent pushes through $path failed"
    end=$(date +%s.%N)
    awk -v n=$((400 * per_repo)) -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", n / (e - s) }'
}
order3() {
    local n=${#concurrent_paths[@]} i
    for ((i = 0; i < n; i++)); do echo "${concurrent_paths[$((($1 + i) % n))]}"; done
}
log "scenario 2: one unmeasured round, then $rounds rounds of 16 concurrent pushers, $per_repo new tags into each of 400 repositories"
for path in "${concurrent_paths[@]}"; do concurrent "$path" warm >/dev/null; done
for round in $(seq 1 "$rounds"); do
    for path in $(order3 "$round"); do
        rate=$(concurrent "$path" "r$round")
        sample "conc.$path" "$rate"
        log "  round $round $path: $rate pushes/s"
    done
done
gateway_rss=$(rss_kib "$gateway_pid" VmRSS)

kill -0 "$gateway_pid" 2>/dev/null || die "the gateway exited (see $work/gateway.log)"
kill -0 "$redis_gw_pid" 2>/dev/null || die "the Redis-coordinated gateway exited (see $work/gateway-redis.log)"
if [ "$quota" = 1 ]; then
    kill -0 "$quota_pid" 2>/dev/null || die "the gateway with a quota exited (see $work/gateway-quota.log)"
fi
if grep -Eqs 'verdict="?denied' "$work/gateway.log" "$work/gateway-redis.log" "$work/gateway-quota.log"; then
    die "the gateway refused requests (see $work/gateway.log, $work/gateway-redis.log)"
fi
listings() { # admin-port: tag listings the gateway read for tag counts, by reason
    curl -fs "http://127.0.0.1:$1/metrics" | awk '/^registry_gateway_inventory_tag_set_listings_total/ { sub(/registry_gateway_inventory_tag_set_listings_total/, ""); printf "%s ", $0 }'
}
upstream_tags() { # admin-port: upstream tag listings (any reason)
    curl -fs "http://127.0.0.1:$1/metrics" | awk '/^registry_gateway_upstream_request_duration_seconds_count\{operation="tags"/ { print $2 }'
}

# ---------------------------------------------------------------------------------------------
# Results.
S="$work/samples"
elapsed=$(($(date +%s) - started_at))
p50() { percentile "$S/$1" 50; }
overhead() { awk -v a="$(p50 "$1.gateway")" -v b="$(p50 "$1.direct")" 'BEGIN { printf "%+.2f", a - b }'; }
echo
echo "Tag count benchmark ($(nproc) cores, ${elapsed} s without the build; command: $command_line):"
echo
echo "| scenario | metric | direct | gateway | gateway (Redis) | gateway / direct | gateway (Redis) / direct |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
for size in 10 big; do
    label=$([ "$size" = 10 ] && echo 10 || echo "$big")
    echo "| push of a new tag, repository of $label tags | ms, p50 | $(fmt "$(p50 "push$size.direct")") | $(fmt "$(p50 "push$size.gateway")") | - | overhead $(overhead "push$size") ms | - |"
done
growth=$(awk -v a="$(overhead pushbig)" -v b="$(overhead push10)" 'BEGIN { printf "%+.2f", a - b }')
echo "| overhead growth, 10 → $big tags | ms, p50 | | $growth | | target ≤ +2 ms | |"
echo "| 16 concurrent pushers, 400 repositories | pushes/s, median of $rounds rounds | $(fmt "$(median "$S/conc.direct")") | $(fmt "$(median "$S/conc.gateway")") | $(fmt "$(median "$S/conc.redis")") | $(paired "$S/conc.gateway" "$S/conc.direct") | $(paired "$S/conc.redis" "$S/conc.direct") |"
if [ "$quota" = 1 ]; then
    echo "| the same, gateway with a namespace quota on \`bench\` | pushes/s, median of $rounds rounds | $(fmt "$(median "$S/conc.direct")") | $(fmt "$(median "$S/conc.quota")") | | $(paired "$S/conc.quota" "$S/conc.direct") | |"
fi
echo
echo "* Pushes per path: $((rounds * pushes)) per repository size (scenario 1); $((rounds * 400 * per_repo)) measured (scenario 2)."
echo "* Gateway resident memory at the end: $(awk -v k="$gateway_rss" 'BEGIN { printf "%.1f MiB", k / 1024 }')."
echo "* Upstream tag listings read by the gateway: $(upstream_tags "$admin_port"), by the Redis-coordinated gateway: $(upstream_tags "$redis_admin_port"); by reason: $(listings "$admin_port")/ $(listings "$redis_admin_port")"
